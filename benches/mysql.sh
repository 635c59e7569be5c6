#!/usr/bin/env bash
# MySQL/MariaDB to PostgreSQL benchmark: howdah against pgloader and against
# the read limit of the source, on the same MariaDB table, one after the
# other, each copy into a freshly created target database.
#
#   benches/mysql.sh [--skip-dataset] [--rounds N]
#                    [--only read,read2,howdah,pgloader,pgloader-default,pgloader-nocast]
#   benches/mysql.sh --report bench-out/run-<timestamp>
#                    (no runs: the report again from that run's results.tsv)
#
# Competitors (see BENCHMARKS.md, "MySQL / MariaDB to PostgreSQL"):
#   read              mariadb --quick -e 'select * from t' > /dev/null   (read limit)
#   read2             the same as two concurrent streams, one per half of the key range
#   howdah            target/release/howdah copy --jobs N   (whole copy: schema, data,
#                     indexes), then the same data-only: --schema existing into
#                     tables created from the first copy's pre-data section
#   pgloader          pgloader benches/pgloader-mysql.load   (working cast rules,
#                     batch and prefetch sizes that do not exhaust its heap)
#   pgloader-default  pgloader SOURCE TARGET   (pgloader's default settings)
#   pgloader-nocast   benches/pgloader-mysql.load without its CAST rules
# read, howdah and pgloader run in each of --rounds rounds (2), in alternating
# order; read2, pgloader-default and pgloader-nocast run once, after them.
#
# Environment:
#   BENCH_MY_DB        MariaDB source database (howdah_bench_my)
#   BENCH_DST_DB       PostgreSQL target database (howdah_bench_my_dst), DROPPED
#                      and recreated before every copy
#   BENCH_JOBS         parallelism given to howdah (2); pgloader keeps the
#                      settings of its load file
#   BENCH_PGLOADER_TIMEOUT  seconds before a pgloader run is killed (900)
#   BENCH_QUIET_WAIT   before each run, wait up to this many seconds for the
#                      machine to be quiet (< 30% of one CPU busy) (60)
#   BENCH_CLEAN_OTHER  runs during which the rest of the machine used more than
#                      this share of one CPU (CPU seconds / wall) are left out
#                      of the "undisturbed" target figures (0.15); they stay
#                      in the table
#   HOWDAH_BIN         howdah binary (target/release/howdah)
#   PGLOADER_BIN       pgloader binary (pgloader)
#   MYSQL_HOST / MYSQL_PORT / MYSQL_USER   source server (127.0.0.1 / 3306 / root;
#                      password from MYSQL_PWD, empty by default)
#   PGHOST / PGPORT / PGUSER               target server (127.0.0.1 / 5432 / postgres)
#
# Results: a Markdown table on stdout, also appended (with date, commit,
# machine, server versions and the exact commands) to
# bench-out/results-mysql-<timestamp>.md.  Progress and logs go to stderr and
# to bench-out/run-<timestamp>/.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL_COMPETITORS=(read read2 howdah pgloader pgloader-default pgloader-nocast)

skip_dataset=0
report_dir=""
only=""
ROUNDS=2
orig_args=("$@")
while (($# > 0)); do
    case "$1" in
        --skip-dataset) skip_dataset=1 ;;
        --report)
            shift
            report_dir="${1:?--report needs a run directory}"
            ;;
        --rounds)
            shift
            ROUNDS="${1:?--rounds needs a number}"
            ;;
        --rounds=*) ROUNDS="${1#--rounds=}" ;;
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
            echo "mysql.sh: unknown argument '$1' (try --help)" >&2
            exit 2
            ;;
    esac
    shift
done
if [[ ! "${ROUNDS}" =~ ^[1-9][0-9]*$ ]]; then
    echo "mysql.sh: --rounds must be a positive integer" >&2
    exit 2
fi

selected=("${ALL_COMPETITORS[@]}")
if [[ -n "${only}" ]]; then
    IFS=',' read -r -a selected <<<"${only}"
    for c in "${selected[@]}"; do
        if [[ ! " ${ALL_COMPETITORS[*]} " =~ [[:space:]]${c}[[:space:]] ]]; then
            echo "mysql.sh: unknown competitor '${c}' (known: ${ALL_COMPETITORS[*]})" >&2
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
export PGSSLMODE=disable
MY_HOST="${MYSQL_HOST:-127.0.0.1}"
MY_PORT="${MYSQL_PORT:-3306}"
MY_USER="${MYSQL_USER:-root}"

