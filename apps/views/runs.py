"""Runs: every run under the runs root with its status, then the shipped reference runs; one run opened.

The table lists the user's runs (newest first), then the reference runs (the figures the README
quotes). Its ``status`` column says what each run is doing: ``complete in 3 min 12 s``, ``running:
train · stage 2 of 5 · 40% ...``, ``failed: <the error>`` or ``interrupted: <why>``; only complete runs
show numbers. While a run is running the table redraws itself every :data:`REFRESH` seconds.

Metric columns are grouped by technique, the technique of the newest run first; each technique shows
its headline numbers (the registry's ``Technique.headlines``, else its first numbers in
:func:`metric_order`). Every number of a run is on its Metrics tab, headline first, then the long
tail (per-class numbers last).
"""

import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st
from common import show_error, sidebar_settings

from playground.core.registry import TECHNIQUES, headline_names
from playground.core.runs import RunInfo, compare_runs, format_number, list_runs, load_run, reference_root
from playground.core.status import RunStatus
from playground.errors import PlaygroundError
from playground.sweep.runner import SweepSummary, list_sweeps

IMAGE_LINE = re.compile(r"^\s*!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)\)\s*$")
HEADLINE_COUNT = 4  # metric columns per technique in the table
REFRESH = 3.0  # seconds between redraws while a run is running
SPLIT_ORDER = {"test": 0, "": 1, "val": 2}  # then the rest (train, test_corrupted, ...)


# --------------------------------------------------------------------- which runs, in which order


def all_runs(root: Path) -> list[RunInfo]:
    """The user's runs under ``root`` (newest first), then the reference runs not shadowed by a run of the
    same name."""
    mine = list_runs(root)
    names = {info.name for info in mine}
    return mine + [info for info in list_runs(reference_root()) if info.name not in names]


def metric_order(info: RunInfo) -> list[str]:
    """A run's metric names (no ``:std``), headline first (the registry's ``Technique.headlines``), then
    the long tail: the test split first, fewer slashes first, per-class numbers last, else as written."""
    records = info.measured.records()
    headline = headline_names(info.experiment, [r.name for r in records])
    tail = sorted(
        (r for r in records if r.name not in headline),
        key=lambda r: ("class_name" in r.tags, SPLIT_ORDER.get(r.split, 3), r.name.count("/")),
    )
    return headline + [r.name for r in tail]


def table_columns(runs: list[RunInfo], states: dict[Path, RunStatus]) -> list[str]:
    """The metric columns: per technique, in the order of its newest run, the first
    :data:`HEADLINE_COUNT` of :func:`metric_order` over its complete runs."""
    columns: list[str] = []
    techniques = list(dict.fromkeys(info.experiment for info in runs))
    for technique in techniques:
        complete = [r for r in runs if r.experiment == technique and states[r.path].state == "complete"]
        names = list(dict.fromkeys(name for info in complete for name in metric_order(info)))
        headline = headline_names(technique, names)
        ranked = headline + [n for n in names if n not in headline]
        columns += [n for n in ranked[:HEADLINE_COUNT] if n not in columns]
    return columns


# --------------------------------------------------------------------- the table


def started(info: RunInfo, status: RunStatus) -> str:
    moment = status.started or info.path.stat().st_mtime  # runs before status.json: when it was written
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M")


def runs_frame(runs: list[RunInfo], states: dict[Path, RunStatus]) -> pd.DataFrame:
    """One row per run: name, yours or reference, technique, status, start; the numbers of complete runs."""
    columns = table_columns(runs, states)
    rows = []
    for info in runs:
        status = states[info.path]
        complete = status.state == "complete"
        rows.append(
            {
                "run": info.name,
                "source": "reference" if info.reference else "yours",
                "technique": info.experiment,
                "status": status.describe(),
                "started": started(info, status),
                **{name: info.metrics.get(name) if complete else None for name in columns},
            }
        )
    return pd.DataFrame(rows, columns=["run", "source", "technique", "status", "started", *columns])


def draw_table(root: Path, running: set[Path]) -> None:
    """The runs table; redrawn every :data:`REFRESH` s while ``running`` (the runs that were running when
    the page was drawn) run. When one of them ends or another starts, the whole page is drawn again."""
    try:
        runs = all_runs(root)
    except (PlaygroundError, OSError, ValueError, TypeError) as err:
        show_error(err)
        return
    states = {info.path: info.status for info in runs}
    if running and {p for p, s in states.items() if s.state == "running"} != running:
        st.rerun(scope="app")
    frame = runs_frame(runs, states)
    metrics = list(frame.columns[5:])
    st.dataframe(
        frame.style.format(format_number, subset=metrics),
        hide_index=True,
        placeholder="–",  # a number the run does not have
        width="stretch",
        column_config={"status": st.column_config.TextColumn(width="medium")},
    )
    notes = ["Numbers: each technique's headline, the technique of the newest run first."] if metrics else []
    if running:
        notes.append(f"Refreshes every {REFRESH:g} s while a run is running.")
    if notes:
        st.caption(" ".join(notes))


