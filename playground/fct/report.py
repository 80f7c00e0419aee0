"""FCT results: metrics names, run-folder artifacts, charts and the Markdown report.

``report.md`` lays the compatibility table out like the paper's tables (case, query
model, gallery model, CMC top-1, top-5, mAP), checks the paper's claims on this run,
and sets the published ImageNet-1k / CIFAR-100 figures beside it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from playground.core.checkpoint import save_checkpoint
from playground.core.runs import Metrics, RunDir, markdown_table
from playground.core.seeds import metric_cell
from playground.fct import upgrade_report
from playground.fct.charts import compatibility_chart, projection_chart, tradeoff_chart
from playground.fct.tasks import FCTData

ROWS = [  # case, method, query model, gallery model
    ("old-old", "Independent", "old", "old"),
    ("new-new", "Independent (full backfill)", "new", "new"),
    ("new-old", "Independent, no transformation", "new", "old"),
    ("bct-old", "BCT", "BCT", "old"),
    ("bct-bct", "BCT (full backfill)", "BCT", "BCT"),
    ("new-fct_noside", "FCT without side-info", "new", "h(old, old)"),
    ("new-fct", "FCT", "new", "h(old, side-info)"),
]
# Published figures (apple/ml-fct README, the paper's code): (top-1, top-5, mAP) in %.
PAPER = {
    "ImageNet-1k (ResNet-50, 500 -> 1000 classes)": {
        "old-old": (46.4, 65.1, 28.3),
        "new-new": (68.4, 84.7, 45.6),
        "new-fct": (65.1, 82.7, 44.0),
    },
    "CIFAR-100 (ResNet, 50 -> 100 classes)": {
        "old-old": (32.9, 59.3, 16.1),
        "new-new": (56.4, 77.5, 36.5),
        "new-fct": (50.6, 74.2, 34.2),
    },
}


def metrics_of(outcome) -> Metrics:
    metrics = Metrics()
    for case, scores in outcome.retrieval.items():
        for key in ("top1", "top5", "mAP"):
            metrics.add(f"retrieval/{case}/{key}", scores[key], "fraction", "test", case=case, measure=key)
    cost = outcome.cost
    for key, unit in (
        ("transformation_macs", "MACs"),
        ("new_model_macs", "MACs"),
        ("side_info_bytes", "bytes"),
        ("old_embedding_bytes", "bytes"),
        ("backfill_transform_s", "s/10k images"),
        ("backfill_reembed_s", "s/10k images"),
    ):
        metrics.add(f"cost/{key}", float(cost[key]), unit, cost=key)
    macs_fraction = cost["transformation_macs"] / cost["new_model_macs"]
    metrics.add(
        "cost/transformation_macs_fraction", macs_fraction, "fraction", cost="transformation_macs_fraction"
    )
    speedup = cost["backfill_reembed_s"] / cost["backfill_transform_s"]
    metrics.add("cost/backfill_speedup", speedup, "x", cost="backfill_speedup")
    metrics.add(
        "fct/map_recovery",
        outcome.retrieval["new-fct"]["mAP"] / outcome.retrieval["new-new"]["mAP"],
        "fraction",
    )
    for row in outcome.sweep:  # tagged with the size, so readers never parse it out of the name
        dim = row["dim"]
        for key in ("top1", "top5", "mAP"):
            metrics.add(
                f"side_info/dim_{dim}/{key}", row[key], "fraction", "test", side_info_dim=dim, measure=key
            )
        metrics.add(f"side_info/dim_{dim}/bytes", row["bytes"], "bytes", side_info_dim=dim, measure="bytes")
    for name, value in outcome.accuracy.items():
        metrics.add(f"classify/{name}/accuracy", value, "fraction")
    for name, value in outcome.models.train_seconds.items():
        metrics.add(f"train/seconds/{name}", value, "s")
    metrics.add("run/seconds", outcome.seconds, "s")
    upgrade_report.add_metrics(metrics, outcome.upgrade)
    return metrics


def compatibility_table(value: Callable[[str], str]) -> str:
    """The paper-style table; ``value("retrieval/new-fct/top1")`` formats one cell."""
    rows = [
        [method, query, gallery, *(value(f"retrieval/{case}/{key}") for key in ("top1", "top5", "mAP"))]
        for case, method, query, gallery in ROWS
    ]
    return markdown_table(["method", "query", "gallery", "CMC top-1 (%)", "CMC top-5 (%)", "mAP (%)"], rows)


def claims(values: dict[str, float]) -> list[tuple[str, bool]]:
    """The paper's claims, checked on these numbers."""
    r = lambda case, key: values[f"retrieval/{case}/{key}"]
    return [
        (
            "new-new > new-fct > new-fct_noside > old-old on top-1",
            r("new-new", "top1") > r("new-fct", "top1") > r("new-fct_noside", "top1") > r("old-old", "top1"),
        ),
        (
            "the same ordering on mAP",
            r("new-new", "mAP") > r("new-fct", "mAP") > r("new-fct_noside", "mAP") > r("old-old", "mAP"),
        ),
        ("new-fct recovers >= 85% of new-new mAP", values["fct/map_recovery"] >= 0.85),
        (
            "new-fct beats bct-old on top-1 by >= 5 points",
            r("new-fct", "top1") - r("bct-old", "top1") >= 0.05,
        ),
        (
            "bct-bct is below new-new (the cost BCT puts on the new model)",
            r("bct-bct", "top1") < r("new-new", "top1"),
        ),
        ("transformation MACs <= 2% of the new model's", values["cost/transformation_macs_fraction"] <= 0.02),
        ("backfill by transformation >= 20x faster than re-embedding", values["cost/backfill_speedup"] >= 20),
    ]


