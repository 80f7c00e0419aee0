"""Measure only the BNN row of the OOD benchmark, one seed at a time.

Every method of ``recipes/ood_fashion.toml`` is seeded on its own, so training the BNN alone with a
preset's config gives exactly the BNN numbers the whole recipe would (on the same device). Use it to
try BNN settings without retraining the ensemble:

    python scripts/ood_bnn_row.py --preset full --seed 0 --set bnn_layers='"all"' --out bnn_all_seed0.json
"""

from __future__ import annotations

import argparse
import json
import time

from playground.core.device import choose_device, configure_threads
from playground.core.runner import config_from_recipe
from playground.uncertainty import benchmark
from playground.uncertainty.metrics import calibration
from playground.uncertainty.ood_data import load_ood_data
from playground.uncertainty.scores import score

SCORES = ("mutual_information", "entropy", "msp", "max_logit", "energy")


def measure(preset: str, seed: int, overrides: list[str]) -> dict:
    _, config = config_from_recipe("recipes/ood_fashion.toml", preset, [*overrides, f"seed={seed}"])
    configure_threads()  # PLAYGROUND_THREADS, as a recipe run does: the thread count changes float rounding
    data = load_ood_data(config.data_spec())
    settings = config.method_settings()
    methods = benchmark.build_methods(config.net_spec(str(choose_device(config.device))), settings, seed)
    start = time.perf_counter()
    methods.bnn.fit(data.train)
    seconds = time.perf_counter() - start
    predictions = {
        name: methods.bnn.predict(images) for name, images in benchmark.evaluation_sets(data).items()
    }
    result = {
        "seed": seed,
        "preset": preset,
        "overrides": overrides,
        "train_seconds": seconds,
        "test": calibration(predictions["test"].mean, data.test.labels),
        "corrupted": calibration(predictions["corrupted"].mean, data.corrupted.labels),
    }
    for name in SCORES:
        result[name] = benchmark.ood_results({s: score(p, name) for s, p in predictions.items()}, data)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args()
    result = measure(args.preset, args.seed, args.overrides)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    mi = result["mutual_information"]
    print(
        f"seed {args.seed}: accuracy {result['test']['accuracy']:.4f}, ECE {result['test']['ece']:.4f}, "
        f"MI AUROC far {mi['far']['auroc']:.3f} near {mi['near']['auroc']:.3f}, "
        f"{result['train_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
