"""Metrics, artifacts, charts and the Markdown report of a SwAV run (one seed or several)."""

from __future__ import annotations

import torch

from playground.core.checkpoint import save_checkpoint
from playground.core.runs import Metrics, RunDir, markdown_table
from playground.core.seeds import metric_cell
from playground.data import ImageDataset
from playground.swav.charts import LABELS, loss_chart, probe_chart, prototype_chart, sinkhorn_chart

TARGET_GAIN = 10.0  # points: the bar for SwAV's linear probe over random init (full preset)
EXAMPLES_FILE = "prototype_examples.safetensors"
EXAMPLES_PER_PROTOTYPE = 8


def pct(fraction: float) -> str:
    """``0.01`` -> ``"1"``, ``0.1`` -> ``"10"``, ``0.005`` -> ``"0.5"``: a metric-name percentage."""
    return f"{100 * fraction:g}"


def probe_name(init: str, fraction: float) -> str:
    return (
        f"ssl/{init}/linear_probe/accuracy"
        if fraction == 1.0
        else f"ssl/{init}/linear_probe_{pct(fraction)}/accuracy"
    )


def lowshot_name(init: str, fraction: float) -> str:
    return f"ssl/{init}/lowshot_{pct(fraction)}/accuracy"


def metrics_of(config, outcome, num_classes: int) -> Metrics:
    """Test-split accuracies tagged ``init``, ``probe`` (``linear_probe`` or ``lowshot``: fine-tuned),
    ``label_fraction`` and ``measure``; the SwAV model's own numbers tagged ``init="swav"``."""
    metrics = Metrics()
    metrics.add("data/chance", 1 / num_classes, "fraction", measure="chance")
    for probe, table, name_of in (
        ("linear_probe", outcome.probes, probe_name),
        ("lowshot", outcome.lowshot, lowshot_name),
    ):
        for init, curve in table.items():
            for fraction, accuracy in curve.items():
                tags = dict(init=init, probe=probe, label_fraction=float(fraction), measure="accuracy")
                metrics.add(name_of(init, fraction), accuracy, "fraction", "test", **tags)
    if 1.0 in outcome.probes["swav"] and "random_init" in outcome.probes:
        gain = outcome.probes["swav"][1.0] - outcome.probes["random_init"][1.0]
        tags = dict(init="swav", probe="linear_probe", label_fraction=1.0, reference="random_init")
        metrics.add(
            "ssl/swav/linear_probe/gain_over_random", 100 * gain, "points", "test", **tags, measure="gain"
        )
    pretrained, diagnostics = outcome.pretrained, outcome.diagnostics
    swav = dict(init="swav")
    metrics.add("ssl/swav/final_loss", pretrained.losses[-1], "nats", "train", **swav, measure="final_loss")
    metrics.add("ssl/swav/pretrain_seconds", pretrained.seconds, "s", **swav, measure="pretrain_seconds")
    # the diagnostics assign the test images to prototypes
    purity = diagnostics.purity
    metrics.add("ssl/swav/prototype_purity", purity, "fraction", "test", **swav, measure="prototype_purity")
    used = diagnostics.used_prototypes
    metrics.add("ssl/swav/used_prototypes", used, "count", "test", **swav, measure="used_prototypes")
    metrics.add(
        "ssl/sinkhorn/prototype_sum_error",
        diagnostics.errors[config.swav.sinkhorn_iterations][1],
        "samples",
        "test",
        init="swav",
        sinkhorn_iterations=config.swav.sinkhorn_iterations,
        measure="prototype_sum_error",
    )
    return metrics


def prototype_examples(
    images: torch.Tensor, assignments: torch.Tensor, prototypes: int, per: int = EXAMPLES_PER_PROTOTYPE
) -> torch.Tensor:
    """(K, per, C, H, W): the first ``per`` images of every prototype, zeros where it has fewer."""
    out = torch.zeros(prototypes, per, *images.shape[1:])
    for k in range(prototypes):
        members = (assignments == k).nonzero().flatten()[:per]
        out[k, : members.numel()] = images[members]
    return out


def write_artifacts(run_dir: RunDir, config, outcome, test: ImageDataset) -> None:
    """The results sections, the prototypes' example images and class counts (read by the page) and
    the charts."""
    from playground.swav.results import PROBES, SINKHORN, probe_curves  # results.py imports this module

    diagnostics = outcome.diagnostics
    examples = prototype_examples(test.images, diagnostics.assignments, config.swav.prototypes)
    counts = diagnostics.counts(config.swav.prototypes)
    save_checkpoint(
        run_dir.path / EXAMPLES_FILE,
        {"examples": examples, "counts": counts},
        {"classes": diagnostics.classes},
    )
    codes = [c[:32].tolist() for c in diagnostics.trace]
    run_dir.write_result(
        SINKHORN, {"errors": diagnostics.errors, "epsilon": config.swav.epsilon, "codes": codes}
    )
    probes = {
        "linear_probe": outcome.probes,
        "lowshot": outcome.lowshot,
        "swav_loss": outcome.pretrained.losses,
    }
    run_dir.write_result(PROBES, probes)
    for chart in (
        probe_chart(probe_curves([probes])),
        loss_chart([outcome.pretrained.losses], config.swav.prototypes),
        sinkhorn_chart(codes, diagnostics.errors),
        prototype_chart(examples, counts, diagnostics.classes),
    ):
        run_dir.save_chart(chart)


