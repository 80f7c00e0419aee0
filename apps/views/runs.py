"""Runs: every past run under the runs root, and one run's report, metrics and plots."""

import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st
from common import show_error, sidebar_settings

from playground.core.runs import RunInfo, compare_runs, list_runs
from playground.errors import PlaygroundError

IMAGE_LINE = re.compile(r"^\s*!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)\)\s*$")
HEADLINE_COUNT = 4


def headline(info: RunInfo) -> dict[str, float]:
    """A run's top-level numbers (``test/accuracy``, not ``test/accuracy/bag`` or ``:std``), test first."""
    names = [n for n in info.metrics if n.count("/") <= 1 and not n.endswith(":std")]
    names.sort(key=lambda n: (not n.startswith("test/"), "accuracy" not in n))
    return {n: info.metrics[n] for n in names[:HEADLINE_COUNT]}


def runs_table(runs: list[RunInfo]) -> None:
    rows = [
        {
            "run": r.name,
            "experiment": r.experiment,
            "finished": datetime.fromtimestamp(r.path.stat().st_mtime).strftime("%Y-%m-%d %H:%M"),
            **{k: round(v, 4) for k, v in headline(r).items()},
        }
        for r in runs
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


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
    return pd.DataFrame(
        [
            {"metric": name, "value": value, "unit": info.units.get(name, "")}
            for name, value in info.metrics.items()
        ]
    )


def compare(runs: list[RunInfo]) -> None:
    """Metrics of several runs side by side, and a chart of the fractions among them."""
    chosen = st.multiselect(
        "Compare runs",
        [r.name for r in runs],
        default=[r.name for r in runs[:2]],
        key="runs_compare",
        help="Metrics the chosen runs share, side by side",
    )
    if len(chosen) < 2:
        st.caption("Choose two or more runs to compare them.")
        return
    table = compare_runs([r for r in runs if r.name in chosen])
    frame = pd.DataFrame(table).T.reindex(columns=chosen)
    st.dataframe(frame, width="stretch")
    units = {name: unit for r in runs for name, unit in r.units.items()}
    fractions = [name for name in table if units.get(name) == "fraction" and not name.endswith(":std")]
    if fractions:
        long = frame.loc[fractions].reset_index(names="metric").melt(id_vars="metric", var_name="run")
        figure = px.bar(
            long,
            x="metric",
            y="value",
            color="run",
            barmode="group",
            range_y=[0, 1],
            title="Rates (fractions) by run",
        )
        figure.update_layout(height=380, margin=dict(t=40, b=10, l=10, r=10))
        st.plotly_chart(figure, width="stretch")


def open_run(info: RunInfo) -> None:
    st.caption(f"Run directory: `{info.path}`")
    report_tab, metrics_tab, config_tab = st.tabs(["Report", "Metrics", "Config"])
    with report_tab:
        if info.report:
            shown = render_report(info)
        else:
            shown = set()
            st.info("This run has no report yet; it may still be running or have been interrupted.")
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


settings = sidebar_settings()
st.title("Runs")
root = Path(settings.runs_root).expanduser()
try:
    runs = list_runs(root)
except (PlaygroundError, OSError) as err:
    show_error(err)
    st.stop()
if not runs:
    st.info(
        f"No runs under `{root}` yet. Train one on the Classifier baseline page, or from a terminal:\n\n"
        "`playground run recipes/classify_fashion.toml --preset quick`"
    )
    st.page_link("views/classify.py", label="Open the Classifier baseline", icon=":material/category:")
    st.stop()
st.caption(f"{len(runs)} run{'s' if len(runs) != 1 else ''} under `{root}`, newest first.")
runs_table(runs)
with st.expander("Compare runs", expanded=False):
    compare(runs)
by_name = {r.name: r for r in runs}
names = list(by_name)
focus = st.session_state.get("runs_focus")  # the run the Classifier page made last
chosen = st.selectbox("Open a run", names, index=names.index(focus) if focus in names else 0, key="runs_open")
open_run(by_name[chosen])
