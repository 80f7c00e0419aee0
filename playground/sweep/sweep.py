"""A sweep over any recipe: run its trials, skip the ones a rerun already finished, gather one table,
one CSV and one plot in the sweep folder.

The sweep folder (``--out``, else ``<runs root>/sweep-<recipe>-<preset>``) holds ``trials.json``
(the ledger), a run folder per trial (``trial-<key>-<time>``), ``sweep.csv``, ``sweep.png``,
``metrics.json`` and ``report.md``.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.core.charts import Chart, Panel, Trace, save_png
from playground.core.config import load_recipe
from playground.core.paths import check_output_folder
from playground.core.progress import Progress, report
from playground.core.registry import headline_names
from playground.core.runner import config_from_recipe
from playground.core.runs import Metrics, RunDir, markdown_table, playground_home
from playground.core.seeds import mean_std_cell
from playground.errors import ConfigError
from playground.store_queries import spreadsheet_safe
from playground.sweep.runner import Ledger, TrialJob, local_outcomes, ray_outcomes, value_arg
from playground.sweep.space import Trial

BACKENDS = ("local", "ray")


@dataclass
class SweepResult:
    """What a sweep left: its folder, each trial's ledger entry (in trial order) and what it ran."""

    folder: Path
    entries: list[dict[str, Any]]
    ran: int
    skipped: int
    metrics: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] != "done"]


def sweep_folder(recipe: str | Path, preset: str | None, out: str | Path | None) -> Path:
    """``out``, else ``<runs root>/sweep-<recipe>-<preset>``: the same folder for the same sweep, so a
    rerun finds what finished. An existing file there is refused before any work."""
    folder = Path(out) if out else playground_home() / f"sweep-{Path(recipe).stem}-{preset or 'base'}"
    return check_output_folder(folder, "the sweep folder (--out)")


def run_sweep(
    recipe: str | Path,
    trials: Sequence[Trial],
    preset: str | None = "quick",
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    jobs: int = 1,
    backend: str = "local",
    address: str | None = None,
    metrics: Sequence[str] = (),
    progress: Progress = None,
) -> SweepResult:
    """Run every trial not finished before (``jobs`` at a time), then write the table, CSV and plot."""
    if backend not in BACKENDS or (address and backend != "ray"):
        raise ConfigError(
            f"backend must be one of {', '.join(BACKENDS)} (an --address needs ray), got {backend!r}"
        )
    if not trials:
        raise ConfigError("the sweep is empty: give --grid key=v1,v2 or --sample N with [sweep.ranges]")
    config_from_recipe(recipe, preset, overrides)  # the recipe and base values, checked before any work
    folder = sweep_folder(recipe, preset, out)
    folder.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(folder)
    context = json.dumps([Path(recipe).stem, preset, sorted(overrides)])
    keyed = {t.key(context): t for t in trials}
    todo = [key for key in keyed if not ledger.finished(key)]
    threads = 1 if jobs > 1 or backend == "ray" else 0
    jobs_ = [
        TrialJob(
            key,
            str(recipe),
            preset,
            (*overrides, *(value_arg(k, v) for k, v in keyed[key].values)),
            keyed[key].seed,
            str(folder),
            threads,
        )
        for key in todo
    ]
    outcomes = ray_outcomes(jobs_, jobs, address) if backend == "ray" else local_outcomes(jobs_, jobs)
    report(progress, "trials", len(keyed) - len(todo), len(keyed), message="finished before")
    for done, (job, outcome) in enumerate(outcomes, start=len(keyed) - len(todo) + 1):
        trial = keyed[job.key]
        ledger.record(job.key, {"values": trial.as_dict(), "seed": trial.seed, **outcome})
        report(progress, "trials", done, len(keyed), message=f"{trial.label()}: {outcome['status']}")
    entries = [{"key": key, **ledger.entries[key]} for key in keyed]
    result = SweepResult(folder, entries, len(todo), len(keyed) - len(todo))
    result.metrics = list(metrics) or _headlines(recipe, entries)
    write_outputs(result)
    return result


