"""Classifier baseline: the recipe's preset as starting values, a Run button, and the results."""

from pathlib import Path

import streamlit as st
from charts import show_chart
from common import (
    PresetForm,
    choose_run,
    literal_choices,
    preset_run_button,
    recipe_values,
    show_error,
    sidebar_settings,
)

from playground.classify import experiment
from playground.classify.charts import charts
from playground.classify.results import find_classify_runs, load_classify_run
from playground.core.config import load_recipe
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


def new_experiment(settings) -> None:
    presets = list(load_recipe(RECIPE).presets)
    values = draw_widgets(presets)
    preset_run_button(RECIPE, FORM, values, settings, "clf_run", "clf_train", "Classifier")


def show_run(path: Path) -> None:
    try:
        metrics, results = load_classify_run(path)
    except PlaygroundError as err:
        show_error(err)
        return
    values = metrics.values
    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{values['test/accuracy']:.1%}")
    cols[1].metric("Test loss", f"{values['test/loss']:.3f}")
    cols[2].metric("Training time", f"{values['train/seconds']:.1f} s")
    cols[3].metric("Parameters", f"{int(values['model/parameters']):,}")
    per_class, confusion, training = charts(results)
    left, right = st.columns(2)
    show_chart(per_class, left)
    show_chart(confusion, right)
    show_chart(training)
    saved = "model weights" if (path / "model.safetensors").is_file() else "no model (save_models = false)"
    st.caption(f"Run directory (config, metrics, report, plots, {saved}):")
    st.code(str(path), language=None)
    st.page_link("views/runs.py", label="Open it on the Runs page", icon=":material/history:")


settings = sidebar_settings()
st.title("Classifier baseline")
st.markdown(
    "A small CNN (or a torchvision backbone) trained through the one training loop. The starting "
    "values come from `recipes/classify_fashion.toml`; change them and press **Run**: the run goes on in "
    "the background, even if you leave the page."
)
root = Path(settings.runs_root).expanduser()
chosen = choose_run(
    find_classify_runs,
    root,
    "clf_run",
    "Classifier run",
    f"No classifier run under `{root}` yet. Run the quick preset above, or from a terminal:\n\n"
    "`playground run recipes/classify_fashion.toml --preset quick`",
    new_experiment,
    settings,
)
show_run(chosen)
