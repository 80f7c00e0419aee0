"""Benchmark the generated shapes dataset: how long rendering ``--images`` images takes.

    .venv/bin/python scripts/bench_shapes.py                      # 2,000 images, median of 5 renders
    .venv/bin/python scripts/bench_shapes.py --images 10000 --repeats 3 --out /tmp/bench-shapes

The target (2,000 images in under 2 s on one core of this machine, so a page or a test can make
its data on the fly) is a benchmark figure, not a unit test: a shared machine's wall time does not
make a test. Writes ``metrics.json`` (``{"metrics", "units"}``) and ``report.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from playground.data.shapes import make_shapes

TARGET_SECONDS_PER_2000 = 2.0


def time_renders(images: int, repeats: int) -> list[float]:
    seconds = []
    for seed in range(repeats):
        start = time.perf_counter()
        make_shapes(images, seed=seed)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default="runs/bench-shapes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = time_renders(args.images, args.repeats)
    median = statistics.median(seconds)
    target = TARGET_SECONDS_PER_2000 * args.images / 2000
    metrics = {
        f"shapes/render_s@{args.images}": median,
        f"shapes/render_s_min@{args.images}": min(seconds),
        f"shapes/images_per_s@{args.images}": args.images / median,
        "shapes/target_s": target,
    }
    units = {name: "images/s" if "per_s" in name else "s" for name in metrics}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"metrics": metrics, "units": units}, indent=1))
    verdict = "meets" if median < target else "misses"
    report = (
        f"# Shapes rendering\n\n{args.images} images, {args.repeats} renders, {args.threads} thread(s): "
        f"median {median:.3f} s (min {min(seconds):.3f} s), {args.images / median:,.0f} images/s; "
        f"{verdict} the target of {target:.2f} s.\n"
    )
    (out / "report.md").write_text(report)
    print(report.strip())


if __name__ == "__main__":
    main()
