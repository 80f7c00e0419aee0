#!/usr/bin/env bash
# The latency benchmark on a lent GPU machine (no network), in about BUDGET_S seconds:
#   1. env.txt: nvidia-smi, python/torch/ORT versions, the device name, the H200 peak table entry
#   2. gpu_tests.txt: the @pytest.mark.gpu tests, then the tests that depend on CUDA or ORT's providers
#   3-5. `playground latency --device cuda`: the Fashion-MNIST CNN (full preset, trained here) and
#        torchvision ResNet-50 / ResNet-18 (random weights, 10 classes, eval on 256 Fashion-MNIST test
#        images), torch_fp32/bf16/fp16 (+ ort_fp32/ort_tensorrt_fp16 on the CNN: recorded as skipped)
#   6-8. torch_compile separately: the CNN's saved weights re-timed, ResNet-18, ResNet-50 (if time is left)
#   9. summary.md: every run's rows, checks, skipped variants and "Against the machine" (share of the peak)
# Under $OUT: env.txt, gpu_tests.txt, steps.log, bench.log, summary.md, runs.tar.gz (each run's
# metrics.json, results.json, results.csv, report.md, config.toml, charts; not the saved models).
#
# Carried with it (ignored: .git/info/exclude): .whl (torch-pruning; playground/latency/pruning.py imports
# it at import time) and .gpudata (Fashion-MNIST gz files, fashion_eval/ ImageFolder, far_digits/).
#
# Variables: OUT (required), DEVICE (cuda; cpu to check the plumbing here), QUICK=1 (tiny sizes, for a
# CPU check), BUDGET_S (360: every step is cut or skipped to end within it; ResNet-50's torch_compile
# needs about 480). Make .whl and .gpudata first, here: bash scripts/gpu_prepare.sh
#
#   OUT=/tmp/gpuout DEVICE=cpu QUICK=1 BUDGET_S=2400 bash scripts/gpu_latency.sh   # the plumbing, on a CPU
#   bash scripts/gpu_latency.sh                                                     # on the GPU machine
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
set -uo pipefail
: "${OUT:?set OUT to the folder for the results}"
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
BUDGET_S=${BUDGET_S:-360}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg TQDM_MININTERVAL=5
export PLAYGROUND_DATA=$PWD/.gpudata/fashion-mnist  # playground/data/fashion.py: candidate_dirs
export PLAYGROUND_HOME=${PLAYGROUND_HOME:-/tmp/gpu_latency_runs}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/gpu_latency_inductor}
mkdir -p "$OUT" "$PLAYGROUND_HOME"
START=$SECONDS
EVAL=$PWD/.gpudata/fashion_eval   # 256 Fashion-MNIST test images, DIR/<k>_<class>/NNNNNN.png
FAR=$PWD/.gpudata/far_digits      # 256 sklearn digits as PNGs (far OOD; 256 = 4 x 64 keeps compiles down)

log() { echo "[gpu_latency +$((SECONDS - START))s] $*" | tee -a "$OUT/steps.log"; }
left() { echo $((BUDGET_S - (SECONDS - START))); }
pack() {  # every run so far into one archive (rewritten after each run, so a cut still leaves results)
  tar -czf "$OUT/runs.tar.gz.part" -C "$PLAYGROUND_HOME" --exclude='*/models' --exclude='*.safetensors' . \
    && mv "$OUT/runs.tar.gz.part" "$OUT/runs.tar.gz"
}

for needed in .whl .gpudata/fashion-mnist/train-images-idx3-ubyte.gz "$EVAL/9_ankle-boot" "$FAR/0000.png"; do
  [[ -e $needed ]] || { log "missing $needed: carry .whl and .gpudata"; exit 1; }
done

CLI=(python3 -m playground.cli)

# ---- sizes -------------------------------------------------------------------------------------------
if [[ $QUICK == 1 ]]; then  # the plumbing on a CPU: a narrow CNN on few images, ResNets at 32x32
  CNN_PRESET=(--preset quick --set width=16 --set train_limit=1000 --set test_limit=256 --set compat_images=128)
  CNN_BATCHES=1,32
  CNN_PICK=32
  RES_SHAPE=(--input-shape 3x32x32)
  RES_BATCHES=1,8
  RES_PICK=8
  EVAL_N=32
  EVAL_N_COMPILE=32
  BENCH=(--set bench.warmup=1 --set bench.min_iters=3 --set bench.min_seconds=0.0 --set bench.max_seconds=1.0)
  CAP=$BUDGET_S