def paper_table() -> str:
    rows = [[setting, case, *values] for setting, cases in PAPER.items() for case, values in cases.items()]
    return markdown_table(["published setting", "case", "top-1 (%)", "top-5 (%)", "mAP (%)"], rows)


def _percent(values: dict[str, float]) -> Callable[[str], str]:
    return lambda name: metric_cell(values, name, digits=1, scale=100)


def sweep_names(metrics: Metrics) -> dict[int, dict[str, str]]:
    """Side-info size -> {measure: metric name}, read from the records' tags (0 = no side-info)."""
    sweep: dict[int, dict[str, str]] = {}
    for record in metrics.select(side_info_dim=..., measure=...):
        sweep.setdefault(int(record.tags["side_info_dim"]), {})[record.tags["measure"]] = record.name
    return dict(sorted(sweep.items()))


def _sweep_table(metrics: Metrics) -> str:
    values, cell = metrics.values, _percent(metrics.values)
    rows = [
        [d, f"{values[names['bytes']]:.0f}", cell(names["top1"]), cell(names["mAP"])]
        for d, names in sweep_names(metrics).items()
    ]
    return markdown_table(["side-info dim", "bytes/image", "new-fct top-1 (%)", "new-fct mAP (%)"], rows)


def _cost_table(values: dict[str, float]) -> str:
    cell = _percent(values)
    return markdown_table(
        ["cost", "value"],
        [
            [
                "side-info stored per image",
                f"{values['cost/side_info_bytes']:.0f} bytes "
                f"(the old embedding: {values['cost/old_embedding_bytes']:.0f} bytes)",
            ],
            [
                "transformation MACs / new model MACs",
                f"{values['cost/transformation_macs']:,.0f} / "
                f"{values['cost/new_model_macs']:,.0f} = "
                f"{100 * values['cost/transformation_macs_fraction']:.2f}%",
            ],
            ["backfill by transformation", f"{values['cost/backfill_transform_s']:.3f} s per 10k images"],
            ["backfill by re-embedding", f"{values['cost/backfill_reembed_s']:.2f} s per 10k images"],
            ["speed-up of transformation over re-embedding", f"{values['cost/backfill_speedup']:.0f}x"],
            [
                "classification accuracy of the new model: independent / BCT",
                f"{cell('classify/new/accuracy')} / {cell('classify/bct/accuracy')} %",
            ],
        ],
    )


def sections(metrics: Metrics, title: str, intro: str) -> str:
    """The report body shared by one-seed and multi-seed runs."""
    values = metrics.values
    checks = "\n".join(f"- {'✓' if ok else '✗'} {text}" for text, ok in claims(values))
    return (
        "\n\n".join(
            [
                f"# {title}",
                intro,
                "## Compatibility (query model / gallery model)",
                compatibility_table(_percent(values)),
                f"new-fct recovers **{100 * values['fct/map_recovery']:.1f}%** of new-new mAP.",
                "## The paper's claims on this run",
                checks,
                "## Cost",
                _cost_table(values),
                "## Side-info size: storage against accuracy (0 = FCT without side-info)",
                _sweep_table(metrics),
                upgrade_report.section(metrics),
                "## Published figures for comparison",
                paper_table()
                + "\n\nThe paper's FCT keeps 96% (ImageNet) and 94% (CIFAR-100) of new-new mAP; its abstract "
                "reports FCT ahead of BCT by 18.1 top-1 points on ImageNet-1k.",
            ]
        )
        + "\n"
    )


