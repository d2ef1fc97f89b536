#!/usr/bin/env bash
# kiln's benchmark: builds the release binary and the load generator (bench/loadgen.rs), then
# prints the figures of one run on this machine. It asserts nothing.
#   bash bench/run.sh                 # everything, defaults, on SQLite
#   bash bench/run.sh --postgres      # the same on a scratch PostgreSQL cluster (default
#                                     # synchronous_commit), plus the figures across two servers
#   bash bench/run.sh --builds 1000   # options of bench/loadgen.rs (--help lists them)
#   bash bench/run.sh --scale         # data scale (bench/scale.rs): the figures on an empty
#                                     # database and on one filled with a year of builds, side
#                                     # by side; --fill-fraction 0.1 for a quicker run; with
#                                     # --postgres on a scratch cluster
#   bash bench/run.sh --fanout        # fan-out (bench/fanout.rs): 1,000 live followers of one
#                                     # build writing 10,000 lines/s; --followers N,
#                                     # --rate, --seconds (another binary: run
#                                     # target/release/examples/fanout --kiln PATH)
#   bash bench/run.sh --idle-streams  # a build's server CPU with 2,000 status-page event
#                                     # streams open beside none (bench/idle_streams.rs);
#                                     # --streams N, --builds N, --kiln PATH
#   bash bench/run.sh --idle [SECONDS]  # idle cost (bench/idle.sh): CPU, disk writes and RSS
#                                     # while nothing happens, with no client and with a
#                                     # status page open
set -euo pipefail
cd "$(dirname "$0")/.."

postgres=no
example=loadgen
args=()
if [ "${1:-}" = --idle ]; then shift; exec bash bench/idle.sh "$@"; fi
for a in "$@"; do
  case "$a" in
    --postgres) postgres=yes ;;
    --scale) example=scale ;;
    --fanout) example=fanout ;;
    --idle-streams) example=idle_streams ;;
    *) args+=("$a") ;;
  esac
done

# wrk measures part 1 when it can be installed; otherwise the load generator's own client does.
if ! command -v wrk >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing wrk..." >&2
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 \
      || echo "wrk could not be installed: part 1 uses the built-in client" >&2
  else
    echo "wrk is not installed: part 1 uses the built-in client" >&2
  fi
fi

cargo build --release --bin kiln --example "$example"

# The fan-out bench holds over 2,000 sockets (server and client).
if [ "$example" = fanout ] || [ "$example" = idle_streams ]; then ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; fi

if [ "$postgres" = yes ]; then
  pgbin=/usr/lib/postgresql/15/bin
  if [ ! -x "$pgbin/initdb" ]; then
    echo "installing postgresql..." >&2
    (apt-get update -qq && apt-get install -y -qq postgresql) >/dev/null
  fi
  pg=$(mktemp -d /tmp/kiln-bench-pg-XXXXXX)
  as_pg=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$pg"; as_pg=(runuser -u postgres --); fi
  stop_pg() {
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$pg"
  }
  trap stop_pg EXIT
  "${as_pg[@]}" "$pgbin/initdb" -D "$pg/data" -A trust -U postgres >/dev/null
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/log" -w \
    -o "-k $pg -c listen_addresses='' -c max_connections=200" start >/dev/null
  "$pgbin/createdb" -h "$pg" -U postgres kiln
  target/release/examples/$example --kiln target/release/kiln \
    --database "host=$pg user=postgres dbname=kiln" "${args[@]}"
else
  exec target/release/examples/$example --kiln target/release/kiln "${args[@]}"
fi