def _headlines(recipe: str | Path, entries: list[dict]) -> list[str]:
    names = next((e["metrics"] for e in entries if e["status"] == "done"), {})
    return headline_names(load_recipe(recipe).experiment, names)[:3] or sorted(names)[:3]


def points(result: SweepResult) -> list[tuple[dict[str, Any], list[dict]]]:
    """The distinct values swept, each with the entries of its seeds, in trial order."""
    grouped: dict[str, tuple[dict, list]] = {}
    for entry in result.entries:
        values = entry["values"]
        grouped.setdefault(json.dumps(values, sort_keys=True), (values, []))[1].append(entry)
    return list(grouped.values())


def _cell(entries: list[dict], name: str) -> str:
    values = [e["metrics"][name] for e in entries if e["status"] == "done" and name in e.get("metrics", {})]
    if not values:
        return "–"
    return mean_std_cell(
        statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, ".4g"
    )


def sweep_table(result: SweepResult) -> str:
    """One row per point swept: its values, its seeds done and failed, each metric's mean ± std."""
    keys = sorted({k for e in result.entries for k in e["values"]})
    rows = []
    for values, entries in points(result):
        done = sum(e["status"] == "done" for e in entries)
        rows.append(
            [
                *(values.get(k, "") for k in keys),
                f"{done}/{len(entries)}",
                *(_cell(entries, m) for m in result.metrics),
            ]
        )
    return markdown_table([*keys, "seeds done", *result.metrics], rows)


def write_outputs(result: SweepResult) -> None:
    """``sweep.csv``, ``sweep.png``, ``metrics.json`` and ``report.md`` in the sweep folder."""
    run = RunDir(result.folder)
    keys = sorted({k for e in result.entries for k in e["values"]})
    names = sorted({n for e in result.entries for n in e.get("metrics", {})})
    with (result.folder / "sweep.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "seed", "status", *keys, *names, "error", "run_dir"])
        for e in result.entries:
            row = [e["key"], e["seed"], e["status"], *(e["values"].get(k, "") for k in keys)]
            row += [e.get("metrics", {}).get(n, "") for n in names] + [
                e.get("error", ""),
                e.get("run_dir", ""),
            ]
            writer.writerow([spreadsheet_safe(v) for v in row])
    metrics = Metrics()
    metrics.add("sweep/trials", len(result.entries))
    metrics.add("sweep/failed", len(result.failed))
    run.write_metrics(metrics)
    chart = sweep_chart(result)
    if chart is not None:
        save_png(chart, result.folder / "sweep.png")
    run.write_report(sweep_report(result, chart is not None))


def sweep_chart(result: SweepResult) -> Chart | None:
    """The first metric against each swept key (one panel per key), every finished trial a point."""
    done = [e for e in result.entries if e["status"] == "done"]
    if not result.metrics or not done:
        return None
    metric = result.metrics[0]
    panels = []
    for key in sorted({k for e in done for k in e["values"]}):
        xs = [e["values"][key] for e in done if metric in e["metrics"]]
        ys = [e["metrics"][metric] for e in done if metric in e["metrics"]]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        log = numeric and min(xs) > 0 and max(xs) / min(xs) >= 100
        trace = Trace("scatter", metric, xs if numeric else [str(x) for x in xs], ys, legend=False)
        panels.append(Panel([trace], title=key, x_label=key, y_label=metric, log_x=log))
    return (
        Chart("sweep", panels, title=f"{metric} across the sweep", columns=min(3, len(panels)))
        if panels
        else None
    )


def sweep_report(result: SweepResult, has_chart: bool) -> str:
    lines = [
        f"# Sweep: {len(result.entries)} trials",
        "",
        f"{result.ran} run now, {result.skipped} finished before, {len(result.failed)} failed.",
        "",
        sweep_table(result),
    ]
    if has_chart:
        lines += ["", "![sweep](sweep.png)"]
    if result.failed:
        lines += ["", "## Failed trials", ""]
        lines += [
            f"- `{e['key']}` seed {e['seed']} {e['values']}: {e.get('error', '')}" for e in result.failed[:50]
        ]
    return "\n".join(lines) + "\n"
