#!/usr/bin/env bash
# One big table over a long run: generates a single table of about --gb GB (`id bigint primary
# key, a int, b text, c timestamptz`, as "Peak RSS does not grow with table size" in
# BENCHMARKS.md, about 9M rows per GB), copies it with the release binary under nice -n 19, and
# samples once a minute the binary's RSS, the rows committed (howdah.chunks) and the source
# snapshot's age (howdah status --source). Prints a Markdown table: minute, rows, rows/s over
# the minute, RSS MB, snapshot age; then the peak RSS and the totals.
#
#   benches/big_table.sh [--gb N] [--jobs J] [--skip-dataset] [--every SECS]
#
# Defaults: 20 GB, 2 jobs, a sample every 60 s. Source howdah_bench_big_src (recreated unless
# --skip-dataset), target howdah_bench_big_dst (recreated). Check `df -h` first: the source,
# the copy and the WAL in between need about 2.3 x N GB.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GB=20
JOBS=2
EVERY=60
SKIP=0
while (($# > 0)); do
    case "$1" in
        --gb) GB=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        --every) EVERY=$2; shift ;;
        --skip-dataset) SKIP=1 ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "big_table.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}" PGSSLMODE=disable
TARGET_DIR="${CARGO_TARGET_DIR:-${ROOT}/target}"
HOWDAH_BIN="${HOWDAH_BIN:-${TARGET_DIR}/release/howdah}"
SRC=howdah_bench_big_src
DST=howdah_bench_big_dst
SRC_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${SRC}?sslmode=disable"
DST_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DST}?sslmode=disable"
ROWS=$((GB * 9000000))
[[ -x "${HOWDAH_BIN}" ]] || (cd "${ROOT}" && cargo build --release)
df -h "$(psql -X -At -d postgres -c 'SHOW data_directory')" | tail -n1

if ((SKIP == 0)); then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${SRC} WITH (FORCE)" -c "CREATE DATABASE ${SRC}"
    psql -X -q -d "${SRC}" -c "CREATE TABLE big (id bigint NOT NULL, a int, b text, c timestamptz)"
    t0=$(date +%s)
    # Batches of 10M rows, each its own transaction (bounded WAL between checkpoints); the
    # generating backend runs at nice 19 so builds on the machine keep their CPU.
    for ((first = 1; first <= ROWS; first += 10000000)); do
        last=$((first + 9999999 < ROWS ? first + 9999999 : ROWS))
        psql -X -q -d "${SRC}" <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND :pid
\! renice -n 19 -p "\$BACKEND" >/dev/null 2>&1
INSERT INTO big SELECT g, (g * 7919) % 1000000, md5(g::text) || md5((g + 1)::text),
    '2020-01-01'::timestamptz + g * interval '1 second'
  FROM generate_series(${first}::bigint, ${last}::bigint) g;
SQL
    done
    psql -X -q -d "${SRC}" -c "ALTER TABLE big ADD PRIMARY KEY (id)" -c "VACUUM ANALYZE big"
    echo "dataset: ${ROWS} rows, $(psql -X -At -d "${SRC}" -c "SELECT pg_size_pretty(pg_table_size('big'))") in $(( $(date +%s) - t0 )) s"
fi

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${DST} WITH (FORCE)" -c "CREATE DATABASE ${DST}"
LOG=$(mktemp)
t0=$(date +%s)
nice -n 19 "${HOWDAH_BIN}" copy --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}" --quiet >"${LOG}" 2>&1 &
PID=$!
# The copy's server backends too run at nice 19 (renice them as they appear).
renice_backends() {
    local pids
    pids=$(psql -X -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'howdah/%'" 2>/dev/null || true)
    [[ -n "${pids}" ]] && renice -n 19 -p ${pids} >/dev/null 2>&1 || true
}
sleep 5
renice_backends
echo "| minute | rows committed | rows/s over the minute | RSS MB | source snapshot age |"
echo "| ---: | ---: | ---: | ---: | --- |"
prev=0
peak=0
n=0
while kill -0 "${PID}" 2>/dev/null; do
    sleep "${EVERY}"
    kill -0 "${PID}" 2>/dev/null || break
    renice_backends
    n=$((n + 1))
    rss=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/${PID}/status" 2>/dev/null || echo 0)
    hwm=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/${PID}/status" 2>/dev/null || echo 0)
    ((hwm > peak)) && peak=${hwm}
    rows=$(psql -X -At -d "${DST}" -c "SELECT coalesce(sum(rows_done), 0) FROM howdah.chunks" 2>/dev/null || echo 0)
    age=$("${HOWDAH_BIN}" status --target "${DST_URL}" --source "${SRC_URL}" 2>/dev/null |
        sed -n 's/.*the job.s source snapshot is \([^(]*\) old.*/\1/p' | head -n1)
    echo "| ${n} | ${rows} | $(((rows - prev) / EVERY)) | ${rss} | ${age:-none} |"
    prev=${rows}
done
rc=0
wait "${PID}" || rc=$?
secs=$(( $(date +%s) - t0 ))
echo
echo "exit ${rc}; ${secs} s in all; peak RSS (VmHWM at the last sample) ${peak} MB"
tail -n 15 "${LOG}"
rm -f "${LOG}"