def report_text(config, data: FCTData, outcome, metrics: Metrics, device) -> str:
    intro = (
        f"{data.description}. Query = gallery = {len(data.test)} test images; {config.distance} distance; "
        f"side-info: {config.side_info.method}, {config.side_info.dim}-d, stored as {config.store_dtype}. "
        f"Run took {outcome.seconds:.0f} s on `{device}`."
    )
    figures = "\n\n".join(
        f"![{name}]({name}.png)" for name in ("compatibility", "projection", "side_info_tradeoff")
    )
    return (
        sections(metrics, f"{config.name}: forward compatible training", intro)
        + "\n## Plots\n\n"
        + figures
        + "\n"
    )


def aggregate_text(config, metrics: Metrics, results) -> str:
    intro = (
        f"Mean ± standard deviation over {len(results)} seeds; the per-seed reports are linked below. "
        f"Dataset {config.dataset}; side-info {config.side_info.method} {config.side_info.dim}-d."
    )
    links = "\n".join(f"- [{r.run_dir.name}]({r.run_dir.name}/report.md)" for r in results)
    return (
        sections(metrics, f"{config.name}: forward compatible training, {len(results)} seeds", intro)
        + "\n## Runs\n\n"
        + links
        + "\n"
    )


def pca_basis(reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and the top-2 principal directions ``(D, 2)`` of ``reference`` rows."""
    mean = reference.float().mean(0)
    _, _, v = torch.linalg.svd(reference.float() - mean, full_matrices=False)
    return mean, v[:2].T


def project_2d(embeddings: dict[str, torch.Tensor], reference: str = "new") -> dict[str, torch.Tensor]:
    """Every embedding set projected onto the principal plane of ``embeddings[reference]``.

    One shared plane shows whether transformed gallery points land where the new model
    puts the same images (they should) and where raw old embeddings land (anywhere).
    """
    mean, basis = pca_basis(embeddings[reference])
    return {name: (x.float() - mean) @ basis for name, x in embeddings.items()}


def _projection_index(labels: torch.Tensor, limit: int = 2000, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(labels.shape[0], generator=generator)[:limit].sort().values


def write_artifacts(run_dir: RunDir, config, outcome, data: FCTData) -> None:
    """The ``summary`` results section, ``embeddings.safetensors`` (for the page) and the charts."""
    from playground.fct.pipeline import CASES
    from playground.fct.results import SUMMARY  # results.py reads runs back (and imports this module)

    emb, test = outcome.embeddings, data.test
    shown = _projection_index(test.labels)
    names = {"new": "new", "old": "old_stored", "fct": "fct", "fct_noside": "fct_noside", "bct": "bct"}
    coords = project_2d({name: emb[key][shown] for name, key in names.items()})
    tensors = {name: emb[key].half() for name, key in names.items()}
    tensors |= {f"projection_{name}": value for name, value in coords.items()}
    tensors |= {"labels": test.labels, "projection_index": shown}
    if test.images.numel() <= 64_000_000:  # keep thumbnails for the page's neighbour view
        tensors["images"] = (test.images * 255).round().to(torch.uint8)
    save_checkpoint(run_dir.path / "embeddings.safetensors", tensors, {"classes": test.classes})
    run_dir.write_result(
        SUMMARY,
        {
            "description": data.description,
            "classes": test.classes,
            "cases": outcome.retrieval,
            "sweep": outcome.sweep,
            "cost": outcome.cost,
            "accuracy": outcome.accuracy,
            "transform_loss": outcome.models.transform_loss,
        },
    )
    rows = [{"case": case, **outcome.retrieval[case]} for case in CASES]
    projection = {name: value.tolist() for name, value in coords.items()}
    for chart in (
        compatibility_chart(rows),
        projection_chart(projection, test.labels[shown].tolist(), test.classes),
        tradeoff_chart(outcome.sweep, config.side_info.dim, outcome.retrieval["new-new"]["mAP"]),
    ):
        run_dir.save_chart(chart)
    upgrade_report.write(run_dir, outcome.upgrade)