SRC_DB="${BENCH_MY_DB:-howdah_bench_my}"
DST_DB="${BENCH_DST_DB:-howdah_bench_my_dst}"
JOBS="${BENCH_JOBS:-2}"
PGL_TIMEOUT="${BENCH_PGLOADER_TIMEOUT:-900}"
HOWDAH_BIN="${HOWDAH_BIN:-${ROOT}/target/release/howdah}"
PGLOADER_BIN="${PGLOADER_BIN:-pgloader}"
LOAD_FILE="${ROOT}/benches/pgloader-mysql.load"

for db in "${SRC_DB}" "${DST_DB}"; do
    if [[ ! "${db}" =~ ^howdah_bench[a-z0-9_]*$ ]]; then
        echo "mysql.sh: refusing to use database '${db}': name must match ^howdah_bench[a-z0-9_]*\$" >&2
        exit 2
    fi
done

SRC_URL="mysql://${MY_USER}@${MY_HOST}:${MY_PORT}/${SRC_DB}"
DST_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DST_DB}?sslmode=disable"
PGL_DST_URL="postgresql://${PGUSER}@${PGHOST}:${PGPORT}/${DST_DB}?sslmode=disable"

TS=$(date +%Y%m%d-%H%M%S)
OUT_DIR="${ROOT}/bench-out"
RUN_DIR="${OUT_DIR}/run-${TS}"
RESULTS_MD="${OUT_DIR}/results-mysql-${TS}.md"
if [[ -n "${report_dir}" ]]; then
    # Report again from an earlier run: nothing is run, nothing is written
    # but the report on stdout.
    RUN_DIR="${report_dir%/}"
    RESULTS_MD=/dev/null
    skip_dataset=1
    if [[ ! -s "${RUN_DIR}/results.tsv" ]]; then
        echo "mysql.sh: ${RUN_DIR}/results.tsv not found" >&2
        exit 2
    fi
fi
mkdir -p "${RUN_DIR}"
RESULTS_TSV="${RUN_DIR}/results.tsv"
COMMANDS_TXT="${RUN_DIR}/commands.txt"
if [[ -z "${report_dir}" ]]; then
    : >"${RESULTS_TSV}"
    : >"${COMMANDS_TXT}"
fi

log() { printf '[mysql-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

psql_q() {
    local db=$1
    shift
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "${db}" "$@"
}
my() {
    mariadb --protocol=tcp -h "${MY_HOST}" -P "${MY_PORT}" -u "${MY_USER}" --batch --skip-column-names "$@"
}

# Peak RSS and CPU of the tool: `/usr/bin/time -f '%M %U %S'` (KiB, user s,
# system s).  GNU time writes "Command exited with non-zero status N" first
# when the command fails, so only the last line holds the figures.
timed() {
    local out=$1
    shift
    /usr/bin/time -f '%M %U %S' -o "${out}" "$@"
}
time_field() {
    # time_field FILE N: field N (1 = RSS KiB, 2 = user s, 3 = sys s) of the last line.
    [[ -s "$1" ]] || return 0
    tail -n 1 "$1" | awk -v n="$2" '{ print $n }'
}
tool_cpu() {
    # tool_cpu FILE...: user + system seconds summed over the files.
    local f sum=0
    for f in "$@"; do
        [[ -s "${f}" ]] || continue
        sum=$(tail -n 1 "${f}" | awk -v s="${sum}" '{ printf "%.2f", s + $2 + $3 }')
    done
    echo "${sum}"
}
max_rss_kb() {
    local f v max=0
    for f in "$@"; do
        v=$(time_field "${f}" 1)
        if [[ "${v}" =~ ^[0-9]+$ ]] && ((v > max)); then
            max=${v}
        fi
    done
    echo "${max}"
}

# CPU used by the two servers while a competitor runs, from /proc:
# mariadbd is one process (all threads); for PostgreSQL, the postmaster's own
# and reaped children's time (cutime + cstime: backends that exited) plus
# the live children's time.  Clock ticks; "-" when the pid is unknown.
CLK_TCK=$(getconf CLK_TCK)
ticks_of() {
    # ticks_of PID [with_children]: utime + stime (+ cutime + cstime).
    [[ -r "/proc/$1/stat" ]] || {
        echo 0
        return
    }
    sed 's/^.*) //' "/proc/$1/stat" | awk -v c="${2:-0}" '{ t = $12 + $13; if (c) t += $14 + $15; print t }'
}
MY_PID=""
PG_PID=""
find_server_pids() {
    local f
    f=$(my -e "SELECT @@pid_file" 2>/dev/null || true)
    [[ -n "${f}" && -r "${f}" ]] && MY_PID=$(head -n 1 "${f}")
    [[ -n "${MY_PID}" ]] || MY_PID=$(pgrep -o -x mariadbd || pgrep -o -x mysqld || true)
    f=$(psql_q postgres -c "SHOW data_directory" 2>/dev/null || true)
    [[ -n "${f}" && -r "${f}/postmaster.pid" ]] && PG_PID=$(head -n 1 "${f}/postmaster.pid")
    [[ -n "${PG_PID}" && -r "/proc/${PG_PID}/stat" ]] || PG_PID=""
    [[ -n "${MY_PID}" && -r "/proc/${MY_PID}/stat" ]] || MY_PID=""
}
server_ticks() {
    # Prints "<mariadbd ticks> <postgres ticks> <machine busy ticks>"; busy =
    # every CPU's user + nice + system + irq + softirq + steal (/proc/stat).
    local my_t=0 pg_t=0 busy child
    busy=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat)
    [[ -n "${MY_PID}" ]] && my_t=$(ticks_of "${MY_PID}")
    if [[ -n "${PG_PID}" ]]; then
        pg_t=$(ticks_of "${PG_PID}" 1)
        for child in $(pgrep -P "${PG_PID}" || true); do
            pg_t=$((pg_t + $(ticks_of "${child}")))
        done
    fi
    echo "${my_t} ${pg_t} ${busy}"
}
CPU_BEFORE=""
cpu_start() { CPU_BEFORE=$(server_ticks); }
cpu_stop() {
    # Prints "<mariadbd s> <postgres s> <machine busy s>" used since cpu_start.
    # Machine busy minus tool, mariadbd and postgres is what everything else
    # on the machine took meanwhile (noise; steal time included).
    local after
    after=$(server_ticks)
    awk -v b="${CPU_BEFORE}" -v a="${after}" -v hz="${CLK_TCK}" -v myok="${MY_PID}" -v pgok="${PG_PID}" 'BEGIN {
        split(b, x, " "); split(a, y, " ")
        printf "%s %s %.1f\n", (myok == "" ? "-" : sprintf("%.1f", (y[1] - x[1]) / hz)),
                               (pgok == "" ? "-" : sprintf("%.1f", (y[2] - x[2]) / hz)), (y[3] - x[3]) / hz }'
}

