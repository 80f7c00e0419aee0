"""Data explorer: which datasets are here, what their images look like, how classes are spread."""

import pandas as pd
import plotly.express as px
import streamlit as st
from common import cached_dataset, image_grid, show_error, sidebar_settings, upscale

from playground.data import DATASETS, dataset_status
from playground.data.catalog import SHAPES_SIZES
from playground.data.explore import class_counts, image_stats, mask_area, sample_indices
from playground.data.shapes import LABEL_BY, VARIANTS, facts, knowledge_facts, make_shapes
from playground.errors import PlaygroundError


@st.cache_data(show_spinner=False)
def split_stats(name: str, split: str, root: str | None, seed: int) -> dict:
    data = cached_dataset(name, split, root, seed)
    return stats_row(data.images, split) | {"classes": data.num_classes}


def stats_row(images, split: str) -> dict:
    """One row of the statistics table: :func:`playground.data.explore.image_stats`, printed."""
    stats = image_stats(images)
    return {
        "split": split,
        "images": stats.images,
        "shape (C×H×W)": stats.shape,
        "pixel mean": round(stats.pixel_mean, 4),
        "pixel std": round(stats.pixel_std, 4),
    }


@st.cache_resource(show_spinner="Drawing shapes...", max_entries=8)
def cached_shapes(n: int, seed: int, label_by: str, variant: str):
    return make_shapes(n, seed=seed, label_by=label_by, variant=variant)


def class_count_chart(counts: dict[str, dict[str, int]], title: str = "Images per class"):
    """Grouped bars: ``counts[split][class]``."""
    rows = [
        {"split": split, "class": c, "images": n} for split, per in counts.items() for c, n in per.items()
    ]
    figure = px.bar(pd.DataFrame(rows), x="class", y="images", color="split", barmode="group", title=title)
    figure.update_layout(height=340, margin=dict(t=40, b=10, l=10, r=10), legend_title_text="")
    st.plotly_chart(figure, width="stretch")


def status_table(root: str | None) -> list[str]:
    rows = dataset_status(root)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "dataset": r.name,
                    "available": "yes" if r.available else "no",
                    "where": r.where,
                    "detail": r.detail,
                }
                for r in rows
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    return [r.name for r in rows if r.available]


def explore_dataset(name: str, settings) -> None:
    """Statistics, class counts and samples of a dataset from the catalog."""
    root, seed = settings.data_root_or_none, settings.seed if name != "fashion_mnist" else 0
    try:
        splits = {split: cached_dataset(name, split, root, seed) for split in ("train", "test")}
        stats = [split_stats(name, split, root, seed) for split in splits]
    except PlaygroundError as err:
        show_error(err)
        if name in ("folder", "fashion_mnist"):
            st.info("Set **Data root** in the sidebar to the folder that holds the data.")
        return
    train = splits["train"]
    st.caption(f"Source: {train.source}")
    for note in train.notes[:5]:
        st.caption(note)
    st.dataframe(pd.DataFrame(stats), hide_index=True, width="stretch")
    class_count_chart({split: data.class_counts() for split, data in splits.items()})
    st.subheader("Samples")
    left, right = st.columns(2)
    shown = left.selectbox("Class", ["all classes", *train.classes], key="dx_class")
    count = right.slider("How many", 8, 64, 24, step=8, key="dx_count")
    class_index = None if shown == "all classes" else train.classes.index(shown)
    indices = sample_indices(train.labels, count, settings.seed, class_index)
    image_grid([upscale(train.images[i]) for i in indices], [train.classes[train.labels[i]] for i in indices])


def shapes_controls(settings) -> tuple[int, int, str, str]:
    st.session_state.setdefault("dx_shapes_seed", settings.seed)
    cols = st.columns(4)
    seed = cols[0].number_input("Seed", min_value=0, step=1, key="dx_shapes_seed")
    variant = cols[1].selectbox(
        "Variant",
        VARIANTS,
        key="dx_variant",
        help="in_distribution is what models train on; the others are out-of-distribution",
    )
    label_by = cols[2].selectbox("Label by", LABEL_BY, key="dx_label_by")
    n = cols[3].slider("Images", 16, 400, 96, step=16, key="dx_shapes_n")
    return n, int(seed), label_by, variant


def mask_pairs(shapes, count: int) -> None:
    """Each image beside its segmentation mask (white where the shape is)."""
    images, captions = [], []
    for i in range(count):
        mask = shapes.masks[i]
        images += [upscale(shapes.images[i]), upscale(mask[None].float())]
        captions += [f"#{i}", f"mask: {mask_area(mask)} px"]
    image_grid(images, captions)


def knowledge_tab(shapes) -> None:
    options = list(range(min(len(shapes), 48)))
    index = st.selectbox(
        "Image", options, format_func=lambda i: f"#{i}: {shapes.captions[i]}", key="dx_fact_image"
    )
    left, right = st.columns([1, 4])
    left.image(upscale(shapes.images[index], 160), caption=shapes.captions[index])
    triples = facts(shapes.attributes[index])
    right.dataframe(
        pd.DataFrame(triples, columns=["subject", "relation", "object"]), hide_index=True, width="stretch"
    )
    with st.expander(f"The whole knowledge graph ({len(knowledge_facts())} triples)"):
        st.dataframe(
            pd.DataFrame(knowledge_facts(), columns=["subject", "relation", "object"]),
            hide_index=True,
            width="stretch",
        )


def explore_shapes(settings) -> None:
    """Synthetic shapes with their captions, masks and knowledge-graph facts."""
    n, seed, label_by, variant = shapes_controls(settings)
    try:
        shapes = cached_shapes(n, seed, label_by, variant)
    except PlaygroundError as err:
        show_error(err)
        return
    st.caption(
        f"{n} images generated from seed {seed}, labelled by {label_by}. The catalog's `shapes` dataset "
        f"that recipes train on is {SHAPES_SIZES['train']:,} train + {SHAPES_SIZES['test']:,} test "
        "in-distribution images drawn the same way."
    )
    samples, masks, graph, statistics = st.tabs(
        ["Images & captions", "Masks", "Knowledge graph", "Statistics"]
    )
    shown = min(24, n)
    with samples:
        image_grid(
            [upscale(shapes.images[i]) for i in range(shown)], shapes.captions[:shown], columns=6, width=120
        )
    with masks:
        mask_pairs(shapes, min(16, n))
    with graph:
        knowledge_tab(shapes)
    with statistics:
        st.dataframe(
            pd.DataFrame([stats_row(shapes.images, f"{variant} sample") | {"classes": len(shapes.classes)}]),
            hide_index=True,
            width="stretch",
        )
        class_count_chart({variant: class_counts(shapes.labels, shapes.classes)}, f"Images per {label_by}")


settings = sidebar_settings()
st.title("Data explorer")
with st.expander("Datasets on this machine", expanded=True):
    available = status_table(settings.data_root_or_none)
default = next((DATASETS.index(name) for name in DATASETS if name in available), 0)
dataset = st.selectbox("Dataset", DATASETS, index=default, key="dx_dataset")
if dataset == "shapes":
    explore_shapes(settings)
else:
    explore_dataset(dataset, settings)
