#!/usr/bin/env bash
# What scripts/gpu_latency.sh carries to a lent GPU machine (no network there), made here, once:
#   .whl/      torch-pruning (playground/latency/pruning.py imports it; the machine's image lacks it)
#   .gpudata/  Fashion-MNIST's four gz files, fashion_eval/ (256 test images as PNGs, one folder per
#              class) and far_digits/ (256 scikit-learn digits as PNGs, the far-OOD set)
# Both are ignored by git (.git/info/exclude); name them in the run's carry: [".whl", ".gpudata"].
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for path in /.whl/ /.gpudata/; do
  grep -qxF "$path" "$exclude" 2>/dev/null || echo "$path" >> "$exclude"
done
rm -rf .whl && mkdir -p .whl .gpudata/fashion-mnist
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .whl torch-pruning==1.6.1
cp /usr/share/datasets/fashion-mnist/*.gz .gpudata/fashion-mnist/
.venv/bin/python - <<'PY'
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from playground.data import load_dataset

root = Path(".gpudata")
test = load_dataset("fashion_mnist", "test")
names = [n.lower().replace("/", "-").replace(" ", "-") for n in test.classes]
for index in range(256):
    label = int(test.labels[index])
    folder = root / "fashion_eval" / f"{label}_{names[label]}"
    folder.mkdir(parents=True, exist_ok=True)
    pixels = (test.images[index, 0].numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(folder / f"{index:06d}.png")
(root / "far_digits").mkdir(exist_ok=True)
for index, digit in enumerate(load_digits().images[:256]):
    pixels = Image.fromarray((digit * 255 / 16).astype(np.uint8)).resize((28, 28))
    pixels.save(root / "far_digits" / f"{index:04d}.png")
PY
du -sh .whl .gpudata