# cpu_fields TOOL_CPU "MY PG MACHINE": prints "TOOL MY PG OTHER", OTHER being
# what the rest of the machine used meanwhile (machine - tool - servers).
cpu_fields() {
    awk -v t="$1" -v c="$2" 'BEGIN {
        split(c, x, " ")
        other = (x[1] == "-" || x[2] == "-") ? "-" : sprintf("%.1f", x[3] - t - x[1] - x[2])
        printf "%s %s %s %s\n", t, x[1], x[2], other }'
}

record_command() {
    local label=$1
    shift
    printf '%s: %s\n' "${label}" "$*" >>"${COMMANDS_TXT}"
}

# result KEY ROUND LABEL WHAT WALL_S RSS_KB ROWS CHECK CPU_TOOL CPU_MY CPU_PG CPU_OTHER NOTE
# (rows derived from a run, like a self-reported data phase, leave the CPU
# fields empty but repeat the run's CPU_OTHER).
result() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"${RESULTS_TSV}"
}

reset_dst() {
    if ! psql_q postgres -c "SET client_min_messages = warning" \
        -c "SET statement_timeout = '120s'" \
        -c "DROP DATABASE IF EXISTS \"${DST_DB}\" WITH (FORCE)" \
        -c "CREATE DATABASE \"${DST_DB}\""; then
        log "cannot recreate ${DST_DB}"
        return 1
    fi
    psql_q postgres -c "CHECKPOINT"
}

# ---------------------------------------------------------------------------
# Source facts, computed once.

if ((skip_dataset == 0)); then
    log "generating dataset in ${SRC_DB} (benches/mysql_dataset.sh)"
    BENCH_MY_DB="${SRC_DB}" MYSQL_HOST="${MY_HOST}" MYSQL_PORT="${MY_PORT}" MYSQL_USER="${MY_USER}" \
        "${ROOT}/benches/mysql_dataset.sh" >&2
fi
if ! psql_q postgres -c "SELECT 1" >/dev/null; then
    echo "mysql.sh: cannot connect to PostgreSQL at ${PGHOST}:${PGPORT} as ${PGUSER}" >&2
    exit 1
