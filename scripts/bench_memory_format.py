"""Benchmark one training step of a playground model in the two memory formats (NCHW and NHWC).

    .venv/bin/python scripts/bench_memory_format.py                     # small_cnn as in the FCT recipe
    .venv/bin/python scripts/bench_memory_format.py --model resnet18 --size 32 --threads 2

``models.build_model`` lays 4-D weights out channels-last (NHWC) because oneDNN's NHWC kernels for
convolution, batch norm and max-pooling are much faster on a CPU than the NCHW ones. This script is
the evidence: the median time of a forward + backward + SGD step in each layout, on the same weights
and batch. Writes ``metrics.json`` (``{"metrics", "units"}``) and ``report.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from playground.models import build_model


def step_seconds(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int) -> float:
    """Median seconds of a training step (after two warm-up steps)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seconds = []
    for index in range(steps + 2):
        start = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(images).logits, labels).backward()
        optimizer.step()
        if index >= 2:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--size", type=int, default=28, help="image side in pixels")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default="runs/bench-memory-format")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    options = {"width": 32, "pool_size": 7} if args.model == "small_cnn" else {}
    images = torch.rand(args.batch, args.channels, args.size, args.size)
    labels = torch.randint(0, 10, (args.batch,))
    seconds = {}
    for layout, memory_format in (("nchw", torch.contiguous_format), ("nhwc", torch.channels_last)):
        model = build_model(args.model, in_channels=args.channels, num_classes=10, **options)
        seconds[layout] = step_seconds(model.to(memory_format=memory_format), images, labels, args.steps)
    metrics = {
        "memory_format/step_ms_nchw": 1000 * seconds["nchw"],
        "memory_format/step_ms_nhwc": 1000 * seconds["nhwc"],
        "memory_format/speedup": seconds["nchw"] / seconds["nhwc"],
    }
    units = {name: "x" if name.endswith("speedup") else "ms" for name in metrics}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"metrics": metrics, "units": units}, indent=1))
    report = (
        f"# Memory format\n\n{args.model}, batch {args.batch} of {args.channels}x{args.size}x{args.size}, "
        f"{args.threads} thread(s), median of {args.steps} training steps: "
        f"NCHW {1000 * seconds['nchw']:.0f} ms, NHWC {1000 * seconds['nhwc']:.0f} ms "
        f"({seconds['nchw'] / seconds['nhwc']:.2f}x).\n"
    )
    (out / "report.md").write_text(report)
    print(report, end="")


if __name__ == "__main__":
    main()
