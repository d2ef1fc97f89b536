#!/bin/sh
# The stop step of the "shell" example: reports what the workspace folder holds. It leaves
# $KILN_STATE_FILE as it is, so the start count carries over to the next start.
set -eu

if [ -f "$KILN_WORKSPACE_DIR/notes.txt" ]; then
    echo "stopping $KILN_WORKSPACE_NAME; notes.txt has $(wc -l < "$KILN_WORKSPACE_DIR/notes.txt") lines"
else
    echo "stopping $KILN_WORKSPACE_NAME; it has no notes yet"
fi
echo "state kept: $(cat "$KILN_STATE_FILE")"
