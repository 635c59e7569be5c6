#!/usr/bin/env bash
# Large objects: howdah copy against pg_dump -Fd -j N | pg_restore -j N, on the same source,
# one after the other, each into a freshly created target database.
#
#   benches/large_objects.sh [many|huge|all]      (default: all)
#
# Datasets (built once per run in database howdah_bench_lo_src):
#   many   10,000 objects of 1 KB to 500 KB (about 2.5 GB), sizes spread evenly
#   huge   3 objects of 200 MB
# Bytes come from a 1 MiB pool of random bytes, each object a different slice and rotation,
# so gzip (pg_dump's default) finds nothing to compress inside an object.
#
# Measured: wall time of the whole copy (howdah: one command; pg_dump: dump + restore),
# peak RSS of the largest process (GNU time), and for howdah the objects and bytes copied.
# Environment: BENCH_JOBS (2), HOWDAH_BIN (target/release/howdah), PGHOST/PGPORT/PGUSER.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGSSLMODE=disable
JOBS="${BENCH_JOBS:-2}"
HOWDAH_BIN="${HOWDAH_BIN:-${ROOT}/target/release/howdah}"
SRC=howdah_bench_lo_src
DST=howdah_bench_lo_dst
which="${1:-all}"
url() { printf 'postgres://%s@%s:%s/%s?sslmode=disable' "$PGUSER" "$PGHOST" "$PGPORT" "$1"; }
log() { printf '[lo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/howdah-lo.XXXXXX")
trap 'rm -rf "${WORK}"' EXIT

fresh() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
}

build() {
    log "building dataset '$1'"
    fresh "$SRC"
    case "$1" in
        many) psql -X -q -v ON_ERROR_STOP=1 -d "$SRC" -c "
            CREATE TEMP TABLE pool AS
              SELECT decode(string_agg(md5(random()::text || g), ''), 'hex') AS b FROM generate_series(1, 65536) g;
            SELECT count(lo_from_bytea(0, substring(p.b || p.b FROM 1 + (g * 7919) % 1048576 FOR 1024 + (g * 104729) % (500 * 1024 - 1024))))
              FROM pool p, generate_series(1, 10000) g;" >/dev/null ;;
        huge) psql -X -q -v ON_ERROR_STOP=1 -d "$SRC" -c "
            CREATE TEMP TABLE pool AS
              SELECT decode(string_agg(md5(random()::text || g), ''), 'hex') AS b FROM generate_series(1, 65536) g;
            DO \$\$ DECLARE o oid; fd int; BEGIN
              FOR i IN 1..3 LOOP
                o := lo_create(0); fd := lo_open(o, 131072);
                FOR k IN 1..200 LOOP
                  PERFORM lowrite(fd, (SELECT substring(b || b FROM 1 + ((i * 31 + k) * 7919) % 1048576 FOR 1048576) FROM pool));
                END LOOP;
                PERFORM lo_close(fd);
              END LOOP; END \$\$;" >/dev/null ;;
    esac
    # The table that points at them (a copy needs a table to start from).
    psql -X -q -d "$SRC" -c "CREATE TABLE docs AS SELECT row_number() OVER (ORDER BY oid)::int AS id, oid AS body FROM pg_largeobject_metadata" \
        -c "ALTER TABLE docs ADD PRIMARY KEY (id)" -c "VACUUM ANALYZE pg_largeobject" >/dev/null
    psql -X -A -t -d "$SRC" -c "SELECT count(*) || ' objects, ' || pg_size_pretty(pg_relation_size('pg_largeobject')) FROM pg_largeobject_metadata"
}

rss() { tail -n 1 "$1"; }

run_one() {
    local set=$1 desc
    desc=$(build "$set")
    log "dataset $set: $desc"
    fresh "$DST"
    local t0 t1
    t0=$(now)
    /usr/bin/time -f '%M' -o "$WORK/howdah.rss" "$HOWDAH_BIN" copy --source "$(url $SRC)" --target "$(url $DST)" \
        --jobs "$JOBS" --quiet >"$WORK/howdah.out" 2>"$WORK/howdah.err"
    t1=$(now)
    local howdah_s; howdah_s=$(elapsed "$t0" "$t1")
    local line; line=$(grep '^large objects:' "$WORK/howdah.out" || true)
    log "howdah: ${howdah_s} s, $line"
    local check
    check=$(psql -X -A -t -d "$DST" -c "SELECT count(*) FROM pg_largeobject_metadata")
    for z in default 0; do
        fresh "$DST"
        rm -rf "$WORK/dump"
        local zflag=(); [[ $z == 0 ]] && zflag=(-Z0)
        t0=$(now)
        /usr/bin/time -f '%M' -o "$WORK/dump.rss" pg_dump -Fd -j "$JOBS" "${zflag[@]}" -f "$WORK/dump" -d "$SRC"
        local tm; tm=$(now)
        /usr/bin/time -f '%M' -o "$WORK/restore.rss" pg_restore -j "$JOBS" -d "$DST" "$WORK/dump"
        t1=$(now)
        log "pg_dump -Fd -j$JOBS ${zflag[*]}: dump $(elapsed "$t0" "$tm") s + restore $(elapsed "$tm" "$t1") s"
        printf '| %s | pg_dump -Fd -j%s %s + pg_restore -j%s | %s (%s + %s) | %s / %s |\n' "$desc" "$JOBS" "${zflag[*]}" "$JOBS" \
            "$(elapsed "$t0" "$t1")" "$(elapsed "$t0" "$tm")" "$(elapsed "$tm" "$t1")" \
            "$(( $(rss "$WORK/dump.rss") / 1024 )) MB" "$(( $(rss "$WORK/restore.rss") / 1024 )) MB"
    done
    printf '| %s | howdah copy --jobs %s | %s | %s MB | %s objects on the target\n' "$desc" "$JOBS" "$howdah_s" \
        "$(( $(rss "$WORK/howdah.rss") / 1024 ))" "$check"
}

echo "commit $(git -C "$ROOT" rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(psql -X -A -t -d postgres -c 'SHOW server_version')"
echo '| dataset | tool | seconds | peak RSS |'
echo '| --- | --- | --- | --- |'
case "$which" in
    many | huge) run_one "$which" ;;
    all) run_one many; run_one huge ;;
esac
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DST" -c "DROP DATABASE IF EXISTS $SRC"
