#!/usr/bin/env bash
# What kiln costs while nothing happens: CPU time, bytes written to disk and memory over a
# quiet window, with no client, then with one status page open (its live events stream).
# Usage: bench/idle.sh [seconds]   (builds the release binary first; default 30 s a window)
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-30}
cargo build --release --quiet
bin=target/release/kiln
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
tmp=$(mktemp -d)
pid=""
follower=""
cleanup() {
  [ -n "$follower" ] && kill "$follower" 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$bin" server --address "127.0.0.1:$port" --data-dir "$tmp/data" 2>/dev/null &
pid=$!
until curl -sf -o /dev/null "$base/healthz"; do sleep 0.01; done
curl -sf -o /dev/null -X POST "$base/api/v2/users/first" \
  -d '{"email":"idle@example.com","username":"idle","password":"an-idle-password"}'
token=$(curl -sf -X POST "$base/api/v2/users/login" \
  -d '{"email":"idle@example.com","password":"an-idle-password"}' |
  sed 's/.*"session_token":"\([^"]*\)".*/\1/')
tck=$(getconf CLK_TCK)

# CPU ticks (user + system), bytes written to storage, RSS in KiB.
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
written() { awk '/^write_bytes/ {print $2}' "/proc/$pid/io"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

measure() { # $1: label
  sleep 3 # let what the previous step started settle
  local c0 w0 c1 w1
  c0=$(cpu); w0=$(written)
  sleep "$window"
  c1=$(cpu); w1=$(written)
  awk -v c="$((c1 - c0))" -v t="$tck" -v s="$window" -v w="$((w1 - w0))" -v r="$(rss)" -v l="$1" \
    'BEGIN { printf "%-34s CPU %.2f %% of one core (goal < 0.5), %d bytes written (goal 0), RSS %d KiB\n", l ":", c / t / s * 100, w, r }'
}

echo "kiln idle, ${window} s windows ($(nproc) cores)"
measure "no client"
curl -sN -H "Coder-Session-Token: $token" "$base/api/v2/kiln/events" >/dev/null &
follower=$!
measure "one status page open (events)"
