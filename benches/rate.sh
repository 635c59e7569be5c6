#!/usr/bin/env bash
# Accuracy of `copy --max-rate`: copies tables of the benchmark dataset under several caps
# (bytes and rows per second, one and two workers) and prints, per run, the cap, the rate the
# copy's data phase achieved (from its summary line) and their ratio.
#
#   benches/rate.sh [CAP ...]          default caps: none 10MB 25MB 100000rows
#
# Environment:
#   BENCH_SRC_DB      source database (howdah_bench_src, made by benches/dataset.sh)
#   BENCH_RATE_DB     target, dropped and recreated before every run (howdah_bench_rate_dst)
#   BENCH_TABLES      table pattern (public.composite: 2,000,000 rows, ~170 MB)
#   BENCH_JOBS        lanes per worker (2)
#   HOWDAH_BIN        target/release/howdah
#   PGHOST / PGPORT / PGUSER   127.0.0.1 / 5432 / postgres
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC_DB=${BENCH_SRC_DB:-howdah_bench_src}
DST_DB=${BENCH_RATE_DB:-howdah_bench_rate_dst}
TABLES=${BENCH_TABLES:-public.composite}
JOBS=${BENCH_JOBS:-2}
BIN=${HOWDAH_BIN:-$ROOT/target/release/howdah}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
case "$DST_DB" in howdah_bench*) ;; *) echo "refusing to drop $DST_DB (not howdah_bench*)" >&2; exit 2 ;; esac
[[ -x $BIN ]] || (cd "$ROOT" && cargo build --release)
caps=("$@")
((${#caps[@]})) || caps=(none 10MB 25MB 100000rows 2x20MB)
src="postgres://$PGUSER@$PGHOST:$PGPORT/$SRC_DB?sslmode=disable"
dst="postgres://$PGUSER@$PGHOST:$PGPORT/$DST_DB?sslmode=disable"

echo "| cap | workers | data phase s | achieved | ratio to cap |"
echo "|---|---|---|---|---|"
for cap in "${caps[@]}"; do
    psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DST_DB" -c "CREATE DATABASE $DST_DB" >/dev/null
    workers=1
    c=$cap
    if [[ $cap == 2x* ]]; then workers=2; c=${cap#2x}; fi
    args=(copy --source "$src" --target "$dst" --tables "$TABLES" --jobs "$JOBS" --chunk-rows 200000 --quiet --job rate)
    [[ $c == none ]] || args+=(--max-rate "$c")
    start=$(date +%s.%N)
    if ((workers == 2)); then
        "$BIN" "${args[@]}" >/tmp/howdah-rate-1.out 2>&1 &
        sleep 1
        "$BIN" "${args[@]}" >/tmp/howdah-rate-2.out 2>&1 || true
        wait
        out=$(cat /tmp/howdah-rate-1.out)
    else
        out=$("$BIN" "${args[@]}" 2>&1)
    fi
    end=$(date +%s.%N)
    # The job's bytes and rows (all workers) from the state, over the first worker's data phase.
    read -r bytes rows < <(psql -AtX -d "$DST_DB" -F ' ' -c \
        "SELECT sum(bytes_done), sum(rows_done) FROM howdah.chunks WHERE job = 'rate'")
    secs=$(grep -o 'data phase: [0-9.]* s' <<<"$out" | grep -o '[0-9.]*' | head -1)
    [[ -n $secs ]] || secs=$(echo "$end - $start" | bc -l)
    mbs=$(echo "$bytes / $secs / 1000000" | bc -l)
    rps=$(echo "$rows / $secs" | bc -l)
    case $c in
        none) ratio="-"; achieved=$(printf '%.1f MB/s, %.0f rows/s' "$mbs" "$rps") ;;
        *rows) n=${c%rows}; ratio=$(printf '%.3f' "$(echo "$rps / $n" | bc -l)"); achieved=$(printf '%.0f rows/s' "$rps") ;;
        *MB) n=${c%MB}; ratio=$(printf '%.3f' "$(echo "$mbs / $n" | bc -l)"); achieved=$(printf '%.2f MB/s' "$mbs") ;;
    esac
    printf '| %s | %s | %.1f | %s | %s |\n' "$c" "$workers" "$secs" "$achieved" "$ratio"
done
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DST_DB" >/dev/null
