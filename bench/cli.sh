#!/usr/bin/env bash
# What the `kiln` client costs a person: wall time of `kiln list` and `kiln show` (a process
# start and two requests each) and of `kiln create` on a template without steps (the build
# queued, run and followed to its outcome line), medians over a number of runs.
# Usage: bench/cli.sh [runs]   (the release binary, built first; KILN_BIN=path uses another)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
if [ -z "${KILN_BIN:-}" ]; then cargo build --release --quiet; fi
bin=${KILN_BIN:-target/release/kiln}
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

tmp=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
"$bin" server --address "127.0.0.1:$port" --data-dir "$tmp/data" --dangerous-disable-rate-limits \
  2>"$tmp/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.01; done
export XDG_CONFIG_HOME="$tmp/config"
"$bin" login "http://127.0.0.1:$port" --first-user-username bench \
  --first-user-email bench@example.com --first-user-password bench-password >/dev/null
mkdir "$tmp/noop" && echo '{}' > "$tmp/noop/kiln.json"
"$bin" templates push noop -d "$tmp/noop" >/dev/null

ms() { # runs "$@" once; prints its wall time in milliseconds (to 0.1)
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null
  end=$(date +%s%N)
  awk -v d=$((end - start)) 'BEGIN {printf "%.1f\n", d / 1e6}'
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
create=(); list=(); show=()
for i in $(seq "$runs"); do
  create+=("$(ms "$bin" create "w$i" -t noop)")
  list+=("$(ms "$bin" list)")
  show+=("$(ms "$bin" show "w$i")")
done
echo "kiln create (no-op build, followed to its end): median ${create[*]:+$(median "${create[@]}")} ms over $runs runs"
echo "kiln list ($runs workspaces at most):             median $(median "${list[@]}") ms"
echo "kiln show:                                      median $(median "${show[@]}") ms"
