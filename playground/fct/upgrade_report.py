"""The upgrade study's metrics, report section and results (:mod:`playground.fct.upgrade`).

Metric names: ``upgrade/<policy>/<measure>`` (``top1``, ``mAP``, ``share_of_reembed``, and the costs
``gallery_macs``, ``query_macs``, ``seconds_per_10k``, ``bytes_per_image``, ``paired_images``);
``adapters/<policy>/n<paired>/mAP`` and ``.../share_of_reembed``; ``backfill_curve/<order>/area`` for
h with side-info and ``backfill_curve_noside/<order>/area`` without, each with ``gain_over_random``;
``edges/<policy>/step<k>/mAP`` while edge galleries upgrade one by one, and each edge's cost.
"""

from __future__ import annotations

from playground.core.runs import Metrics, RunDir, markdown_table
from playground.core.seeds import metric_cell
from playground.fct.backfill_order import USABLE_ORDERS
from playground.fct.charts import ORDER_NAMES, backfill_chart, edges_chart, paired_chart

UPGRADE = "upgrade"  # the results.json section
SCORES = ("top1", "mAP", "share_of_reembed")
COSTS = {
    "gallery_macs": "MACs",
    "query_macs": "MACs",
    "seconds_per_10k": "s/10k images",
    "bytes_per_image": "bytes",
    "paired_images": "images",
}
CURVES = {"side": "backfill_curve", "noside": "backfill_curve_noside"}
POLICY_COLUMNS = {  # the policy table: field -> column title (the report and the page)
    "policy": "policy",
    "top1": "top-1 (%)",
    "mAP": "mAP (%)",
    "share_of_reembed": "share of re-embedding mAP (%)",
    "gallery_macs": "MACs per gallery image",
    "query_macs": "extra MACs per query",
    "seconds_per_10k": "s per 10k gallery images",
    "bytes_per_image": "bytes stored per image",
    "paired_images": "paired images",
}
POLICY_NAMES = {
    "reembed": "full re-embedding",
    "fct": "FCT, h(old, side-info)",
    "fct_noside": "FCT without side-info",
    "bct": "BCT (new model trained for the old gallery)",
    "none": "no upgrade (new queries, old gallery)",
}


def add_metrics(metrics: Metrics, outcome) -> None:
    """The study's records, tagged with ``policy``/``order`` so readers never parse names."""
    for row in outcome.policies:
        policy = row["policy"]
        for key in SCORES:
            metrics.add(f"upgrade/{policy}/{key}", row[key], "fraction", "test", policy=policy, measure=key)
        for key, unit in COSTS.items():
            metrics.add(f"upgrade/{policy}/{key}", row[key], unit, policy=policy, measure=key)
    for row in outcome.paired:
        policy, paired = row["policy"], row["paired_images"]
        for key in ("mAP", "share_of_reembed"):
            metrics.add(
                f"adapters/{policy}/n{paired}/{key}",
                row[key],
                "fraction",
                "test",
                adapter=policy,
                paired_images=paired,
                measure=key,
            )
    for transformation, areas in outcome.areas.items():
        prefix = CURVES[transformation]
        for order, area in areas.items():
            tags = dict(order=order, transformation=transformation)
            metrics.add(f"{prefix}/{order}/area", area, "mAP points", "test", **tags, measure="area")
            if "random" in areas:
                gain = area - areas["random"]
                metrics.add(
                    f"{prefix}/{order}/gain_over_random", gain, "mAP points", "test", **tags, measure="gain"
                )
        usable = [areas[o] for o in USABLE_ORDERS if o in areas]
        if usable and "random" in areas:
            best = max(usable) - areas["random"]
            metrics.add(
                f"{prefix}/best_gain_over_random", best, "mAP points", "test", transformation=transformation
            )
    _add_edge_metrics(metrics, outcome.edges)


def _add_edge_metrics(metrics: Metrics, study: dict) -> None:
    for policy, maps in study.get("maps", {}).items():
        for step, value in enumerate(maps):
            name = f"edges/{policy}/step{step}/mAP"
            metrics.add(name, value, "fraction", "test", edge_policy=policy, step=step, measure="mAP")
        metrics.add(f"edges/{policy}/mean_mAP", sum(maps) / len(maps), "fraction", "test", edge_policy=policy)
    costs = study.get("costs", [])
    for key, unit in (
        ("transform_s", "s"),
        ("reembed_s", "s"),
        ("transform_macs", "MACs"),
        ("reembed_macs", "MACs"),
    ):
        if costs:
            metrics.add(f"edges/{key}_per_edge", sum(c[key] for c in costs) / len(costs), unit)


def _names(metrics: Metrics, tag: str, **tags) -> list[str]:
    return list(dict.fromkeys(str(r.tags[tag]) for r in metrics.select(**{tag: ...}, **tags)))


