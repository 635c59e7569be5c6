#!/usr/bin/env bash
# Creates (or re-creates) the end-to-end benchmark source database.
#
#   benches/dataset.sh                      # -> database howdah_bench_src
#   BENCH_SRC_DB=howdah_bench_x benches/dataset.sh
#
# The data is deterministic: every value derives from generate_series()
# through md5()/hashtext()/sha512() or integer arithmetic, never random(),
# so two runs produce byte-identical table contents.  About 1.5 GB of table
# data (heap + TOAST) is produced; each table is built by its own psql
# session (at most BENCH_GEN_JOBS sessions at a time, default nproc).
#
# Connection: the usual libpq variables are honoured (PGHOST, PGPORT, PGUSER,
# PGSSLMODE); defaults are 127.0.0.1:5432, user postgres, sslmode=disable.
set -euo pipefail

export PGHOST="${PGHOST:-127.0.0.1}"
export PGPORT="${PGPORT:-5432}"
export PGUSER="${PGUSER:-postgres}"
export PGSSLMODE="${PGSSLMODE:-disable}"

SRC_DB="${BENCH_SRC_DB:-howdah_bench_src}"
GEN_JOBS="${BENCH_GEN_JOBS:-$(nproc)}"

# This script drops the database it is pointed at: refuse anything that is
# not obviously a benchmark database.
if [[ ! "${SRC_DB}" =~ ^howdah_bench[a-z0-9_]*$ ]]; then
    echo "dataset.sh: refusing to (re)create '${SRC_DB}': name must match ^howdah_bench[a-z0-9_]*\$" >&2
    exit 2
fi

psql_admin() {
    PGOPTIONS="-c client_min_messages=warning ${PGOPTIONS:-}" \
        psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"
}

# Every generating session runs with generous maintenance memory so the
# index builds sort in memory, and without waiting for WAL flushes (the data
# is committed once per table; durability of the generator is irrelevant).
psql_src() {
    PGOPTIONS="-c maintenance_work_mem=512MB -c synchronous_commit=off ${PGOPTIONS:-}" \
        psql -X -q -v ON_ERROR_STOP=1 -d "${SRC_DB}" "$@"
}

# --- per-table generators ---------------------------------------------------
# Each function emits the SQL for one table (or one group of dependent
# tables): CREATE TABLE, bulk INSERT ... SELECT, then indexes/constraints
# (building them after the load is much faster than maintaining them row by
# row), then VACUUM (FREEZE, ANALYZE).  The vacuum matters for the benchmark:
# it sets hint bits and the visibility map now, so the first competitor that
# reads the source does not pay for writing every page back.

sql_wide() {
    cat <<'SQL'
CREATE TABLE public.wide (
    id          bigint      NOT NULL,
    doc         jsonb       NOT NULL,
    amount      numeric(14,4),
    ext_id      uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    note        text,
    flag        boolean,
    tags        int[]
);
INSERT INTO public.wide
SELECT i,
       jsonb_build_object('k', i % 1000,
                          'name', 'item-' || (i % 50000),
                          'score', (h.a % 10000) / 100.0,
                          'active', (h.a % 2) = 0),
       (h.a % 1000000000) / 1000.0,
       m::uuid,
       timestamptz '2020-01-01 00:00:00+00' + (h.a % 126230400) * interval '1 second',
       CASE WHEN i % 10 = 0 THEN NULL ELSE substr(m || m, 1 + (i % 7), 8 + (i % 33)) END,
       CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 3) = 0 END,
       ARRAY[(i % 100)::int, (h.a % 1000)::int, (i * 7 % 13)::int]
FROM generate_series(1, 3000000) AS i,
     LATERAL (SELECT abs(hashtext(i::text)::bigint) AS a, md5(i::text) AS m) AS h(a, m);
ALTER TABLE public.wide ADD CONSTRAINT wide_pkey PRIMARY KEY (id);
CREATE INDEX wide_created_at_idx ON public.wide (created_at);
CREATE UNIQUE INDEX wide_ext_id_key ON public.wide (ext_id);
VACUUM (FREEZE, ANALYZE) public.wide;
SQL
}

