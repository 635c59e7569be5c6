#!/usr/bin/env bash
# Follow benchmark: `howdah copy --follow` against `pgcopydb clone --follow` (Debian's
# pgcopydb with wal2json), on the same source and the same pgbench write load.
#
#   benches/follow.sh [--only howdah,pgcopydb]
#
# The script starts its own PostgreSQL 15 source cluster (wal_level = logical, a free port,
# a temporary directory, stopped at the end) and loads `pgbench -i -s SCALE` into it. Targets
# are fresh databases on the local server (PGHOST/PGPORT, default 127.0.0.1:5432). Per tool:
#   1. live:    the tool starts its copy while pgbench writes for SECS seconds (-c CLIENTS,
#               tpcb-like: 3 updates and 1 insert per transaction); when pgbench stops, the
#               source's LSN X is noted and the tool is told to finish at X (howdah cutover;
#               pgcopydb sentinel endpos); measured: the whole run, and the time from "writes
#               stopped" to "cutover done" (target holds everything up to X).
#   2. backlog (howdah only): the follower is stopped, pgbench writes SECS seconds, then the
#               follower restarts and applies the backlog: changes/s and MB/s of WAL applied;
#               again with column mappings on every table (changes read back through the
#               source and transformed).
#   3. steady (howdah only): a caught-up follower while pgbench is held at BENCH_RATE
#               transactions/s (default 1000): lag p50/p95/max, sampled on the target.
# Each tool's target is compared with the source at the end (row counts and sums).
#
# Environment: BENCH_SCALE (10), BENCH_SECS (30), BENCH_CLIENTS (4), BENCH_RATE (1000), HOWDAH_BIN
# (target/release/howdah). Results: a Markdown table on stdout and in bench-out/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOWDAH=${HOWDAH_BIN:-$ROOT/target/release/howdah}
SCALE=${BENCH_SCALE:-10}
SECS=${BENCH_SECS:-30}
CLIENTS=${BENCH_CLIENTS:-4}
PG_BIN=/usr/lib/postgresql/15/bin
only="howdah,pgcopydb"
if [ "${1:-}" = "--only" ]; then only=$2; fi
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGSSLMODE=disable
OUT=$ROOT/bench-out/follow-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

