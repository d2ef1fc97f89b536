#!/usr/bin/env bash
# kiln's benchmark: builds the release binary and the load generator (bench/loadgen.rs), then
# prints the figures of one run on this machine. It asserts nothing.
#   bash bench/run.sh                 # everything, defaults
#   bash bench/run.sh --builds 1000   # options of bench/loadgen.rs (--help lists them)
set -euo pipefail
cd "$(dirname "$0")/.."

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

cargo build --release --bin kiln --example loadgen
exec target/release/examples/loadgen --kiln target/release/kiln "$@"
