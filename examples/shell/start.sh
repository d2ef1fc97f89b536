#!/bin/sh
# The start step of the "shell" example: counts starts in the build state and appends the
# message parameter to a file kept in the workspace folder.
set -eu

# The previous build's state, e.g. {"starts": 2, "last_build": 3}; empty for a new workspace.
starts=0
if [ -s "$KILN_STATE_FILE" ]; then
    starts=$(sed -n 's/.*"starts": *\([0-9][0-9]*\).*/\1/p' "$KILN_STATE_FILE")
    starts=${starts:-0}
fi
starts=$((starts + 1))

# Whatever this file holds when the start steps end becomes the new build's state.
printf '{"starts": %d, "last_build": %d}\n' "$starts" "$KILN_BUILD_NUMBER" > "$KILN_STATE_FILE"

echo "$KILN_PARAM_MESSAGE" >> "$KILN_WORKSPACE_DIR/notes.txt"
echo "$KILN_PARAM_EXTRAS" > "$KILN_WORKSPACE_DIR/extras.json"

echo "start number $starts of $KILN_WORKSPACE_NAME for $KILN_OWNER_NAME"
echo "disk: $KILN_PARAM_DISK_GB GB, extras: $KILN_PARAM_EXTRAS"
if [ "$KILN_PARAM_VERBOSE" = "true" ]; then
    echo "running in $(pwd) with workspace folder $KILN_WORKSPACE_DIR"
    echo "state is now: $(cat "$KILN_STATE_FILE")"
fi
