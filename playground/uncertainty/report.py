"""The OOD run's report (tables, the checked claims), its JSON/safetensors artifacts and plots."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from playground.core.checkpoint import save_checkpoint
from playground.core.runs import RunDir, markdown_table, metric_cell
from playground.uncertainty.benchmark import FEATURE_ROWS, PROBABILISTIC, ROWS, Outcome

PROBABILITY_ROWS = [row for row in ROWS if row not in FEATURE_ROWS]


def _cell(values: dict[str, float], scale: float = 1.0, digits: int = 3) -> Callable[[str], str]:
    """A formatter of metric names: :func:`~playground.core.runs.metric_cell` over ``values``."""
    return lambda name: metric_cell(values, name, digits, scale)


def ood_sets(values: dict[str, float]) -> list[str]:
    """The OOD set names of a run, near first, then the far sets and their mean ``far``."""
    names = {k.split("/")[2] for k in values if k.startswith("ood/single_msp/") and k.endswith("/auroc")}
    rest = sorted(names - {"near", "far"})
    return [n for n in ("near",) if n in names] + rest + [n for n in ("far",) if n in names]


def detection_table(values: dict[str, float]) -> str:
    cell, sets = _cell(values), ood_sets(values)
    rows = [
        [
            f"`{row}` ({ROWS[row][1]})",
            *[f"{cell(f'ood/{row}/{s}/auroc')} / {cell(f'ood/{row}/{s}/fpr95')}" for s in sets],
        ]
        for row in ROWS
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
            f"{values[f'cost/{row}/parameters']:,.0f}",
            ms(f"cost/{row}/train_seconds"),
            ms(f"cost/{row}/latency_ms"),
        ]
        for row in ROWS
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
    for method in PROBABILISTIC:
        row = [f"`{method}`"]
        for name in SCORES:
            far = f"ood_scores/{method}/{name}/far/auroc"
            row.append(
                f"{cell(far)} ({cell(f'ood_scores/{method}/{name}/near/auroc')})" if far in values else "–"
            )
        rows.append(row)
    return markdown_table(["method", *SCORES], rows)


def claims(values: dict[str, float]) -> list[tuple[str, bool]]:
    """The issue's acceptance checks and the papers' main findings, on these numbers."""
    v = values.get
    checks = [
        (
            "ensemble far AUROC >= single MSP far AUROC + 0.02 (Lakshminarayanan et al. 2017)",
            v("ood/ensemble/far/auroc", 0) >= v("ood/single_msp/far/auroc", 1) + 0.02,
        ),
        ("ensemble ECE < single model ECE", v("calib/ensemble/ece", 1) < v("calib/single_msp/ece", 0)),
        (
            "temperature scaling lowers the single model's test ECE (Guo et al. 2017)",
            v("calib/temp_scaled/ece", 1) < v("calib/single_msp/ece", 0),
        ),
        (
            "under shift the ensemble is better calibrated than temperature scaling (Ovadia et al. 2019)",
            v("calib/ensemble/corrupted/ece", 1) < v("calib/temp_scaled/corrupted/ece", 0),
        ),
        (
            "BNN accuracy within 3 points of the single model",
            v("test/bnn/accuracy", 0) >= v("test/single_msp/accuracy", 1) - 0.03,
        ),
        (
            "BNN mutual-information far AUROC >= 0.80",
            v("ood_scores/bnn/mutual_information/far/auroc", 0) >= 0.80,
        ),
    ]
    if any(k.startswith("ood/") and "/near/" in k for k in values):
        checks.append(
            (
                "near-OOD is harder than far-OOD for every method",
                all(v(f"ood/{r}/near/auroc", 1) < v(f"ood/{r}/far/auroc", 0) for r in ROWS),
            )
        )
    return checks


def claims_text(values: dict[str, float]) -> str:
    return "\n".join(f"- {'✅' if ok else '❌'} {text}" for text, ok in claims(values))


READING = """How to read it: AUROC is the chance that an OOD image scores as more OOD than an in-distribution
test image (0.5 is a coin flip); FPR95 is the share of OOD images let through when 95% of in-distribution
images are accepted (lower is better). `far` is the mean over the far sets. ECE, NLL and Brier measure
calibration (lower is better); `corrupted` is the in-distribution test set under blur, noise or low
contrast. Latency is per image at batch 512, all samples or members included."""


def sections(values: dict[str, float], title: str, intro: str) -> str:
    return (
        "\n\n".join(
            [
                f"# {title}",
                intro,
                READING,
                "## Checks\n\n" + claims_text(values),
                "## OOD detection (AUROC ↑ / FPR95 ↓)\n\n" + detection_table(values),
                "![AUROC by method and set](auroc.png)",
                "## Accuracy, calibration and cost\n\n" + calibration_table(values),
                "## Every score for every method (far AUROC, near in brackets)\n\n" + score_table(values),
            ]
        )
        + "\n"
    )


def report_text(config, values: dict[str, float], data, device) -> str:
    intro = (
        f"In distribution: {config.dataset} without classes {', '.join(data.heldout)} "
        f"({len(data.train)} training, {len(data.val)} validation, {len(data.test)} test images, "
        f"{data.test.num_classes} classes). "
        f"OOD sets: {', '.join(f'{k} ({v.shape[0]})' for k, v in data.ood.items())}. "
        f"Network: {config.model} width {config.width}, {config.epochs} epochs; "
        f"ensemble of {config.members}; "
        f"MC dropout and BNN with {config.mc_samples} / {config.bnn_samples} samples; BNN layers: "
        f"{config.bnn_layers}; device `{device}`; seed {config.seed}."
    )
    plots = "\n\n".join(
        [
            "## ROC curves\n\n![ROC curves](roc.png)",
            "## Reliability\n\n![reliability](reliability.png)",
            "## Score distributions\n\n![scores](score_histograms.png)",
        ]
    )
    return sections(values, f"{config.name}: uncertainty and OOD detection", intro) + "\n" + plots + "\n"


def aggregate_text(config, metrics, results) -> str:
    intro = (
        f"Mean ± standard deviation over {len(results)} seeds; dataset {config.dataset} without classes "
        f"{config.heldout_classes}; {config.members}-member ensemble; BNN layers {config.bnn_layers}."
    )
    links = "\n".join(f"- [{r.run_dir.name}]({r.run_dir.name}/report.md)" for r in results)
    return (
        sections(metrics.values, f"{config.name}: uncertainty and OOD detection, {len(results)} seeds", intro)
        + "\n## Runs\n\n"
        + links
        + "\n"
    )


def write_artifacts(run_dir: RunDir, outcome: Outcome, data) -> None:
    """``ood_results.json`` and ``scores.safetensors`` (for the page) and the PNG plots."""
    from playground.uncertainty import plots

    sets = list(data.ood)
    run_dir.write_json(
        "ood_results.json",
        {
            "sets": sets,
            "far": data.far,
            "heldout": data.heldout,
            "classes": data.test.classes,
            "rows": ROWS,
            "ood": outcome.ood,
            "calibration": outcome.calibration,
            "matrix": outcome.matrix,
            "latency": outcome.latency,
            "reliability": outcome.reliability,
            "roc": outcome.roc,
        },
    )
    save_checkpoint(
        run_dir.path / "scores.safetensors",
        {
            f"{row}/{s}": t.float().contiguous()
            for row, by_set in outcome.scores.items()
            for s, t in by_set.items()
        },
        {"rows": list(ROWS)},
    )
    flat = {
        f"ood/{row}/{s}/auroc": r["auroc"] for row, by_set in outcome.ood.items() for s, r in by_set.items()
    }
    run_dir.save_figure(
        plots.auroc_figure(flat, list(ROWS), sets + (["far"] if "far" in outcome.ood["ensemble"] else [])),
        "auroc",
    )
    run_dir.save_figure(plots.roc_figure(outcome.roc, list(ROWS), sets), "roc")
    run_dir.save_figure(plots.reliability_figure(outcome.reliability, list(PROBABILISTIC)), "reliability")
    shown = {
        row: {s: t.numpy() for s, t in outcome.scores[row].items()}
        for row in ("single_msp", "ensemble", "bnn", "mahalanobis")
    }
    run_dir.save_figure(plots.histogram_figure(shown, list(shown), sets), "score_histograms")


def save_methods(run_dir: RunDir, methods, config) -> None:
    """Every trained network as safetensors, so the page can score a new image without retraining."""
    meta = {
        "experiment": "ood",
        "config": dataclasses.asdict(config),
        "temperature": methods.temp_scaled.temperature,
    }
    folder = run_dir.path / "models"
    folder.mkdir(exist_ok=True)
    for index, model in enumerate(methods.ensemble.models):
        save_checkpoint(folder / f"member{index}.safetensors", model, meta)
    save_checkpoint(
        folder / "bnn.safetensors",
        {
            **{f"model.{k}": v for k, v in methods.bnn.model.state_dict().items()},
            **{f"guide.{k}": v for k, v in methods.bnn.guide.state_dict().items()},
        },
        meta,
    )
    save_checkpoint(
        folder / "features.safetensors",
        {
            "mahalanobis.means": methods.mahalanobis.means,
            "mahalanobis.precision": methods.mahalanobis.precision,
            "knn.bank": methods.knn.bank,
        },
        {**meta, "knn_k": methods.knn.k},
    )
