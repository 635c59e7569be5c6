#!/usr/bin/env bash
# A mixed dataset over a long run: generates about --gb GB of tables of several shapes and
# sizes, copies them with the release binary under nice -n 19, samples the run, then verifies.
#
# The source (howdah_bench_mixed_src, recreated unless --skip-dataset) holds:
#   customers     100,000 rows, primary key (every FK below points here or to orders)
#   orders        ~35% of the bytes: id bigint PK, customer_id FK, amount numeric(12,2),
#                 created timestamptz, note text, attrs jsonb; indexes on customer_id, created
#   events        ~25%: id bigint PK, order_id FK -> orders, kind text, payload jsonb, at
#                 timestamptz; index on order_id
#   readings      ~12%: no primary key (read by block ranges): sensor int, value float8,
#                 at timestamp, flags smallint
#   documents     ~15%: TOAST-heavy, id PK, title text, body text of ~10 kB that does not
#                 compress (STORAGE EXTERNAL)
#   m_01..m_40    ~13% together: medium tables, PK, an index, FK -> customers
#   20 large objects of 1 MB
# Generated in batches, each its own transaction, by a backend at nice 19, until each table
# reaches its share of --gb.
#
# The copy (--jobs J, target howdah_bench_mixed_dst, recreated) is sampled every --every
# seconds: rows and bytes committed (howdah.chunks), the binary's RSS, the state tables' rows
# and size, and `howdah status --source --json` (progress, ETA, stage, snapshot age). Prints a
# Markdown table per sample, ETA accuracy at 10/50/90%, how long the source snapshot was held
# against the whole run (the copy's log), then runs `howdah verify`.
#
#   benches/mixed_20g.sh [--gb N] [--jobs J] [--every SECS] [--skip-dataset] [--dataset-only]
#                        [--keep]
#
# Defaults: 20 GB, 2 jobs, a sample every 60 s. --keep leaves both databases (otherwise they
# are dropped at the end). Check `df -h` first: source, copy and WAL need about 2.3 x N GB.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GB=20
JOBS=2
EVERY=60
SKIP=0
ONLY_DATA=0
KEEP=0
while (($# > 0)); do
    case "$1" in
        --gb) GB=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        --every) EVERY=$2; shift ;;
        --skip-dataset) SKIP=1 ;;
        --dataset-only) ONLY_DATA=1 ;;
        --keep) KEEP=1 ;;
        -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "mixed_20g.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}" PGSSLMODE=disable
TARGET_DIR="${CARGO_TARGET_DIR:-${ROOT}/target}"
HOWDAH_BIN="${HOWDAH_BIN:-${TARGET_DIR}/release/howdah}"
SRC=howdah_bench_mixed_src
DST=howdah_bench_mixed_dst
SRC_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${SRC}?sslmode=disable"
DST_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DST}?sslmode=disable"
df -h "$(psql -X -At -d postgres -c 'SHOW data_directory')" | tail -n1

# Runs SQL on the source from a backend reniced to 19.
src_sql() {
    psql -X -q -v ON_ERROR_STOP=1 -d "${SRC}" <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BACKEND :pid
\! renice -n 19 -p "\$BACKEND" >/dev/null 2>&1
$1
SQL
}

# Appends batches of `insert` (SQL using :lo and :hi for the id range of the batch, `batch`
# rows) to `table` until it holds `mb` MB.
fill() {
    local table=$1 mb=$2 batch=$3 insert=$4 lo=1 size=0
    while ((size < mb)); do
        src_sql "\\set lo ${lo}
\\set hi $((lo + batch - 1))
${insert}"
        lo=$((lo + batch))
        size=$(psql -X -At -d "${SRC}" -c "SELECT pg_table_size('${table}') / 1048576")
    done
    echo "  ${table}: $((lo - 1)) rows, ${size} MB" >&2
}

if ((SKIP == 0)); then
    t0=$(date +%s)
    MB=$((GB * 1024))
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${SRC} WITH (FORCE)" -c "CREATE DATABASE ${SRC}"
    src_sql "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, country char(2), since date);
INSERT INTO customers SELECT g, 'customer ' || g, chr(65 + g % 26) || chr(65 + g % 7),
    date '2000-01-01' + g % 8000 FROM generate_series(1, 100000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2),
    created timestamptz NOT NULL, note text, attrs jsonb);
CREATE TABLE events (id bigint PRIMARY KEY, order_id bigint NOT NULL, kind text NOT NULL,
    payload jsonb, at timestamptz NOT NULL);
