#!/usr/bin/env bash
# Kill loops for longer than CI runs them: the two tests of tests/integration/kill_loop.rs
# (PostgreSQL and MariaDB sources, SIGKILL at random moments under a writer, then resumed and
# checked: keyed rows once, keyless equal to one image, rejects and counts exact) over many
# seeds, each with more kills.
#
#   benches/killloop.sh [--seeds N] [--first SEED] [--rounds KILLS]
#
# Defaults: 20 seeds from 1, 12 kills per run. Prints one line per seed and test (pass/fail,
# kills landed, writer steps) and a total; a failing seed is replayed with
# HOWDAH_KILL_SEED=<seed> HOWDAH_KILL_ROUNDS=<kills> cargo test --test integration kill_loop.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SEEDS=20
FIRST=1
ROUNDS=12
while (($# > 0)); do
    case "$1" in
        --seeds) SEEDS=$2; shift ;;
        --first) FIRST=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "killloop.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
OUT="${ROOT}/bench-out/killloop-$(date +%Y%m%d-%H%M%S)"
mkdir -p "${OUT}"
cd "${ROOT}"
cargo test --test integration --no-run --quiet 2>/dev/null
pass=0
fail=0
echo -e "seed\ttest\tresult\tkills\twriter_steps" | tee "${OUT}/results.tsv"
for ((seed = FIRST; seed < FIRST + SEEDS; seed++)); do
    for test in postgresql mariadb; do
        log="${OUT}/${seed}-${test}.log"
        if HOWDAH_KILL_SEED=$seed HOWDAH_KILL_ROUNDS=$ROUNDS \
            cargo test --quiet --test integration "kill_loop::${test}" -- --nocapture >"${log}" 2>&1; then
            result=pass
            pass=$((pass + 1))
        else
            result=FAIL
            fail=$((fail + 1))
        fi
        line=$(grep -oE '[0-9]+ kills, [0-9]+ writer steps' "${log}" | head -n1 || true)
        kills=$(echo "${line}" | awk '{print $1}')
        steps=$(echo "${line}" | awk '{print $3}')
        echo -e "${seed}\t${test}\t${result}\t${kills:--}\t${steps:--}" | tee -a "${OUT}/results.tsv"
    done
done
echo "passed ${pass}, failed ${fail} (logs in ${OUT})"
[[ ${fail} -eq 0 ]]
