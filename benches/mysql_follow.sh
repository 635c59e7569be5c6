#!/usr/bin/env bash
# MySQL/MariaDB follow benchmark: `howdah copy --follow` from a MariaDB source's binary log.
#
#   benches/mysql_follow.sh
#
# The script starts its own MariaDB server (mariadb-install-db into a temporary directory,
# --log-bin --binlog-format=ROW --binlog-row-image=FULL, a free port, killed at the end) and
# loads one table of BENCH_ROWS rows (id bigint key, an int, a varchar, a datetime(6), a
# decimal). Targets are fresh databases on the local PostgreSQL (PGHOST/PGPORT, default
# 127.0.0.1:5432). Runs:
#   1. bulk:    `howdah copy -j 2` without --follow: the bulk rows/s on this table.
#   2. live:    `copy --follow -j 2` while a write load runs for BENCH_SECS seconds (each
#               transaction: 50 updates, 40 inserts, 10 deletes); when the load stops,
#               `howdah cutover`: the time from "writes stopped" to "cut over".
#   3. backlog: the follower of a second job is stopped (Ctrl-C), the load runs BENCH_SECS
#               seconds with nothing following, then the follower restarts and `cutover`
#               waits for it: row changes/s applied (howdah.follow.changes over the time from
#               restart to cutover, process start included), the highest rate sustained over
#               5 s (the applied count read every half second), the follower's CPU time per
#               change, the whole machine's busy CPU time per change (follower, PostgreSQL
#               and MariaDB: /proc/stat) and the follower's peak RSS.
# Each target is compared with the source at the end (count and sums).
#
# Environment: BENCH_ROWS (2000000), BENCH_SECS (30), HOWDAH_BIN (target/release/howdah),
# BENCH_RUNS (the runs to make, default "bulk live backlog"), BENCH_PERF (set: `perf record`
# the backlog's follower into the output directory, to see where its time goes), BENCH_LANES
# (the followers' --apply-lanes, default 2), BENCH_CALLGRIND (set: the backlog's follower runs
# under `valgrind --tool=callgrind`, and its instructions per change are reported in place of
# the machine's CPU: a count that does not move with the machine's load, to compare builds).
# Results: a Markdown table on stdout and in bench-out/mysql-follow-<timestamp>/results.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOWDAH=${HOWDAH_BIN:-$ROOT/target/release/howdah}
ROWS=${BENCH_ROWS:-2000000}
SECS=${BENCH_SECS:-30}
LANES=${BENCH_LANES:-2}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGSSLMODE=disable
OUT=$ROOT/bench-out/mysql-follow-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

DIR=$(mktemp -d /tmp/howdah-bench-myfollow.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=()
if [ "$(id -u)" = 0 ]; then chown -R mysql:mysql "$DIR"; user=(--user=mysql); fi
mariadb-install-db --datadir="$DIR/data" --auth-root-authentication-method=normal --skip-test-db \
  "${user[@]}" >"$OUT/install.log" 2>&1
mariadbd --no-defaults --datadir="$DIR/data" --socket="$DIR/sock" --pid-file="$DIR/pid" \
  --log-error="$DIR/err.log" --log-bin="$DIR/data/binlog" --port="$PORT" --server-id=77 \
  --bind-address=127.0.0.1 --binlog-format=ROW --binlog-row-image=FULL \
  --innodb-buffer-pool-size=512M --innodb-log-file-size=256M --innodb-flush-log-at-trx-commit=2 \
  --sync-binlog=0 --skip-name-resolve --character-set-server=utf8mb4 "${user[@]}" &
MPID=$!
stop_source() { kill -9 "$MPID" 2>/dev/null || true; wait "$MPID" 2>/dev/null || true; rm -rf "$DIR"; }
trap stop_source EXIT
my() { mariadb -uroot -h 127.0.0.1 -P "$PORT" --batch --skip-column-names "$@"; }
until my -e "SELECT 1" >/dev/null 2>&1; do sleep 0.3; done
SRC="mysql://root@127.0.0.1:$PORT/bench"
my -e "CREATE DATABASE bench"
my bench -e "CREATE TABLE t (id bigint PRIMARY KEY, k int NOT NULL, v varchar(100),
  d datetime(6), n decimal(12,2)) ENGINE=InnoDB;
  INSERT INTO t SELECT seq, seq % 1000, concat('value ', seq, ' ', md5(seq)),
    '2024-01-01' + INTERVAL seq SECOND, seq / 7 FROM seq_1_to_$ROWS"

