#!/usr/bin/env bash
# End-to-end benchmark: howdah against the usual ways of cloning a PostgreSQL
# database, all on the same source data, one after the other, each into a
# freshly created target database.
#
#   benches/e2e.sh [--skip-dataset] [--only howdah,pipes,pgcopydb,pgdump]
#
# Competitors (see BENCHMARKS.md for the details):
#   howdah    target/release/howdah copy --jobs N            (whole clone)
#   pipes     psql COPY TO STDOUT (binary) | psql COPY FROM STDIN, N tables at
#             a time (data phase), with pg_dump pre-data / post-data around it
#   pgcopydb  pgcopydb clone --table-jobs N --index-jobs N   (whole clone)
#   pgdump    pg_dump -Fd -j N  then  pg_restore -j N         (whole clone)
#
# Environment:
#   BENCH_SRC_DB / BENCH_DST_DB  database names (howdah_bench_src / _dst)
#   BENCH_JOBS                   parallelism given to every tool (2)
#   HOWDAH_BIN                   howdah binary (target/release/howdah)
#   PGHOST / PGPORT / PGUSER     server (127.0.0.1 / 5432 / postgres)
#
# Every tool connects with sslmode=disable (PGSSLMODE and in the URLs), so no
# competitor pays for TLS while another does not.
#
# Results: a Markdown table on stdout, also appended (with date, commit,
# machine, server version and the exact commands) to
# bench-out/results-<timestamp>.md.  Progress and logs go to stderr and to
# bench-out/run-<timestamp>/.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL_COMPETITORS=(howdah pipes pgcopydb pgdump)

skip_dataset=0
only=""
orig_args=("$@")
while (($# > 0)); do
    case "$1" in
        --skip-dataset) skip_dataset=1 ;;
        --only)
            shift
            only="${1:?--only needs a comma-separated list}"
            ;;
        --only=*) only="${1#--only=}" ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "e2e.sh: unknown argument '$1' (try --help)" >&2
            exit 2
            ;;
    esac
    shift
done

selected=("${ALL_COMPETITORS[@]}")
if [[ -n "${only}" ]]; then
    IFS=',' read -r -a selected <<<"${only}"
    for c in "${selected[@]}"; do
        if [[ ! " ${ALL_COMPETITORS[*]} " =~ [[:space:]]${c}[[:space:]] ]]; then
            echo "e2e.sh: unknown competitor '${c}' (known: ${ALL_COMPETITORS[*]})" >&2
            exit 2
        fi
    done
fi
is_selected() {
    [[ " ${selected[*]} " =~ [[:space:]]$1[[:space:]] ]]
}

export PGHOST="${PGHOST:-127.0.0.1}"
export PGPORT="${PGPORT:-5432}"
export PGUSER="${PGUSER:-postgres}"
# Same TLS setting for every tool: libpq reads PGSSLMODE, and the URLs carry
# it explicitly for the tools that take URLs.
export PGSSLMODE=disable
SSLMODE=disable

SRC_DB="${BENCH_SRC_DB:-howdah_bench_src}"
DST_DB="${BENCH_DST_DB:-howdah_bench_dst}"
JOBS="${BENCH_JOBS:-2}"
HOWDAH_BIN="${HOWDAH_BIN:-${ROOT}/target/release/howdah}"

# The target is dropped before every run: refuse anything that is not
# obviously a benchmark database.
for db in "${SRC_DB}" "${DST_DB}"; do
    if [[ ! "${db}" =~ ^howdah_bench[a-z0-9_]*$ ]]; then
        echo "e2e.sh: refusing to use database '${db}': name must match ^howdah_bench[a-z0-9_]*\$" >&2
        exit 2
    fi
done
if [[ "${SRC_DB}" == "${DST_DB}" ]]; then
    echo "e2e.sh: source and target database must differ" >&2
    exit 2
fi

url_of() {
    printf 'postgres://%s@%s:%s/%s?sslmode=%s' "${PGUSER}" "${PGHOST}" "${PGPORT}" "$1" "${SSLMODE}"
}
SRC_URL=$(url_of "${SRC_DB}")
DST_URL=$(url_of "${DST_DB}")

