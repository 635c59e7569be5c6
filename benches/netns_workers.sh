#!/usr/bin/env bash
# Workers on several hosts: one table copied by one and by three workers of one job in the
# root namespace (no added delay), then by one worker in a network namespace and by three in
# three namespaces, each namespace's link with 20 ms of one-way delay and 0.1% loss each way
# (see tests/integration/netns_workers.rs for how the links are made). Prints wall seconds and
# rows/s of each; the copies are checked equal (count and sums) after each run.
#
#   benches/netns_workers.sh [--rows N]
#
# Default 2,000,000 rows (about 220 MB). Needs root, ip and iptables. The release binary
# (HOWDAH_BIN, default target/release/howdah) does the copying; the namespaces, links and
# forwarders come from the ignored test `netns_workers::bench_one_and_three_workers`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=2000000
while (($# > 0)); do
    case "$1" in
        --rows) ROWS=$2; shift ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "netns_workers.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
TARGET_DIR="${CARGO_TARGET_DIR:-${ROOT}/target}"
HOWDAH_BIN="${HOWDAH_BIN:-${TARGET_DIR}/release/howdah}"
cd "${ROOT}"
[[ -x "${HOWDAH_BIN}" ]] || cargo build --release
echo "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
HOWDAH_BIN="${HOWDAH_BIN}" NETNS_BENCH_ROWS="${ROWS}" \
    cargo test --test integration netns_workers::bench_one_and_three_workers -- \
    --ignored --nocapture --test-threads 1 2>&1 | grep -oE 'netns bench: .*|test result.*|panicked.*'
