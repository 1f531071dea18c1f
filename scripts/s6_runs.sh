#!/usr/bin/env bash
# Session 6: one policy's queue of MiniLM runs, one JSON per seed (usage: s6_runs.sh a|b policy seed...).
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
db=$1; policy=$2; shift 2
redis=$([ "$db" = a ] && echo 12 || echo 13)
for seed in "$@"; do
  out=docs/simulation-records/session6/s6-minilm-$policy-$seed.json
  [ -e "$out" ] && continue
  echo "$(date -u +%T) start $policy $seed"
  env DATABASE_URL=postgres://postgres@127.0.0.1:5432/fw_s6_$db FLYWHEEL_DATA_DIR=/tmp/s6-$db \
    REDIS_URL=redis://127.0.0.1:6379/$redis nice -n 19 .venv/bin/python manage.py flywheel_simulate \
    --rounds 8 --budget 150 --warm-start --reward-base minilm --selection "$policy" --seed "$seed" \
    --json "$out" > "docs/simulation-records/session6/log-$policy-$seed.txt" 2>&1
  echo "$(date -u +%T) done $policy $seed rc=$?"
done
