#!/usr/bin/env bash
# One policy's queue of MiniLM runs, one JSON per seed (usage: s6_runs.sh a|b policy seed...).
# Records go under docs/simulation-records/$SESSION (default session6, as in session 6), named
# s<N>-minilm-<policy>-<seed>.json; $TAG names a variant instead of the policy, and $EXTRA holds
# more flywheel_simulate options (e.g. TAG=oracle-explore50 EXTRA="--explore 0.5").
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
db=$1; policy=$2; shift 2
redis=$([ "$db" = a ] && echo 12 || echo 13)
session=${SESSION:-session6}
records=docs/simulation-records/$session
mkdir -p "$records"
for seed in "$@"; do
  tag=${TAG:-$policy}
  out=$records/s${session#session}-minilm-$tag-$seed.json
  [ -e "$out" ] && continue
  echo "$(date -u +%T) start $tag $seed"
  env DATABASE_URL=postgres://postgres@127.0.0.1:5432/fw_s6_$db FLYWHEEL_DATA_DIR=/tmp/s6-$db \
    REDIS_URL=redis://127.0.0.1:6379/$redis nice -n 19 .venv/bin/python manage.py flywheel_simulate \
    --rounds 8 --budget 150 --warm-start --reward-base minilm --selection "$policy" --seed "$seed" \
    ${EXTRA:-} --json "$out" > "$records/log-$tag-$seed.txt" 2>&1
  echo "$(date -u +%T) done $tag $seed rc=$?"
done
