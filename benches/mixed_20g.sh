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