DIR=$(mktemp -d /tmp/howdah-bench-follow.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
SPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# This machine's PostgreSQL build only loads listed output plugins: list pgcopydb's too.
plugins=""
if as_pg "$PG_BIN/postgres" --describe-config 2>/dev/null | grep -q '^output_plugin_libraries'; then
  plugins="-c output_plugin_libraries=pgoutput,test_decoding,wal2json"
fi
as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start -o \
  "-p $SPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR -c wal_level=logical \
   -c max_replication_slots=10 -c max_wal_senders=10 -c shared_buffers=256MB -c max_wal_size=4GB \
   $plugins" >/dev/null
stop_source() { as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap stop_source EXIT
SRC="postgres://postgres@127.0.0.1:$SPORT/bench?sslmode=disable"
psql -X -q -d "postgres://postgres@127.0.0.1:$SPORT/postgres?sslmode=disable" -c "CREATE DATABASE bench"
pgbench -q -i -s "$SCALE" "$SRC" >"$OUT/pgbench-init.log" 2>&1
# pgbench_history has no key: follow needs its full rows to find one.
psql -X -q -d "$SRC" -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL"

src_lsn() { psql -X -At -d "$SRC" -c "SELECT pg_current_wal_lsn()"; }
fresh_target() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  echo "postgres://postgres@$PGHOST:$PGPORT/$1?sslmode=disable"
}
check_equal() { # source and target agree on counts and balances
  local q="SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT sum(abalance) FROM pgbench_accounts), \
           (SELECT sum(bbalance) FROM pgbench_branches), (SELECT count(*) FROM pgbench_history)"
  local a b
  a=$(psql -X -At -d "$SRC" -c "$q"); b=$(psql -X -At -d "$1" -c "$q")
  if [ "$a" = "$b" ]; then echo "equal"; else echo "DIFFERENT (source $a, target $b)"; fi
}
wait_follow() { # until the job's follow phase starts; fails when the copy process ($1) died
  until [ "$(psql -X -At -d "$TGT" -c "SELECT phase FROM howdah.follow" 2>/dev/null)" = follow ]; do
    kill -0 "$1" 2>/dev/null || { echo "the copy stopped before following; see $OUT" >&2; exit 1; }
    sleep 0.2
  done
}
pgbench_run() { # -> tps
  pgbench -n -c "$CLIENTS" -j 2 -T "$SECS" "$SRC" >"$OUT/pgbench-$1.log" 2>&1
  grep -oE 'tps = [0-9.]+' "$OUT/pgbench-$1.log" | head -1 | awk '{print $3}'
}

backlog_run() { # JOB DB LABEL [copy args...]: a following job stopped, SECS of writes, catch-up
  local job=$1 db=$2 label=$3; shift 3
  TGT=$(fresh_target "$db")
  "$HOWDAH" copy --source "$SRC" --target "$TGT" --follow --job "$job" -j 2 --quiet "$@" \
    >"$OUT/howdah-$job-copy.log" 2>&1 &
  local pid=$!
  wait_follow "$pid"
  kill -INT "$pid"; wait "$pid" || true
  local before start_lsn tps lsn wal t1 t2 after rss rate
  before=$(psql -X -At -d "$TGT" -c "SELECT changes FROM howdah.follow")
  start_lsn=$(src_lsn)
  tps=$(pgbench_run "howdah-$job")
  lsn=$(src_lsn)
  wal=$(psql -X -At -d "$SRC" -c "SELECT pg_wal_lsn_diff('$lsn', '$start_lsn')")
  t1=$(now)
  /usr/bin/time -v -o "$OUT/howdah-$job-time.txt" "$HOWDAH" copy --source "$SRC" --target "$TGT" --follow \
    --job "$job" --quiet "$@" >"$OUT/howdah-$job-follow.log" 2>&1 &
  pid=$!
  # `cutover` applies the changes itself when no follower runs: wait until the restarted
  # follower holds the job's follower lock (an advisory lock in the target), so it is the one
  # measured.
  until [ "$(psql -X -At -d "$TGT" -c "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()" 2>/dev/null)" -gt 0 ]; do
    kill -0 "$pid" 2>/dev/null || { echo "the follower of $job ended before it took its lock" >&2; exit 1; }
    sleep 0.1
  done
  "$HOWDAH" cutover --source "$SRC" --target "$TGT" --job "$job" --timeout 3600 >"$OUT/howdah-$job-cutover.log" 2>&1
  t2=$(now)
  wait "$pid"
  after=$(psql -X -At -d "$TGT" -c "SELECT changes FROM howdah.follow")
  rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$OUT/howdah-$job-time.txt")
  rate=$(awk -v c="$((after - before))" -v w="$wal" -v a="$t1" -v b="$t2" \
    'BEGIN { printf "%.0f changes/s, %.1f MB/s of WAL", c/(b-a), w/1e6/(b-a) }')
  rows+=("| $label | backlog of ${SECS} s at $tps tps | | | $(secs "$t1" "$t2") (catch-up) | $rate, peak RSS $rss MB | $(check_equal "$TGT") |")
}

rows=()
if [[ ",$only," == *",howdah,"* ]]; then
  TGT=$(fresh_target howdah_bench_follow_h)
  t0=$(now)
  "$HOWDAH" copy --source "$SRC" --target "$TGT" --follow --job bench -j 2 --quiet \
    >"$OUT/howdah-copy.log" 2>&1 &
  pid=$!
  # When the bulk copy ends (the follow phase starts), under the write load.
  ( until [ "$(psql -X -At -d "$TGT" -c "SELECT phase FROM howdah.follow" 2>/dev/null)" = follow ]; do sleep 0.2; done
    now >"$OUT/live-copied.txt" ) &
  tps=$(pgbench_run howdah-live)
  t_stop=$(now); lsn=$(src_lsn)
  "$HOWDAH" cutover --source "$SRC" --target "$TGT" --job bench --timeout 3600 >"$OUT/howdah-cutover.log" 2>&1
  t_cut=$(now)
  wait "$pid"
  live_copy=$(secs "$t0" "$(cat "$OUT/live-copied.txt" 2>/dev/null || echo "$t0")")
  rows+=("| howdah copy --follow | live | $tps | $(secs "$t0" "$t_cut") | $(secs "$t_stop" "$t_cut") | bulk copy under load: $live_copy s | $(check_equal "$TGT") |")

  # Backlog: a following job stopped, SECS of writes, then the follower catches up.
  backlog_run backlog howdah_bench_follow_b "howdah copy --follow"

  # Mapped backlog: the same, with column mappings on every pgbench table, so each change is
  # read back through the source's select list and the transform (follow/mapped.rs).
  cat >"$OUT/mapped.toml" <<'TOML'
[[table]]
name = "public.pgbench_accounts"
[[table.column]]
name = "abalance"
type = "bigint"
[[table.column]]
name = "filler"
rename = "pad"
[[table.add_column]]
name = "moved"
type = "text"
value = "bench"
[[table]]
name = "public.pgbench_history"
[[table.column]]
name = "delta"
type = "bigint"
[[table]]
name = "public.pgbench_tellers"
[[table.column]]
name = "tbalance"
type = "bigint"
[[table]]
name = "public.pgbench_branches"
[[table.column]]
name = "bbalance"
type = "bigint"
TOML
  backlog_run mapped howdah_bench_follow_m "howdah copy --follow, every table mapped" \
    --config "$OUT/mapped.toml"

  # Steady: a caught-up follower under pgbench held at RATE transactions/s; the lag is sampled
  # every 0.25 s on the target as now() minus the newest applied pgbench_history.mtime (the
  # source transaction's time: same clock, same machine).
  RATE=${BENCH_RATE:-1000}
  TGT=$(fresh_target howdah_bench_follow_s)
  t0=$(now)
  "$HOWDAH" copy --source "$SRC" --target "$TGT" --follow --job steady -j 2 --quiet \
    >"$OUT/howdah-steady-copy.log" 2>&1 &
  pid=$!
  wait_follow "$pid"
  idle_copy=$(secs "$t0" "$(now)")
  sleep 2
  ( sleep 3
    while [ ! -e "$OUT/steady.stop" ]; do
      psql -X -At -d "$TGT" -c "SELECT extract(epoch FROM now() - max(mtime)) FROM pgbench_history" >>"$OUT/steady-lag.txt" 2>/dev/null || true
      sleep 0.25
    done ) &
  sampler=$!
  pgbench -n -c "$CLIENTS" -j 2 -R "$RATE" -T "$SECS" "$SRC" >"$OUT/pgbench-steady.log" 2>&1
  touch "$OUT/steady.stop"; wait "$sampler" || true
  tps=$(grep -oE 'tps = [0-9.]+' "$OUT/pgbench-steady.log" | head -1 | awk '{print $3}')
  "$HOWDAH" cutover --source "$SRC" --target "$TGT" --job steady --timeout 3600 >"$OUT/howdah-steady-cutover.log" 2>&1
  wait "$pid"
  lag=$(sort -n "$OUT/steady-lag.txt" | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "no samples"; exit }
    printf "lag p50 %.2f s, p95 %.2f s, max %.2f s (%d samples)", v[int(NR*0.5)+1], v[int(NR*0.95)+1], v[NR], NR }')
  rows+=("| howdah copy --follow | steady, pgbench -R $RATE for ${SECS} s | $tps | | | $lag; bulk copy of an idle source: $idle_copy s | $(check_equal "$TGT") |")
