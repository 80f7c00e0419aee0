"""Classifier baseline: the recipe's preset as starting values, a Run button, and the results."""

import dataclasses
import json
import shlex
from pathlib import Path

import streamlit as st
from charts import show_chart
from common import PresetForm, literal_choices, recipe_values, run_experiment, show_error, sidebar_settings

from playground.classify import experiment
from playground.classify.charts import charts
from playground.core.config import load_recipe
from playground.core.runner import config_from_recipe
from playground.core.runs import playground_home
from playground.errors import PlaygroundError

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "classify_fashion.toml"
FIELDS = ("dataset", "model", "epochs", "train_limit", "lr", "batch_size", "width")


FORM = PresetForm("clf", recipe_values(RECIPE, FIELDS), FIELDS)


def choices(field: str) -> list:
    return literal_choices(experiment.Config, field)


def draw_widgets(presets: list[str]) -> dict:
    FORM.restore(presets)
    top = st.columns(4)
    FORM.preset_select(top[0], presets, help="Starting values from recipes/classify_fashion.toml")
    top[1].selectbox("Dataset", choices("dataset"), key="clf_dataset")
    top[2].selectbox("Model", choices("model"), key="clf_model")
    top[3].number_input("Epochs", min_value=1, max_value=500, step=1, key="clf_epochs")
    low = st.columns(4)
    FORM.train_limit_input(low[0], step=500)
    low[1].number_input(
        "Learning rate", min_value=1e-6, max_value=1.0, step=5e-4, format="%.4g", key="clf_lr"
    )
    low[2].number_input("Batch size", min_value=1, max_value=4096, step=16, key="clf_batch_size")
    low[3].number_input(
        "Width",
        min_value=4,
        max_value=512,
        step=8,
        key="clf_width",
        disabled=st.session_state.clf_model != "small_cnn",
        help="small_cnn only",
    )
    return FORM.values()


def cli_command(preset: str, overrides: list[str], settings, config) -> str:
    """The ``playground run`` line that repeats this run (shell-quoted)."""
    parts = [f"playground run {RECIPE.relative_to(REPO_ROOT)} --preset {preset}"]
    parts += [f"--set {shlex.quote(o)}" for o in overrides]
    if settings.data_root.strip():
        parts.append(f"--set {shlex.quote('data_root=' + json.dumps(settings.data_root.strip()))}")
    if settings.seed != config.seed:
        parts.append(f"--seed {settings.seed}")
    if settings.device != "auto":
        parts.append(f"--device {settings.device}")
    if Path(settings.runs_root) != playground_home():
        parts.append(f"--out {shlex.quote(settings.runs_root)}")
    return " ".join(parts)


def build_config(preset: str, overrides: list[str], settings):
    """``(config from the recipe and widgets, the same with the sidebar's settings)``."""
    _, config = config_from_recipe(RECIPE, preset, overrides)
    return config, dataclasses.replace(
        config,
        seed=settings.seed,
        device=settings.device,
        data_root=settings.data_root.strip(),
        out=settings.runs_root,
    )


def train(config) -> None:
    result = run_experiment(experiment.run, config)
    if result is not None:
        st.session_state.clf_result = result


def show_result(result) -> None:
    values = result.metrics.values
    st.subheader(f"Results: {result.run_dir.name}")
    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{values['test/accuracy']:.1%}")
    cols[1].metric("Test loss", f"{values['test/loss']:.3f}")
    cols[2].metric("Training time", f"{values['train/seconds']:.1f} s")
    cols[3].metric("Parameters", f"{int(values['model/parameters']):,}")
    per_class, confusion, training = charts(result.results)
    left, right = st.columns(2)
    show_chart(per_class, left)
    show_chart(confusion, right)
    show_chart(training)
    saved = (
        "model weights"
        if (result.run_dir / "model.safetensors").is_file()
        else "no model (save_models = false)"
    )
    st.caption(f"Run directory (config, metrics, report, plots, {saved}):")
    st.code(str(result.run_dir), language=None)
    st.page_link("views/runs.py", label="Open it on the Runs page", icon=":material/history:")


settings = sidebar_settings()
st.title("Classifier baseline")
st.markdown(
    "A small CNN (or a torchvision backbone) trained through the one training loop. The starting "
    "values come from `recipes/classify_fashion.toml`; change them and press **Run**."
)
presets = list(load_recipe(RECIPE).presets)
values = draw_widgets(presets)
overrides = FORM.overrides(values)
try:
    recipe_config, config = build_config(st.session_state.clf_preset, overrides, settings)
except PlaygroundError as err:
    show_error(err)
    st.stop()
st.markdown("Same run from the command line:")
st.code(
    cli_command(st.session_state.clf_preset, overrides, settings, recipe_config),
    language="bash",
    wrap_lines=True,
)
if st.button("Run", type="primary", icon=":material/play_arrow:", key="clf_run"):
    train(config)
if "clf_result" in st.session_state:
    show_result(st.session_state.clf_result)
