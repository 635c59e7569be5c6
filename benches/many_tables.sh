#!/usr/bin/env bash
# Many small tables: howdah copy against pgcopydb clone and pg_dump -Fd | pg_restore, on a
# source of N tables, each with a primary key, an index, a foreign key and a few rows, with
# the server's default lock settings. Measures wall seconds and milliseconds per table.
#
#   benches/many_tables.sh [--tables N] [--jobs J]
#
# Defaults: 3000 tables, 2 jobs. Source howdah_bench_many_src (recreated), target
# howdah_bench_many_dst (recreated before each tool). HOWDAH_BIN: target/release/howdah.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TABLES=3000
JOBS=2
while (($# > 0)); do
    case "$1" in
        --tables) TABLES=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "many_tables.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}" PGSSLMODE=disable
HOWDAH_BIN="${HOWDAH_BIN:-${ROOT}/target/release/howdah}"
SRC=howdah_bench_many_src
DST=howdah_bench_many_dst
SRC_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${SRC}?sslmode=disable"
DST_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DST}?sslmode=disable"
WORK=$(mktemp -d)
trap 'rm -rf "${WORK}"' EXIT
[[ -x "${HOWDAH_BIN}" ]] || (cd "${ROOT}" && cargo build --release)

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${SRC} WITH (FORCE)" -c "CREATE DATABASE ${SRC}"
psql -X -q -d "${SRC}" -c "CREATE TABLE parent (id int PRIMARY KEY)" \
    -c "INSERT INTO parent SELECT generate_series(1, 10)"
for ((first = 1; first <= TABLES; first += 200)); do
    last=$((first + 199 < TABLES ? first + 199 : TABLES))
    psql -X -q -d "${SRC}" -c "DO \$\$ BEGIN FOR i IN ${first}..${last} LOOP
        EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, p int REFERENCES parent (id), v text)', i);
        EXECUTE format('CREATE INDEX t%s_v ON t%s (v)', i, i);
        EXECUTE format('INSERT INTO t%s SELECT g, 1 + g %% 10, md5(g::text) FROM generate_series(1, 5) g', i);
      END LOOP; END \$\$;"
done
psql -X -q -d "${SRC}" -c "ANALYZE"

reset_dst() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${DST} WITH (FORCE)" -c "CREATE DATABASE ${DST}"; }
check() {
    local n
    n=$(psql -X -At -d "${DST}" -c "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace")
    [[ "${n}" == "${TABLES}" ]] && echo OK || echo "MISMATCH (${n} foreign keys)"
}
run() {
    local name=$1; shift
    reset_dst
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    "$@" >"${WORK}/${name}.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    local secs
    secs=$(awk -v a="${t0}" -v b="${t1}" 'BEGIN { printf "%.1f", b - a }')
    local per
    per=$(awk -v s="${secs}" -v n="${TABLES}" 'BEGIN { printf "%.1f", s * 1000 / n }')
    if ((rc != 0)); then
        echo "| ${name} | failed (exit ${rc}): $(tail -n 1 "${WORK}/${name}.log") | | |"
    else
        echo "| ${name} | ${secs} | ${per} | $(check) |"
    fi
}
echo "${TABLES} tables, --jobs ${JOBS}, $(date -u +%Y-%m-%d), commit $(git -C "${ROOT}" rev-parse --short HEAD)"
echo "| tool | wall (s) | ms per table | check |"
echo "|---|---:|---:|---|"
run howdah "${HOWDAH_BIN}" copy --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}"
run pgcopydb pgcopydb clone --source "${SRC_URL}" --target "${DST_URL}" --table-jobs "${JOBS}" \
    --index-jobs "${JOBS}" --no-owner --no-acl --skip-extensions --dir "${WORK}/pgcopydb"
run pg_dump_restore bash -c "pg_dump -Fd -j ${JOBS} -f '${WORK}/dump' '${SRC_URL}' && pg_restore -j ${JOBS} -d '${DST_URL}' '${WORK}/dump'"