sql_narrow() {
    # a: a cheap multiplicative hash, so the index on it is not in heap order.
    cat <<'SQL'
CREATE TABLE public.narrow (
    id bigint NOT NULL,
    a  int,
    b  int
);
INSERT INTO public.narrow
SELECT i, ((i * 2654435761) % 1000000007)::int, (i % 1000)::int
FROM generate_series(1::bigint, 10000000::bigint) AS i;
ALTER TABLE public.narrow ADD CONSTRAINT narrow_pkey PRIMARY KEY (id);
CREATE INDEX narrow_a_idx ON public.narrow (a);
VACUUM (FREEZE, ANALYZE) public.narrow;
SQL
}

sql_blobs() {
    # payload: 2-6 KB of incompressible bytes (sha512 output), cut from a
    # pool of 256 pre-computed 8 KB blocks so generation stays cheap.  Values
    # above ~2 KB are moved out of line, so most of this table lives in its
    # TOAST relation.
    cat <<'SQL'
CREATE TABLE public.blobs (
    id      int NOT NULL,
    name    text NOT NULL,
    body    text,
    payload bytea
);
INSERT INTO public.blobs
WITH pool AS MATERIALIZED (
    SELECT p, (SELECT string_agg(sha512(int8send(p * 1000 + k)), ''::bytea ORDER BY k)
               FROM generate_series(1, 128) AS k) AS blk
    FROM generate_series(0, 255) AS p
)
SELECT i,
       'blob-' || i || '.bin',
       repeat(md5(i::text), 2 + i % 10),
       substring(pool.blk FROM 1 + (i % 64) FOR 2048 + (abs(hashtext(i::text)) % 4096))
FROM generate_series(1, 70000) AS i
JOIN pool ON pool.p = i % 256;
ALTER TABLE public.blobs ADD CONSTRAINT blobs_pkey PRIMARY KEY (id);
VACUUM (FREEZE, ANALYZE) public.blobs;
SQL
}

sql_composite() {
    # Rows are inserted tenant-interleaved, so primary-key order is NOT the
    # physical order (keyset chunking over the PK hops around the heap).
    cat <<'SQL'
CREATE TABLE public.composite (
    tenant     int           NOT NULL,
    seq        int           NOT NULL,
    status     text          NOT NULL,
    qty        int           NOT NULL,
    price      numeric(10,2),
    updated_at timestamp,
    CONSTRAINT composite_qty_check CHECK (qty >= 0),
    CONSTRAINT composite_status_check CHECK (status IN ('new', 'paid', 'shipped', 'void'))
);
INSERT INTO public.composite
SELECT (1 + i % 2000)::int,
       (1 + i / 2000)::int,
       (ARRAY['new', 'paid', 'shipped', 'void'])[1 + i % 4],
       ((i * 31) % 500)::int,
       ((i * 7919) % 100000) / 100.0,
       timestamp '2021-06-01 00:00:00' + (i % 31536000) * interval '1 second'
FROM generate_series(0::bigint, 1999999::bigint) AS i;
ALTER TABLE public.composite ADD CONSTRAINT composite_pkey PRIMARY KEY (tenant, seq);
VACUUM (FREEZE, ANALYZE) public.composite;
SQL
}

sql_nokey() {
    cat <<'SQL'
CREATE TABLE public.nokey (
    ref         int,
    label       text,
    qty         int,
    happened_at timestamp,
    note        text
);
INSERT INTO public.nokey
SELECT i % 50000,
       'evt-' || md5(i::text),
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 13) % 1000 END,
       timestamp '2022-01-01 00:00:00' + i * interval '15 seconds',
       CASE WHEN i % 3 = 0 THEN NULL ELSE repeat('n', i % 40) END
FROM generate_series(1, 2000000) AS i;
VACUUM (FREEZE, ANALYZE) public.nokey;
SQL
}