fresh_target() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
  echo "postgres://postgres@$PGHOST:$PGPORT/$1?sslmode=disable"
}
check_equal() {
  local a b
  a=$(my bench -e "SELECT count(*), sum(k), sum(n), sum(length(v)) FROM t" | tr '\t' '|')
  b=$(psql -X -At -d "$1" -c "SELECT count(*), sum(k), sum(n), sum(length(v)) FROM t")
  if [ "$a" = "$b" ]; then echo "equal"; else echo "DIFFERENT (source $a, target $b)"; fi
}
# The write load: transactions of 100 row changes until SECS have passed; prints the changes.
load() {
  local end n=0 changes=0 base
  end=$(awk -v s="$SECS" -v t="$(date +%s.%N)" 'BEGIN { printf "%.0f", t + s }')
  base=$(( ${1:-0} * 100000000000 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    sql=""
    for _ in $(seq 1 20); do
      n=$((n + 1))
      lo=$(( (n * 7919) % (ROWS - 100) + 1 ))
      sql+="START TRANSACTION;
        UPDATE t SET k = k + 1, v = concat('upd ', $n) WHERE id BETWEEN $lo AND $lo + 49;
        INSERT INTO t SELECT $base + $n * 100 + seq, seq, 'new', NOW(6), seq FROM seq_1_to_40;
        DELETE FROM t WHERE id BETWEEN $lo + 50 AND $lo + 59;
        COMMIT;"
      changes=$((changes + 100))
    done
    my bench -e "$sql"
  done
  echo "$changes"
}

RUNS=${BENCH_RUNS:-bulk live backlog}
want() { [[ " $RUNS " == *" $1 "* ]]; }

rows=()
# 1. bulk
if want bulk; then
TGT=$(fresh_target howdah_bench_myfollow_bulk)
t0=$(now)
"$HOWDAH" copy --source "$SRC" --target "$TGT" -j 2 --quiet >"$OUT/bulk.log" 2>&1
t1=$(now)
bulk_rate=$(awk -v r="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", r / (b - a) }')
rows+=("| bulk copy -j 2 | $(secs "$t0" "$t1") s | $bulk_rate rows/s | | | $(check_equal "$TGT") |")
fi

# 2. live
if want live; then
TGT=$(fresh_target howdah_bench_myfollow_live)
t0=$(now)
"$HOWDAH" copy --source "$SRC" --target "$TGT" --follow --apply-lanes "$LANES" --job live -j 2 --quiet \
  >"$OUT/live-copy.log" 2>&1 &
pid=$!
changes=$(load 1)
t_stop=$(now)
"$HOWDAH" cutover --source "$SRC" --target "$TGT" --job live --timeout 3600 >"$OUT/live-cutover.log" 2>&1
t_cut=$(now)
wait "$pid"
rows+=("| copy --follow, load during copy and follow | $(secs "$t0" "$t_cut") s | $changes changes written in $SECS s | $(secs "$t_stop" "$t_cut") s (writes stopped -> cut over) | | $(check_equal "$TGT") |")
fi

# 3. backlog
if want backlog; then
TGT=$(fresh_target howdah_bench_myfollow_backlog)
"$HOWDAH" copy --source "$SRC" --target "$TGT" --follow --apply-lanes "$LANES" --job backlog -j 2 --quiet \
  >"$OUT/backlog-copy.log" 2>&1 &
pid=$!
until [ "$(psql -X -At -d "$TGT" -c "SELECT phase FROM howdah.follow" 2>/dev/null)" = follow ]; do sleep 0.5; done
kill -INT "$pid"; wait "$pid" || true
before=$(psql -X -At -d "$TGT" -c "SELECT changes FROM howdah.follow")
written=$(load 2)
# Busy CPU time of the whole machine (/proc/stat, in clock ticks) over the catch-up: what the
# follower, PostgreSQL and MariaDB spend together per change.
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
busy1=$(busy)
t1=$(now)
# BENCH_CALLGRIND: the follower runs under valgrind's callgrind, which counts the
# instructions it executes (the same count for the same binary and input, whatever else the
# machine does); its rate and CPU time then mean nothing.
wrap=()
if [ -n "${BENCH_CALLGRIND:-}" ]; then
  wrap=(valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out")
fi
/usr/bin/time -v -o "$OUT/backlog-time.txt" "${wrap[@]}" "$HOWDAH" copy --source "$SRC" --target "$TGT" \
  --follow --apply-lanes "$LANES" --job backlog --quiet >"$OUT/backlog-follow.log" 2>&1 &
pid=$!
if [ -n "${BENCH_PERF:-}" ]; then
  until follower=$(pgrep -P "$pid" howdah); do sleep 0.05; done
  if [ "$BENCH_PERF" = dwarf ]; then graph=(--call-graph dwarf -F 150); else graph=(-g -F 499); fi
  perf record "${graph[@]}" -p "$follower" -o "$OUT/perf.data" >"$OUT/perf.log" 2>&1 &
fi
# `cutover` applies the changes itself when no follower runs: wait until the restarted
# follower holds the job's follower lock (an advisory lock in the target), so it is the one
# measured.
until [ "$(psql -X -At -d "$TGT" -c "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()" 2>/dev/null)" -gt 0 ]; do
  kill -0 "$pid" 2>/dev/null || { echo "the follower ended before it took its lock" >&2; exit 1; }
  sleep 0.1
done
# The applied count every half second while it catches up: the highest rate over 5 s.
( while kill -0 "$pid" 2>/dev/null; do
    echo "$(now) $(psql -X -At -d "$TGT" -c "SELECT changes FROM howdah.follow" 2>/dev/null)"
    sleep 0.5
  done >"$OUT/backlog-applied.txt" ) &
poller=$!
"$HOWDAH" cutover --source "$SRC" --target "$TGT" --job backlog --timeout 3600 >"$OUT/backlog-cutover.log" 2>&1
t2=$(now)
busy2=$(busy)
wait "$pid"
wait "$poller" || true
sustained=$(awk 'NF == 2 { t[n] = $1; c[n] = $2; n++ }
  END { best = 0
        for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (t[j] - t[i] >= 5) {
          r = (c[j] - c[i]) / (t[j] - t[i]); if (r > best) best = r; break }
        printf "%.0f", best }' "$OUT/backlog-applied.txt")
after=$(psql -X -At -d "$TGT" -c "SELECT changes FROM howdah.follow")
rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$OUT/backlog-time.txt")
rate=$(awk -v c="$((after - before))" -v a="$t1" -v b="$t2" 'BEGIN { printf "%.0f", c / (b - a) }')
# The follower's CPU (user + system) per applied change: steadier from run to run than the
# rate, which moves with whatever else the machine runs.
cpu=$(awk -F': ' -v c="$((after - before))" '/User time|System time/ { s += $2 }
  END { printf "%.2f", s * 1e6 / c }' "$OUT/backlog-time.txt")
machine=$(awk -v a="$busy1" -v b="$busy2" -v hz="$(getconf CLK_TCK)" -v c="$((after - before))" \
  'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / c }')
per_change="follower CPU $cpu µs, machine CPU $machine µs"
if [ -n "${BENCH_CALLGRIND:-}" ]; then
  per_change="follower $(awk -v c="$((after - before))" '/^(summary|totals):/ { printf "%.0f", $2 / c; exit }' \
    "$OUT/callgrind.out") instructions (callgrind)"
fi
rows+=("| copy --follow, backlog of $written changes | | $rate row changes/s applied (highest over 5 s: $sustained; $per_change per change) | $(secs "$t1" "$t2") s (catch-up) | $rss MB | $(check_equal "$TGT") |")
fi

{
  echo "## MySQL follow benchmark, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD)"
  echo
  echo "MariaDB $(my -e 'SELECT VERSION()') (own server, binlog ROW), $ROWS rows, load $SECS s, $LANES apply lane(s), target PostgreSQL $(psql -X -At -d postgres -c 'SHOW server_version'), $(nproc) cores"
  echo
  echo "| run | whole run | rate | time | peak RSS | target |"
  echo "| --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT/results.md"
