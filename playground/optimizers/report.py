"""Metrics, charts and the Markdown report of an optimizers run (one seed or several)."""

from __future__ import annotations

from playground.core.runs import Metrics, RunDir, markdown_table
from playground.core.seeds import mean_std_cell
from playground.optimizers.catalog import LABELS, OPTIMIZERS
from playground.optimizers.charts import curves_chart, trajectory_chart
from playground.optimizers.curves import Curves, load_curves

FEEDING = {"full": "whole training set", "single": "1 sample", "mini-batch": "mini-batch"}
COLUMNS = [
    ("test/accuracy", "test accuracy", "fraction"),
    ("val/accuracy", "final val accuracy", "fraction"),
    ("train/final_loss", "final train loss", "nats"),
    ("test/loss", "test loss", "nats"),
    ("train/updates", "updates", "count"),
    ("train/seconds", "seconds", "s"),
]


def metrics_of(config, outcomes: dict, paths: dict, num_classes: int) -> Metrics:
    """``optim/<name>/...`` per optimizer, ``traj/<function>/<name>/...`` per trajectory, ``data/chance``;
    tagged ``optimizer`` (and ``function``) and ``measure``, with the split the name states."""
    metrics = Metrics()
    metrics.add("data/chance", 1 / num_classes, "fraction", measure="chance")
    for name, o in outcomes.items():
        key = f"optim/{name}"
        for split, measure, value, unit in (
            ("test", "accuracy", o.test["accuracy"], "fraction"),
            ("test", "loss", o.test["loss"], "nats"),
            ("val", "accuracy", o.curves.val_accuracy[-1], "fraction"),
            ("train", "final_loss", o.final_loss, "nats"),
            ("train", "updates", o.updates, "count"),
            ("train", "seconds", o.seconds, "s"),
        ):
            metrics.add(f"{key}/{split}/{measure}", value, unit, split, optimizer=name, measure=measure)
        metrics.add(f"{key}/lr", config.lr_for(name), optimizer=name, measure="lr")
    for fname, runs in paths.items():
        fn = config.function(fname)
        for path in runs:
            key, tags = f"traj/{fname}/{path.optimizer}", dict(function=fname, optimizer=path.optimizer)
            if path.diverged_at is not None:
                metrics.add(f"{key}/diverged_at", path.diverged_at, "step", **tags, measure="diverged_at")
                continue
            gap = path.final_loss - fn.minimum_value
            metrics.add(f"{key}/final_loss", gap, **tags, measure="final_loss")
            distance = fn.nearest_minimum(path.final_point)[1]
            metrics.add(f"{key}/distance", distance, **tags, measure="distance")
    return metrics


def write_charts(run_dir: RunDir, curves: dict[str, Curves], paths: dict, config) -> None:
    """``curves.png`` and one ``trajectory_<function>.png`` per function."""
    run_dir.save_chart(curves_chart(curves))
    for fname, runs in paths.items():
        run_dir.save_chart(trajectory_chart(config.function(fname), runs))


def _cell(values: dict, name: str, unit: str) -> str:
    digits = 4 if unit in ("fraction", "nats") else 0 if unit == "count" else ".4g"
    # every seed made the same number of updates: no "± 0"
    return mean_std_cell(values.get(name), values.get(f"{name}:std"), digits, shared=unit == "count")


def optimizer_table(config, values: dict) -> str:
    """One row per optimizer: how it was fed, its lr and its numbers (mean ± std over seeds)."""
    rows = []
    for name in config.methods:
        feeding = OPTIMIZERS[name].feeding
        fed = FEEDING[feeding] if feeding != "mini-batch" else f"{config.batch_size} images"
        rows.append(
            [
                LABELS[name],
                fed,
                f"{config.lr_for(name):g}",
                *(_cell(values, f"optim/{name}/{key}", unit) for key, _, unit in COLUMNS),
            ]
        )
    return markdown_table(["optimizer", "gradient on", "lr", *(title for _, title, _ in COLUMNS)], rows)


def trajectory_table(config, values: dict) -> str:
    """Per function and optimizer: distance to the nearest minimum and loss gap after the steps."""
    rows = []
    for fname in config.functions:
        for name in config.methods:
            key = f"traj/{fname}/{name}"
            if f"{key}/diverged_at" in values:
                rows.append(
                    [fname, LABELS[name], f"diverged at step {int(values[f'{key}/diverged_at'])}", "-"]
                )
            else:
                distance, gap = values[f"{key}/distance"], values[f"{key}/final_loss"]
                rows.append([fname, LABELS[name], f"{distance:.3g}", f"{gap:.3g}"])
    return markdown_table(["function", "optimizer", "distance to nearest minimum", "f - f(minimum)"], rows)