else
  CNN_PRESET=(--preset full)  # 60,000 training images, 3 epochs, 10,000 test images, compat on 2,000
  CNN_BATCHES=1,32,256
  CNN_PICK=256                # the share of the peak at the largest batch (batch 1 is launch-bound)
  RES_SHAPE=()                # 3x224x224
  RES_BATCHES=1,32,128
  RES_PICK=128                # "Against the machine" (share of the H200 peak) at batch 128
  EVAL_N=256
  # torch.compile (dynamic=False) compiles once per batch size it meets: 128 eval images keep them to
  # 32 (build), 128 (parity, b128), 64 (quality batches), 1
  EVAL_N_COMPILE=128
  BENCH=(--set bench.warmup=20 --set bench.min_iters=100 --set bench.min_seconds=1.0 --set bench.max_seconds=10.0)
  CAP=150
fi
cap() { local l; l=$(left); echo $((l - 5 < $1 ? l - 5 : $1)); }  # cap SECONDS: at most SECONDS, within budget

bench() {  # bench NAME SECONDS ARGS...: one `playground latency` run, cut after SECONDS
  local name=$1 limit=$2 rc
  shift 2
  if ((limit < 30)); then log "$name: skipped, $(left)s of the budget left"; return; fi
  log "$name: start (limit ${limit}s, $(left)s of the budget left)"
  echo "===== $name: playground latency --device $DEVICE $* =====" >>"$OUT/bench.log"
  timeout --signal=INT --kill-after=15 "$limit" "${CLI[@]}" latency --device "$DEVICE" "$@" 2>&1 \
    | tee -a "$OUT/bench.log"
  rc=${PIPESTATUS[0]}
  log "$name: exit $rc$([[ $rc == 124 || $rc == 130 ]] && echo ' (cut at the limit)')"
  pack
}

