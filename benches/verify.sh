#!/usr/bin/env bash
# verify against copy: the end-to-end dataset (benches/dataset.sh) copied by howdah, then
# verified by howdah, timed one after the other, ROUNDS times.
#
#   benches/verify.sh [--rounds N]
#
# Source howdah_bench_src (must exist: run benches/dataset.sh first), target
# howdah_bench_verify_dst (dropped and recreated before each copy). Both commands run with
# --jobs BENCH_JOBS (2). Prints wall seconds of each copy and each verify, and their ratio.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=2
while (($# > 0)); do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "verify.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}" PGSSLMODE=disable
JOBS="${BENCH_JOBS:-2}"
HOWDAH_BIN="${HOWDAH_BIN:-${ROOT}/target/release/howdah}"
SRC="postgres://${PGUSER}@${PGHOST}:${PGPORT}/howdah_bench_src?sslmode=disable"
DST="postgres://${PGUSER}@${PGHOST}:${PGPORT}/howdah_bench_verify_dst?sslmode=disable"
OUT="${ROOT}/bench-out/verify-$(date +%Y%m%d-%H%M%S)"
mkdir -p "${OUT}"
[[ -x "${HOWDAH_BIN}" ]] || (cd "${ROOT}" && cargo build --release)
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
echo -e "round\tcopy_s\tverify_s\tverify/copy\tverify_exit" | tee "${OUT}/results.tsv"
for round in $(seq 1 "${ROUNDS}"); do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS howdah_bench_verify_dst WITH (FORCE)" \
        -c "CREATE DATABASE howdah_bench_verify_dst" -c "CHECKPOINT"
    a=$(date +%s.%N)
    "${HOWDAH_BIN}" copy -q --source "${SRC}" --target "${DST}" --jobs "${JOBS}" >"${OUT}/copy.${round}.out" 2>&1
    b=$(date +%s.%N)
    psql -X -q -d postgres -c "CHECKPOINT"
    c=$(date +%s.%N)
    set +e
    "${HOWDAH_BIN}" verify --source "${SRC}" --target "${DST}" --jobs "${JOBS}" >"${OUT}/verify.${round}.out" 2>&1
    code=$?
    set -e
    d=$(date +%s.%N)
    printf '%s\t%s\t%s\t%s\t%s\n' "${round}" "$(secs "$a" "$b")" "$(secs "$c" "$d")" \
        "$(awk -v x="$(secs "$a" "$b")" -v y="$(secs "$c" "$d")" 'BEGIN { printf "%.2f", y / x }')" "${code}" \
        | tee -a "${OUT}/results.tsv"
done
cat "${OUT}/verify.${ROUNDS}.out"