def _setup(config, sizes: str) -> str:
    return (
        f"Small CNN (width {config.width}, depth {config.depth}, {config.norm} norm) on {config.dataset}: "
        f"{sizes}; {config.epochs} epoch{'s' * (config.epochs != 1)} per optimizer from the same initial "
        f"weights, {config.schedule} learning rate, momentum {config.momentum:g} (GD/SGD family), "
        f"weight decay {config.weight_decay:g}. GD, SGD and mini-batch SGD share one update rule and differ "
        "only in the data each gradient is computed on; GD makes one update per pass."
    )


def _trajectories(config) -> str:
    if not config.functions:
        return ""
    images = "\n\n".join(
        f"`{f}`: ${config.function(f).formula}$\n\n![{f}](trajectory_{f}.png)" for f in config.functions
    )
    noise = (
        f"Gradient noise σ = {config.trajectory_noise:g} per sample: SGD sees σ, the mini-batch methods "
        f"σ/√{config.batch_size}, GD none."
        if config.trajectory_noise
        else "No gradient noise, so GD, SGD and mini-batch SGD take the same path."
    )
    return (
        f"## Trajectories on 2-D test functions\n\n{config.trajectory_steps} steps "
        "at each optimizer's suggested learning rate for the function "
        f"(`playground.optimizers.functions.SUGGESTED_LR`). {noise}\n\n" + images
    )


def single_report(config, metrics: Metrics, outcomes: dict, paths: dict, data, device) -> str:
    train, val, test = data
    values = metrics.values
    best = max(config.methods, key=lambda n: values[f"optim/{n}/test/accuracy"])
    sizes = f"{len(train)} training, {len(val)} validation, {len(test)} test images, on `{device}`"
    return (
        "\n\n".join(
            [
                f"# {config.name}: optimizers compared",
                _setup(config, sizes),
                f"**Best test accuracy: {LABELS[best]}, {values[f'optim/{best}/test/accuracy']:.4f}** "
                f"(chance {values['data/chance']:.2f})",
                optimizer_table(config, values),
                "## Curves\n\nEpoch 0 is the shared initial model.\n\n![curves](curves.png)",
                _trajectories(config),
                "## Trajectory end points\n\n" + trajectory_table(config, values) if config.functions else "",
            ]
        ).rstrip()
        + "\n"
    )


def _seeded_paths(config) -> str:
    if config.trajectory_noise:
        return "The gradient noise is drawn from each seed: mean over seeds; plots in each seed's folder.\n\n"
    return "Without gradient noise the 2-D paths do not depend on the seed; plots in each seed's folder.\n\n"


def aggregate_report(config, metrics: Metrics, results) -> str:
    """Mean ± std over seeds; writes the averaged ``curves.png`` into the parent folder.

    Everything comes from what the seeds wrote (their curves results, the aggregated metrics), so
    seeds run in worker processes (``--jobs``), which hand back no in-memory outcomes, work too.
    """
    parent = RunDir(results[0].run_dir.parent)
    curves = load_curves(parent.path)
    parent.save_chart(curves_chart(curves))
    accuracies = {n: metrics.values[f"optim/{n}/test/accuracy"] for n in config.methods}
    best = max(accuracies, key=accuracies.get)
    links = "\n".join(f"- [{r.run_dir.name}]({r.run_dir.name}/report.md)" for r in results)
    return (
        "\n\n".join(
            [
                f"# {config.name}: optimizers compared, {len(results)} seeds",
                _setup(config, f"at most {config.train_limit} images" if config.train_limit else "all images")
                + " Numbers are mean ± std over seeds.",
                f"**Best mean test accuracy: {LABELS[best]}, {accuracies[best]:.4f}**",
                optimizer_table(config, metrics.values),
                "## Curves (mean ± std over seeds)\n\n![curves](curves.png)",
                "## Trajectory end points\n\n"
                + _seeded_paths(config)
                + trajectory_table(config, metrics.values)
                if config.functions
                else "",
                "## Runs\n\n" + links,
            ]
        ).rstrip()
        + "\n"
    )
