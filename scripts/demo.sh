#!/usr/bin/env bash
# Demo on the local PostgreSQL: builds the demo shop database (sluice_demo_src, from
# configs/demo/source.sql), copies it with sluice into sluice_demo_dst (both dropped and
# re-created), checks row counts table by table, and shows the job's status.
# Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
base=${DEMO_PG:-postgres://postgres@127.0.0.1:5432}
src=sluice_demo_src
dst=sluice_demo_dst
psql_admin() { psql -X -q -d "$base/postgres?sslmode=disable" "$@"; }

cargo build --release --quiet
psql_admin -c "DROP DATABASE IF EXISTS $src WITH (FORCE)" -c "CREATE DATABASE $src" \
  -c "DROP DATABASE IF EXISTS $dst WITH (FORCE)" -c "CREATE DATABASE $dst"
# The same demo shop the docker-compose demo loads.
psql -X -q -v ON_ERROR_STOP=1 -d "$base/$src?sslmode=disable" -f configs/demo/source.sql

./target/release/sluice copy --source "$base/$src?sslmode=disable" --target "$base/$dst?sslmode=disable" \
  --jobs 2 --chunk-rows 50000

status=0
for t in customers orders order_events; do
  a=$(psql -X -At -d "$base/$src?sslmode=disable" -c "SELECT count(*) FROM $t")
  b=$(psql -X -At -d "$base/$dst?sslmode=disable" -c "SELECT count(*) FROM $t")
  if [ "$a" = "$b" ]; then echo "ok   $t: $a rows"; else echo "DIFF $t: source $a, target $b"; status=1; fi
done
./target/release/sluice status --target "$base/$dst?sslmode=disable"
echo "Look at the copy: psql '$base/$dst' -c '\\d+ orders'"
exit $status