sql_customers_orders() {
    # Sequences: customers.id is a bigserial, orders.id an identity column;
    # both are filled through their defaults so the sequences advance.
    # orders.customer_id is a foreign key to customers.
    cat <<'SQL'
CREATE TABLE public.customers (
    id         bigserial   PRIMARY KEY,
    name       text        NOT NULL,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE public.orders (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint        NOT NULL,
    total       numeric(12,2) NOT NULL,
    status      text          NOT NULL,
    placed_at   timestamptz   NOT NULL
);
INSERT INTO public.customers (name, email, created_at)
SELECT 'customer ' || i,
       'c' || i || '@example.com',
       timestamptz '2019-01-01 00:00:00+00' + i * interval '5 minutes'
FROM generate_series(1, 100000) AS i
ORDER BY i;
INSERT INTO public.orders (customer_id, total, status, placed_at)
SELECT 1 + (i * 7919) % 100000,
       ((i * 104729) % 1000000) / 100.0,
       (ARRAY['open', 'paid', 'shipped'])[1 + i % 3],
       timestamptz '2020-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1::bigint, 300000::bigint) AS i
ORDER BY i;
CREATE UNIQUE INDEX customers_email_key ON public.customers (email);
ALTER TABLE public.orders
    ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers (id);
CREATE INDEX orders_customer_id_idx ON public.orders (customer_id);
VACUUM (FREEZE, ANALYZE) public.customers, public.orders;
SQL
}

# --- main -------------------------------------------------------------------

start=$(date +%s.%N)
echo "dataset.sh: (re)creating database ${SRC_DB} on ${PGHOST}:${PGPORT} (sslmode=${PGSSLMODE}), ${GEN_JOBS} parallel session(s)"
psql_admin -c "DROP DATABASE IF EXISTS \"${SRC_DB}\" WITH (FORCE)"
psql_admin -c "CREATE DATABASE \"${SRC_DB}\""

logdir=$(mktemp -d)
trap 'rm -rf "${logdir}"' EXIT

# Largest generators first so the sessions finish at about the same time.
generators=(narrow wide composite nokey blobs customers_orders)
declare -A pid_of=()
failed=0

reap_one() {
    # Wait for any one generator; remember the failure but keep going so we
    # do not leave sessions running behind us.
    local rc=0
    wait -n || rc=$?
    if ((rc != 0)); then
        failed=1
    fi
}

for g in "${generators[@]}"; do
    while (($(jobs -rp | wc -l) >= GEN_JOBS)); do
        reap_one
    done
    (
        t0=$(date +%s.%N)
        "sql_${g}" | psql_src -f - >"${logdir}/${g}.log" 2>&1
        t1=$(date +%s.%N)
        printf '  %-18s generated in %6.1f s\n' "${g}" "$(awk -v a="${t0}" -v b="${t1}" 'BEGIN { print b - a }')"
    ) &
    pid_of[${g}]=$!
done
while (($(jobs -rp | wc -l) > 0)); do
    reap_one
done
# wait -n can miss jobs that ended before it was called; check each one.
for g in "${generators[@]}"; do
    if ! wait "${pid_of[${g}]}" 2>/dev/null; then
        failed=1
    fi
done
if ((failed)); then
    for g in "${generators[@]}"; do
        if [[ -s "${logdir}/${g}.log" ]]; then
            echo "--- ${g} ---" >&2
            cat "${logdir}/${g}.log" >&2
        fi
    done
    echo "dataset.sh: generation FAILED" >&2
    exit 1
fi

# Database-wide ANALYZE is cheap here (each table was analysed by its own
# session already) and also covers the catalogs.
psql_src -c "ANALYZE"

end=$(date +%s.%N)

psql -X -d "${SRC_DB}" -v ON_ERROR_STOP=1 -P footer=off <<'SQL'
SELECT c.relname AS "table",
       c.reltuples::bigint AS "rows (est.)",
       pg_size_pretty(pg_relation_size(c.oid)) AS heap,
       pg_size_pretty(COALESCE(pg_relation_size(c.reltoastrelid), 0)) AS toast,
       pg_size_pretty(pg_indexes_size(c.oid)) AS indexes,
       pg_size_pretty(pg_total_relation_size(c.oid)) AS total
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY pg_total_relation_size(c.oid) DESC;
SELECT pg_size_pretty(sum(pg_relation_size(c.oid) + COALESCE(pg_relation_size(c.reltoastrelid), 0))) AS "table data (heap + TOAST)",
       pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS "total incl. indexes"
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r';
SQL
printf 'dataset.sh: done in %.1f s\n' "$(awk -v a="${start}" -v b="${end}" 'BEGIN { print b - a }')"
