"""Optimizers: trajectories on 2-D test functions, step by step, and the training curves of a run.

Widgets -> :func:`playground.optimizers.functions.compare` (the written-out optimizers on a
2-D function) -> a plotly contour with the paths; below, the curves of the latest optimizers
run (:func:`playground.optimizers.curves.load_curves`) and a button that runs the quick preset.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from common import run_experiment, show_error, sidebar_settings

from playground.core.runner import config_from_recipe
from playground.core.runs import load_run
from playground.core.seeds import mean_std_cell
from playground.errors import PlaygroundError
from playground.optimizers import COLORS, LABELS, OPTIMIZERS, experiment
from playground.optimizers.curves import find_runs, load_curves
from playground.optimizers.functions import FUNCTIONS, compare, get_function, suggested_lr

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "optimizers_fashion.toml"
DEFAULT_CHOICE = ["gd", "adagrad", "rmsprop", "adam", "adadelta"]
MAX_FRAMES = 60
MARGIN = dict(t=40, b=10, l=10, r=10)


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


def contour(fn) -> go.Contour:
    xs, ys, values = (t.numpy() for t in fn.display_grid(160))
    return go.Contour(
        x=xs,
        y=ys,
        z=values,
        colorscale="Blues",
        reversescale=True,
        showscale=False,
        opacity=0.75,
        ncontours=30,
        hoverinfo="skip",
        line=dict(width=0.5),
    )


def path_traces(paths, step: int) -> list[go.Scatter]:
    """For each optimizer: its path up to ``step`` and a marker where it is at ``step``."""
    traces = []
    for path in paths:
        shown = path.points[: min(step, path.last) + 1].numpy()
        name, color = LABELS[path.optimizer], COLORS[path.optimizer]
        traces.append(
            go.Scatter(
                x=shown[:, 0],
                y=shown[:, 1],
                mode="lines",
                name=name,
                legendgroup=name,
                line=dict(color=color, width=2),
            )
        )
        marker = dict(color=color, size=10, line=dict(width=1, color="white"))
        traces.append(
            go.Scatter(
                x=shown[-1:, 0],
                y=shown[-1:, 1],
                mode="markers",
                legendgroup=name,
                showlegend=False,
                marker=marker,
            )
        )
    return traces


def landmarks(fn) -> list[go.Scatter]:
    out = [
        go.Scatter(
            x=[p[0] for p in fn.minima],
            y=[p[1] for p in fn.minima],
            mode="markers",
            name="minimum",
            marker=dict(symbol="star", size=16, color="gold", line=dict(width=1, color="black")),
        )
    ]
    if fn.saddles:
        out.append(
            go.Scatter(
                x=[p[0] for p in fn.saddles],
                y=[p[1] for p in fn.saddles],
                mode="markers",
                name="saddle point",
                marker=dict(symbol="x", size=12, color="black"),
            )
        )
    return out


def play_controls(paths, steps: int, first: int) -> tuple[list[go.Frame], list[dict]]:
    """Frames from ``step`` to the end (at most MAX_FRAMES) and the Play/Pause buttons."""
    frame_steps = sorted(set(np.linspace(0, steps, min(MAX_FRAMES, steps + 1)).round().astype(int).tolist()))
    frames = [
        go.Frame(data=path_traces(paths, s), name=str(s), traces=list(range(first, first + 2 * len(paths))))
        for s in frame_steps
    ]
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
    menu = dict(
        type="buttons",
        direction="left",
        x=0.0,
        y=1.08,
        xanchor="left",
        yanchor="bottom",
        buttons=[play, pause],
    )
    return frames, [menu]


def trajectory_figure(fn, paths, step: int) -> go.Figure:
    base = [contour(fn), *landmarks(fn)]
    frames, menus = play_controls(
        paths, max(1, max((len(p.points) - 1 for p in paths), default=1)), len(base)
    )
    figure = go.Figure(data=base + path_traces(paths, step), frames=frames)
    figure.update_layout(
        height=560,
        margin=MARGIN,
        updatemenus=menus,
        legend=dict(orientation="h", y=-0.08),
        xaxis=dict(range=fn.x_range, title="x"),
        yaxis=dict(range=fn.y_range, title="y"),
    )
    return figure


def step_table(fn, paths, step: int) -> pd.DataFrame:
    rows = []
    for path in paths:
        at = min(step, path.last)
        point = tuple(path.points[at].tolist())
        rows.append(
            {
                "optimizer": LABELS[path.optimizer],
                "lr": path.lr,
                "x": point[0],
                "y": point[1],
                "f - f(min)": float(path.losses[at]) - fn.minimum_value,
                "distance to nearest minimum": fn.nearest_minimum(point)[1],
                "diverged at step": path.diverged_at,
            }
        )
    return pd.DataFrame(rows)


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


def band(figure: go.Figure, x, mean, std, name: str, markers: bool) -> None:
    color = COLORS[name]
    if std is not None:
        upper, lower = np.add(mean, std), np.subtract(mean, std)
        figure.add_scatter(
            x=list(x) + list(x)[::-1],
            y=list(upper) + list(lower)[::-1],
            fill="toself",
            line=dict(width=0),
            fillcolor=color,
            opacity=0.2,
            hoverinfo="skip",
            showlegend=False,
            legendgroup=name,
        )
    figure.add_scatter(
        x=x,
        y=mean,
        name=LABELS[name],
        legendgroup=name,
        line=dict(color=color),
        mode="lines+markers" if markers else "lines",
    )


def curves_charts(curves: dict, log_epochs: bool = False) -> None:
    loss, accuracy = go.Figure(), go.Figure()
    for name, c in curves.items():
        band(loss, c.train_x, c.train_loss, c.train_loss_std, name, markers=False)
        band(accuracy, c.epochs, c.val_accuracy, c.val_accuracy_std, name, markers=True)
    seeds = max(c.seeds for c in curves.values())
    suffix = f" (mean ± std over {seeds} seeds)" if seeds > 1 else ""
    loss.update_layout(
        title="Training loss" + suffix, xaxis_title="epoch", yaxis_type="log", height=380, margin=MARGIN
    )
    accuracy.update_layout(
        title="Validation accuracy" + suffix, xaxis_title="epoch", height=380, margin=MARGIN
    )
    for figure in (loss, accuracy) if log_epochs else ():
        figure.update_xaxes(type="log", title="epoch (log; the initial model at epoch 0 is left out)")
    left, right = st.columns(2)
    left.plotly_chart(loss, width="stretch", key="opt_loss_chart")
    right.plotly_chart(accuracy, width="stretch", key="opt_accuracy_chart")


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


def run_quick(settings) -> None:
    try:
        _, config = config_from_recipe(RECIPE, "quick")
    except PlaygroundError as err:
        show_error(err)
        return
    config = dataclasses.replace(
        config,
        seed=settings.seed,
        device=settings.device,
        data_root=settings.data_root.strip(),
        out=settings.runs_root,
    )
    result = run_experiment(experiment.run, config)
    if result is not None:
        st.session_state.opt_run = result.run_dir.name


def curves_section(settings) -> None:
    st.caption(
        "`playground run recipes/optimizers_fashion.toml --preset quick` (add `--seeds 0,1,2` for mean ± std)"
    )
    if st.button("Run the quick preset", icon=":material/play_arrow:", key="opt_run_quick"):
        run_quick(settings)
    root = Path(settings.runs_root).expanduser()
    runs = find_runs(root)
    if not runs:
        st.info(
            f"No optimizers runs under `{root}` yet. "
            "Run the quick preset above (about a minute on two CPU cores)."
        )
        return
    names = [info.name for info in runs]
    if st.session_state.get("opt_run") not in names:
        st.session_state.opt_run = names[0]
    chosen = st.selectbox(
        "Run", names, key="opt_run", help="Optimizers runs under the runs root, newest first"
    )
    try:
        curves = load_curves(root / chosen)
    except PlaygroundError as err:
        show_error(err)
        return
    log_epochs = st.toggle(
        "Log epoch axis",
        key="opt_log_epochs",
        help="GD runs many more passes than the rest: a log axis spreads the first few epochs",
    )
    curves_charts(curves, log_epochs)
    st.dataframe(numbers_table(root / chosen, list(curves)), hide_index=True, width="stretch")


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
