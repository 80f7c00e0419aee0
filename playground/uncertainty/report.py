"""The OOD run's report (tables, the checked claims), its results section, per-image scores and models,
and its charts (:mod:`playground.uncertainty.charts`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from playground.core.checkpoint import save_checkpoint
from playground.core.runs import Metrics, RunDir, markdown_table
from playground.core.seeds import metric_cell
from playground.uncertainty.benchmark import FEATURE_ROWS, METHODS, ROWS, Outcome

PROBABILITY_ROWS = [row for row in ROWS if row not in FEATURE_ROWS]


def _cell(values: dict[str, float], scale: float = 1.0, digits: int = 3) -> Callable[[str], str]:
    """A formatter of metric names: :func:`~playground.core.runs.metric_cell` over ``values``."""
    return lambda name: metric_cell(values, name, digits, scale)


def ood_sets(metrics: Metrics) -> list[str]:
    """The OOD set names of a run (from the records' tags), near first, then the far sets and their mean
    ``far``."""
    records = metrics.select(method=..., ood_set=..., measure="auroc")
    return order_sets({r.tags["ood_set"] for r in records if "score" not in r.tags})


def reported_rows(values: dict[str, float]) -> list[str]:
    """The rows a run reported (a run of some ``methods`` has no metrics for the others), in ROWS order."""
    return [row for row in ROWS if any(name.startswith(f"ood/{row}/") for name in values)]


def reported_methods(values: dict[str, float]) -> list[str]:
    """The probabilistic methods a run reported every score of, in METHODS order."""
    return [m for m in METHODS if any(name.startswith(f"ood_scores/{m}/") for name in values)]


def order_sets(names: set[str]) -> list[str]:
    """``near`` first, then the far sets by name, then their mean ``far``."""
    rest = sorted(names - {"near", "far"})
    return [n for n in ("near",) if n in names] + rest + [n for n in ("far",) if n in names]


def detection_table(values: dict[str, float], sets: list[str]) -> str:
    cell = _cell(values)
    rows = [
        [
            f"`{row}` ({ROWS[row][1]})",
            *[f"{cell(f'ood/{row}/{s}/auroc')} / {cell(f'ood/{row}/{s}/fpr95')}" for s in sets],
        ]
        for row in reported_rows(values)
    ]
    return markdown_table(["method (score)", *[f"{s} AUROC / FPR95" for s in sets]], rows)


def calibration_table(values: dict[str, float]) -> str:
    cell, ms = _cell(values), _cell(values, digits=2)
    rows = [
        [
            f"`{row}`",
            cell(f"test/{row}/accuracy"),
            cell(f"calib/{row}/ece"),
            cell(f"calib/{row}/nll"),
            cell(f"calib/{row}/brier"),
            cell(f"test/{row}/corrupted/accuracy"),
            cell(f"calib/{row}/corrupted/ece"),
            f"{values[f'cost/{row}/parameters']:,.0f}" if f"cost/{row}/parameters" in values else "–",
            ms(f"cost/{row}/train_seconds"),
            ms(f"cost/{row}/latency_ms"),
        ]
        for row in reported_rows(values)
    ]
    return markdown_table(
        [
            "method",
            "accuracy",
            "ECE",
            "NLL",
            "Brier",
            "corrupted acc.",
            "corrupted ECE",
            "parameters",
            "train s",
            "latency ms/image",
        ],
        rows,
    )


def score_table(values: dict[str, float]) -> str:
    """AUROC of every (method, score) pair: far mean (near)."""
    from playground.uncertainty.scores import SCORES

    cell = _cell(values)
    rows = []
    for method in reported_methods(values):
        row = [f"`{method}`"]
        for name in SCORES:
            far = f"ood_scores/{method}/{name}/far/auroc"
            row.append(
                f"{cell(far)} ({cell(f'ood_scores/{method}/{name}/near/auroc')})" if far in values else "–"
            )
        rows.append(row)
    return markdown_table(["method", *SCORES], rows)


def claims(values: dict[str, float], sets: list[str]) -> list[tuple[str, bool]]:
    """The issue's acceptance checks and the papers' main findings, on these numbers; a check whose
    numbers the run did not measure (its methods were not run) is left out."""
    v = values.__getitem__
    checks = [
        (
            "ensemble far AUROC >= single MSP far AUROC + 0.02 (Lakshminarayanan et al. 2017)",
            ("ood/ensemble/far/auroc", "ood/single_msp/far/auroc"),
            lambda: v("ood/ensemble/far/auroc") >= v("ood/single_msp/far/auroc") + 0.02,
        ),
        (
            "ensemble ECE < single model ECE",
            ("calib/ensemble/ece", "calib/single_msp/ece"),
            lambda: v("calib/ensemble/ece") < v("calib/single_msp/ece"),
        ),
        (
            "temperature scaling lowers the single model's test ECE (Guo et al. 2017)",
            ("calib/temp_scaled/ece", "calib/single_msp/ece"),
            lambda: v("calib/temp_scaled/ece") < v("calib/single_msp/ece"),
        ),
        (
            "under shift the ensemble is better calibrated than temperature scaling (Ovadia et al. 2019)",
            ("calib/ensemble/corrupted/ece", "calib/temp_scaled/corrupted/ece"),
            lambda: v("calib/ensemble/corrupted/ece") < v("calib/temp_scaled/corrupted/ece"),
        ),
        (
            "BNN accuracy within 3 points of the single model",
            ("test/bnn/accuracy", "test/single_msp/accuracy"),
            lambda: v("test/bnn/accuracy") >= v("test/single_msp/accuracy") - 0.03,
        ),
        (
            "BNN mutual-information far AUROC >= 0.80",
            ("ood_scores/bnn/mutual_information/far/auroc",),
            lambda: v("ood_scores/bnn/mutual_information/far/auroc") >= 0.80,
        ),
    ]
    rows = [
        r for r in reported_rows(values) if f"ood/{r}/near/auroc" in values and f"ood/{r}/far/auroc" in values
    ]
    if "near" in sets and rows:
        checks.append(
            (
                "near-OOD is harder than far-OOD for every method",
                (),
                lambda: all(v(f"ood/{r}/near/auroc") < v(f"ood/{r}/far/auroc") for r in rows),
            )
        )
    return [(text, check()) for text, needs, check in checks if all(name in values for name in needs)]


def claims_text(values: dict[str, float], sets: list[str]) -> str:
    checks = claims(values, sets)
    if not checks:
        return "No check applies to the methods this run measured."
    return "\n".join(f"- {'✅' if ok else '❌'} {text}" for text, ok in checks)


READING = """How to read it: AUROC is the chance that an OOD image scores as more OOD than an in-distribution
test image (0.5 is a coin flip); FPR95 is the share of OOD images let through when 95% of in-distribution
images are accepted (lower is better). `far` is the mean over the far sets. ECE, NLL and Brier measure
calibration (lower is better); `corrupted` is the in-distribution test set under blur, noise or low
contrast. Latency is per image at batch 512, all samples or members included."""


def sections(metrics: Metrics, title: str, intro: str) -> str:
    values, sets = metrics.values, ood_sets(metrics)
    return (
        "\n\n".join(
            [
                f"# {title}",
                intro,
                READING,
                "## Checks\n\n" + claims_text(values, sets),
                "## OOD detection (AUROC ↑ / FPR95 ↓)\n\n" + detection_table(values, sets),
                "![AUROC by method and set](auroc.png)",
                "## Accuracy, calibration and cost\n\n" + calibration_table(values),
                "## Every score for every method (far AUROC, near in brackets)\n\n" + score_table(values),
            ]
        )
        + "\n"
    )


def report_text(config, metrics: Metrics, data, device) -> str:
    net, bench = config.net, config.bench
    intro = (
        f"In distribution: {config.dataset} without classes {', '.join(data.heldout)} "
        f"({len(data.train)} training, {len(data.val)} validation, {len(data.test)} test images, "
        f"{data.test.num_classes} classes). "
        f"OOD sets: {', '.join(f'{k} ({v.shape[0]})' for k, v in data.ood.items())}. "
        f"Network: {net.model} width {net.width}, {net.epochs} epochs; "
        f"ensemble of {bench.members}; "
        f"MC dropout and BNN with {bench.mc_samples} / {bench.bnn_samples} samples; BNN layers: "
        f"{bench.bnn_layers}; device `{device}`; seed {config.seed}."
        + (
            f" Methods run: {', '.join(config.methods)} (the others were not trained)."
            if config.methods
            else ""
        )
    )
    charts = "\n\n".join(
        [
            "## ROC curves\n\n![ROC curves](roc.png)",
            "## Reliability\n\n![reliability](reliability.png)",
            "## Score distributions\n\n![scores](score_histograms.png)",
        ]
    )
    return sections(metrics, f"{config.name}: uncertainty and OOD detection", intro) + "\n" + charts + "\n"


def aggregate_text(config, metrics, results) -> str:
    intro = (
        f"Mean ± standard deviation over {len(results)} seeds; dataset {config.dataset} without classes "
        f"{config.heldout_classes}; {config.bench.members}-member ensemble; "
        f"BNN layers {config.bench.bnn_layers}."
        + (f" Methods run: {', '.join(config.methods)}." if config.methods else "")
    )
    links = "\n".join(f"- [{r.run_dir.name}]({r.run_dir.name}/report.md)" for r in results)
    return (
        sections(metrics, f"{config.name}: uncertainty and OOD detection, {len(results)} seeds", intro)
        + "\n## Runs\n\n"
        + links
        + "\n"
    )


def write_artifacts(run_dir: RunDir, outcome: Outcome, data, scores: dict[str, str] | None = None) -> None:
    """The run's :class:`~playground.uncertainty.results.Evaluation` (the ``results.json`` section
    ``evaluation``) and ``scores.safetensors`` (for the page), and the report's charts, of the rows the run
    reported; ``scores`` is the config's ``bench.scores`` (row -> the score it reads instead of its own)."""
    from playground.uncertainty.charts import charts
    from playground.uncertainty.results import EVALUATION, Evaluation

    evaluation = Evaluation.of(outcome, data)
    run_dir.write_result(EVALUATION, evaluation)
    save_checkpoint(
        run_dir.path / "scores.safetensors",
        {
            f"{row}/{s}": t.float().contiguous()
            for row, by_set in outcome.scores.items()
            for s, t in by_set.items()
        },
        {"rows": list(outcome.ood)},
    )
    read_with = {row: (scores or {}).get(row, ROWS[row][1]) for row in outcome.ood}
    per_image = {row: {s: t.tolist() for s, t in by_set.items()} for row, by_set in outcome.scores.items()}
    for chart in charts(evaluation, per_image, read_with):
        run_dir.save_chart(chart)


