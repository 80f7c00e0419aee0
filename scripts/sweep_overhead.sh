#!/usr/bin/env bash
# Ray's overhead against local processes for one sweep of 20 tiny trials (classify on digits, one epoch),
# two trials at a time each way, timed as paired whole commands by farm-bench (A = Ray, B = --jobs).
#   bash scripts/sweep_overhead.sh [RUNS]    # writes runs/sweep_overhead.txt
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
sweep="playground sweep recipes/classify_fashion.toml --preset quick --quiet --jobs 2
  --set dataset=digits --set epochs=1 --set save_models=false
  --grid width=4,8,12,16,20 --grid lr=0.001,0.003,0.01,0.03"
mkdir -p runs
PATH="$PWD/.venv/bin:$PATH" farm-bench -n "$runs" --warmup 0 --timeout 3600 \
  --vs "sh -c 'exec $(echo $sweep) --backend local --out \$(mktemp -d) >/dev/null 2>&1'" \
  -- sh -c "exec $(echo $sweep) --backend ray --out \$(mktemp -d) >/dev/null 2>&1" | tee runs/sweep_overhead.txt
