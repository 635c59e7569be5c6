#!/usr/bin/env bash
# What each statement shape costs the target per row, for the follow's apply: `pgbench`, one
# client, 512-row statements on a copy of the MySQL follow benchmark's table (2M rows, bigint
# key, an int, a varchar, a timestamp, a numeric), BENCH_SECS (15) seconds each:
#   upsert of rows that exist (what an update is applied as), UPDATE of rows that exist,
#   upsert of new rows (what an insert is applied as), plain INSERT of new rows, and
#   INSERT .. ON CONFLICT DO NOTHING of new rows.
# Rows/s per shape on stdout; a fresh database howdah_bench_shapes on PGHOST/PGPORT
# (default 127.0.0.1:5432), dropped at the end.
#
#   benches/apply_shapes.sh
set -euo pipefail
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGSSLMODE=disable
SECS=${BENCH_SECS:-15}
PGBENCH=${PGBENCH:-$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n1)}
DB=howdah_bench_shapes
DIR=$(mktemp -d /tmp/howdah-bench-shapes.XXXXXX)
trap 'rm -rf "$DIR"; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true' EXIT
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -d "$DB" <<'SQL'
CREATE SEQUENCE s START 10000;
CREATE TABLE t (id bigint PRIMARY KEY, k int NOT NULL, v varchar(100), d timestamp(6), n numeric(12,2));
INSERT INTO t SELECT g, g % 1000, concat('value ', g, ' ', md5(g::text)),
  '2024-01-01'::timestamp + g * interval '1 second', g / 7.0 FROM generate_series(1, 2000000) g;
VACUUM ANALYZE t;
SQL
cols="k = EXCLUDED.k, v = EXCLUDED.v, d = EXCLUDED.d, n = EXCLUDED.n"
new="SELECT x.b + g, 1, 'new', now(), 1 FROM (SELECT nextval('s') * 1000 AS b) x, generate_series(1, 512) g"
printf '%s\n' '\set a random(1, 1999000)' \
  "INSERT INTO t SELECT g, 1, 'upd', now(), 1 FROM generate_series(:a, :a + 511) g ON CONFLICT (id) DO UPDATE SET $cols;" >"$DIR/upsert_existing.sql"
printf '%s\n' '\set a random(1, 1999000)' \
  "UPDATE t SET k = 1, v = 'upd', d = now(), n = 1 FROM generate_series(:a, :a + 511) g WHERE t.id = g;" >"$DIR/update_existing.sql"
echo "INSERT INTO t $new ON CONFLICT (id) DO UPDATE SET $cols;" >"$DIR/upsert_new.sql"
echo "INSERT INTO t $new;" >"$DIR/insert_new.sql"
echo "INSERT INTO t $new ON CONFLICT (id) DO NOTHING;" >"$DIR/nothing_new.sql"
echo "| statement (512 rows) | rows/s |"
echo "| --- | --- |"
for s in upsert_existing update_existing upsert_new insert_new nothing_new; do
  tps=$("$PGBENCH" -n -M prepared -T "$SECS" -f "$DIR/$s.sql" "$DB" 2>/dev/null | awk '/^tps/ { print $3 }')
  echo "| $s | $(awk -v t="$tps" 'BEGIN { printf "%.0f", t * 512 }') |"
done