TS=$(date +%Y%m%d-%H%M%S)
OUT_DIR="${ROOT}/bench-out"
RUN_DIR="${OUT_DIR}/run-${TS}"
RESULTS_MD="${OUT_DIR}/results-${TS}.md"
mkdir -p "${RUN_DIR}"
# Scratch space for dumps and pgcopydb's work directory (GBs): removed at exit.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/howdah-e2e.XXXXXX")
trap 'rm -rf "${WORK}"' EXIT

RESULTS_TSV="${RUN_DIR}/results.tsv"
COMMANDS_TXT="${RUN_DIR}/commands.txt"
: >"${RESULTS_TSV}"
: >"${COMMANDS_TXT}"

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

psql_q() {
    # psql_q DB [psql args...]: quiet, unaligned, tuples only, stop on error.
    local db=$1
    shift
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "${db}" "$@"
}

# Peak RSS: every tool process runs under `/usr/bin/time -f %M -o FILE`.
# GNU time writes "Command exited with non-zero status N" before the format
# when the command fails, so only the last line is the figure (in KiB).  For
# a process that forks workers and waits for them (pg_dump -j, pg_restore -j,
# pgcopydb), the figure is the largest single process of the tree (Linux
# folds waited-for children's max RSS into the parent's rusage); it is NOT
# the sum over processes.
timed() {
    local rss_file=$1
    shift
    /usr/bin/time -f '%M' -o "${rss_file}" "$@"
}
max_rss_kb() {
    local f v max=0
    for f in "$@"; do
        [[ -s "${f}" ]] || continue
        v=$(tail -n 1 "${f}")
        if [[ "${v}" =~ ^[0-9]+$ ]] && ((v > max)); then
            max=${v}
        fi
    done
    echo "${max}"
}

record_command() {
    # record_command LABEL ARGS...: keep the exact command line for the report.
    local label=$1
    shift
    printf '%s: %s\n' "${label}" "$*" >>"${COMMANDS_TXT}"
}

# result KEY LABEL WHAT WALL_S RSS_KB CHECK
result() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"${RESULTS_TSV}"
}

reset_dst() {
    # DROP DATABASE waits until every backend of the server has processed a
    # barrier; a backend blocked writing to a client that stopped reading
    # (wait event ClientWrite) never does, so bound the wait instead of
    # hanging the whole benchmark.
    if ! psql_q postgres -c "SET client_min_messages = warning" \
        -c "SET statement_timeout = '120s'" \
        -c "DROP DATABASE IF EXISTS \"${DST_DB}\" WITH (FORCE)" \
        -c "CREATE DATABASE \"${DST_DB}\""; then
        log "cannot recreate ${DST_DB} (look in pg_stat_activity for a backend stuck in ClientWrite)"
        return 1
    fi
    # Flush whatever the previous run left dirty, so its write-back does not
    # land in the next competitor's time.
    psql_q postgres -c "CHECKPOINT"
}

# ---------------------------------------------------------------------------
# Source facts, computed once.

if ((skip_dataset == 0)); then
    log "generating dataset in ${SRC_DB} (benches/dataset.sh)"
    BENCH_SRC_DB="${SRC_DB}" "${ROOT}/benches/dataset.sh" >&2
fi
if ! psql_q postgres -c "SELECT 1" >/dev/null; then
    echo "e2e.sh: cannot connect to ${PGHOST}:${PGPORT} as ${PGUSER}" >&2
    exit 1
fi
if [[ -z "$(psql_q postgres -c "SELECT 1 FROM pg_database WHERE datname = '${SRC_DB}'")" ]]; then
    echo "e2e.sh: source database ${SRC_DB} does not exist; run without --skip-dataset" >&2
    exit 1
fi

