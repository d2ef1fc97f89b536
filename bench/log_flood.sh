#!/usr/bin/env bash
# What a job that floods its log costs: a build whose step prints LINES lines of WIDTH bytes
# (empty lines by default), run by a built-in worker. Prints how long the build took, the lines
# stored, what they cost under the log cap's rule, and how much the database grew.
# Usage: bench/log_flood.sh [LINES [WIDTH [kiln server flags...]]]
#   e.g. bench/log_flood.sh 300000 0
#        bench/log_flood.sh 300000 80 --max-job-log-bytes 4194304
# Builds the release binary first; KILN_BIN=path runs another binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-300000}
width=${2:-0}
shift $(($# > 2 ? 2 : $#))
if [ -z "${KILN_BIN:-}" ]; then
  cargo build --release --quiet
  bin=target/release/kiln
else
  bin=$KILN_BIN
fi
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$bin" server --address "127.0.0.1:$port" --data-dir "$tmp/data" --workers 1 "$@" 2>"$tmp/log" &
pid=$!
until curl -sf -o /dev/null "$base/healthz"; do sleep 0.01; done
curl -sf -o /dev/null -X POST "$base/api/v2/users/first" \
  -d '{"email":"flood@example.com","username":"flood","password":"a-flood-password"}'
token=$(curl -sf -X POST "$base/api/v2/users/login" \
  -d '{"email":"flood@example.com","password":"a-flood-password"}' | jq -r .session_token)
api() { # method path [body]
  curl -sf -X "$1" -H "Coder-Session-Token: $token" -H 'Content-Type: application/json' \
    "$base$2" ${3:+-d "$3"}
}

# Bytes the database uses (pages in use; the WAL's pages are read through SQLite).
used() {
  python3 - "$tmp/data/kiln.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
pages = c.execute("PRAGMA page_count").fetchone()[0]
free = c.execute("PRAGMA freelist_count").fetchone()[0]
size = c.execute("PRAGMA page_size").fetchone()[0]
print((pages - free) * size)
EOF
}

line=$(printf '%*s' "$width" '' | tr ' ' x)
mkdir "$tmp/archive"
jq -n --arg run "yes '$line' | head -n $lines" \
  '{steps: {start: [{run: $run}], stop: [], delete: []}}' >"$tmp/archive/kiln.json"
tar -C "$tmp/archive" -cf "$tmp/template.tar" kiln.json
file=$(curl -sf -X POST -H "Coder-Session-Token: $token" -H 'Content-Type: application/x-tar' \
  --data-binary "@$tmp/template.tar" "$base/api/v2/files" | jq -r .hash)
version=$(api POST /api/v2/organizations/coder/templateversions \
  "{\"storage_method\":\"file\",\"file_id\":\"$file\",\"provisioner\":\"echo\"}" | jq -r .id)
until [ "$(api GET "/api/v2/templateversions/$version" | jq -r .job.status)" = succeeded ]; do
  sleep 0.05
done
template=$(api POST /api/v2/organizations/coder/templates \
  "{\"name\":\"flood\",\"template_version_id\":\"$version\"}" | jq -r .id)
before=$(used)
build=$(api POST /api/v2/users/me/workspaces \
  "{\"name\":\"flood\",\"template_id\":\"$template\"}" | jq -r .latest_build.id)
until api GET "/api/v2/workspacebuilds/$build" | jq -e '.job.completed_at != null' >/dev/null; do
  sleep 0.1
done
after=$(used)
api GET "/api/v2/workspacebuilds/$build" >"$tmp/build.json"
api GET "/api/v2/workspacebuilds/$build/logs" >"$tmp/logs.json"
started=$(jq -r .job.started_at "$tmp/build.json")
completed=$(jq -r .job.completed_at "$tmp/build.json")
python3 - "$started" "$completed" "$tmp/build.json" "$tmp/logs.json" "$lines" "$width" \
  "$((after - before))" "$*" <<'EOF'
import datetime, json, sys
started, completed, build, logs, lines, width, grew, flags = sys.argv[1:]
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
took = (t(completed) - t(started)).total_seconds()
job = json.load(open(build))["job"]
stored = json.load(open(logs))
cost = sum(len(l["output"].encode()) + 64 for l in stored)
marker = [l["output"] for l in stored if l["output"].startswith("Log output exceeded")]
print(f"{int(lines):,} lines of {width} bytes ({flags or 'default flags'}): build {job['status']} in {took:.2f} s")
print(f"  stored {len(stored):,} lines costing {cost:,} bytes under the rule; logs_overflowed {job['logs_overflowed']}")
print(f"  database grew by {int(grew):,} bytes")
if marker:
    print(f"  marker: {marker[0]}")
EOF
