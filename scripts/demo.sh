#!/usr/bin/env bash
# Demo on the local PostgreSQL (README: "Run the demo"): builds howdah, then `howdah demo`
# creates the demo shop database (howdah_demo_src, from configs/demo/source.sql), copies it
# into howdah_demo_dst with progress bars and Prometheus metrics on 127.0.0.1:9187, checks the
# row counts table by table and prints where to look. Extra arguments go to `howdah demo`
# (e.g. --metrics-linger-secs 600 to keep the metrics up for Prometheus and Grafana).
# Usage: scripts/demo.sh [--server postgres://user@host:port/db] [howdah demo flags]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec ./target/release/howdah demo "$@"