def empty_state(root: Path, references: int) -> None:
    """No runs of the user's yet: how to make one, with a link to every technique's page."""
    text = (
        f"No runs under `{root}` yet. Open a technique and press its **Run** button (the run goes on in "
        "the background), or from a terminal: `playground run recipes/classify_fashion.toml --preset quick`."
    )
    if references:
        text += (
            f"\n\nMeanwhile, the {references} **reference run{'s' * (references != 1)}** below "
            f"{'hold' if references != 1 else 'holds'} the figures the README quotes."
        )
    st.info(text, icon=":material/info:")
    columns = st.columns(3)
    for index, technique in enumerate(TECHNIQUES):
        columns[index % 3].page_link(technique.page, label=technique.title, icon=technique.icon)


# --------------------------------------------------------------------- one run


def render_report(info: RunInfo) -> set[Path]:
    """The report's Markdown with its image links drawn by ``st.image``; returns the plots shown."""
    shown, chunk = set(), []
    for line in info.report.splitlines():
        match = IMAGE_LINE.match(line)
        if not match:
            chunk.append("##" + line if line.startswith("#") else line)  # headings two levels down
            continue
        st.markdown("\n".join(chunk))
        chunk = []
        path = info.path / match["target"]
        if path.is_file() and path.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".svg"):
            st.image(str(path), caption=match["alt"] or path.name, width=720)
            shown.add(path)
        else:
            st.caption(f"({match['alt'] or match['target']}: {match['target']} is not in the run directory)")
    st.markdown("\n".join(chunk))
    return shown


def metrics_frame(info: RunInfo) -> pd.DataFrame:
    """Every number of the run, headline first (a multi-seed run's ``:std`` beside its mean)."""
    rows = []
    for name in metric_order(info):
        std = info.metrics.get(name + ":std")
        row = {"metric": name, "value": info.metrics[name], "unit": info.units.get(name, "")}
        rows.append(row | ({"std over seeds": std} if std is not None else {}))
    return pd.DataFrame(rows)


