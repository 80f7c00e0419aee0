"""Benchmark an FCT upgrade at gallery scale: one million stored vectors transformed by h.

    .venv/bin/python scripts/bench_gallery_scale.py --run RUNS/fct_fashion-.../seed0-... --out /tmp/bg

The vectors: an FCT run's stored test gallery (old embedding + side-info, as the run wrote them)
repeated to ``--vectors`` rows, each copy jittered by Gaussian noise of 5% of every dimension's
spread, so the numbers h sees are what a real gallery holds, not random ones. They are written as a
sharded gallery store (float16), then upgraded with the run's h by ``playground backfill``:

- in one process (one torch thread), and
- under ``torchrun --nproc-per-node W`` (PyTorch's own launcher: each worker takes the shards
  ``i % W == rank``, one torch thread each), for each ``--workers`` W;

and the upgraded vectors go into the gallery's FAISS indexes (:mod:`playground.fct.gallery_index`):
``flat`` (exact) always, ``hnsw`` with ``--hnsw`` (approximate; its recall@10 against flat is
reported). Each index's build time and its query latency p50/p99 over ``--queries`` single
queries (FAISS on its own OpenMP threads, one per core). Writes ``metrics.json`` and ``report.md``
to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from playground.fct.gallery import GalleryStore, write_gallery
from playground.fct.gallery_index import build_index, search_index

REPO = Path(__file__).resolve().parents[1]


def make_vectors(run: Path, count: int, seed: int = 0) -> dict[str, torch.Tensor]:
    stored = GalleryStore.open(run / "gallery").read(["old", "side"])
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name in ("old", "side"):
        base = stored[name]
        rows = torch.arange(count) % base.shape[0]
        noise = torch.randn(count, base.shape[1], generator=generator) * (0.05 * base.std(0))
        out[name] = base[rows] + noise
    return out


def timed_backfill(gallery: Path, run: Path, out: Path, workers: int) -> tuple[float, float]:
    """Seconds for ``playground backfill`` over the whole store: the command's wall time (process
    starts and imports included) and the slowest worker's own reading-transforming-writing time."""
    shutil.rmtree(out, ignore_errors=True)
    backfill = ["backfill", str(gallery), "--transformation", str(run / "transformation.safetensors")]
    backfill += ["--out", str(out)]
    if workers == 1:
        command = [sys.executable, "-m", "playground.cli", *backfill]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={workers}",
        ]
        command += ["-m", "playground.cli", *backfill]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PLAYGROUND_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, check=True, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    work = [float(s) for s in re.findall(r"backfilled its shards of \d+ images in ([\d.]+) s", done.stderr)]
    if len(work) != workers:
        raise RuntimeError(f"expected {workers} worker reports, got: {done.stderr[-500:]}")
    return wall, max(work)


def query_latency(
    index, vectors: torch.Tensor, queries: int, k: int = 10
) -> tuple[list[float], torch.Tensor]:
    """Seconds per single query, and the rows each query got back. A query is a gallery vector
    jittered by 5% of each dimension's spread: near the gallery, but not one of its rows."""
    seconds, found = [], []
    generator = torch.Generator().manual_seed(1)
    spread = vectors[:10_000].std(0)
    for i in range(queries):
        query = vectors[i * 997 % len(vectors)][None]
        query = query + 0.05 * spread * torch.randn(query.shape, generator=generator)
        start = time.perf_counter()
        found.append(search_index(index, query, k)[1][0])
        seconds.append(time.perf_counter() - start)
    return seconds, torch.stack(found)


def index_metrics(kind: str, vectors: torch.Tensor, queries: int) -> tuple[dict[str, float], torch.Tensor]:
    start = time.perf_counter()
    index = build_index(vectors, kind)
    metrics = {f"gallery/index_build_s/{kind}": time.perf_counter() - start}
    latency, found = query_latency(index, vectors, queries)
    metrics[f"gallery/query_p50_ms/{kind}"] = 1000 * statistics.median(latency)
    metrics[f"gallery/query_p99_ms/{kind}"] = 1000 * percentile(latency, 0.99)
    return metrics, found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="an FCT run folder (its gallery/ and transformation)")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--workers", default="2", help="torchrun worker counts to time, comma-separated")
    parser.add_argument("--shard-size", type=int, default=16384)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--hnsw", action="store_true", help="also build and time an HNSW index (slow)")
    parser.add_argument("--out", default="runs/bench-gallery")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run, out = Path(args.run).expanduser(), Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    vectors = make_vectors(run, args.vectors)
    write_gallery(out / "gallery", torch.arange(args.vectors), vectors, "fp16", args.shard_size)
    write_s = time.perf_counter() - start
    metrics = {"gallery/vectors": args.vectors, "gallery/write_s": write_s}
    for workers in [1, *(int(w) for w in args.workers.split(",") if w.strip())]:
        wall, work = timed_backfill(out / "gallery", run, out / "upgraded", workers)
        metrics[f"gallery/upgrade_wall_s/w{workers}"] = wall
        metrics[f"gallery/upgrade_work_s/w{workers}"] = work
        metrics[f"gallery/vectors_per_s/w{workers}"] = args.vectors / work
    start = time.perf_counter()
    upgraded = GalleryStore.open(out / "upgraded").read(["new"])["new"]
    metrics["gallery/vectors_load_s"] = time.perf_counter() - start
    flat, exact = index_metrics("flat", upgraded, args.queries)
    metrics.update(flat)
    if args.hnsw:
        hnsw, found = index_metrics("hnsw", upgraded, args.queries)
        hits = [len(set(a.tolist()) & set(b.tolist())) / len(a) for a, b in zip(found, exact)]
        metrics.update({**hnsw, "gallery/hnsw_recall_at_10": statistics.mean(hits)})
    (out / "metrics.json").write_text(json.dumps({"metrics": metrics}, indent=1))
    lines = [f"# FCT upgrade of {args.vectors:,} vectors", "", "| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value:,.3f} |" for name, value in metrics.items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(out / "gallery")
    shutil.rmtree(out / "upgraded")


if __name__ == "__main__":
    main()