# ---- 1. the machine ------------------------------------------------------------------------------------
log "env"
{
  echo "date: $(date -u +%FT%TZ)  device: $DEVICE  quick: $QUICK  budget: ${BUDGET_S}s"
  nvidia-smi || echo "(no nvidia-smi)"
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version --format=csv 2>/dev/null
  echo "cores: $(nproc)"; free -g; python3 --version; echo "C compiler (Triton builds its launcher with it): $(command -v gcc cc | tr '\n' ' ')"
  timeout 90 python3 - <<'PY'
import os, sysconfig
import onnxruntime, torch, torchvision
include = sysconfig.get_paths()["include"]
print("Python.h (Triton needs it):", os.path.isfile(os.path.join(include, "Python.h")), include)
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("torchvision", torchvision.__version__, "onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())
try:
    import triton
    print("triton", triton.__version__)
except ImportError as err:
    print("triton: not importable:", err)
print("cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device name", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
    print("bf16 supported", torch.cuda.is_bf16_supported())
from playground.core.timing import hardware_info
from playground.latency.peak import gpu_peak
info = hardware_info()
print("hardware_info", info)
peak = gpu_peak(info["gpu"]) if info.get("gpu") else None
print("gpu_peak", None if peak is None else (peak.device, peak.gflops))
from playground.data.fashion import find_fashion_mnist
print("fashion-mnist found at", find_fashion_mnist())
import torch_pruning
print("torch_pruning", torch_pruning.__version__, torch_pruning.__file__)
PY
} 2>&1 | tee "$OUT/env.txt"

# ---- 2. the GPU-marked tests (only these three files carry @pytest.mark.gpu), then the tests whose
# outcome depends on torch.cuda.is_available() or ORT's providers ------------------------------------------
log "pytest"
{
  timeout "$(cap 120)" python3 -m pytest -q -p no:randomly -p no:cacheprovider -m gpu --timeout=100 \
    tests/core/test_training.py tests/core/test_timing.py tests/latency/test_torch_variants.py
  echo "exit $?"
  echo "===== CUDA-aware tests (not marked gpu) ====="
  timeout "$(cap 90)" python3 -m pytest -q -p no:randomly -p no:cacheprovider --timeout=80 \
    tests/core/test_timing.py tests/latency/test_ort_providers.py tests/latency/test_peak.py \
    "tests/core/test_training.py::test_device_and_dtype_choice"
  echo "exit $?"
} 2>&1 | tee "$OUT/gpu_tests.txt"


# ---- 3-5. the sure figures first: eager fp32/bf16/fp16 (torch.compile runs separately below, since a
# failed recompile after the build stops a whole run). The CNN is trained here and saved; ort_fp32 and
# ort_tensorrt_fp16 show how a GPU provider that this onnxruntime (CPU build) lacks is recorded as skipped.
bench cnn "$(cap $((CAP + 50)))" "${CNN_PRESET[@]}" --batch-sizes "$CNN_BATCHES" --pick-batch "$CNN_PICK" \
  --methods torch_fp32,torch_bf16,torch_fp16,ort_fp32,ort_tensorrt_fp16 "${BENCH[@]}"
CNN_RUN=$(ls -td "$PLAYGROUND_HOME"/latency_fashion-* 2>/dev/null | head -1)
RES=(--num-classes 10 --eval "$EVAL" --far "$FAR" --batch-sizes "$RES_BATCHES" --pick-batch "$RES_PICK"
  "${RES_SHAPE[@]}" "${BENCH[@]}")
bench resnet50 "$(cap "$CAP")" --model torchvision:resnet50 --methods torch_fp32,torch_bf16,torch_fp16 \
  "${RES[@]}" --set eval_images=$EVAL_N
bench resnet18 "$(cap "$CAP")" --model torchvision:resnet18 --methods torch_fp32,torch_bf16,torch_fp16 \
  "${RES[@]}" --set eval_images=$EVAL_N

# ---- 6-8. torch.compile (inductor, freezing, one compile per batch size): the CNN's saved weights
# re-timed (no training), then ResNet-18, then ResNet-50 if the budget still allows ----------------------------
if [[ -f $CNN_RUN/models/benchmark_cnn.safetensors ]]; then
  bench cnn_compile "$(cap "$CAP")" "${CNN_PRESET[@]}" --models-from "$CNN_RUN" --batch-sizes "$CNN_BATCHES" \
    --pick-batch "$CNN_PICK" \
    --methods torch_fp32,torch_compile "${BENCH[@]}"
else log "cnn_compile: skipped, no saved CNN ($CNN_RUN)"; fi
bench resnet18_compile "$(cap "$CAP")" --model torchvision:resnet18 --methods torch_fp32,torch_compile \
  "${RES[@]}" --set eval_images=$EVAL_N_COMPILE
if (($(left) >= 150 || QUICK == 1)); then
  bench resnet50_compile "$(cap $((CAP + 60)))" --model torchvision:resnet50 --methods torch_fp32,torch_compile \
    "${RES[@]}" --set eval_images=$EVAL_N_COMPILE
else log "resnet50_compile: skipped, $(left)s left (needs 150; raise BUDGET_S to run it)"; fi

# ---- 9. summary: per run the rows of results.json, the skipped variants, and the report's
# "Against the machine" section (achieved GFLOP/s against the H200's datasheet peak) -------------------------
log "summary"
python3 - "$PLAYGROUND_HOME" <<'PY' 2>&1 | tee "$OUT/summary.md"
import json, sys
from pathlib import Path

def number(value, spec):
    return "-" if not isinstance(value, (int, float)) else format(value, spec)

root = Path(sys.argv[1])
for run in sorted((p.parent for p in root.glob("*/results.json")), key=lambda p: p.stat().st_mtime):
    bench = json.loads((run / "results.json").read_text())["sections"]["benchmark"]
    metrics = json.loads((run / "metrics.json").read_text())["metrics"] if (run / "metrics.json").is_file() else {}
    hardware = bench.get("hardware", {})
    report = (run / "report.md").read_text() if (run / "report.md").is_file() else ""
    lines = [line for line in report.splitlines() if line.startswith(("Hardware:", "- Measured on:", "Each latency:"))]
    print(f"## {run.name}\n\n" + "\n".join(lines or [str(hardware.get("gpu") or hardware.get("cpu"))]) + "\n")
    head = ["variant", "batch", "calls", "p50 ms", "p99 ms", "std ms", "images/s", "agreement", "accuracy",
            "peak MiB", "GFLOP/s", "peak share"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in bench["rows"]:
        key = f"bench/{row['variant']}/b{row['batch']}"
        share = metrics.get(f"{key}/peak_share")
        print("| " + " | ".join([
            row["variant"], str(row["batch"]), str(row.get("iters")), number(row.get("p50_ms"), ".3f"),
            number(row.get("p99_ms"), ".3f"), number(row.get("std_ms"), ".3f"), number(row.get("throughput"), ",.0f"),
            number(row.get("agreement"), ".3f"), number(row.get("accuracy"), ".3f"), number(row.get("peak_mb"), ".1f"),
            number(metrics.get(f"{key}/gflops"), ",.0f"), "-" if share is None else f"{100 * share:.2f}%",
        ]) + " |")
    print()
    for name, check in (bench.get("checks") or {}).items():
        print(f"- {name}: max |Δ| {number(check.get('max_abs_diff'), '.3g')}, argmax agreement "
              f"{number(check.get('argmax_agreement'), '.4f')} vs the reference, parity ok {check.get('parity_ok')}; "
              f"{check.get('notes')}")
    for name, why in (bench.get("skipped") or {}).items():
        print(f"- skipped {name}: {why}")
    if "## Against the machine" in report:
        section = report[report.index("## Against the machine"):]
        print("\n#" + section.split("\n## ")[0].strip())
    print()
for run in sorted(p for p in root.iterdir() if p.is_dir() and not (p / "results.json").is_file()):
    print(f"## {run.name}: no results (cut or failed; see bench.log)\n")
PY
pack
log "done; $(left)s of the ${BUDGET_S}s budget left; files: $(ls "$OUT" | tr '\n' ' ')"