CREATE TABLE readings (sensor int NOT NULL, value float8, at timestamp NOT NULL, flags smallint);
CREATE TABLE documents (id int PRIMARY KEY, title text NOT NULL, body text NOT NULL);
ALTER TABLE documents ALTER COLUMN body SET STORAGE EXTERNAL;"
    fill orders $((MB * 35 / 100)) 2000000 "INSERT INTO orders SELECT g, 1 + (g * 7919) % 100000,
    ((g * 104729) % 10000000) / 100.0, '2015-01-01'::timestamptz + g * interval '7 seconds',
    md5(g::text) || ' ' || md5((g * 3)::text),
    jsonb_build_object('channel', (ARRAY['web','shop','phone','partner'])[1 + g % 4],
        'items', 1 + g % 9, 'code', substr(md5((g * 7)::text), 1, 12), 'gift', g % 11 = 0)
  FROM generate_series(:lo::bigint, :hi::bigint) g;"
    orders=$(psql -X -At -d "${SRC}" -c "SELECT max(id) FROM orders")
    fill events $((MB * 25 / 100)) 2000000 "INSERT INTO events SELECT g, 1 + (g * 31) % ${orders},
    (ARRAY['created','paid','shipped','returned','note'])[1 + g % 5],
    jsonb_build_object('by', 'user' || (g % 5000), 'seq', g, 'sum', (g % 100000) / 100.0,
        'tags', jsonb_build_array(g % 3, g % 7, substr(md5(g::text), 1, 8))),
    '2016-01-01'::timestamptz + g * interval '3 seconds'
  FROM generate_series(:lo::bigint, :hi::bigint) g;"
    fill readings $((MB * 12 / 100)) 4000000 "INSERT INTO readings SELECT g % 5000,
    sin(g::float8) * 100, '2020-01-01'::timestamp + g * interval '250 milliseconds', (g % 8)::smallint
  FROM generate_series(:lo::bigint, :hi::bigint) g;"
    # ~10 kB of hex per row (random digests do not compress): TOAST carries almost everything.
    fill documents $((MB * 15 / 100)) 20000 "INSERT INTO documents SELECT g, 'document ' || g,
    (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 320) i)
  FROM generate_series(:lo::int, :hi::int) g;"
    per=$((MB * 13 / 100 / 40))
    rows=$((per * 1048576 / 120))
    for i in $(seq -w 1 40); do
        src_sql "CREATE TABLE m_${i} (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
    qty int, price numeric(10,2), label text, at timestamptz);
INSERT INTO m_${i} SELECT g, 1 + g % 100000, g % 50, (g % 99999) / 100.0, 'item ' || md5(g::text),
    now() - g * interval '1 minute' FROM generate_series(1, ${rows}) g;
CREATE INDEX ON m_${i} (customer_id);"
    done
    src_sql "
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON orders (created);
CREATE INDEX ON events (order_id);
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers;
ALTER TABLE events ADD FOREIGN KEY (order_id) REFERENCES orders;
SELECT lo_from_bytea(0, convert_to(repeat(md5(g::text), 32768), 'UTF8')) FROM generate_series(1, 20) g;
VACUUM ANALYZE;"
    echo "dataset: $(psql -X -At -d "${SRC}" -c "SELECT pg_size_pretty(pg_database_size(current_database()))") in $(( $(date +%s) - t0 )) s" >&2
    psql -X -d "${SRC}" -c "SELECT c.relname, c.reltuples::bigint AS rows,
        pg_size_pretty(pg_table_size(c.oid)) AS data, pg_size_pretty(pg_indexes_size(c.oid)) AS indexes
      FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
       AND c.relname !~ '^m_[0-9]+$' ORDER BY pg_table_size(c.oid) DESC" >&2