# User tables, largest first (the pipes competitor schedules in this order).
USER_TABLES_SQL="
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'howdah'
ORDER BY pg_total_relation_size(c.oid) DESC, 1"
mapfile -t TABLES < <(psql_q "${SRC_DB}" -c "${USER_TABLES_SQL}")
if ((${#TABLES[@]} == 0)); then
    echo "e2e.sh: no user tables in ${SRC_DB}" >&2
    exit 1
fi

# Data size = heap + TOAST of the user tables (what a copy has to move;
# indexes are rebuilt, not copied).  Bytes.
DATA_BYTES=$(psql_q "${SRC_DB}" -c "
SELECT sum(pg_relation_size(c.oid) + COALESCE(pg_relation_size(c.reltoastrelid), 0))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'howdah'")
HEAP_BYTES=$(psql_q "${SRC_DB}" -c "
SELECT sum(pg_relation_size(c.oid))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'howdah'")

# Exact row counts (this also pulls the source into the OS page cache, so
# the first competitor does not pay for cold reads the others skip).
log "counting source rows (${#TABLES[@]} tables)"
declare -A SRC_ROWS=()
TOTAL_ROWS=0
for t in "${TABLES[@]}"; do
    n=$(psql_q "${SRC_DB}" -c "SELECT count(*) FROM ${t}")
    SRC_ROWS[${t}]=${n}
    TOTAL_ROWS=$((TOTAL_ROWS + n))
done

# Catalog fingerprint used by the post-run check (cheap, not exhaustive).
INDEX_COUNT_SQL="
SELECT count(*) FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'howdah'"
CONSTRAINT_COUNT_SQL="
SELECT count(*) FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
WHERE con.contype IN ('p', 'u', 'f', 'c', 'x')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'howdah'"
SEQUENCES_SQL="
SELECT COALESCE(string_agg(format('%I.%I=%s', schemaname, sequencename, COALESCE(last_value::text, 'unset')), ' '
                         ORDER BY schemaname, sequencename), '')
FROM pg_sequences WHERE schemaname <> 'howdah'"
SRC_INDEXES=$(psql_q "${SRC_DB}" -c "${INDEX_COUNT_SQL}")
SRC_CONSTRAINTS=$(psql_q "${SRC_DB}" -c "${CONSTRAINT_COUNT_SQL}")
SRC_SEQUENCES=$(psql_q "${SRC_DB}" -c "${SEQUENCES_SQL}")

log "source: ${#TABLES[@]} tables, ${TOTAL_ROWS} rows, $((DATA_BYTES / 1048576)) MiB heap+TOAST, ${SRC_INDEXES} indexes, ${SRC_CONSTRAINTS} constraints"

# check_target: row count per table, index/constraint counts, sequence
# values.  Prints OK or MISMATCH(...) on stdout, details on stderr.
check_target() {
    local t n problems=()
    for t in "${TABLES[@]}"; do
        n=$(psql_q "${DST_DB}" -c "SELECT count(*) FROM ${t}" 2>/dev/null) || n="missing"
        if [[ "${n}" != "${SRC_ROWS[${t}]}" ]]; then
            problems+=("${t} rows ${n} != ${SRC_ROWS[${t}]}")
        fi
    done
    n=$(psql_q "${DST_DB}" -c "${INDEX_COUNT_SQL}" 2>/dev/null) || n="?"
    [[ "${n}" == "${SRC_INDEXES}" ]] || problems+=("indexes ${n} != ${SRC_INDEXES}")
    n=$(psql_q "${DST_DB}" -c "${CONSTRAINT_COUNT_SQL}" 2>/dev/null) || n="?"
    [[ "${n}" == "${SRC_CONSTRAINTS}" ]] || problems+=("constraints ${n} != ${SRC_CONSTRAINTS}")
    n=$(psql_q "${DST_DB}" -c "${SEQUENCES_SQL}" 2>/dev/null) || n="?"
    [[ "${n}" == "${SRC_SEQUENCES}" ]] || problems+=("sequences '${n}' != '${SRC_SEQUENCES}'")
    if ((${#problems[@]} == 0)); then
        echo "OK"
    else
        local p
        for p in "${problems[@]}"; do
            log "  MISMATCH: ${p}"
        done
        echo "MISMATCH (${#problems[@]})"
    fi
}

# ---------------------------------------------------------------------------
# Competitors.  Each runs in a subshell with errexit; a failure is reported
# as FAILED and the driver moves on to the next one.

run_howdah() {
    local log_file="${RUN_DIR}/howdah.log" rss="${RUN_DIR}/howdah.rss"
    if [[ ! -x "${HOWDAH_BIN}" ]]; then
        log "howdah: ${HOWDAH_BIN} missing, running cargo build --release"
        (cd "${ROOT}" && cargo build --release) >&2
    fi
    reset_dst
    local cmd=("${HOWDAH_BIN}" copy --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}")
    record_command "howdah" "${cmd[*]}"
    log "howdah: ${cmd[*]}"
    local t0 t1 rc=0
    t0=$(now)
    timed "${rss}" "${cmd[@]}" >"${log_file}" 2>&1 || rc=$?
    t1=$(now)
    if ((rc != 0)); then
        log "howdah: exit status ${rc}; last lines of ${log_file}:"
        tail -n 20 "${log_file}" >&2
        return 1
    fi
    local wall check data_phase
    wall=$(elapsed "${t0}" "${t1}")
    check=$(check_target)
    result howdah "howdah copy" "whole clone" "${wall}" "$(max_rss_kb "${rss}")" "${check}"
    # howdah reports its own data phase ("data phase: <seconds> s"), if any.
    data_phase=$(sed -n 's/.*data phase: *\([0-9][0-9.]*\) *s.*/\1/p' "${log_file}" | tail -n 1)
    if [[ -n "${data_phase}" ]]; then
        result howdah_data "howdah copy" "data phase (self-reported, overlaps index builds)" "${data_phase}" "" "${check}"
    fi

    # Data only, like the pipes: tables from pg_dump's pre-data section, no index builds
    # competing for the cores; howdah loads them with --schema existing.
    reset_dst
    pg_dump --schema-only --section=pre-data -d "${SRC_DB}" | psql -X -q -v ON_ERROR_STOP=1 -d "${DST_DB}" >/dev/null
    local dcmd=("${HOWDAH_BIN}" copy --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}" --schema existing)
    record_command "howdah data only" "pg_dump --schema-only --section=pre-data | psql; ${dcmd[*]}"
    log "howdah data only: ${dcmd[*]}"
    rc=0
    t0=$(now)
    timed "${rss}.data" "${dcmd[@]}" >"${log_file}.data" 2>&1 || rc=$?
    t1=$(now)
    if ((rc != 0)); then
        log "howdah data only: exit status ${rc}"
        tail -n 20 "${log_file}.data" >&2
        return 1
    fi
    result howdah_dataonly "howdah copy --schema existing" "data only (pre-data tables, no index builds)" \
        "$(elapsed "${t0}" "${t1}")" "$(max_rss_kb "${rss}.data")" "$(check_rows)"
}

# Row counts only (for data-only runs, which build no index).
check_rows() {
    local t n bad=0
    for t in "${TABLES[@]}"; do
        n=$(psql_q "${DST_DB}" -c "SELECT count(*) FROM ${t}" 2>/dev/null) || n="missing"
        if [[ "${n}" != "${SRC_ROWS[${t}]}" ]]; then
            log "  MISMATCH: ${t} rows ${n} != ${SRC_ROWS[${t}]}"
            bad=$((bad + 1))
        fi
    done
    if ((bad == 0)); then echo "OK (rows)"; else echo "MISMATCH (${bad})"; fi
}

# One table through a pair of psql processes.  Exit status lands in a file
# because this runs as a background job.
pipe_one_table() {
    local i=$1 t=$2 dir=$3 rc=0
    timed "${dir}/rss.${i}.out" psql -X -q -v ON_ERROR_STOP=1 -d "${SRC_DB}" \
        -c "COPY ${t} TO STDOUT (FORMAT binary)" |
        timed "${dir}/rss.${i}.in" psql -X -q -v ON_ERROR_STOP=1 -d "${DST_DB}" \
            -c "COPY ${t} FROM STDIN (FORMAT binary)" || rc=$?
    echo "${rc}" >"${dir}/rc.${i}"
}

run_pipes() {
    local dir="${RUN_DIR}/pipes" t0 t1 t2 t3
    mkdir -p "${dir}"
    reset_dst

    # 1. pre-data (tables, sequences, types; no indexes/constraints): timed
    #    separately.
    record_command "pipes pre-data" "pg_dump --schema-only --section=pre-data -d ${SRC_DB} | psql -d ${DST_DB}"
    log "pipes: pre-data"
    t0=$(now)
    timed "${dir}/rss.pre.dump" pg_dump --schema-only --section=pre-data -d "${SRC_DB}" |
        timed "${dir}/rss.pre.psql" psql -X -q -v ON_ERROR_STOP=1 -d "${DST_DB}" >/dev/null
    t1=$(now)

    # 2. data: JOBS tables at a time, largest first.
    record_command "pipes data (${JOBS} at a time)" "psql -d ${SRC_DB} -c 'COPY <t> TO STDOUT (FORMAT binary)' | psql -d ${DST_DB} -c 'COPY <t> FROM STDIN (FORMAT binary)'"
    log "pipes: data, ${#TABLES[@]} tables, ${JOBS} at a time"
    local i=0 running
    for t in "${TABLES[@]}"; do
        while true; do
            running=$(jobs -rp | wc -l)
            ((running < JOBS)) && break
            wait -n || true
        done
        pipe_one_table "${i}" "${t}" "${dir}" &
        i=$((i + 1))
    done
    wait
    t2=$(now)
    local f bad=0
    for ((i = 0; i < ${#TABLES[@]}; i++)); do
        f="${dir}/rc.${i}"
        if [[ ! -s "${f}" || "$(cat "${f}")" != "0" ]]; then
            log "pipes: table ${TABLES[${i}]} failed"
            bad=1
        fi
    done
    ((bad == 0)) || return 1

    # 3. post-data (indexes, constraints, triggers) via pg_restore -j, plus
    #    the sequence values (pg_dump keeps those in the data section, which
    #    the pipes skipped).
    local post="${WORK}/post-data.dump"
    record_command "pipes post-data" "pg_dump -Fc --section=post-data -f ${post} -d ${SRC_DB} && pg_restore --section=post-data -j ${JOBS} -d ${DST_DB} ${post} && psql setval() per sequence"
    log "pipes: post-data"
    timed "${dir}/rss.post.dump" pg_dump -Fc --section=post-data -f "${post}" -d "${SRC_DB}"
    timed "${dir}/rss.post.restore" pg_restore --section=post-data -j "${JOBS}" -d "${DST_DB}" "${post}"
    psql_q "${SRC_DB}" -c "
SELECT format('SELECT pg_catalog.setval(%L, %s, %s);',
              format('%I.%I', schemaname, sequencename),
              COALESCE(last_value, start_value),
              CASE WHEN last_value IS NULL THEN 'false' ELSE 'true' END)
FROM pg_sequences" | psql_q "${DST_DB}" >/dev/null
    t3=$(now)

    local check
    check=$(check_target)
    result pipes_data "psql pipes" "data only (${#TABLES[@]} tables, ${JOBS} at a time)" \
        "$(elapsed "${t1}" "${t2}")" "$(max_rss_kb "${dir}"/rss.*.out "${dir}"/rss.*.in)" "${check}"
    result pipes_total "psql pipes" "pre-data $(elapsed "${t0}" "${t1}") s + data + post-data $(elapsed "${t2}" "${t3}") s" \
        "$(elapsed "${t0}" "${t3}")" "$(max_rss_kb "${dir}"/rss.*)" "${check}"
}

run_pgcopydb() {
    local dir="${WORK}/pgcopydb" rss="${RUN_DIR}/pgcopydb.rss" log_file="${RUN_DIR}/pgcopydb.log"
    reset_dst
    rm -rf "${dir}"
    # --no-owner/--no-acl: same role on both sides, nothing to gain from them
    # but pg_restore errors if roles differ.  --skip-extensions: the source
    # only has the built-in plpgsql, which already exists in the target.
    local cmd=(pgcopydb clone --source "${SRC_URL}" --target "${DST_URL}"
        --table-jobs "${JOBS}" --index-jobs "${JOBS}"
        --no-owner --no-acl --skip-extensions --dir "${dir}")
    record_command "pgcopydb" "${cmd[*]}"
    log "pgcopydb: ${cmd[*]}"
    local t0 t1 rc=0
    t0=$(now)
    timed "${rss}" "${cmd[@]}" >"${log_file}" 2>&1 || rc=$?
    t1=$(now)
    if ((rc != 0)); then
        log "pgcopydb: exit status ${rc}; last lines of ${log_file}:"
        tail -n 20 "${log_file}" >&2
        return 1
    fi
    result pgcopydb "pgcopydb clone" "whole clone" "$(elapsed "${t0}" "${t1}")" "$(max_rss_kb "${rss}")" "$(check_target)"
}

run_pgdump() {
    local dir="${WORK}/pgdump" t0 t1 t2
    reset_dst
    rm -rf "${dir}"
    record_command "pg_dump" "pg_dump -Fd -j ${JOBS} -f ${dir} -d ${SRC_DB}"
    record_command "pg_restore" "pg_restore -j ${JOBS} -d ${DST_DB} ${dir}"
    log "pgdump: pg_dump -Fd -j ${JOBS}"
    t0=$(now)
    timed "${RUN_DIR}/pgdump.rss" pg_dump -Fd -j "${JOBS}" -f "${dir}" -d "${SRC_DB}"
    t1=$(now)
    log "pgdump: pg_restore -j ${JOBS}"
    timed "${RUN_DIR}/pgrestore.rss" pg_restore -j "${JOBS}" -d "${DST_DB}" "${dir}"
    t2=$(now)
    local check
    check=$(check_target)
    result pgdump_dump "pg_dump -Fd" "dump to directory (default compression)" "$(elapsed "${t0}" "${t1}")" \
        "$(max_rss_kb "${RUN_DIR}/pgdump.rss")" "-"
    result pgdump_restore "pg_restore" "restore from directory" "$(elapsed "${t1}" "${t2}")" \
        "$(max_rss_kb "${RUN_DIR}/pgrestore.rss")" "${check}"
    result pgdump_total "pg_dump + pg_restore" "whole clone (sum)" "$(elapsed "${t0}" "${t2}")" \
        "$(max_rss_kb "${RUN_DIR}/pgdump.rss" "${RUN_DIR}/pgrestore.rss")" "${check}"
}

LOADS=()
declare -A LABEL_OF=([howdah]="howdah copy" [pipes]="psql pipes" [pgcopydb]="pgcopydb clone" [pgdump]="pg_dump + pg_restore")
for c in "${ALL_COMPETITORS[@]}"; do
    is_selected "${c}" || continue
    log "=== ${c} ==="
    # Other work on the machine skews the figures: keep the 1-minute load
    # average seen just before each competitor for the report.
    LOADS+=("${c} $(cut -d' ' -f1 /proc/loadavg)")
    rc=0
    set +e
    (
        set -e
        "run_${c}"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        log "${c}: FAILED"
        result "${c}_failed" "${LABEL_OF[${c}]}" "FAILED" "" "" "FAILED"
    fi
done

# ---------------------------------------------------------------------------
# Report.

# Ratios and targets only use a howdah run whose clone passed the check.
howdah_wall=$(awk -F'\t' '$1 == "howdah" && $6 == "OK" { print $4 }' "${RESULTS_TSV}")

table_md() {
    echo "| tool | what is timed | wall (s) | MB/s | rows/s | peak RSS (MB) | vs howdah wall | check |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    awk -F'\t' -v bytes="${DATA_BYTES}" -v rows="${TOTAL_ROWS}" -v sw="${howdah_wall}" '
    {
        wall = $4; rss = $5
        if (wall == "") { mbs = "-"; rps = "-"; ratio = "-"; wall = "-" }
        else {
            mbs = (wall > 0) ? sprintf("%.1f", bytes / 1e6 / wall) : "-"
            rps = (wall > 0) ? sprintf("%.0f", rows / wall) : "-"
            ratio = (sw != "" && sw > 0) ? sprintf("%.2fx", wall / sw) : "n/a"
        }
        rss_mb = (rss == "" || rss == 0) ? "-" : sprintf("%.0f", rss / 1024)
        printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, wall, mbs, rps, rss_mb, ratio, $6
    }' "${RESULTS_TSV}"
}

# The targets from the issue, evaluated when the figures exist.
targets_md() {
    awk -F'\t' -v bytes="${DATA_BYTES}" '
    # Runs whose clone failed the check do not count.
    $6 ~ /^(MISMATCH|FAILED)/ { next }
    { wall[$1] = $4; rss[$1] = $5 }
    function verdict(ok) { return ok ? "met" : "NOT met" }
    END {
        print "Targets (from the issue):"
        print ""
        if (wall["howdah_dataonly"] != "" && wall["pipes_data"] != "") {
            r = wall["pipes_data"] / wall["howdah_dataonly"]
            printf "- data phase throughput vs pipes >= 0.9x (both data only): %.2fx (%s)\n", r, verdict(r >= 0.9)
        } else print "- data phase throughput vs pipes >= 0.9x: n/a (needs howdah data only and pipes)"
        if (wall["howdah"] != "" && wall["pgcopydb"] != "") {
            r = wall["howdah"] / wall["pgcopydb"]
            printf "- whole clone <= 0.75x pgcopydb clone wall time: %.2fx (%s)\n", r, verdict(r <= 0.75)
        } else print "- whole clone <= 0.75x pgcopydb clone wall time: n/a"
        if (wall["howdah"] != "" && wall["pipes_total"] != "") {
            printf "- whole clone faster than pipes + post-data: %.1f s vs %.1f s (%s)\n", wall["howdah"], wall["pipes_total"], verdict(wall["howdah"] < wall["pipes_total"])
        } else print "- whole clone faster than pipes + post-data: n/a"
        if (rss["howdah"] != "") {
            printf "- howdah peak RSS < 300 MB: %.0f MB (%s)\n", rss["howdah"] / 1024, verdict(rss["howdah"] / 1024 < 300)
        } else print "- howdah peak RSS < 300 MB: n/a"
    }' "${RESULTS_TSV}"
}

commit=$(git -C "${ROOT}" rev-parse --short HEAD 2>/dev/null || echo "n/a (no commit)")
server_version=$(psql_q postgres -c "SELECT version()")
data_mib=$(awk -v b="${DATA_BYTES}" 'BEGIN { printf "%.0f", b / 1048576 }')
heap_mib=$(awk -v b="${HEAP_BYTES}" 'BEGIN { printf "%.0f", b / 1048576 }')

report() {
    echo "## howdah e2e benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "- command: \`benches/e2e.sh${orig_args[*]:+ ${orig_args[*]}}\`"
    echo "- git commit: ${commit}"
    echo "- machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 " GiB RAM total, " $7 " GiB available" }'), $(uname -sr)"
    echo "- server: ${server_version}"
    echo "- TLS: sslmode=${SSLMODE} for every tool (PGSSLMODE=${PGSSLMODE} and ?sslmode=${SSLMODE} in URLs)"
    echo "- parallelism: ${JOBS} for every tool"
    echo "- source: ${SRC_DB}, ${#TABLES[@]} tables, ${TOTAL_ROWS} rows, data = heap + TOAST = ${data_mib} MiB (${DATA_BYTES} bytes; heap alone ${heap_mib} MiB)"
    echo "- 1-minute load average just before each competitor: $(IFS=","; echo "${LOADS[*]}") (near 0 on an idle machine; it also decays from the previous competitor's own load)"
    echo "- MB/s = data bytes / 10^6 / wall; rows/s = total rows / wall; peak RSS = largest tool process (/usr/bin/time %M), server backends not included"
    echo
    table_md
    echo
    targets_md
    echo
    echo "Commands:"
    echo
    echo '```'
    cat "${COMMANDS_TXT}"
    echo '```'
    echo
}

mkdir -p "${OUT_DIR}"
report | tee -a "${RESULTS_MD}"
log "results appended to ${RESULTS_MD}; logs in ${RUN_DIR}"
