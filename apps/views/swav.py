"""Self-supervised SwAV: Sinkhorn-Knopp step by step, prototype assignments, probe accuracy vs labels.

Widgets -> :func:`playground.swav.sinkhorn.sinkhorn_trace` on example scores (no run needed), and
:func:`playground.swav.experiment.run` (recipes/swav_fashion.toml with the changed fields as
``--set`` overrides); a run is read back through :mod:`playground.swav.results` and drawn with the
report's own charts (:mod:`playground.swav.charts`).
"""

from pathlib import Path
from types import SimpleNamespace

import streamlit as st
import torch
from charts import show_chart
from common import (
    PresetForm,
    cached_dataset,
    choose_run,
    image_grid,
    preset_run_button,
    recipe_values,
    show_error,
    sidebar_settings,
    upscale,
)

from playground.core.config import load_recipe
from playground.core.runs import load_run
from playground.data.explore import sample_indices
from playground.errors import PlaygroundError
from playground.swav.charts import loss_chart, probe_chart, prototype_chart, sinkhorn_chart
from playground.swav.report import check, results_table
from playground.swav.results import (
    class_name,
    find_swav_runs,
    has_model,
    load_examples,
    load_model,
    load_probes,
    load_sinkhorn,
    no_model_reason,
    probe_curves,
    prototype_examples,
    read_config,
    top_prototypes,
)
from playground.swav.sinkhorn import (
    equipartition_error,
    example_scores,
    prototype_share_range,
    sinkhorn_trace,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "swav_fashion.toml"
FIELDS = (
    "model",
    "epochs",
    "pretrain_limit",
    "representation_dim",
    "swav.prototypes",
    "swav.temperature",
    "swav.small_crops",
)
FORM = PresetForm("swav", recipe_values(RECIPE, FIELDS), FIELDS)
MODELS = ["small_cnn", "regnety_small", "regnety_400mf", "resnet18"]
SAMPLES = 6


# --------------------------------------------------------------------- Sinkhorn, live


def sinkhorn_widgets() -> dict:
    row = st.columns(6)
    return dict(
        batch=row[0].slider("Batch B", 4, 128, 32, key="sk_batch"),
        prototypes=row[1].slider("Prototypes K", 2, 48, 12, key="sk_prototypes"),
        clusters=row[2].slider(
            "Clusters in the batch",
            1,
            12,
            3,
            key="sk_clusters",
            help="Samples gather around this many directions: a lopsided batch",
        ),
        epsilon=row[3].select_slider(
            "ε",
            [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
            0.05,
            key="sk_epsilon",
            help="Entropy weight: small ε keeps codes sharp, large ε flattens them",
        ),
        iterations=row[4].slider("Iterations", 0, 30, 10, key="sk_iterations"),
        seed=row[5].number_input("Seed", 0, 10_000, 0, key="sk_seed"),
    )


def sinkhorn_panel() -> None:
    st.markdown(
        "SwAV turns a batch's prototype scores into **codes** by Sinkhorn-Knopp: alternately rescale each "
        "prototype's column to B/K and each sample's row to 1, so that every prototype gets an equal share "
        "of the batch and no collapse onto one prototype is possible."
    )
    knobs = sinkhorn_widgets()
    try:
        scores = example_scores(knobs["batch"], knobs["prototypes"], knobs["clusters"], seed=knobs["seed"])
        trace = sinkhorn_trace(scores, knobs["epsilon"], knobs["iterations"])
    except PlaygroundError as err:
        show_error(err)
        return
    errors = [equipartition_error(c) for c in trace]
    step = (
        st.slider("Show iteration", 0, knobs["iterations"], knobs["iterations"], key="sk_step")
        if knobs["iterations"]
        else 0
    )
    codes = [c.tolist() for c in trace]
    show_chart(sinkhorn_chart(codes, errors, steps=[step], samples=None), key="sk_sinkhorn")
    low, high = prototype_share_range(trace[step])
    st.caption(
        f"Prototype shares now range from {low:.2f} to {high:.2f} samples "
        f"(target B/K = {knobs['batch'] / knobs['prototypes']:.2f})."
    )


# --------------------------------------------------------------------- a new run


def new_experiment(settings) -> None:
    if not RECIPE.is_file():
        st.warning("No SwAV recipe found (expected recipes/swav_fashion.toml).")
        return
    presets = list(load_recipe(RECIPE).presets)
    FORM.restore(presets)
    row = st.columns(4)
    FORM.preset_select(
        row[0], presets, help="Starting values from recipes/swav_fashion.toml (quick: a few minutes on a CPU)"
    )
    row[1].selectbox("Encoder", MODELS, key="swav_model")
    row[2].number_input("Epochs", min_value=1, max_value=500, key="swav_epochs")
    row[3].number_input(
        "Unlabelled images",
        min_value=0,
        step=1000,
        key="swav_pretrain_limit",
        help="0: the whole training split",
    )
    row = st.columns(4)
    row[0].number_input("Representation size", min_value=1, max_value=1024, key="swav_representation_dim")
    row[1].number_input("Prototypes K", min_value=2, max_value=3000, key=FORM.key("swav.prototypes"))
    row[2].number_input(
        "Temperature τ", min_value=0.01, max_value=2.0, step=0.05, key=FORM.key("swav.temperature")
    )
    row[3].number_input("Small crops", min_value=0, max_value=10, key=FORM.key("swav.small_crops"))
    preset_run_button(
        RECIPE,
        FORM,
        FORM.values(),
        settings,
        "swav_run",
        "swav_train",
        "SwAV",
        "add `--seeds 0,1,2` for mean ± std",
    )


# --------------------------------------------------------------------- a finished run


def probe_tab(path: Path, config: dict) -> None:
    try:
        probes, metrics = load_probes(path), load_run(path).metrics
    except PlaygroundError as err:
        show_error(err)
        return
    st.markdown(check(metrics))
    show_chart(probe_chart(probe_curves(probes)), key="swav_probe")
    shape = SimpleNamespace(
        probe_fractions=config.get("probe_fractions", []),
        lowshot_fractions=config.get("lowshot_fractions", []),
    )
    st.markdown(results_table(shape, metrics, list(probes[0]["linear_probe"])))


@st.cache_resource(show_spinner="Loading the SwAV model...", max_entries=4)
def cached_model(path: str, stamp: float):
    return load_model(path)


def sample_images(config, settings) -> tuple[torch.Tensor, list[str]]:
    test = cached_dataset(config.dataset, "test", config.data_root or settings.data_root_or_none, config.seed)
    st.session_state.setdefault("swav_draw", 0)
    if st.button("Other samples", icon=":material/shuffle:", key="swav_shuffle"):
        st.session_state.swav_draw += 1
    picks = sample_indices(test.labels, SAMPLES, st.session_state.swav_draw)
    return test.images[picks], [test.classes[int(y)] for y in test.labels[picks]]


def assignments_tab(path: Path, settings) -> None:
    if not has_model(path):
        st.info(f"{no_model_reason(path)}. The probe chart and the SwAV training tab do not need it.")
        return
    checkpoint = next(iter(sorted(path.glob("**/swav.safetensors"))), path / "swav.safetensors")
    try:
        model, config, classes = cached_model(
            str(path), checkpoint.stat().st_mtime if checkpoint.exists() else 0.0
        )
        examples, counts, _ = load_examples(path, prototypes=model.prototypes.weight.shape[0])
        images, truth = sample_images(config, settings)
    except PlaygroundError as err:
        show_error(err)
        return
    matches = top_prototypes(model.prototype_scores(images), config.swav.temperature, counts)
    st.caption(
        "Each sample's three most similar prototypes (softmax of the scores at τ) and test images the "
        "prototype holds. Labels were never used to train the prototypes."
    )
    for image, label, top in zip(images, truth, matches):
        cells = st.columns([1, 2, 5])
        cells[0].image(upscale(image), caption=f"true: {label}", width=80)
        cells[1].markdown(
            "\n".join(
                f"- **#{m.prototype}** {m.probability:.0%} · mostly {class_name(classes, m.majority_class)}"
                for m in top
            )
        )
        shown = [upscale(e) for e in prototype_examples(examples, top[0].prototype)]
        with cells[2]:
            image_grid(shown, [""] * len(shown), columns=8, width=48)


def training_tab(path: Path, config: dict) -> None:
    """The report's training charts: the loss (a band over seeds), Sinkhorn-Knopp on a test batch of
    the trained model and the fullest prototypes (both from the first seed)."""
    prototypes = config.get("swav", {}).get("prototypes", 2)
    draws = (
        ("swav_loss", "", lambda: loss_chart([p["swav_loss"] for p in load_probes(path)], prototypes)),
        ("swav_sinkhorn", "Sinkhorn-Knopp on a test batch of the trained model", lambda: run_sinkhorn(path)),
        ("swav_prototypes", "", lambda: prototype_chart(*load_examples(path))),
    )
    for key, caption, draw in draws:
        try:
            chart = draw()
        except PlaygroundError as err:
            show_error(err)
            continue
        if caption:
            st.caption(caption)
        show_chart(chart, key=key)


def run_sinkhorn(path: Path):
    section = load_sinkhorn(path)
    return sinkhorn_chart(section["codes"], section["errors"])


settings = sidebar_settings()
st.title("Self-supervised SwAV")
st.markdown(
    "SwAV (Caron et al. 2020) learns an encoder without labels: two large and several small crops of each "
    "image must predict each other's **codes**, soft assignments to K prototypes that Sinkhorn-Knopp "
    "spreads evenly over the batch. A linear probe and low-shot fine-tuning then show what the features "
    "are worth against random init and supervised training."
)
root = Path(settings.runs_root).expanduser()
with st.expander(
    "Sinkhorn-Knopp, iteration by iteration", expanded=not find_swav_runs(root), icon=":material/grid_on:"
):
    sinkhorn_panel()
chosen = choose_run(
    find_swav_runs,
    root,
    "swav_run",
    "SwAV run",
    f"No SwAV run under `{root}` yet. Run the quick preset above, or from a terminal:\n\n"
    "`playground run recipes/swav_fashion.toml --preset quick`",
    new_experiment,
    settings,
)
run_path = chosen
try:
    run_config = read_config(run_path)  # old runs' flat keys in their sections
except PlaygroundError as err:
    show_error(err)
    st.stop()
tabs = st.tabs(["Probe accuracy vs labels", "Prototype assignments", "SwAV training"])
with tabs[0]:
    probe_tab(run_path, run_config)
with tabs[1]:
    assignments_tab(run_path, settings)
with tabs[2]:
    training_tab(run_path, run_config)
