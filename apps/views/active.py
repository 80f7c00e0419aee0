"""Active learning: run the loop and read its learning curves, policies and escalation report.

Widgets -> :func:`playground.active.experiment.run` (the preset from recipes/active_fashion.toml
with the changed fields as ``--set`` overrides) -> the report's charts (:mod:`playground.active.charts`)
of the run's curves (:func:`playground.active.results.load_curves`) and its metrics. The escalated
samples land in the annotation queue that the Annotate page works through: the run says which queue it
filled and with how many samples (:func:`playground.active.results.read_queue_fill`), linked to that page,
which links back here with ``?run=NAME`` to open the run that filled its queue.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from charts import show_chart
from common import PresetForm, choose_run, preset_run_button, recipe_values, show_error, sidebar_settings

from playground.active import report
from playground.active.acquisition import ACQUISITIONS
from playground.active.charts import escalation_chart, learning_curve_chart, policy_chart
from playground.active.results import (
    QueueFill,
    find_active_runs,
    load_curves,
    mean_route_counts,
    read_active_config,
    read_queue_fill,
)
from playground.core.config import load_recipe
from playground.core.runs import is_reference, load_run
from playground.errors import PlaygroundError

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "active_fashion.toml"
FIELDS = (
    "methods",
    "loop.initial",
    "loop.query",
    "loop.budget",
    "data.pool_limit",
    "target_accuracy",
    "escalation.alpha",
    "escalation.annotator_budget",
    "queue",
)
FORM = PresetForm("al", recipe_values(RECIPE, FIELDS), FIELDS)


# --------------------------------------------------------------------- a new run


def draw_widgets(presets: list[str]) -> dict:
    FORM.restore(presets)
    top = st.columns([1, 3, 1, 1])
    FORM.preset_select(
        top[0],
        presets,
        help="Starting values from recipes/active_fashion.toml (quick: about a minute on a CPU)",
    )
    top[1].multiselect("Acquisition strategies", list(ACQUISITIONS), key=FORM.key("methods"))
    top[2].number_input(
        "Target accuracy", min_value=0.05, max_value=0.99, step=0.01, key=FORM.key("target_accuracy")
    )
    top[3].text_input(
        "Annotation queue", key=FORM.key("queue"), help="Escalations go to this queue (empty: none)"
    )
    low = st.columns(6)
    low[0].number_input("Initial labels", min_value=1, step=10, key=FORM.key("loop.initial"))
    low[1].number_input("Labels per round", min_value=1, step=10, key=FORM.key("loop.query"))
    low[2].number_input("Label budget", min_value=1, step=100, key=FORM.key("loop.budget"))
    low[3].number_input(
        "Pool size", min_value=0, step=1000, key=FORM.key("data.pool_limit"), help="0: the whole training set"
    )
    low[4].number_input(
        "Auto-label error target α",
        min_value=0.001,
        max_value=0.5,
        step=0.01,
        key=FORM.key("escalation.alpha"),
        format="%.3f",
    )
    low[5].number_input(
        "Annotator budget per round", min_value=0, step=50, key=FORM.key("escalation.annotator_budget")
    )
    return FORM.values()


def new_experiment(settings) -> None:
    if not RECIPE.is_file():
        st.warning("No active-learning recipe found (expected recipes/active_fashion.toml).")
        return
    values = draw_widgets(list(load_recipe(RECIPE).presets))
    preset_run_button(
        RECIPE,
        FORM,
        values,
        settings,
        "al_run",
        "al_train",
        "Active learning",
        "add `--seeds 0,1,2 --jobs 3` for mean ± std curves",
    )


# --------------------------------------------------------------------- a finished run


def routes_table(escalation: list[dict]) -> pd.DataFrame:
    counts = mean_route_counts(escalation)
    return pd.DataFrame(
        {"route": list(counts), "samples (mean over seeds)": np.round(list(counts.values()), 1)}
    )


def show_queue_fill(fill: QueueFill, path: Path) -> None:
    """Which annotation queue the run filled, with how many samples, linked to the Annotate page; or why
    it filled none."""
    summary = report.queue_summary(fill)
    if not fill.sent:
        st.info(summary, icon=":material/inbox:")
        return
    if is_reference(path):
        summary += " A reference run filled the queue of the machine that made it: run it to fill yours."
    with st.container(horizontal=True, vertical_alignment="center"):
        st.markdown(f":material/inbox: {summary}")
        st.page_link(
            "views/annotate.py",
            label=f"Review queue '{fill.queue}'",
            icon=":material/rate_review:",
            query_params={"queue": fill.queue},
        )


def show_run(path: Path, config: dict) -> None:
    """The run's checks, the queue it filled, its curves and escalation; ``config`` is its ``[config]``
    table with old flat keys in their sections (:func:`~playground.active.results.read_active_config`)."""
    try:
        curves, metrics, fill = load_curves(path), load_run(path).metrics, read_queue_fill(path)
    except PlaygroundError as err:
        show_error(err)
        return
    target = config.get("target_accuracy", 0.8)
    strategies, policies = list(curves["strategies"]), list(curves["policies"])
    seeds = len(curves["escalation"])
    ratio = "mean_curve/labels_vs_random" if seeds > 1 else "labels_vs_random"
    budget = config.get("loop", {}).get("budget", 0)
    st.markdown("\n".join(report.claims(strategies, target, budget, metrics, ratio)))
    show_queue_fill(fill, path)
    tabs = st.tabs(["Learning curves", "Retraining policies", "Escalation"])
    with tabs[0]:
        show_chart(learning_curve_chart(curves["strategies"], target), key="al_curves")
        st.markdown(report.strategy_table(metrics, strategies, target))
    with tabs[1]:
        show_chart(policy_chart(curves["policies"]), key="al_policies")
        st.markdown(report.policy_table(metrics, policies))
    with tabs[2]:
        left, right = st.columns([3, 2])
        show_chart(escalation_chart(curves["escalation"][0], metrics), left, key="al_escalation")
        right.markdown(report.escalation_table(metrics))
        right.dataframe(routes_table(curves["escalation"]), hide_index=True)


settings = sidebar_settings()
st.title("Active learning")
st.markdown(
    "Label only what the model is unsure of. Each strategy (random, least confidence, margin, entropy, "
    "BALD with MC dropout) grows the labelled set from a balanced start; the curves show test accuracy "
    "against labels. Confident samples are auto-labelled under a threshold calibrated so that their error "
    "stays at or below α; uncertain and likely-OOD ones go to the annotators."
)
root = Path(settings.runs_root).expanduser()
if "run" in st.query_params:  # a link from the Annotate page to the run that filled its queue
    st.session_state["al_run"] = st.query_params.pop("run")
chosen = choose_run(
    find_active_runs,
    root,
    "al_run",
    "Active-learning run",
    f"No active-learning run under `{root}` yet. Run the quick preset above (about a minute on a "
    "CPU), or from a terminal:\n\n`playground run recipes/active_fashion.toml --preset quick`",
    new_experiment,
    settings,
)
try:
    run_config = read_active_config(chosen)
except PlaygroundError as err:
    show_error(err)
    st.stop()
show_run(chosen, run_config)
