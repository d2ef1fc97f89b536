#!/usr/bin/env bash
# Start-up cost of kiln: time from exec to the first 200 from /healthz (fresh and existing
# database), idle memory (RSS) after start-up, and the release binary's size.
# Usage: bench/startup.sh [runs]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo build --release --quiet
bin=target/release/kiln
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

port=$((20000 + RANDOM % 20000))
measure() { # $1: data dir; prints milliseconds to the first 200
  local start end pid
  start=$(date +%s%N)
  "$bin" server --address "127.0.0.1:$port" --data-dir "$1" 2>/dev/null &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.001; done
  end=$(date +%s%N)
  echo $(( (end - start) / 1000 ))
  if [ "${2:-}" = rss ]; then
    sleep 1
    echo "rss_kib $(awk '/VmRSS/ {print $2}' /proc/$pid/status)" >&2
  fi
  kill $pid; wait $pid 2>/dev/null || true
}

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fresh=(); warm=()
for i in $(seq "$runs"); do
  fresh+=("$(measure "$tmp/fresh-$i")")
  warm+=("$(measure "$tmp/fresh-$i")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "start-up to first 200 /healthz, new database:      median $(median "${fresh[@]}") us over $runs runs"
echo "start-up to first 200 /healthz, existing database: median $(median "${warm[@]}") us over $runs runs"
measure "$tmp/rss" rss >/dev/null 2>"$tmp/rss.txt"
echo "idle memory (RSS, 1 s after start, 3 workers):     $(awk '{print $2}' "$tmp/rss.txt") KiB"
echo "release binary size:                               $(stat -c %s "$bin") bytes"
