"""Design spaces: sample AnyNetX and RegNet under a FLOP budget, compare their error EDFs, pick a model."""

from pathlib import Path

import streamlit as st
from charts import show_chart
from common import (
    PresetForm,
    choose_run,
    preset_run_button,
    recipe_values,
    show_error,
    shown_command,
    sidebar_settings,
)

from playground.core.config import load_recipe
from playground.design_space.report import charts
from playground.design_space.results import (
    find_design_space_runs,
    full_training_overrides,
    load_design_space_run,
)
from playground.design_space.spaces import SPACES
from playground.errors import PlaygroundError

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "design_space_fashion.toml"
CLASSIFY = REPO_ROOT / "recipes" / "classify_fashion.toml"
FIELDS = ("spaces", "models_per_space", "flops_low", "flops_high")
FORM = PresetForm("ds", recipe_values(RECIPE, FIELDS), FIELDS)


def new_experiment(settings) -> None:
    presets = list(load_recipe(RECIPE).presets)
    FORM.restore(presets)
    top = st.columns([1, 3])
    FORM.preset_select(top[0], presets, help="Starting values from recipes/design_space_fashion.toml")
    top[1].multiselect("Design spaces", list(SPACES), key="ds_spaces")
    low = st.columns(3)
    low[0].number_input("Models per space", min_value=4, max_value=1000, step=4, key="ds_models_per_space")
    low[1].number_input("Multiply-adds from", min_value=1e4, max_value=1e9, format="%.3g", key="ds_flops_low")
    low[2].number_input("to", min_value=1e4, max_value=1e9, format="%.3g", key="ds_flops_high")
    preset_run_button(RECIPE, FORM, FORM.values(), settings, "ds_run", "ds_start", "Design spaces")


def pick_model(spaces: dict[str, list[dict]], settings) -> None:
    """Choose a sampled model (best first) and train it fully with the classify recipe."""
    from background import start_job

    st.subheader("Train a sampled model fully")
    cols = st.columns([1, 3])
    space = cols[0].selectbox("Space", list(spaces), key="ds_pick_space")
    ranked = sorted((m for m in spaces[space] if m["error"] is not None), key=lambda m: m["error"])
    if not ranked:
        st.info("No model of this space finished training.")
        return
    labels = [
        f"error {100 * m['error']:.1f}% · {m['params']['flops'] / 1e6:.2f} M · {m['spec']['widths']}"
        for m in ranked
    ]
    index = cols[1].selectbox(
        "Model (best first)", range(len(ranked)), format_func=labels.__getitem__, key="ds_pick"
    )
    args = [str(CLASSIFY), "--preset", "full"]
    for value in full_training_overrides(ranked[index]["spec"]):
        args += ["--set", value]
    st.code(shown_command(args), language="bash", wrap_lines=True)
    if st.button("Train it with the full classify preset", icon=":material/play_arrow:", key="ds_train"):
        start_job(args, f"AnyNet from {space}", settings, "clf_run")
        st.page_link(
            "views/classify.py", label="Follow it on the Classifier page", icon=":material/category:"
        )


def show_run(path: Path, settings) -> None:
    try:
        metrics, spaces, ranges = load_design_space_run(path)
    except PlaygroundError as err:
        show_error(err)
        return
    values = metrics.values
    cols = st.columns(len(spaces))
    for col, space in zip(cols, spaces):
        median = values.get(f"edf/{space}/error_median")
        col.metric(f"{space}: median error", "–" if median is None else f"{median:.1%}")
    for chart in charts(spaces, ranges):
        show_chart(chart)
    pick_model(spaces, settings)
    st.caption("Run directory (config, metrics, report, plots):")
    st.code(str(path), language=None)


settings = sidebar_settings()
st.title("Design spaces (AnyNet, RegNet)")
st.markdown(
    "Sample models from the AnyNetX and RegNet design spaces under a FLOP budget, train each briefly "
    "(every model is a classify run through the sweep runner) and compare the spaces by their **error "
    "EDFs**: the fraction of models below each error. A space whose EDF lies higher holds more good models."
)
root = Path(settings.runs_root).expanduser()
chosen = choose_run(
    find_design_space_runs,
    root,
    "ds_run",
    "Design-space study",
    f"No design-space study under `{root}` yet. Run the quick preset above, or from a terminal:\n\n"
    "`playground run recipes/design_space_fashion.toml --preset quick`",
    new_experiment,
    settings,
)
show_run(chosen, settings)
