#!/usr/bin/env bash
# Many small tables: howdah copy against pgcopydb clone and pg_dump -Fd | pg_restore, on a
# source of N tables, each with a primary key, an index, a foreign key and a few rows, with
# the server's default lock settings. Measures wall seconds and milliseconds per table.
#
#   benches/many_tables.sh [--tables N] [--partitions P] [--jobs J] [--only howdah]
#
# --partitions P adds a table partitioned by list into P partitions (a key, an index and a
# foreign key on the parent, so on every partition). After howdah's copy, `verify`, `plan` and
# `status` are timed on the copied job too. Defaults: 3000 tables, no partitions, 2 jobs. Source howdah_bench_many_src (recreated), target
# howdah_bench_many_dst (recreated before each tool). HOWDAH_BIN: target/release/howdah.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TABLES=3000
PARTITIONS=0
JOBS=2
ONLY=all
while (($# > 0)); do
    case "$1" in
        --tables) TABLES=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        --partitions) PARTITIONS=$2; shift ;;
        --only) ONLY=$2; shift ;;
        -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
if ((PARTITIONS > 0)); then
    psql -X -q -d "${SRC}" -c "CREATE TABLE events (day int, id int, p int REFERENCES parent (id), v text,
        PRIMARY KEY (day, id)) PARTITION BY LIST (day)" -c "CREATE INDEX events_v ON events (v)"
    for ((first = 1; first <= PARTITIONS; first += 200)); do
        last=$((first + 199 < PARTITIONS ? first + 199 : PARTITIONS))
        psql -X -q -d "${SRC}" -c "DO \$\$ BEGIN FOR i IN ${first}..${last} LOOP
            EXECUTE format('CREATE TABLE events_%s PARTITION OF events FOR VALUES IN (%s)', i, i);
          END LOOP; END \$\$;"
    done
    psql -X -q -d "${SRC}" -c "INSERT INTO events SELECT d, g, 1 + g % 10, md5(g::text)
        FROM generate_series(1, ${PARTITIONS}) d, generate_series(1, 3) g"
fi
psql -X -q -d "${SRC}" -c "ANALYZE"
FKEYS=$(psql -X -At -d "${SRC}" -c "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace")
RELS=$((TABLES + PARTITIONS))

reset_dst() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${DST} WITH (FORCE)" -c "CREATE DATABASE ${DST}"; }
check() {
    local n
    n=$(psql -X -At -d "${DST}" -c "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace")
    [[ "${n}" == "${FKEYS}" ]] && echo OK || echo "MISMATCH (${n} of ${FKEYS} foreign keys)"
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
    per=$(awk -v s="${secs}" -v n="${RELS}" 'BEGIN { printf "%.1f", s * 1000 / n }')
    if ((rc != 0)); then
        echo "| ${name} | failed (exit ${rc}): $(tail -n 1 "${WORK}/${name}.log") | | |"
    else
        echo "| ${name} | ${secs} | ${per} | $(check) |"
    fi
}
# A command on the copied job (no reset of the target): wall seconds and ms per table.
on_job() {
    local name=$1; shift
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    "$@" >"${WORK}/${name}.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    awk -v a="${t0}" -v b="${t1}" -v n="${RELS}" -v name="${name}" -v rc="${rc}" \
        'BEGIN { printf "| %s | %.1f | %.1f | exit %s |\n", name, b - a, (b - a) * 1000 / n, rc }'
}
echo "${TABLES} tables + ${PARTITIONS} partitions, --jobs ${JOBS}, $(date -u +%Y-%m-%d), commit $(git -C "${ROOT}" rev-parse --short HEAD)"
echo "| tool | wall (s) | ms per table | check |"
echo "|---|---:|---:|---|"
run howdah "${HOWDAH_BIN}" copy --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}"
on_job "howdah verify" "${HOWDAH_BIN}" verify --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}"
on_job "howdah plan" "${HOWDAH_BIN}" plan --source "${SRC_URL}" --target "${DST_URL}"
on_job "howdah status" "${HOWDAH_BIN}" status --target "${DST_URL}"
[[ "${ONLY}" == howdah ]] && exit 0
run pgcopydb pgcopydb clone --source "${SRC_URL}" --target "${DST_URL}" --table-jobs "${JOBS}" \
    --index-jobs "${JOBS}" --no-owner --no-acl --skip-extensions --dir "${WORK}/pgcopydb"
run pg_dump_restore bash -c "pg_dump -Fd -j ${JOBS} -f '${WORK}/dump' '${SRC_URL}' && pg_restore -j ${JOBS} -d '${DST_URL}' '${WORK}/dump'"
