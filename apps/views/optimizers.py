"""Optimizers: trajectories on 2-D test functions, step by step, and the training curves of a run.

Widgets -> :func:`playground.optimizers.functions.compare` (the written-out optimizers on a
2-D function) -> the report's trajectory chart up to the chosen step, with ▶ Play frames built from
the same chart's paths (:mod:`playground.optimizers.charts`); below, the report's curves chart of an
optimizers run (:func:`playground.optimizers.curves.load_curves`) and a button that runs the quick
preset.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from background import follow_job, start_job
from charts import plotly_figure, show_chart
from common import complete_runs, preset_config, run_select, show_error, sidebar_settings

from playground.core.runs import load_run
from playground.core.seeds import mean_std_cell
from playground.errors import PlaygroundError
from playground.optimizers import LABELS, OPTIMIZERS
from playground.optimizers.charts import curves_chart, log_epochs_by_default, path_traces, trajectory_chart
from playground.optimizers.curves import find_runs, load_curves
from playground.optimizers.functions import FUNCTIONS, compare, get_function, suggested_lr

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "optimizers_fashion.toml"
DEFAULT_CHOICE = ["gd", "adagrad", "rmsprop", "adam", "adadelta"]
MAX_FRAMES = 60


# --------------------------------------------------------------------- 2-D trajectories


def reset_lrs() -> None:
    """The function changed: every learning rate back to its suggestion for that function."""
    for name in OPTIMIZERS:
        st.session_state[f"opt_lr_{name}"] = suggested_lr(st.session_state.opt_function, name)


def draw_widgets() -> dict:
    st.session_state.setdefault("opt_function", "himmelblau")
    for name in OPTIMIZERS:
        st.session_state.setdefault(f"opt_lr_{name}", suggested_lr(st.session_state.opt_function, name))
    top = st.columns([2, 3, 1, 1])
    top[0].selectbox("Test function", list(FUNCTIONS), key="opt_function", on_change=reset_lrs)
    chosen = top[1].multiselect(
        "Optimizers", list(OPTIMIZERS), default=DEFAULT_CHOICE, key="opt_optimizers", format_func=LABELS.get
    )
    steps = top[2].number_input("Steps", min_value=1, max_value=2000, value=200, step=50, key="opt_steps")
    noise = top[3].number_input(
        "Gradient noise σ",
        min_value=0.0,
        max_value=100.0,
        value=0.0,
        step=0.5,
        key="opt_noise",
        help="Per-sample gradient noise: SGD sees σ, mini-batch methods "
        "σ/√32, GD none. At 0, GD, SGD and mini-batch SGD take the same path.",
    )
    options = {}
    if st.session_state.opt_function == "quadratic":
        left, right = st.columns(2)
        options["condition"] = left.number_input(
            "Condition number κ", min_value=1.0, max_value=1e4, value=10.0, key="opt_condition"
        )
        options["angle"] = right.slider(
            "Rotation (degrees)",
            0,
            90,
            0,
            key="opt_angle",
            help="Per-coordinate methods undo the conditioning only at 0°",
        )
    cells = st.columns(max(1, len(chosen)))
    lrs = {
        name: cell.number_input(
            f"lr {LABELS[name]}", min_value=1e-6, max_value=100.0, format="%.4g", key=f"opt_lr_{name}"
        )
        for cell, name in zip(cells, chosen)
    }
    return {
        "function": st.session_state.opt_function,
        "options": options,
        "lrs": lrs,
        "steps": int(steps),
        "noise": float(noise),
    }


@st.cache_data(show_spinner=False, max_entries=32)
def cached_paths(function: str, options: tuple, lrs: tuple, steps: int, noise: float, seed: int):
    return compare(get_function(function, **dict(options)), dict(lrs), steps, noise=noise, seed=seed)


def play_frames(paths, first: int) -> list[go.Frame]:
    """Frames of the paths from step 0 to the end (at most MAX_FRAMES): the x and y of the chart's
    path traces (:func:`~playground.optimizers.charts.path_traces`), plotted from index ``first`` on."""
    steps = max(1, max((len(p.points) - 1 for p in paths), default=1))
    frame_steps = sorted(set(np.linspace(0, steps, min(MAX_FRAMES, steps + 1)).round().astype(int).tolist()))
    frames = []
    for step in frame_steps:
        moving = [go.Scatter(x=trace.x, y=trace.y) for trace in path_traces(paths, step)]
        frames.append(go.Frame(data=moving, name=str(step), traces=list(range(first, first + len(moving)))))
    return frames


def play_menu() -> dict:
    """The ▶ Play / ❚❚ Pause buttons."""
    play = dict(
        label="▶ Play",
        method="animate",
        args=[
            None,
            dict(frame=dict(duration=80, redraw=False), fromcurrent=True, transition=dict(duration=0)),
        ],
    )
    pause = dict(
        label="❚❚ Pause", method="animate", args=[[None], dict(mode="immediate", frame=dict(duration=0))]
    )
    return dict(
        type="buttons",
        direction="left",
        x=1.0,
        y=1.02,
        xanchor="right",
        yanchor="bottom",
        buttons=[play, pause],
    )


def trajectory_figure(fn, paths, step: int) -> go.Figure:
    """The report's trajectory chart at ``step``, animated: its path traces come last, one plotted
    series each, so the frames replace the last ones."""
    figure = plotly_figure(trajectory_chart(fn, paths, step))
    moving = len(path_traces(paths, 0))
    figure.frames = play_frames(paths, len(figure.data) - moving)
    figure.update_layout(updatemenus=[play_menu()])
    return figure


def step_table(fn, paths, step: int) -> pd.DataFrame:
    return pd.DataFrame(
        [{"optimizer": LABELS[p.optimizer], "lr": p.lr, **p.state_at(step, fn)} for p in paths]
    )


def trajectories_section(seed: int) -> None:
    values = draw_widgets()
    if not values["lrs"]:
        st.info("Pick at least one optimizer.")
        return
    try:
        fn = get_function(values["function"], **values["options"])
        paths = cached_paths(
            values["function"],
            tuple(values["options"].items()),
            tuple(values["lrs"].items()),
            values["steps"],
            values["noise"],
            seed,
        )
    except PlaygroundError as err:
        show_error(err)
        return
    st.latex(fn.formula)
    step = st.slider(
        "Step",
        0,
        values["steps"],
        values["steps"],
        key="opt_step",
        help="Draw every path up to this step (or press ▶ Play on the chart)",
    )
    st.plotly_chart(trajectory_figure(fn, paths, step), width="stretch", key="opt_trajectory_chart")
    st.dataframe(
        step_table(fn, paths, step),
        hide_index=True,
        width="stretch",
        column_config={
            "x": st.column_config.NumberColumn(format="%.4f"),
            "y": st.column_config.NumberColumn(format="%.4f"),
            "f - f(min)": st.column_config.NumberColumn(format="%.3e"),
            "distance to nearest minimum": st.column_config.NumberColumn(format="%.3e"),
        },
    )


# --------------------------------------------------------------------- training curves of a run


def numbers_table(path: Path, names: list[str]) -> pd.DataFrame:
    metrics = load_run(path).metrics

    def cell(key: str) -> str:
        shared_count = key.endswith("/updates")  # every seed makes the same number of updates
        return mean_std_cell(metrics.get(key), metrics.get(f"{key}:std"), ".4g", shared=shared_count)

    columns = {
        "lr": "lr",
        "test accuracy": "test/accuracy",
        "final train loss": "train/final_loss",
        "updates": "train/updates",
        "seconds": "train/seconds",
    }
    return pd.DataFrame(
        [
            {"optimizer": LABELS[n], **{title: cell(f"optim/{n}/{key}") for title, key in columns.items()}}
            for n in names
        ]
    )


def curves_section(settings) -> None:
    st.caption(
        "`playground run recipes/optimizers_fashion.toml --preset quick` (add `--seeds 0,1,2` for mean ± std)"
    )
    if st.button("Run the quick preset", icon=":material/play_arrow:", key="opt_run_quick"):
        try:
            _, args = preset_config(RECIPE, "quick", [], settings)
        except PlaygroundError as err:
            show_error(err)
            return
        start_job(args, "Optimizers: quick", settings, "opt_run")
    follow_job(RECIPE, "opt_run", settings)
    root = Path(settings.runs_root).expanduser()
    shown, _ = complete_runs(find_runs, root)
    if not shown:
        st.info(
            f"No optimizers runs under `{root}` yet. "
            "Run the quick preset above (it goes on in the background)."
        )
        return
    chosen = run_select(shown, "opt_run", "Run")
    try:
        curves = load_curves(chosen)
    except PlaygroundError as err:
        show_error(err)
        return
    log_epochs = st.toggle(
        "Log epoch axis",
        value=log_epochs_by_default(curves),
        key="opt_log_epochs",
        help="GD runs many more passes than the rest: a log axis spreads the first few epochs",
    )
    show_chart(curves_chart(curves, log_epochs), key="opt_curves_chart")
    st.dataframe(numbers_table(chosen, list(curves)), hide_index=True, width="stretch")


settings = sidebar_settings()
st.title("Optimizers")
st.markdown(
    "Gradient descent, SGD, mini-batch SGD, Adagrad, RMSprop, Adam and AdaDelta, each written out as a "
    "`torch.optim.Optimizer` and checked against `torch.optim` to 1e-6. Pick a function, optimizers and "
    "learning rates, and follow the paths step by step."
)
trajectories_section(settings.seed)
st.header("Training the same small CNN")
curves_section(settings)