fi

if [[ ",$only," == *",pgcopydb,"* ]]; then
  TGT=$(fresh_target howdah_bench_follow_p)
  rm -rf "$OUT/pgcopydb"
  t0=$(now)
  pgcopydb clone --follow --source "$SRC" --target "$TGT" --dir "$OUT/pgcopydb" \
    --table-jobs 2 --index-jobs 2 >"$OUT/pgcopydb.log" 2>&1 &
  pid=$!
  tps=$(pgbench_run pgcopydb-live)
  t_stop=$(now)
  # The sentinel exists once pgcopydb has created its slot (at its start).
  pgcopydb stream sentinel set endpos --current --source "$SRC" >>"$OUT/pgcopydb.log" 2>&1 || true
  wait "$pid" || true
  t_cut=$(now)
  rows+=("| pgcopydb clone --follow (wal2json) | live | $tps | $(secs "$t0" "$t_cut") | $(secs "$t_stop" "$t_cut") | | $(check_equal "$TGT") |")
fi

{
  echo "## Follow benchmark, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD)"
  echo
  echo "pgbench -s $SCALE, -c $CLIENTS -T $SECS (tpcb-like), source PostgreSQL 15 (own cluster), target $(psql -X -At -d postgres -c 'SHOW server_version'), $(nproc) cores"
  echo
  echo "| tool | mode | pgbench tps | whole run s | writes stopped -> done s | apply rate | target |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT/results.md"
