"""Train the pointcloud recipe's learned detector alone, on a GPU where there is one, and save it.

A pointcloud run trains the detector and then scores it beside the geometric proposals, which need
open3d. On a machine without open3d (a rented GPU box), or to train once and evaluate many times, this
script does the first half: it builds the recipe's config, makes the randomised training scenes, trains,
and writes ``detector.safetensors`` and ``training.json`` (the loss per step) under OUT::

    python scripts/train_detector.py recipes/pointcloud_detector.toml --preset full \
        --set device=cuda --set detector.workers=12 --out /tmp/detector
    playground run recipes/pointcloud_detector.toml --preset full \
        --set detector.checkpoint=/tmp/detector/detector.safetensors --set detector.steps=0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from playground.core.device import choose_device, configure_threads, seed_everything
from playground.core.progress import TqdmProgress
from playground.core.runner import config_from_recipe
from playground.pointcloud.detector import save_detector
from playground.pointcloud.learned import obtain


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    _, config = config_from_recipe(args.recipe, args.preset, args.overrides)
    if not config.detector.steps:
        parser.error("detector.steps is 0: nothing to train")
    seed_everything(config.seed)
    configure_threads(config.threads)
    device = choose_device(config.device)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    trained = obtain(config.detector, config.scene, config.seed, TqdmProgress(), device)
    seconds = time.perf_counter() - began
    path = save_detector(args.out / "detector.safetensors", trained.model)
    log = trained.log
    record = dict(
        recipe=str(args.recipe),
        preset=args.preset,
        overrides=args.overrides,
        device=str(device),
        seconds=seconds,
        losses=log.losses,
        heatmap=log.heatmap,
        regression=log.regression,
    )
    (args.out / "training.json").write_text(json.dumps(record))
    final = sum(log.losses[-20:]) / len(log.losses[-20:])
    print(f"{path} after {seconds:.0f} s on {device}; final loss {final:.3f}")
    return path


if __name__ == "__main__":
    main()
