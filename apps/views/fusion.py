"""Knowledge fusion: the ablation table, one image followed through the pipeline, zero-shot classes typed in.

Widgets -> :func:`playground.fusion.experiment.run` (recipes/fusion_shapes.toml with the changed fields as
``--set`` overrides); a run is read back and followed image by image through :mod:`playground.fusion.results`;
the charts are :mod:`playground.fusion.charts`' (the ablation ones are the report's).
"""

from pathlib import Path

import streamlit as st
import torch
from charts import show_chart
from common import (
    PresetForm,
    choose_run,
    image_grid,
    preset_run_button,
    recipe_values,
    show_error,
    sidebar_settings,
    upscale,
)
from image_input import uploaded_image

from playground.core.runs import is_reference, load_run
from playground.core.seeds import first_seed, metric_cell
from playground.data.shapes import SHAPES, make_shapes
from playground.errors import PlaygroundError
from playground.fusion import experiment
from playground.fusion.charts import ablation_chart, gain_chart, probability_chart
from playground.fusion.degrade import degrade
from playground.fusion.heads import FUSIONS
from playground.fusion.results import (
    best_classes,
    find_fusion_runs,
    follow,
    has_models,
    labelled_images,
    open_run,
    run_config,
    zero_shot_scores,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "fusion_shapes.toml"
FIELDS = ("fusion", "steps", "lowlabel_per_class", "text_encoder")
FORM = PresetForm("fusion", recipe_values(RECIPE, FIELDS), FIELDS)
METRIC = {"classify": "accuracy", "segment": "miou"}
SEGMENT_COLOURS = [
    (40, 40, 40),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
]


def new_experiment(settings) -> None:
    presets = ["quick", "full"]
    FORM.restore(presets)
    row = st.columns(5)
    FORM.preset_select(row[0], presets, help="Starting values from recipes/fusion_shapes.toml")
    row[1].selectbox(
        "Fusion head",
        list(FUSIONS),
        key=FORM.key("fusion"),
        help="concat, gating (GMU), FiLM or cross-attention from pixels to context tokens",
    )
    row[2].number_input("Steps per model", 10, 5000, key=FORM.key("steps"))
    row[3].number_input("Labels per class (low-label)", 2, 100, key=FORM.key("lowlabel_per_class"))
    row[4].selectbox(
        "Text encoder",
        ["auto", "minilm", "hashing"],
        key=FORM.key("text_encoder"),
        help="auto: all-MiniLM-L6-v2 when the text extra is installed, else the in-house hashing encoder",
    )
    preset_run_button(RECIPE, FORM, FORM.values(), settings, "fusion_run", "fusion_go", "Fusion")


# --------------------------------------------------------------------- ablation


def ablation_tab(path: Path, config) -> None:
    metrics = load_run(path).metrics
    for task in config.tasks:
        rows = []
        for variant in config.methods:
            row = {"variant": variant}
            for regime in config.regimes:
                name = f"fusion/{variant}/{regime}/{METRIC[task]}"
                row[regime] = metric_cell(metrics, name, 3)
                if variant != "image_only":
                    row[regime] += f" ({metrics[name + '_gain']:+.3f})"
            row["latency ms"] = f"{metrics.get(f'fusion/{variant}/latency_ms', float('nan')):.2f}"
            rows.append(row)
        st.markdown(f"**{task}: {METRIC[task]}** (in brackets: the change against image-only)")
        st.dataframe(rows, hide_index=True, width="stretch")
    show_chart(ablation_chart(metrics, config), key="fusion_ablation")  # the report's charts, drawn live
    show_chart(gain_chart(metrics, config), key="fusion_gains")
    st.caption(
        "Latency: one image through the whole pipeline (caption, text encoder, entity lookup, retrieval, "
        "network), p50."
    )


# --------------------------------------------------------------------- one image


@st.cache_resource(max_entries=2, show_spinner="Loading the run's models…")
def cached_pipeline(path: str, stamp: float):
    return open_run(path)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_labelled(key: tuple, regime: str, _config) -> torch.Tensor:
    """The regime's labelled images (``key``: the config fields that fix them), generated once,
    not per rerun.
    """
    return labelled_images(_config, regime)


def labelled_key(config) -> tuple:
    return config.train_size, config.seed, config.image_size, config.lowlabel_per_class


@st.cache_resource(max_entries=2, show_spinner=False)
def cached_test_shapes(key: tuple, _config):
    """The run's test shapes (``key``: the config fields that fix them), generated once, not per rerun."""
    return experiment.task_shapes(_config, "test")


def colour_map(classes: torch.Tensor):
    palette = torch.tensor(SEGMENT_COLOURS, dtype=torch.uint8)
    return palette[classes.clamp(0, len(SEGMENT_COLOURS) - 1)].numpy()


def graph_dot(triples: list[tuple[str, str, str]], entities: list[str]) -> str:
    lines = [
        "digraph G {",
        'rankdir=LR; node [shape=box, style="rounded,filled", fillcolor="#eef2f7", fontsize=11];',
    ]
    lines += [f'"{e}" [fillcolor="#ffd28a"];' for e in entities]
    lines += [f'"{h}" -> "{t}" [label="{r}", fontsize=9];' for h, r, t in triples]
    return "\n".join(lines + ["}"])


def pick_image(pipeline) -> tuple[torch.Tensor | None, str]:
    config = pipeline.config
    source = st.radio("Image", ["A test image", "Upload"], horizontal=True, key="fusion_source")
    if source == "Upload":
        try:
            return uploaded_image((3, config.image_size, config.image_size), "fusion")
        except PlaygroundError as err:
            show_error(err)
            return None, ""
    number = st.number_input("Test image", 0, config.test_size - 1, 0, key="fusion_image")
    shapes = cached_test_shapes((config.test_size, config.seed, config.image_size), config)
    return shapes.images[number], shapes.captions[number]


def follow_tab(pipeline) -> None:
    config = pipeline.config
    top = st.columns([2, 2, 1])
    with top[0]:
        image, truth = pick_image(pipeline)
    regime = top[1].selectbox(
        "Models of the regime",
        config.regimes,
        index=len(config.regimes) - 1,
        key="fusion_regime",
        help="Each regime has its own models and retrieval index",
    )
    degraded = top[2].checkbox(
        "Degrade",
        value=regime.startswith("degraded"),
        key="fusion_degrade",
        help=f"blur σ {config.blur} px and an occluding square",
    )
    if image is None:
        st.info("Pick a test image or upload one.")
        return
    shown = degrade(image[None], config.blur, config.occlusion, seed=1)[0] if degraded else image
    followed = follow(pipeline, shown, regime)
    draw_followed(pipeline, regime, shown, truth, followed)


def draw_followed(pipeline, regime: str, image: torch.Tensor, truth: str, followed) -> None:
    left, right = st.columns([1, 2])
    left.image(upscale(image, 160), caption=f"truth: {truth}" if truth else "your image")
    right.markdown(f"**Generated caption:** {followed.caption}")
    right.markdown("**Entities:** " + (" · ".join(f"`{e}`" for e in followed.entities) or "none found"))
    with right.expander("Knowledge-graph neighbourhood", expanded=True):
        st.graphviz_chart(graph_dot(followed.neighbourhood, followed.entities))
    st.markdown(f"**{len(followed.neighbours)} retrieved labelled neighbours** (label · weight)")
    neighbours = cached_labelled(labelled_key(pipeline.config), regime, pipeline.config)[followed.neighbours]
    image_grid(
        [upscale(n, 64) for n in neighbours],
        [f"{label} · {w:.2f}" for label, w in zip(followed.neighbour_labels, followed.neighbour_weights)],
        columns=8,
        width=64,
    )
    show_chart(probability_chart(followed.probabilities, SHAPES), key="fusion_probabilities")
    maps = list(followed.segmentation.items())
    image_grid([colour_map(m) for _, m in maps], [v for v, _ in maps], columns=len(maps) or 1, width=128)
    st.caption(
        "Segmentation per variant; colours: "
        + ", ".join(f"{name}" for name in ["background", *SHAPES])
        + " (dark grey, red, green, yellow, blue, orange, purple)."
    )


# --------------------------------------------------------------------- zero-shot


def zero_shot_tab(pipeline, metrics: dict) -> None:
    unseen = [name for name in pipeline.class_names if name in held_out_names()]
    st.markdown(
        "The zero-shot head projects an image into the sentence encoder's space and scores it against the "
        "embedding of each class description. These compositions were **never training labels**: "
        + ", ".join(f"*{n}*" for n in unseen)
        + "."
    )
    cells = st.columns(3)
    cells[0].metric(
        "Held-out accuracy",
        f"{metrics.get('zeroshot/heldout/accuracy', float('nan')):.3f}",
        help="Test images of held-out classes, choosing among the held-out classes",
    )
    cells[1].metric("Chance", f"{metrics.get('zeroshot/heldout/chance', float('nan')):.3f}")
    cells[2].metric(
        "GZSL harmonic mean",
        f"{metrics.get('zeroshot/gzsl/harmonic_mean', float('nan')):.3f}",
        help="All test images, all 36 classes: seen-class bias pushes this down",
    )
    typed = st.text_input(
        "Class names or descriptions, comma-separated",
        key="fusion_classes",
        value="a red circle, a blue triangle, a green star, a pink heart, a cyan square",
    )
    names = [name.strip() for name in typed.split(",") if name.strip()]
    if len(names) < 2:
        st.info("Type at least two class names.")
        return
    config = pipeline.config
    samples = make_shapes(
        8, seed=9000 + int(st.session_state.get("fusion_zs_draw", 0)), image_size=config.image_size
    )
    if st.button("Other images", icon=":material/shuffle:", key="fusion_zs_shuffle"):
        st.session_state.fusion_zs_draw = int(st.session_state.get("fusion_zs_draw", 0)) + 1
        st.rerun()
    probabilities = zero_shot_scores(pipeline, samples.images, names)
    image_grid(
        [upscale(i, 80) for i in samples.images],
        [f"{name} ({p:.0%})" for name, p in best_classes(probabilities, names)],
        columns=8,
        width=80,
    )
    st.dataframe(
        [
            {"image": k, "truth": c, **{n: f"{float(v):.2f}" for n, v in zip(names, p)}}
            for k, (c, p) in enumerate(zip(samples.captions, probabilities))
        ],
        hide_index=True,
        width="stretch",
    )


def held_out_names() -> set[str]:
    from playground.fusion.zeroshot_task import HELDOUT, describe_class

    return {describe_class(c, s) for c, s in HELDOUT}


settings = sidebar_settings()
st.title("Knowledge fusion")
st.markdown(
    "Does extra knowledge help an image model? A **captioner** (trained on its own captioned images) "
    "describes the image, a **sentence encoder** embeds the caption, a **knowledge graph** (TransE) embeds "
    "the entities it names, and a **retrieval** index brings the nearest labelled images with their "
    "labels. Each is fused with the image features (concat, gating, FiLM or cross-attention) and compared "
    "with image-only, with many labels, few labels, and few labels on degraded images."
)
root = Path(settings.runs_root).expanduser()
chosen = choose_run(
    find_fusion_runs,
    root,
    "fusion_run",
    "Fusion run",
    f"No fusion run under `{root}` yet. Run the quick preset above, or from a terminal:\n\n"
    "`playground run recipes/fusion_shapes.toml --preset quick`",
    new_experiment,
    settings,
)
run_path = chosen
try:
    folder = first_seed(run_path)
    pipeline = (
        cached_pipeline(str(folder), (folder / "models" / "captioner.safetensors").stat().st_mtime)
        if has_models(run_path)
        else None  # a run made with save_models = false: its ablation table only
    )
    run_settings = pipeline.config if pipeline else run_config(run_path)
    run_metrics = load_run(run_path).metrics
except (PlaygroundError, OSError) as err:
    show_error(err)
    st.stop()
NO_MODELS = (
    "This reference run ships without its models (too large to ship), so no image can be "
    "followed or scored zero-shot here: run the quick preset above (models are kept) to do so. "
    if is_reference(run_path)
    else "This run saved no models (save_models = false), so no image can be followed or scored zero-shot. "
) + "Its ablation table is in the first tab."
tabs = st.tabs(["Ablation", "Follow one image", "Zero-shot"])
with tabs[0]:
    ablation_tab(run_path, run_settings)
with tabs[1]:
    if pipeline:
        follow_tab(pipeline)
    else:
        st.info(NO_MODELS)
with tabs[2]:
    if pipeline:
        zero_shot_tab(pipeline, run_metrics)
    else:
        st.info(NO_MODELS)
