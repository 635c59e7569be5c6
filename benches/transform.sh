#!/usr/bin/env bash
# Cost of column mappings: the same table copied with no mapping and with three casts and two
# defaults, interleaved, in the same session.
#
#   benches/transform.sh [--rows N] [--rounds N] [--skip-dataset]
#
# Source database howdah_bench_tf_src (table public.t, created here, deterministic), target
# howdah_bench_tf_dst (dropped and recreated before every run). The figure compared is the
# data phase's rows/s from howdah's summary (schema creation and index builds are the same
# work for both runs and are left out), plus the wall time and howdah's own CPU seconds.
#
# Environment: PGHOST/PGPORT/PGUSER (127.0.0.1/5432/postgres), HOWDAH_BIN
# (target/release/howdah), BENCH_JOBS (2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=2000000
ROUNDS=3
SKIP_DATASET=0
while (($# > 0)); do
    case "$1" in
        --rows) ROWS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --skip-dataset) SKIP_DATASET=1 ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "transform.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGSSLMODE=disable
JOBS="${BENCH_JOBS:-2}"
HOWDAH_BIN="${HOWDAH_BIN:-${ROOT}/target/release/howdah}"
SRC=howdah_bench_tf_src
DST=howdah_bench_tf_dst
OUT="${ROOT}/bench-out/transform-$(date +%Y%m%d-%H%M%S)"
mkdir -p "${OUT}"

if [[ ! -x "${HOWDAH_BIN}" ]]; then
    (cd "${ROOT}" && cargo build --release)
fi

psql_q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

if ((SKIP_DATASET == 0)); then
    psql_q -d postgres -c "DROP DATABASE IF EXISTS ${SRC} WITH (FORCE)" -c "CREATE DATABASE ${SRC}"
    psql_q -d "${SRC}" <<SQL
CREATE TABLE t (
  id bigint PRIMARY KEY,
  amount numeric(12,4) NOT NULL,
  created timestamp NOT NULL,
  qty text,
  note text,
  code text,
  payload text,
  seen timestamptz,
  flag boolean
);
INSERT INTO t
SELECT i, (abs(hashtext(i::text)) % 100000000) / 10000.0,
       timestamp '2019-01-01' + (abs(hashtext('c' || i)) % 100000000) * interval '1 second',
       (abs(hashtext('q' || i)) % 100000)::text,
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'note ' || (i % 977) END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE md5(i::text) END,
       repeat(md5(i::text), 2),
       timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second',
       i % 3 = 0
FROM generate_series(1, ${ROWS}) AS i;
VACUUM (FREEZE, ANALYZE) t;
SQL
fi

cat >"${OUT}/mapped.toml" <<'TOML'
[[table]]
name = "public.t"
[[table.column]]
name = "amount"
type = "numeric(14,2)"
[[table.column]]
name = "created"
type = "timestamptz"
zone = "Europe/Paris"
[[table.column]]
name = "qty"
type = "integer"
[[table.column]]
name = "note"
default = "none"
[[table.column]]
name = "code"
default = "unknown"
TOML
: >"${OUT}/plain.toml"

run() { # run LABEL CONFIG ROUND
    local label=$1 config=$2 round=$3
    psql_q -d postgres -c "DROP DATABASE IF EXISTS ${DST} WITH (FORCE)" -c "CREATE DATABASE ${DST}" -c "CHECKPOINT"
    local log="${OUT}/${label}.${round}"
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f '%U %S %M' -o "${log}.time" "${HOWDAH_BIN}" copy -q \
        --source "postgres://${PGUSER}@${PGHOST}:${PGPORT}/${SRC}?sslmode=disable" \
        --target "postgres://${PGUSER}@${PGHOST}:${PGPORT}/${DST}?sslmode=disable" \
        --jobs "${JOBS}" --config "${config}" >"${log}.out" 2>"${log}.err"
    end=$(date +%s.%N)
    local rows data_s rate cpu rss
    rows=$(psql_q -d "${DST}" -c "SELECT count(*) FROM t")
    data_s=$(sed -n 's/^data phase: \([0-9.]*\) s.*/\1/p' "${log}.out")
    rate=$(sed -n 's/^data phase: .*(\([0-9]*\) rows\/s.*/\1/p' "${log}.out")
    read -r u s rss <"${log}.time"
    cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.1f", u + s }')
    printf '%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\n' "${label}" "${round}" "${rows}" "${data_s}" \
        "$(awk -v a="${start}" -v b="${end}" 'BEGIN { print b - a }')" "${rate}" "${cpu}" "$((rss / 1024))" \
        | tee -a "${OUT}/results.tsv"
}

echo -e "run\tround\trows\tdata_s\twall_s\trows_per_s\thowdah_cpu_s\tpeak_rss_mb" | tee "${OUT}/results.tsv"
for round in $(seq 1 "${ROUNDS}"); do
    run plain "${OUT}/plain.toml" "${round}"
    run mapped "${OUT}/mapped.toml" "${round}"
done
awk -F'\t' 'NR > 1 { sum[$1] += $6; n[$1]++ }
    END { p = sum["plain"] / n["plain"]; m = sum["mapped"] / n["mapped"];
          printf "mean rows/s: plain %.0f, mapped %.0f, mapped/plain %.3f\n", p, m, m / p }' \
    "${OUT}/results.tsv" | tee "${OUT}/summary.txt"