def save_methods(run_dir: RunDir, methods, config, in_channels: int) -> None:
    """Every trained network as safetensors, so the page can score a new image without retraining:
    ``member0`` is the single model (the ensemble's first member), ``member1``... the ensemble's others,
    ``bnn`` the BNN and ``features`` the feature-space scores; a method the run did not train has no file.
    """
    meta = {"experiment": "uncertainty", "config": dataclasses.asdict(config), "in_channels": in_channels}
    if methods.temp_scaled is not None:
        meta["temperature"] = methods.temp_scaled.temperature
    folder = run_dir.path / "models"
    folder.mkdir(exist_ok=True)
    members = [methods.single.model] if methods.single is not None else []
    if methods.ensemble is not None:  # its first member is the single model
        members = methods.ensemble.models
    for index, model in enumerate(members):
        save_checkpoint(folder / f"member{index}.safetensors", model, meta)
    if methods.bnn is not None:
        save_checkpoint(
            folder / "bnn.safetensors",
            {
                **{f"model.{k}": v for k, v in methods.bnn.model.state_dict().items()},
                **{f"guide.{k}": v for k, v in methods.bnn.guide.state_dict().items()},
            },
            meta,
        )
    if methods.mahalanobis is not None:
        save_checkpoint(
            folder / "features.safetensors",
            {
                "mahalanobis.means": methods.mahalanobis.means,
                "mahalanobis.precision": methods.mahalanobis.precision,
                "knn.bank": methods.knn.bank,
            },
            {**meta, "knn_k": methods.knn.k},
        )
