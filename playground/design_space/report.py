"""The design-space study's charts and report: EDFs, error against each parameter, bootstrap ranges."""

from __future__ import annotations

from playground.core.charts import Chart, Panel, Trace
from playground.core.runs import Metrics, markdown_table
from playground.design_space.edf import edf_steps

PARAMETERS = {  # what the error is plotted against, per kind of space
    "anynet": ("flops", "depth", "width_last", "bottleneck", "group_width"),
    "regnet": ("flops", "depth", "w0", "wa", "wm", "bottleneck", "group_width"),
}


def _errors(models: list[dict]) -> list[float]:
    return [m["error"] for m in models if m["error"] is not None]


def edf_chart(trained: dict[str, list[dict]]) -> Chart:
    """The error EDF of every space, as the paper draws it (higher is better)."""
    traces = []
    for index, (space, models) in enumerate(trained.items()):
        if errors := _errors(models):
            x, y = edf_steps(errors)
            traces.append(Trace("line", f"{space} (n={len(errors)})", 100 * x, y, color=index))
    panel = Panel(traces, "Error EDFs", "test error (%)", "cumulative probability", y_range=(0, 1))
    return Chart("edf", [panel], title="Design spaces compared by their error distributions", columns=1)


def parameter_chart(trained: dict[str, list[dict]], ranges: dict) -> Chart | None:
    """Error against each parameter (one panel per parameter; every space a colour), with the
    bootstrap's 95% range of the best models' value drawn on RegNet's parameters."""
    panels = []
    names = list(
        dict.fromkeys(
            p for s in trained for p in PARAMETERS["regnet" if s.startswith("regnet") else "anynet"]
        )
    )
    for name in names:
        traces = []
        for index, (space, models) in enumerate(trained.items()):
            done = [m for m in models if m["error"] is not None and name in m["params"]]
            if done:
                traces.append(
                    Trace(
                        "scatter",
                        space,
                        [m["params"][name] for m in done],
                        [100 * m["error"] for m in done],
                        color=index,
                        size=5,
                    )
                )
        if not traces:
            continue
        lines = [
            (r["low"], f"{space.split('/')[0]} 2.5%")
            for space, r in ranges.items()
            if space.endswith("/" + name)
        ]
        lines += [(r["high"], "97.5%") for space, r in ranges.items() if space.endswith("/" + name)]
        panels.append(Panel(traces, name, name, "test error (%)", log_x=name == "flops", vlines=lines))
    return Chart("parameters", panels, title="Error against each parameter", columns=3) if panels else None


def charts(trained: dict[str, list[dict]], ranges: dict) -> list[Chart]:
    found = [edf_chart(trained), parameter_chart(trained, ranges)]
    return [chart for chart in found if chart is not None and chart.panels[0].traces]


TOLERANCE = 0.05  # "does not hurt": the EDF may lie this much below on average


def verdict(claim: str, gap: float, low: float | None, high: float | None) -> str:
    """Whether a claim holds on our data, judged by the gap's 95% interval when it is known.

    "A lies above B" holds when the whole interval is above 0; "A does not hurt" holds when the whole
    interval is above -:data:`TOLERANCE`; either fails when the whole interval is on the wrong side of
    0; otherwise the models are too few to tell (inconclusive)."""
    floor = 0.0 if "above" in claim else -TOLERANCE
    if low is None or high is None:  # a study from before the intervals: the point estimate
        return "holds" if gap > floor else "does not hold"
    if low > floor:
        return "holds"
    if high < 0:
        return "does not hold"
    return "inconclusive (the interval reaches both sides)"


def _claims(metrics: Metrics) -> list[str]:
    lines, values = [], metrics.values
    for name, claim in (
        ("edf_gap/regnety-anynetxa", "RegNetY's EDF lies above AnyNetXa's"),
        ("edf_gap/regnetx-anynetxa", "RegNetX's EDF lies above AnyNetXa's"),
        ("edf_gap/anynetxc-anynetxa", "sharing b and g does not hurt (AnyNetXc vs Xa)"),
        ("edf_gap/anynetxe-anynetxa", "rising widths and depths do not hurt (AnyNetXe vs Xa)"),
    ):
        if name not in values:
            continue
        gap, low, high = values[name], values.get(f"{name}/ci_low"), values.get(f"{name}/ci_high")
        interval = f" (95% bootstrap interval {low:+.3f} to {high:+.3f})" if low is not None else ""
        lines.append(
            f"- {claim}: mean EDF gap {gap:+.3f}{interval}, **{verdict(claim, gap, low, high)}** on our data"
        )
    if lines:
        lines += [
            "",
            f'The mean EDF gap is the average of F_A(e) − F_B(e) over the errors seen; "does not hurt" '
            f"allows A to lie {TOLERANCE} below on average.",
        ]
    return lines


def report(config, metrics: Metrics, trained: dict[str, list[dict]], ranges: dict) -> str:
    rows = []
    for space, models in trained.items():
        v = metrics.values
        rows.append(
            [
                space,
                f"{len(_errors(models))}/{len(models)}",
                *(
                    f"{100 * v[f'edf/{space}/{k}']:.2f}" if f"edf/{space}/{k}" in v else "–"
                    for k in ("error_p10", "error_median")
                ),
            ]
        )
    lines = [
        f"# Design spaces: {', '.join(trained)}",
        "",
        f"{config.models_per_space} models per space, {config.flops_low / 1e6:g}–{config.flops_high / 1e6:g} "
        f"M multiply-adds per 28×28 image, each trained by `{config.trial_recipe}` [{config.trial_preset}] "
        f"with {' '.join(config.trial_set)}.",
        "",
        markdown_table(["space", "trained", "error p10 (%)", "median error (%)"], rows),
        "",
        "![EDFs](edf.png)",
        "",
        "## The paper's claims on our data",
        "",
        *(_claims(metrics) or ["- (compare anynetxa with regnety, anynetxc or anynetxe to check them)"]),
    ]
    if ranges:
        lines += ["", "## Where the best models lie (empirical bootstrap, 95%)", ""]
        lines += [
            markdown_table(
                ["parameter", "2.5%", "median", "97.5%"],
                [[k, f"{r['low']:.3g}", f"{r['best']:.3g}", f"{r['high']:.3g}"] for k, r in ranges.items()],
            )
        ]
    lines += ["", "![parameters](parameters.png)"]
    return "\n".join(lines) + "\n"