fi
((ONLY_DATA == 1)) && exit 0

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${DST} WITH (FORCE)" -c "CREATE DATABASE ${DST}"
WORK=$(mktemp -d)
LOG="${WORK}/copy.log"
SAMPLES="${WORK}/samples.tsv"
echo "copy log and samples in ${WORK}" >&2
t0=$(date +%s)
nice -n 19 "${HOWDAH_BIN}" copy --source "${SRC_URL}" --target "${DST_URL}" --jobs "${JOBS}" >"${LOG}" 2>&1 &
PID=$!
# The copy's server backends too run at nice 19 (renice them as they appear).
renice_backends() {
    local pids
    pids=$(psql -X -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'howdah/%'" 2>/dev/null || true)
    [[ -n "${pids}" ]] && renice -n 19 -p ${pids} >/dev/null 2>&1 || true
}
sleep 5
renice_backends
peak=0
while kill -0 "${PID}" 2>/dev/null; do
    # Sleep in steps of a second, so the end of the copy is timed to the second.
    for ((i = 0; i < EVERY; i++)); do
        kill -0 "${PID}" 2>/dev/null || break 2
        sleep 1
    done
    renice_backends
    rss=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/${PID}/status" 2>/dev/null || echo 0)
    hwm=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/${PID}/status" 2>/dev/null || echo 0)
    ((hwm > peak)) && peak=${hwm}
    state=$(psql -X -At -F ' ' -d "${DST}" -c "SELECT (SELECT count(*) FROM howdah.chunks),
        (SELECT count(*) FROM howdah.steps), (SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid)))
         FROM pg_class c WHERE c.relnamespace = 'howdah'::regnamespace AND c.relkind = 'r')" 2>/dev/null | tr ' ' '_' || echo "-")
    st=$("${HOWDAH_BIN}" status --target "${DST_URL}" --source "${SRC_URL}" --json 2>/dev/null |
        jq -r '.[0] | [.rows, .bytes, .estimated_rows, .stage, (.eta_seconds // "-"), (.data_eta_seconds // "-"),
            .index_bytes, .index_bytes_done, (.source_snapshot.job_snapshot_age_seconds // "-")] | @tsv' || echo "-")
    printf '%s\t%s\t%s\t%s\t%s\n' "$(( $(date +%s) - t0 ))" "${rss}" "${hwm}" "${state}" "${st}" >>"${SAMPLES}"
done
rc=0
wait "${PID}" || rc=$?
secs=$(( $(date +%s) - t0 ))
echo "exit ${rc}; ${secs} s in all; peak RSS (VmHWM at the last sample) ${peak} MB"
grep -E "data phase done|source snapshot released|large objects|rows/s|post-data|in all" "${LOG}" | tail -n 12 || true
psql -X -At -d "${DST}" -c "SELECT 'state tables at the end: ' || (SELECT count(*) FROM howdah.chunks) || ' chunk rows, '
    || (SELECT count(*) FROM howdah.steps) || ' step rows, '
    || (SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c
         WHERE c.relnamespace = 'howdah'::regnamespace AND c.relkind = 'r')"
# Samples as a table, then the ETA at 10/50/90% of the rows against the actual end.
python3 - "${SAMPLES}" "${secs}" "${LOG}" <<'PY'
import re, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
total = int(sys.argv[2])
log = open(sys.argv[3]).read()
m = re.search(r"data phase done in ([0-9.]+) s", log)
data_end = float(m.group(1)) if m else None
m = re.search(r"source snapshot released after ([0-9.]+) s", log)
released = float(m.group(1)) if m else None
print("| at (s) | stage | rows committed | rows/s | MB/s | RSS MB | chunk rows / step rows / state size | ETA (s) | snapshot age (s) |")
print("| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
prev_t, prev_r, prev_b = 0, 0, 0
for r in rows:
    t, rss, hwm, state = int(r[0]), r[1], r[2], r[3]
    if len(r) < 13:
        print(f"| {t} | - | - | - | - | {rss} | {state} | - | - |"); continue
    n, b, est, stage, eta, deta, ib, ibd, age = r[4:13]
    n, b = int(n), int(b)
    dt = max(t - prev_t, 1)
    print(f"| {t} | {stage} | {n:,} | {(n - prev_r) // dt:,} | {(b - prev_b) / dt / 1e6:.1f} | {rss} | {state.replace('_', ' / ', 2).replace('_', ' ')} | "
          f"{eta if eta == '-' else round(float(eta))} | {age if age == '-' else round(float(age))} |")
    prev_t, prev_r, prev_b = t, n, b
print()
print("| rows in | at (s) | ETA given (s) | predicted end (s) | actual end (s) | error (s) |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
for goal in (0.10, 0.50, 0.90):
    for r in rows:
        if len(r) < 13 or r[8] == "-" or int(r[6]) <= 0:
            continue
        if int(r[4]) / int(r[6]) >= goal:
            t, eta = int(r[0]), float(r[8])
            print(f"| {goal:.0%} | {t} | {eta:.0f} | {t + eta:.0f} | {total} | {t + eta - total:+.0f} |")
            break
print()
print(f"data phase {data_end} s; source snapshot released after {released} s; whole run {total} s")
PY
t1=$(date +%s)
nice -n 19 "${HOWDAH_BIN}" verify --source "${SRC_URL}" --target "${DST_URL}" >"${WORK}/verify.txt" 2>&1 && vrc=0 || vrc=$?
echo "verify: exit ${vrc} in $(( $(date +%s) - t1 )) s"
tail -n 8 "${WORK}/verify.txt"
if ((KEEP == 0)); then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${DST} WITH (FORCE)" -c "DROP DATABASE IF EXISTS ${SRC} WITH (FORCE)"
fi
