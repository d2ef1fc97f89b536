#!/usr/bin/env bash
# The cost of HTTPS: one release server serving plain HTTP and HTTPS side by side (one
# process, one database), the same cached build read timed with wrk on each, alternately,
# with kept connections (the steady cost: encryption) and with a new connection per request
# (the handshake's cost). Prints each run and the HTTPS/HTTP ratios. Asserts nothing.
#   bash bench/tls.sh [SECONDS] [CONNECTIONS]     # defaults: 8 s, 50 connections
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
conns="${2:-50}"

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
  else
    echo "bench/tls.sh needs wrk (apt-get install wrk)" >&2
    exit 1
  fi
fi
command -v openssl >/dev/null || { echo "bench/tls.sh needs openssl (the command)" >&2; exit 1; }

cargo build --release --bin kiln
tmp=$(mktemp -d)
server=""
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

RUST_LOG=info target/release/kiln server --data-dir "$tmp/data" --address 127.0.0.1:0 \
  --tls-enable --tls-address 127.0.0.1:0 --tls-cert-file "$tmp/cert.pem" \
  --tls-key-file "$tmp/key.pem" --workers 1 --dangerous-disable-rate-limits 2>"$tmp/log" &
server=$!
for _ in $(seq 200); do
  grep -q "listening on https://" "$tmp/log" && break
  sleep 0.05
done
http=$(grep -o "listening on http://[0-9.:]*" "$tmp/log" | sed 's/listening on //')
https=$(grep -o "listening on https://[0-9.:]*" "$tmp/log" | sed 's/listening on //')
[ -n "$http" ] && [ -n "$https" ] || { echo "the server did not listen:"; cat "$tmp/log"; exit 1; }

curl -s -X POST "$http/api/v2/users/first" \
  -d '{"email":"b@example.com","username":"bench","password":"a-long-password"}' >/dev/null
token=$(curl -s -X POST "$http/api/v2/users/login" \
  -d '{"email":"b@example.com","password":"a-long-password"}' | sed 's/.*"session_token":"\([^"]*\)".*/\1/')
H="Coder-Session-Token: $token"
mkdir -p "$tmp/t"
printf '{"steps": {"start": [{"log": "up"}], "stop": [{"log": "down"}]}}' >"$tmp/t/kiln.json"
tar -C "$tmp/t" -cf "$tmp/t.tar" kiln.json
file=$(curl -s -X POST -H "$H" -H "Content-Type: application/x-tar" --data-binary @"$tmp/t.tar" \
  "$http/api/v2/files" | sed 's/.*"hash":"\([^"]*\)".*/\1/')
version=$(curl -s -X POST -H "$H" "$http/api/v2/organizations/coder/templateversions" \
  -d "{\"storage_method\":\"file\",\"file_id\":\"$file\",\"provisioner\":\"echo\"}" | sed 's/^{"id":"\([^"]*\)".*/\1/')
sleep 0.5
template=$(curl -s -X POST -H "$H" "$http/api/v2/organizations/coder/templates" \
  -d "{\"name\":\"bench\",\"template_version_id\":\"$version\"}" | sed 's/^{"id":"\([^"]*\)".*/\1/')
build=$(curl -s -X POST -H "$H" "$http/api/v2/users/me/workspaces" \
  -d "{\"name\":\"w\",\"template_id\":\"$template\"}" | sed 's/.*"latest_build":{"id":"\([^"]*\)".*/\1/')
path="/api/v2/workspacebuilds/$build"
for _ in $(seq 100); do
  curl -s -H "$H" "$http$path" | grep -q '"status":"running"' && break
  sleep 0.1
done
curl -sk -o /dev/null -w "HTTPS answers %{http_code}\n" -H "$H" "$https$path"

# requests/s and p50/p99 (ms) of one wrk run.
run() {
  local out
  out=$(wrk -t2 -c"$2" -d"${seconds}s" --latency -H "$H" "${@:3}" "$1$path" 2>&1)
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $p50 $p99"
}
ms() { # wrk's latency (850.00us, 1.20ms, 2.00s) in ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}

echo "cached build read, $seconds s a run, wrk -t2; plain and HTTPS alternately"
for mode in kept new; do
  if [ "$mode" = kept ]; then c="$conns"; extra=(); label="$conns kept connections"
  else c=8; extra=(-H "Connection: close"); label="a new connection per request (8 at once)"; fi
  echo "== $label"
  declare -a plain_rps=() tls_rps=()
  for round in 1 2; do
    read -r r50 p50 p99 < <(run "$http" "$c" "${extra[@]}")
    echo "  run $round  http:  $r50 req/s  p50 $(ms "$p50") ms  p99 $(ms "$p99") ms"
    plain_rps+=("$r50")
    read -r t50 q50 q99 < <(run "$https" "$c" "${extra[@]}")
    echo "  run $round  https: $t50 req/s  p50 $(ms "$q50") ms  p99 $(ms "$q99") ms"
    tls_rps+=("$t50")
  done
  awk -v a="${plain_rps[0]}" -v b="${plain_rps[1]}" -v c="${tls_rps[0]}" -v d="${tls_rps[1]}" \
    'BEGIN { printf "  https/http throughput: %.2f and %.2f\n", c / a, d / b }'
done
