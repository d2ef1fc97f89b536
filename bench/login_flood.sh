#!/usr/bin/env bash
# The sign-in flood benchmark (bench/login_flood.rs): builds the release binary and the driver,
# then prints another user's GET p50/p99 with no flood, during 64 wrong sign-ins at once with
# the sign-in limit off (the hashes' turns alone), and under Coder's sign-in limit. Asserts
# nothing.
#   bash bench/login_flood.sh                 # defaults
#   bash bench/login_flood.sh --seconds 20    # options of bench/login_flood.rs (--help)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin kiln --example login_flood
exec target/release/examples/login_flood --kiln target/release/kiln "$@"