def results_table(config, values: dict, inits: list[str]) -> str:
    """One row per init of ``inits``: linear probe at every label fraction, then low-shot fine-tuning."""
    probes = sorted(config.probe_fractions)
    shots = sorted(config.lowshot_fractions)
    headers = [
        "init",
        *(f"linear probe, {pct(f)}% labels" for f in probes),
        *(f"fine-tuned, {pct(f)}% labels" for f in shots),
    ]
    rows = [
        [
            LABELS[init],
            *(metric_cell(values, probe_name(init, f), 4) for f in probes),
            *(metric_cell(values, lowshot_name(init, f), 4) for f in shots),
        ]
        for init in inits
    ]
    return markdown_table(headers, rows)


def check(values: dict) -> str:
    """Does SwAV's linear probe (all labels) beat random init by TARGET_GAIN points?"""
    gain = values.get("ssl/swav/linear_probe/gain_over_random")
    if gain is None:
        return "No SwAV-versus-random comparison with all labels in this run."
    verdict = "meets" if gain >= TARGET_GAIN else "misses"
    return (
        f"**Check: SwAV's linear probe is {gain:+.1f} points over random init "
        f"({metric_cell(values, 'ssl/swav/linear_probe/accuracy', 4)} vs "
        f"{metric_cell(values, 'ssl/random_init/linear_probe/accuracy', 4)}); the bar is +{TARGET_GAIN:g}: "
        f"{verdict}.**"
    )


def _setup(config, sizes: str) -> str:
    arch = f"small CNN (width {config.width})" if config.model == "small_cnn" else config.model
    swav = config.swav
    return (
        f"{arch}, {config.representation_dim}-d representation, on {config.dataset}: {sizes}. SwAV: "
        f"{config.epochs} epochs, batch {config.batch_size}, 2 + {swav.small_crops} crops, "
        f"K = {swav.prototypes} prototypes, τ = {swav.temperature:g}, ε = {swav.epsilon:g}, "
        f"{swav.sinkhorn_iterations} Sinkhorn iterations, queue {swav.queue_length or 'off'}. "
        "Linear probe: L-BFGS logistic regression on standardised frozen features "
        f"(l2 {config.probe_l2:g}). "
        f"Fine-tuning: encoder + linear head, about {config.finetune_steps} steps "
        f"of {config.finetune_batch}. "
        "Supervised: the same architecture trained on every label for "
        f"{config.supervised_epochs} epoch{'s' * (config.supervised_epochs != 1)}."
    )


def _diagnostics(values: dict, config) -> str:
    swav = config.swav
    return (
        f"SwAV loss at the end {metric_cell(values, 'ssl/swav/final_loss', 3)} nats (uniform: log K = "
        f"{torch.tensor(float(swav.prototypes)).log():.3f}); prototype purity on the test images "
        f"{metric_cell(values, 'ssl/swav/prototype_purity', 3)} "
        f"(chance {metric_cell(values, 'data/chance', 2)}), "
        f"{metric_cell(values, 'ssl/swav/used_prototypes', 0)} of {swav.prototypes} prototypes in use; "
        f"after {swav.sinkhorn_iterations} Sinkhorn iterations a prototype's share of a 256-image batch is "
        f"off by at most {metric_cell(values, 'ssl/sinkhorn/prototype_sum_error', 3)} images."
    )


def single_report(config, metrics: Metrics, outcome, data, device) -> str:
    unlabelled, train, test = data
    values = metrics.values
    sizes = (
        f"{len(unlabelled)} unlabelled pretraining images, {len(train)} labelled training and {len(test)} "
        f"test images, on `{device}`, SwAV pretraining {outcome.pretrained.seconds:.0f} s"
    )
    return (
        "\n\n".join(
            [
                f"# {config.name}: SwAV, linear probe and low-shot fine-tuning",
                _setup(config, sizes),
                check(values),
                results_table(config, values, list(outcome.probes)),
                "![probe accuracy](probe_accuracy.png)",
                "## SwAV training\n\n" + _diagnostics(values, config) + "\n\n![loss](swav_loss.png)",
                "## Sinkhorn-Knopp on one test batch\n\n![sinkhorn](sinkhorn.png)",
                "## Prototypes (the fullest, with test images assigned to them)"
                "\n\n![prototypes](prototypes.png)",
                "" if config.save_models else "No model saved (save_models = false).",
            ]
        ).rstrip()
        + "\n"
    )


def aggregate_report(config, metrics: Metrics, results) -> str:
    """Mean ± std over seeds; the probe chart, with its band over seeds, goes into the parent folder."""
    from playground.swav.results import load_probes, probe_curves  # results.py imports this module

    parent = RunDir(results[0].run_dir.parent)
    values = metrics.values
    curves = probe_curves(load_probes(parent.path))
    parent.save_chart(probe_chart(curves))
    links = "\n".join(f"- [{r.run_dir.name}]({r.run_dir.name}/report.md)" for r in results)
    limit = (
        f"at most {config.pretrain_limit} pretraining images"
        if config.pretrain_limit
        else "every training image"
    )
    return (
        "\n\n".join(
            [
                f"# {config.name}: SwAV, linear probe and low-shot fine-tuning, {len(results)} seeds",
                _setup(config, limit) + " Numbers are mean ± std over seeds.",
                check(values),
                results_table(config, values, [curve.init for curve in curves]),
                "![probe accuracy](probe_accuracy.png)",
                "## SwAV training\n\n" + _diagnostics(values, config),
                "## Runs\n\n" + links,
            ]
        )
        + "\n"
    )