fi
if [[ "$(my -e "SELECT count(*) FROM information_schema.tables WHERE table_schema = '${SRC_DB}' AND table_name = 't'")" != "1" ]]; then
    echo "mysql.sh: table ${SRC_DB}.t does not exist on ${MY_HOST}:${MY_PORT}; run without --skip-dataset" >&2
    exit 1
fi

# Exact counts; this also reads the whole table once, so the first
# competitor does not pay for a colder source than the others.
log "counting source rows"
read -r SRC_ROWS SRC_DATES DATA_BYTES INDEX_BYTES < <(my "${SRC_DB}" -e "
SELECT (SELECT count(*) FROM t),
       (SELECT count(*) FROM t WHERE ship_date IS NOT NULL AND ship_date <> '0000-00-00'),
       data_length, index_length
FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 't'")
SRC_ZERO=$(my "${SRC_DB}" -e "SET SESSION sql_mode = ''; SELECT count(*) FROM t WHERE ship_date = '0000-00-00'")
[[ -n "${report_dir}" ]] || my "${SRC_DB}" --quick -e "SELECT * FROM t" >/dev/null
find_server_pids
log "source: ${SRC_DB}.t ${SRC_ROWS} rows (${SRC_ZERO} zero dates), data_length ${DATA_BYTES} bytes, index_length ${INDEX_BYTES} bytes"
[[ -n "${MY_PID}" ]] || log "mariadbd pid not found: server CPU of the source is not reported"
[[ -n "${PG_PID}" ]] || log "postmaster pid not found: server CPU of the target is not reported"

# check_target: rows of table t in the target (whatever schema holds it),
# and whether the zero dates became NULL with every other date kept.
# Prints "<rows>\t<check>".
check_target() {
    local schema rows dates
    schema=$(psql_q "${DST_DB}" -c "
SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = 't' AND c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'howdah')
ORDER BY n.nspname = 'public' DESC LIMIT 1" 2>/dev/null || true)
    if [[ -z "${schema}" ]]; then
        printf '0\tno table t\n'
        return
    fi
    rows=$(psql_q "${DST_DB}" -c "SELECT count(*) FROM \"${schema}\".t")
    dates=$(psql_q "${DST_DB}" -c "SELECT count(ship_date) FROM \"${schema}\".t")
    if [[ "${rows}" == "${SRC_ROWS}" && "${dates}" == "${SRC_DATES}" ]]; then
        printf '%s\tOK\n' "${rows}"
    elif [[ "${rows}" == "${SRC_ROWS}" ]]; then
        printf '%s\tMISMATCH (ship_date: %s non-null, source %s)\n' "${rows}" "${dates}" "${SRC_DATES}"
    else
        printf '%s\tMISMATCH (rows)\n' "${rows}"
    fi
}

# ---------------------------------------------------------------------------
# Competitors.  Each runs in a subshell with errexit; a failure is recorded
# and the driver moves on.

ROUND=0

run_read() {
    local rss="${RUN_DIR}/read.${ROUND}.time" cpu fields t0 t1
    local cmd=(mariadb --quick -u"${MY_USER}" -h"${MY_HOST}" -P"${MY_PORT}" "${SRC_DB}" -e 'select * from t')
    record_command "read limit" "${cmd[*]:0:${#cmd[@]}-1} '${cmd[-1]}' > /dev/null"
    log "read limit: ${cmd[*]} > /dev/null"
    cpu_start
    t0=$(now)
    timed "${rss}" "${cmd[@]}" >/dev/null
    t1=$(now)
    cpu=$(cpu_stop)
    fields=$(cpu_fields "$(tool_cpu "${rss}")" "${cpu}")
    # shellcheck disable=SC2086 # four fields on purpose
    result read "${ROUND}" "read limit" "mariadb --quick, 1 stream, > /dev/null" "$(elapsed "${t0}" "${t1}")" \
        "$(max_rss_kb "${rss}")" "-" "-" ${fields} ""
}

run_read2() {
    local dir="${RUN_DIR}/read2" cpu fields t0 t1 mid
    mkdir -p "${dir}"
    mid=$(my "${SRC_DB}" -e "SELECT (min(id) + max(id)) DIV 2 FROM t")
    record_command "read limit, 2 streams" "mariadb --quick ... -e 'select * from t where id <= ${mid}' > /dev/null & mariadb --quick ... -e 'select * from t where id > ${mid}' > /dev/null"
    log "read limit, 2 streams (split at id ${mid})"
    cpu_start
    t0=$(now)
    timed "${dir}/1.time" mariadb --quick -u"${MY_USER}" -h"${MY_HOST}" -P"${MY_PORT}" "${SRC_DB}" \
        -e "select * from t where id <= ${mid}" >/dev/null &
    timed "${dir}/2.time" mariadb --quick -u"${MY_USER}" -h"${MY_HOST}" -P"${MY_PORT}" "${SRC_DB}" \
        -e "select * from t where id > ${mid}" >/dev/null
    wait
    t1=$(now)
    cpu=$(cpu_stop)
    fields=$(cpu_fields "$(tool_cpu "${dir}/1.time" "${dir}/2.time")" "${cpu}")
    # shellcheck disable=SC2086
    result read2 "${ROUND}" "read limit" "mariadb --quick, 2 streams (halves of the key range)" "$(elapsed "${t0}" "${t1}")" \
        "$(max_rss_kb "${dir}/1.time" "${dir}/2.time")" "-" "-" ${fields} ""
}

run_howdah() {
    local log_file="${RUN_DIR}/howdah.${ROUND}.log" rss="${RUN_DIR}/howdah.${ROUND}.time"
    local predata="${RUN_DIR}/pre-data.${ROUND}.sql"
    if [[ ! -x "${HOWDAH_BIN}" ]]; then
        log "howdah: ${HOWDAH_BIN} missing, running cargo build --release"
        (cd "${ROOT}" && cargo build --release) >&2
    fi
    reset_dst
    local cmd=("${HOWDAH_BIN}" copy --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}")
    record_command "howdah" "${cmd[*]}"
    log "howdah: ${cmd[*]}"
    local t0 t1 rc=0 cpu chk data_phase fields
    cpu_start
    t0=$(now)
    timed "${rss}" "${cmd[@]}" >"${log_file}" 2>&1 || rc=$?
    t1=$(now)
    cpu=$(cpu_stop)
    if ((rc != 0)); then
        log "howdah: exit status ${rc}; last lines of ${log_file}:"
        tail -n 20 "${log_file}" >&2
        return 1
    fi
    chk=$(check_target)
    fields=$(cpu_fields "$(tool_cpu "${rss}")" "${cpu}")
    # shellcheck disable=SC2086
    result howdah "${ROUND}" "howdah copy" "whole copy (schema, data, indexes, ANALYZE)" "$(elapsed "${t0}" "${t1}")" \
        "$(max_rss_kb "${rss}")" "${chk%%$'\t'*}" "${chk#*$'\t'}" ${fields} ""
    data_phase=$(sed -n 's/^data phase: *\([0-9][0-9.]*\) *s.*/\1/p' "${log_file}" | tail -n 1)
    if [[ -n "${data_phase}" ]]; then
        result howdah_data "${ROUND}" "howdah copy" "data phase of the whole copy (self-reported)" "${data_phase}" \
            "" "${chk%%$'\t'*}" "${chk#*$'\t'}" "" "" "" "${fields##* }" ""
    fi

    # Data only: the tables as the copy above created them (pre-data: enum
    # type, table, identity; no keys or indexes), loaded with --schema existing.
    pg_dump --schema-only --section=pre-data --exclude-schema=howdah -d "${DST_DB}" >"${predata}"
    reset_dst
    psql -X -q -v ON_ERROR_STOP=1 -d "${DST_DB}" -f "${predata}" >/dev/null
    psql_q postgres -c "CHECKPOINT"
    local dcmd=("${HOWDAH_BIN}" copy --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}" --schema existing)
    record_command "howdah data only" "pg_dump --schema-only --section=pre-data --exclude-schema=howdah (of the copy above) | psql; ${dcmd[*]}"
    log "howdah data only: ${dcmd[*]}"
    rc=0
    cpu_start
    t0=$(now)
    timed "${rss}.data" "${dcmd[@]}" >"${log_file}.data" 2>&1 || rc=$?
    t1=$(now)
    cpu=$(cpu_stop)
    if ((rc != 0)); then
        log "howdah data only: exit status ${rc}; last lines of ${log_file}.data:"
        tail -n 20 "${log_file}.data" >&2
        return 1
    fi
    chk=$(check_target)
    fields=$(cpu_fields "$(tool_cpu "${rss}.data")" "${cpu}")
    # shellcheck disable=SC2086
    result howdah_dataonly "${ROUND}" "howdah copy --schema existing" "data only (pre-created tables, no indexes)" \
        "$(elapsed "${t0}" "${t1}")" "$(max_rss_kb "${rss}.data")" "${chk%%$'\t'*}" "${chk#*$'\t'}" ${fields} ""
    data_phase=$(sed -n 's/^data phase: *\([0-9][0-9.]*\) *s.*/\1/p' "${log_file}.data" | tail -n 1)
    if [[ -n "${data_phase}" ]]; then
        result howdah_dataonly_data "${ROUND}" "howdah copy --schema existing" "its data phase (self-reported)" \
            "${data_phase}" "" "${chk%%$'\t'*}" "${chk#*$'\t'}" "" "" "" "${fields##* }" ""
    fi
}

# pgloader_note LOG RC: what happened, in a few words.
pgloader_note() {
    local f=$1 rc=$2 err
    if grep -q 'Heap exhausted' "${f}"; then
        echo "died: Heap exhausted (exit ${rc})"
        return
    fi
    err=$(grep -m 1 -o 'ERROR Database error [0-9A-Z]*: .*' "${f}" | cut -c 1-90 || true)
    if ((rc == 124 || rc == 137)); then
        echo "killed after ${PGL_TIMEOUT} s"
    elif [[ -n "${err}" ]]; then
        echo "exit ${rc}; ${err//|/\\|}"
    elif ((rc != 0)); then
        echo "exit ${rc}"
    else
        echo "exit 0"
    fi
}

# run_pgloader_variant KEY LABEL WHAT ARGS...: one pgloader run.
run_pgloader_variant() {
    local key=$1 label=$2 what=$3
    shift 3
    local name="${key}.${ROUND}"
    local log_file="${RUN_DIR}/${name}.log" rss="${RUN_DIR}/${name}.time"
    reset_dst
    local cmd=(timeout --kill-after=10 "${PGL_TIMEOUT}" "${PGLOADER_BIN}" --root-dir "${RUN_DIR}/${name}" "$@")
    record_command "${label} (${what})" "PGL_SOURCE=${SRC_URL} PGL_TARGET=${PGL_DST_URL} PGL_SOURCE_DB=${SRC_DB} $(printf '%s ' "${cmd[@]}" | sed "s|${RUN_DIR}/${name}|${RUN_DIR}/${key}.<round>|")"
    log "${label}: ${cmd[*]}"
    local t0 t1 rc=0 cpu chk fields
    cpu_start
    t0=$(now)
    PGL_SOURCE="${SRC_URL}" PGL_TARGET="${PGL_DST_URL}" PGL_SOURCE_DB="${SRC_DB}" \
        timed "${rss}" "${cmd[@]}" </dev/null >"${log_file}" 2>&1 || rc=$?
    t1=$(now)
    cpu=$(cpu_stop)
    chk=$(check_target)
    log "${label}: exit ${rc}, ${chk%%$'\t'*} rows on the target"
    fields=$(cpu_fields "$(tool_cpu "${rss}")" "${cpu}")
    # shellcheck disable=SC2086
    result "${key}" "${ROUND}" "${label}" "${what}" "$(elapsed "${t0}" "${t1}")" "$(max_rss_kb "${rss}")" \
        "${chk%%$'\t'*}" "${chk#*$'\t'}" ${fields} "$(pgloader_note "${log_file}" "${rc}")"
}

run_pgloader() {
    run_pgloader_variant pgloader "pgloader" "load file: cast rules, batch/prefetch 10000, workers 4" "${LOAD_FILE}"
}
run_pgloader-default() {
    run_pgloader_variant pgloader_default "pgloader" "default settings, no load file" "${SRC_URL}" "${PGL_DST_URL}"
}
run_pgloader-nocast() {
    local f="${RUN_DIR}/pgloader-nocast.load"
    sed '/^CAST/,/^$/d' "${LOAD_FILE}" >"${f}"
    run_pgloader_variant pgloader_nocast "pgloader" "load file without its CAST rules" "${f}"
}

# Wait (at most BENCH_QUIET_WAIT seconds, 60) until the machine is quiet: less
# than 30% of one CPU busy over one second, so a competitor does not start
# while something else (or the previous competitor's tail) still runs.
QUIET_WAIT="${BENCH_QUIET_WAIT:-60}"
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
wait_quiet() {
    local i a b
    for ((i = 0; i < QUIET_WAIT; i++)); do
        a=$(busy_ticks)
        sleep 1
        b=$(busy_ticks)
        if (((b - a) * 10 < CLK_TCK * 3)); then
            ((i == 0)) || log "waited ${i} s for the machine to be quiet"
            return 0
        fi
    done
    log "machine still busy after ${QUIET_WAIT} s; running anyway"
}

LOADS=()
run_one() {
    local c=$1 rc=0
    is_selected "${c}" || return 0
    log "=== round ${ROUND}: ${c} ==="
    wait_quiet
    LOADS+=("${c}#${ROUND} $(cut -d' ' -f1 /proc/loadavg)")
    set +e
    (
        set -e
        "run_${c}"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        log "${c}: FAILED"
        result "${c//-/_}_failed" "${ROUND}" "${c}" "FAILED (see ${RUN_DIR})" "" "" "" "FAILED" "" "" "" "" ""
    fi
}

((${#report_dir} == 0)) || ROUNDS=0
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    if ((ROUND % 2 == 1)); then
        order=(read howdah pgloader)
    else
        order=(read pgloader howdah)
    fi
    for c in "${order[@]}"; do
        run_one "${c}"
    done
done
ROUND=1
for c in read2 pgloader-default pgloader-nocast; do
    [[ -n "${report_dir}" ]] || run_one "${c}"
done

# ---------------------------------------------------------------------------
# Report.

# mean_wall KEY: mean wall of the rows with that key that are not failures.
mean_wall() {
    awk -F'\t' -v k="$1" '$1 == k && $5 != "" && $8 !~ /^(MISMATCH|FAILED|no table)/ { s += $5; n++ }
        END { if (n) printf "%.2f", s / n }' "${RESULTS_TSV}"
}
howdah_mean=$(mean_wall howdah)

table_md() {
    echo "| tool | what is timed | round | wall (s) | rows/s | MB/s | peak RSS (MB) | rows on target | vs howdah wall | CPU s: tool / mariadbd / postgres / other | check | notes |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|"
    awk -F'\t' -v bytes="${DATA_BYTES}" -v rows="${SRC_ROWS}" -v sw="${howdah_mean}" '
    function cpu(x) { return x == "" ? "-" : x }
    {
        wall = $5; rss = $6
        # rows/s counts the rows that reached the target (all source rows for the reads).
        moved = ($7 == "-" || $7 == "") ? rows : $7
        if (wall == "") { mbs = "-"; rps = "-"; ratio = "-"; wall = "-" }
        else {
            mbs = (wall > 0) ? sprintf("%.1f", bytes / 1e6 / wall) : "-"
            rps = (wall > 0) ? sprintf("%.0f", moved / wall) : "-"
            ratio = (sw != "" && sw > 0) ? sprintf("%.2fx", wall / sw) : "n/a"
        }
        if ($8 ~ /^(MISMATCH|no table|FAILED)/) ratio = "-"
        if ($8 ~ /^(MISMATCH|no table)/ || moved == 0) mbs = "-"
        rss_mb = (rss == "" || rss == 0) ? "-" : sprintf("%.0f", rss / 1024)
        cpus = ($9 == "" && $10 == "") ? "(that run) / " cpu($12) : cpu($9) " / " cpu($10) " / " cpu($11) " / " cpu($12)
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $3, $4, $2, wall, rps, mbs, rss_mb, $7, ratio, cpus, $8, $13
    }' "${RESULTS_TSV}"
}

# targets_for MAX_OTHER TITLE: the issue's targets from the runs during which
# the rest of the machine used at most MAX_OTHER of one CPU ("" = all runs).
targets_for() {
    awk -F'\t' -v maxo="$1" -v title="$2" '
    $8 ~ /^(MISMATCH|FAILED|no table)/ || $5 == "" { next }
    # Undisturbed: the rest of the machine used at most maxo of one CPU on
    # average over the run (derived rows: the CPU of their run over their own time).
    maxo != "" && ($12 == "" || $12 == "-" || $12 / $5 > maxo + 0) { next }
    { s[$1] += $5; n[$1]++; if (!($1 in mn) || $5 < mn[$1]) mn[$1] = $5; if ($5 > mx[$1]) mx[$1] = $5
      if ($6 != "" && $6 > rss[$1]) rss[$1] = $6 }
    function mean(k) { return n[k] ? s[k] / n[k] : "" }
    function verdict(ok) { return ok ? "met" : "NOT met" }
    function runs(k) { return n[k] " run" (n[k] == 1 ? "" : "s") }
    END {
        print title " (means; worst and best pairing in brackets):"
        print ""
        if (n["howdah"] && n["pgloader"]) {
            r = mean("pgloader") / mean("howdah")
            printf "- howdah rows/s >= 4x pgloader rows/s, whole copies (%s howdah, %s pgloader): %.3fx [%.2fx..%.2fx] (%s)\n", runs("howdah"), runs("pgloader"), r, mn["pgloader"] / mx["howdah"], mx["pgloader"] / mn["howdah"], verdict(r >= 4)
            if (n["howdah_data"])
                printf "  - howdah data phase alone against pgloader whole copy: %.2fx\n", mean("pgloader") / mean("howdah_data")
        } else print "- howdah rows/s >= 4x pgloader rows/s: n/a (needs howdah and a pgloader run that loaded every row)"
        if (n["read"] && n["howdah_data"]) {
            r = mean("read") / mean("howdah_data")
            printf "- data phase >= 0.8x the read limit, read wall / data phase of the whole copy (%s read, %s howdah): %.3fx [%.2fx..%.2fx] (%s)\n", runs("read"), runs("howdah_data"), r, mn["read"] / mx["howdah_data"], mx["read"] / mn["howdah_data"], verdict(r >= 0.8)
        } else print "- data phase >= 0.8x the read limit: n/a"
        if (n["read"] && n["howdah_dataonly"])
            printf "  - data only (--schema existing), whole process: %.2fx; its self-reported data phase: %.2fx\n", mean("read") / mean("howdah_dataonly"), (n["howdah_dataonly_data"] ? mean("read") / mean("howdah_dataonly_data") : 0)
        if (n["read"] && n["howdah"])
            printf "  - whole copy including schema, index build and ANALYZE: %.2fx\n", mean("read") / mean("howdah")
        m = (rss["howdah"] > rss["howdah_dataonly"]) ? rss["howdah"] : rss["howdah_dataonly"]
        if (m != "") printf "- howdah peak RSS < 300 MB: %.0f MB (%s)\n", m / 1024, verdict(m / 1024 < 300)
        else print "- howdah peak RSS < 300 MB: n/a"
    }' "${RESULTS_TSV}"
}
CLEAN_OTHER="${BENCH_CLEAN_OTHER:-0.15}"
targets_md() {
    targets_for "" "Targets (from the issue), all runs"
    echo
    targets_for "${CLEAN_OTHER}" "Targets, undisturbed runs only (the rest of the machine used <= ${CLEAN_OTHER} of one CPU during the run)"
}

commit=$(git -C "${ROOT}" rev-parse --short HEAD 2>/dev/null || echo "n/a")
dirty=$(git -C "${ROOT}" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)
pg_version=$(psql_q postgres -c "SELECT version()")
my_version=$(my -e "SELECT version()")
my_settings=$(my -e "SELECT concat('innodb_buffer_pool_size=', @@innodb_buffer_pool_size DIV 1048576, 'M, innodb_flush_method=', @@innodb_flush_method)")
pgl_version=$("${PGLOADER_BIN}" --version 2>/dev/null | sed -n 1p || true)

report() {
    echo "## howdah MySQL benchmark, $(date '+%Y-%m-%d %H:%M:%S %Z')"
    echo
    echo "- command: \`benches/mysql.sh${orig_args[*]:+ ${orig_args[*]}}\`"
    echo "- git commit: ${commit}${dirty:+ (with uncommitted changes)}; howdah binary: ${HOWDAH_BIN}"
    echo "- machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 " GiB RAM total, " $7 " GiB available" }'), $(uname -sr)"
    echo "- source: ${my_version} (${my_settings}); target: ${pg_version}; ${pgl_version}"
    echo "- data: ${SRC_DB}.t, ${SRC_ROWS} rows (${SRC_ZERO} zero dates), InnoDB data_length ${DATA_BYTES} bytes ($((DATA_BYTES / 1048576)) MiB), index_length $((INDEX_BYTES / 1048576)) MiB"
    echo "- howdah --jobs ${JOBS}; pgloader settings from its load file or its defaults; ${ROUNDS} rounds, order alternating"
    if [[ -n "${report_dir}" ]]; then
        echo "- report made again from ${RUN_DIR}/results.tsv (date, commit and load averages above are not those of the runs)"
    else
        echo "- 1-minute load average before each run: $(IFS=","; echo "${LOADS[*]}")"
    fi
    echo "- MB/s = data_length / 10^6 / wall; rows/s = rows on the target (source rows for the reads) / wall; peak RSS = the tool process (/usr/bin/time %M), servers not included; CPU s = user + system seconds of the tool, of mariadbd and of all PostgreSQL processes during the run, and \"other\" = what the rest of the machine used meanwhile (/proc/stat busy time minus those three; noise from outside the benchmark)"
    echo "- check: rows on the target = source rows, and non-NULL ship_date = source dates that are neither NULL nor zero (zero dates must become NULL)"
    echo
    table_md
    echo
    targets_md
    echo
    echo "Commands:"
    echo
    echo '```'
    awk '!seen[$0]++' "${COMMANDS_TXT}"
    echo '```'
    echo
}

report | tee -a "${RESULTS_MD}"
log "results appended to ${RESULTS_MD}; logs in ${RUN_DIR}"