def section(metrics: Metrics) -> str:
    """The report's upgrade section, from the metrics alone (so a multi-seed parent prints mean ± std)."""
    values = metrics.values
    policies = _names(metrics, "policy")
    if not policies:
        return ""
    pct = lambda name: metric_cell(values, name, digits=1, scale=100)  # noqa: E731
    num = lambda name: metric_cell(values, name, digits=3)  # noqa: E731
    rows = [
        [
            POLICY_NAMES.get(p, p.replace("_", " ")),
            pct(f"upgrade/{p}/top1"),
            pct(f"upgrade/{p}/mAP"),
            pct(f"upgrade/{p}/share_of_reembed"),
            f"{values[f'upgrade/{p}/gallery_macs']:,.0f}",
            f"{values[f'upgrade/{p}/query_macs']:,.0f}",
            num(f"upgrade/{p}/seconds_per_10k"),
            f"{values[f'upgrade/{p}/bytes_per_image']:.0f}",
            f"{values[f'upgrade/{p}/paired_images']:,.0f}",
        ]
        for p in policies
    ]
    header = list(POLICY_COLUMNS.values())
    parts = [
        "## Upgrade policies side by side",
        "The same queries for every row (new model; mapped into the old space by a query-side adapter). "
        "Adapters (`<map>_query`: new queries into the old space; `<map>_gallery`: stored old vectors into "
        "the new space) are fitted on the largest paired set; an orthogonal map scores the same both ways, "
        "as distances are kept.",
        markdown_table(header, rows),
        "![adapters](adapters_paired.png)" if _names(metrics, "adapter") else "",
    ]
    for transformation in CURVES:
        parts += _curve_section(metrics, transformation)
    parts += _edges_section(metrics)
    if any(_names(metrics, "order", transformation=t) for t in CURVES):
        parts.append("![backfilling curves](backfill_curves.png)")
    return "\n\n".join(part for part in parts if part)


def _curve_section(metrics: Metrics, transformation: str) -> list[str]:
    """The areas of one transformation's backfilling curves, and what the best order gains."""
    values, prefix = metrics.values, CURVES[transformation]
    orders = _names(metrics, "order", transformation=transformation)
    if not orders:
        return []
    num = lambda name: metric_cell(values, name, digits=3)  # noqa: E731
    rows = [
        [ORDER_NAMES.get(o, o), num(f"{prefix}/{o}/area"), num(f"{prefix}/{o}/gain_over_random")]
        for o in orders
    ]
    parts = [
        f"### Partial backfill, {'with' if transformation == 'side' else 'without'} side-info",
        markdown_table(["order", "area under the backfilling curve (mAP points)", "gain over random"], rows),
    ]
    if f"{prefix}/best_gain_over_random" in values:
        parts.append(
            f"The best usable order gains {num(f'{prefix}/best_gain_over_random')} mAP points of area over "
            "random; the oracle, which knows h's true error, shows what any order could gain here "
            f"({num(f'{prefix}/oracle/gain_over_random')})."
        )
    return parts


def _edges_section(metrics: Metrics) -> list[str]:
    values = metrics.values
    steps = sorted({int(r.tags["step"]) for r in metrics.select(edge_policy=..., step=...)})
    if not steps:
        return []
    pct = lambda name: metric_cell(values, name, digits=1, scale=100)  # noqa: E731
    policies = _names(metrics, "edge_policy")
    rows = [[step, *(pct(f"edges/{p}/step{step}/mAP") for p in policies)] for step in steps]
    per_edge = {key: values[f"edges/{key}_per_edge"] for key in ("transform_s", "reembed_s")}
    macs = {key: values[f"edges/{key}_per_edge"] for key in ("transform_macs", "reembed_macs")}
    cost = [
        f"{per_edge['transform_s']:.3g} s and {macs['transform_macs']:,.0f} MACs by h against "
        f"{per_edge['reembed_s']:.3g} s and {macs['reembed_macs']:,.0f} MACs re-embedding"
    ]
    return [
        f"### Edge galleries upgrading one by one ({steps[-1]} edges, mAP %)",
        "Step k: edges 0..k-1 run the new model. `fct`/`reembed`: each query searches the edges in its own "
        "space (the others' items rank last); `dual`: upgraded edges keep their old vectors and every query "
        "the old model, until the last edge upgrades.",
        markdown_table(["edges upgraded", *policies], rows),
        f"Each edge's upgrade, on average: {cost[0]}.",
        "![edges](edges.png)",
    ]


def write(run_dir: RunDir, outcome) -> None:
    """The ``upgrade`` results section and the two charts."""
    run_dir.write_result(
        UPGRADE,
        {
            "policies": outcome.policies,
            "paired": outcome.paired,
            "fractions": outcome.fractions,
            "curves": outcome.curves,
            "areas": outcome.areas,
            "edges": outcome.edges,
        },
    )
    for chart in charts(outcome.__dict__):
        run_dir.save_chart(chart)


def charts(study: dict) -> list:
    """The backfilling curves and the adapters against paired images, from an ``upgrade`` section."""
    out = []
    if study.get("curves"):
        out.append(backfill_chart(study["fractions"], study["curves"], study["areas"]))
    if study.get("paired"):
        fct = next((row for row in study["policies"] if row["policy"] == "fct"), None)
        out.append(paired_chart(study["paired"], fct["share_of_reembed"] if fct else None))
    if study.get("edges", {}).get("maps"):
        out.append(edges_chart(study["edges"]["maps"]))
    return out
