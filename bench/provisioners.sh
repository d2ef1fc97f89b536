#!/usr/bin/env bash
# External provisioners' benchmark (bench/provisioners.rs): builds the release binary and the
# driver, then prints no-op builds/s and queue wait with 3 built-in workers vs --workers 0 + 3
# `kiln provisioner start` processes, and cancel-to-stopped on a remote job. Asserts nothing.
#   bash bench/provisioners.sh                # defaults
#   bash bench/provisioners.sh --builds 1000  # options of bench/provisioners.rs (--help)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin kiln --example provisioners
exec target/release/examples/provisioners --kiln target/release/kiln "$@"