def folder_frame(path: Path) -> pd.DataFrame:
    """What a run folder holds: each entry's name, size and when it was written."""
    rows = []
    for entry in sorted(path.iterdir()):
        stat = entry.stat()
        size = f"{sum(1 for _ in entry.iterdir())} entries" if entry.is_dir() else f"{stat.st_size:,} bytes"
        when = datetime.fromtimestamp(stat.st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        rows.append({"name": entry.name + ("/" if entry.is_dir() else ""), "size": size, "written": when})
    return pd.DataFrame(rows, columns=["name", "size", "written"])


def status_line(info: RunInfo, was: str) -> None:
    """The run's status above its report; redrawn every :data:`REFRESH` s while it runs (when it ends,
    the page is drawn again). ``was``: its state when the page was drawn."""
    status = info.status
    if status.state != was:
        st.rerun(scope="app")
    line = status.describe().splitlines()[0]
    if status.state == "complete":
        st.success(line, icon=":material/check_circle:")
    elif status.state == "running":
        fraction = status.progress.get("fraction")
        st.info(line, icon=":material/autorenew:")
        if fraction is not None:
            st.progress(float(fraction))
    elif status.state == "failed":
        st.error(line, icon=":material/error:")
    else:
        st.warning(line, icon=":material/warning:")


NO_REPORT = {
    "running": "The report is written when the run completes.",
    "failed": "The run failed before writing its report.",
    "interrupted": "The run stopped before writing its report.",
    "complete": "This run has no report.",
}


def open_run(info: RunInfo) -> None:
    state = info.status.state
    where = "a reference run shipped with the playground" if info.reference else "run directory"
    st.caption(f"{where.capitalize()}: `{info.path}`")
    st.fragment(run_every=REFRESH if state == "running" else None)(status_line)(info, state)
    if state in ("failed", "interrupted"):
        st.markdown("**What the run folder holds**")
        st.dataframe(folder_frame(info.path), hide_index=True, width="stretch")
    report_tab, metrics_tab, config_tab = st.tabs(["Report", "Metrics", "Config"])
    with report_tab:
        shown = render_report(info) if info.report else set()
        if not info.report:
            st.info(NO_REPORT[state])
        for plot in info.plots:
            if plot not in shown:
                st.image(str(plot), caption=plot.name, width=720)
    with metrics_tab:
        if info.metrics:
            st.dataframe(metrics_frame(info), hide_index=True, width="stretch")
        else:
            st.info("No metrics were written for this run.")
    with config_tab:
        config = info.path / "config.toml"
        st.code(
            config.read_text(encoding="utf-8") if config.is_file() else "# no config.toml", language="toml"
        )


# --------------------------------------------------------------------- sweeps


def sweeps_frame(sweeps: list[SweepSummary]) -> pd.DataFrame:
    """One row per sweep folder: its trials done and failed, and whether its report is written."""
    rows = [
        {
            "sweep": s.path.name,
            "trials done": s.done,
            "failed": s.failed,
            "status": "complete" if s.complete else "unfinished (rerun the same command to go on)",
        }
        for s in sweeps
    ]
    return pd.DataFrame(rows, columns=["sweep", "trials done", "failed", "status"])


def open_sweep(sweep: SweepSummary) -> None:
    """A sweep's folder, its state and its report (the table over its points and the plot)."""
    st.caption(f"Sweep folder: `{sweep.path}`")
    counts = sweep.counts()
    if sweep.complete:
        st.success(f"complete: {counts}", icon=":material/check_circle:")
    else:
        st.warning(f"unfinished: {counts}; its report is written when it ends", icon=":material/warning:")
    info = load_run(sweep.path)
    if info.report:
        render_report(info)


# --------------------------------------------------------------------- several runs


def compare(runs: list[RunInfo]) -> None:
    """Metrics of several complete runs side by side, and a chart of the fractions among them."""
    labels = {r.name: f"{r.name} (reference)" if r.reference else r.name for r in runs}
    chosen = st.multiselect(
        "Compare runs",
        list(labels),
        default=list(labels)[:2],
        format_func=labels.get,
        key="runs_compare",
        help="The numbers the chosen complete runs share, side by side",
    )
    if len(chosen) < 2:
        st.caption("Choose two or more runs to compare them.")
        return
    picked = [r for r in runs if r.name in chosen]
    table = compare_runs(picked)
    order = [name for info in picked for name in metric_order(info) if name in table]
    frame = pd.DataFrame(table).T.reindex(index=list(dict.fromkeys(order)), columns=chosen)
    st.dataframe(frame, width="stretch")
    units = {name: unit for r in runs for name, unit in r.units.items()}
    fractions = [name for name in frame.index if units.get(name) == "fraction"]
    if fractions:
        long = frame.loc[fractions].reset_index(names="metric").melt(id_vars="metric", var_name="run")
        figure = px.bar(
            long, x="metric", y="value", color="run", barmode="group", range_y=[0, 1], title="Rates by run"
        )
        figure.update_layout(height=380, margin=dict(t=40, b=10, l=10, r=10))
        st.plotly_chart(figure, width="stretch")


settings = sidebar_settings()
st.title("Runs")
root = Path(settings.runs_root).expanduser()
try:
    runs = all_runs(root)
    sweeps = list_sweeps(root)
except (PlaygroundError, OSError, ValueError, TypeError) as err:
    show_error(err)
    st.stop()
states = {info.path: info.status.state for info in runs}
mine = sum(not info.reference for info in runs)
if not mine and not sweeps:
    empty_state(root, len(runs))
    if not runs:
        st.stop()
else:
    references = len(runs) - mine
    swept = f" and {len(sweeps)} sweep{'s' * (len(sweeps) != 1)}" if sweeps else ""
    st.caption(
        f"{mine} run{'s' * (mine != 1)}{swept} under `{root}`, newest first"
        + (f", then {references} reference run{'s' * (references != 1)}." if references else ".")
    )
running = {path for path, state in states.items() if state == "running"}
if runs:
    st.fragment(run_every=REFRESH if running else None)(draw_table)(root, running)
if sweeps:
    st.markdown("**Sweeps** (`playground sweep`; each trial is a run inside its folder)")
    st.dataframe(sweeps_frame(sweeps), hide_index=True, width="stretch")
complete = [info for info in runs if states[info.path] == "complete"]
if complete:
    with st.expander("Compare runs", expanded=False):
        compare(complete)
by_name: dict[str, RunInfo | SweepSummary] = {info.name: info for info in runs if not info.reference}
by_name |= {sweep.path.name: sweep for sweep in sweeps if sweep.path.name not in by_name}
by_name |= {info.name: info for info in runs if info.reference and info.name not in by_name}


def choice_label(name: str) -> str:
    item = by_name[name]
    if isinstance(item, SweepSummary):
        return f"{name} (sweep)"
    return f"{name} (reference)" if item.reference else name


chosen = by_name[st.selectbox("Open a run", list(by_name), format_func=choice_label, key="runs_open")]
if isinstance(chosen, SweepSummary):
    open_sweep(chosen)
else:
    open_run(chosen)
