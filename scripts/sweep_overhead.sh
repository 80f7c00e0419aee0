#!/usr/bin/env bash
# Ray's overhead against local processes for one sweep of 20 tiny trials (classify on digits, one epoch),
# two trials at a time each way, timed as paired whole commands by farm-bench (A = Ray, B = --jobs).
#   bash scripts/sweep_overhead.sh [RUNS]    # writes runs/sweep_overhead.txt and runs/sweep_overhead.json
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
# The medians as metrics.json beside the text: sweep/ray/wall_s, sweep/local/wall_s and their ratio.
python3 - runs/sweep_overhead.txt <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
median = lambda row: float(re.search(rf"^{re.escape(row)}\s+\S+\s+(\S+)", text, re.M)[1])
ray, local = median("A wall s"), median("B wall s")
metrics = {"sweep/ray/wall_s": ray, "sweep/local/wall_s": local, "sweep/ray_over_local/wall": median("A/B wall")}
units = {"sweep/ray/wall_s": "s", "sweep/local/wall_s": "s", "sweep/ray_over_local/wall": "ratio"}
json.dump({"metrics": metrics, "units": units}, open("runs/sweep_overhead.json", "w"), indent=1)
print(json.dumps(metrics))
PY
