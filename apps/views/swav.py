"""Self-supervised SwAV: Sinkhorn-Knopp step by step, prototype assignments, probe accuracy vs labels.

Widgets -> :func:`playground.swav.sinkhorn.sinkhorn_trace` on example scores (no run needed), and
:func:`playground.swav.experiment.run` (recipes/swav_fashion.toml with the changed fields as
``--set`` overrides); a run is read back through :mod:`playground.swav.results`.
"""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
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
from playground.swav import experiment
from playground.swav.plots import LABELS
from playground.swav.report import check, results_table
from playground.swav.results import (
    find_swav_runs,
    has_model,
    load_examples,
    load_model,
    load_probes,
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
MARGIN = dict(t=40, b=10, l=10, r=10)
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


def codes_heatmap(codes: torch.Tensor, title: str) -> go.Figure:
    figure = go.Figure(go.Heatmap(z=codes.numpy(), colorscale="Viridis", zmin=0, colorbar=dict(title="q")))
    figure.update_layout(
        title=title,
        xaxis_title="prototype",
        yaxis_title="sample",
        height=420,
        margin=MARGIN,
        yaxis=dict(autorange="reversed"),
    )
    return figure


def errors_figure(errors: list[tuple[float, float]], step: int) -> go.Figure:
    x = list(range(len(errors)))
    figure = go.Figure()
    figure.add_scatter(
        x=x, y=[max(e[0], 1e-12) for e in errors], name="sample sums vs 1", mode="lines+markers"
    )
    figure.add_scatter(
        x=x, y=[max(e[1], 1e-12) for e in errors], name="prototype sums vs B/K", mode="lines+markers"
    )
    figure.add_vline(x=step, line_dash="dot", line_color="grey")
    figure.add_scatter(
        x=[x[0], x[-1]],
        y=[1e-3, 1e-3],
        name="1e-3",
        mode="lines",
        line=dict(dash="dash", color="crimson", width=1),
    )
    figure.update_layout(
        title="Largest deviation from equipartition",
        xaxis_title="iteration",
        yaxis_type="log",
        height=420,
        margin=MARGIN,
        legend=dict(orientation="h", y=-0.2),
    )
    return figure


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
    left, right = st.columns([3, 2])
    title = "exp(scores / ε), normalised" if step == 0 else f"codes after {step} iteration{'s' * (step > 1)}"
    left.plotly_chart(codes_heatmap(trace[step], title), width="stretch", key="sk_heatmap")
    right.plotly_chart(errors_figure(errors, step), width="stretch", key="sk_errors")
    low, high = prototype_share_range(trace[step])
    right.caption(
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
        experiment.run,
        "swav_run",
        "swav_train",
        "add `--seeds 0,1,2` for mean ± std",
    )


# --------------------------------------------------------------------- a finished run


def probe_chart(probes: list[dict]) -> go.Figure:
    figure = go.Figure()
    for i, curve in enumerate(probe_curves(probes)):
        colour, label = f"hsl({(i * 120) % 360}, 60%, 45%)", LABELS.get(curve.init, curve.init)
        figure.add_scatter(
            x=curve.fractions,
            y=curve.probe.mean,
            name=f"{label}: linear probe",
            error_y=dict(array=curve.probe.std),
            mode="lines+markers",
            line=dict(color=colour),
        )
        if curve.shots:
            figure.add_scatter(
                x=curve.shots,
                y=curve.tuned,
                name=f"{label}: fine-tuned",
                mode="lines+markers",
                line=dict(color=colour, dash="dash"),
                marker=dict(symbol="square"),
            )
    seeds = f" (mean ± std over {len(probes)} seeds)" if len(probes) > 1 else ""
    figure.update_layout(
        title="Test accuracy against the fraction of labels" + seeds,
        xaxis_type="log",
        xaxis_title="fraction of training labels",
        yaxis_title="test accuracy",
        height=430,
        margin=MARGIN,
        legend=dict(orientation="h", y=-0.25),
    )
    return figure


def probe_tab(path: Path, config: dict) -> None:
    try:
        probes, metrics = load_probes(path), load_run(path).metrics
    except PlaygroundError as err:
        show_error(err)
        return
    st.markdown(check(metrics))
    st.plotly_chart(probe_chart(probes), width="stretch", key="swav_probe")
    shape = SimpleNamespace(
        inits=list(probes[0]["linear_probe"]),
        probe_fractions=config.get("probe_fractions", []),
        lowshot_fractions=config.get("lowshot_fractions", []),
    )
    st.markdown(results_table(shape, metrics))


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
        examples, counts, _ = load_examples(path)
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
                f"- **#{m.prototype}** {m.probability:.0%} · mostly {classes[m.majority_class]}" for m in top
            )
        )
        shown = [upscale(e) for e in prototype_examples(examples, top[0].prototype)]
        with cells[2]:
            image_grid(shown, [""] * len(shown), columns=8, width=48)


def training_tab(path: Path, config: dict) -> None:
    try:
        losses = load_probes(path)[0]["swav_loss"]
    except PlaygroundError as err:
        show_error(err)
        return
    figure = go.Figure(
        go.Scatter(x=list(range(1, len(losses) + 1)), y=losses, mode="lines+markers", name="loss")
    )
    figure.add_hline(
        y=float(np.log(config.get("swav", {}).get("prototypes", 2))),
        line_dash="dot",
        annotation_text="log K (uniform)",
    )
    figure.update_layout(
        title="SwAV loss per epoch", xaxis_title="epoch", yaxis_title="nats", height=350, margin=MARGIN
    )
    st.plotly_chart(figure, width="stretch", key="swav_loss")
    folder = (
        path
        if (path / "sinkhorn.png").is_file()
        else next(iter(sorted(path.glob("seed*/sinkhorn.png"))), path).parent
    )
    for name, caption in (
        ("sinkhorn.png", "Sinkhorn-Knopp on a test batch of the trained model"),
        ("prototypes.png", "The fullest prototypes"),
    ):
        if (folder / name).is_file():
            st.image(str(folder / name), caption=caption)


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
run_path = root / chosen
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
