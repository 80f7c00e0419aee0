"""Forward compatible training: pick (or make) an FCT run and look at what the transformation buys.

Compatibility by case, the side-info size trade-off, the backfill cost, the gallery on the new
model's principal plane, and one query's neighbours in the new, old and transformed galleries.
"""

import random
from pathlib import Path

import pandas as pd
import streamlit as st
from background import start_job
from charts import show_chart
from common import (
    PresetForm,
    choose_run,
    image_grid,
    job_recipes_key,
    literal_choices,
    preset_config,
    show_error,
    shown_command,
    sidebar_settings,
    upscale,
)
from gallery_panel import gallery_panel

from playground.core.config import config_value, load_recipe
from playground.core.runner import config_from_recipe
from playground.core.runs import is_reference
from playground.core.seeds import mean_std_cell
from playground.errors import PlaygroundError
from playground.fct import experiment
from playground.fct import results as fct
from playground.fct.charts import (
    MEASURES,
    ORDER_NAMES,
    TRANSFORMATIONS,
    compatibility_chart,
    projection_chart,
    size,
    tradeoff_chart,
)
from playground.fct.side_info import MAX_DIM, MIN_DIM
from playground.fct.upgrade_report import POLICY_COLUMNS
from playground.fct.upgrade_report import charts as upgrade_charts

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPES = [
    path
    for path in (REPO_ROOT / "recipes" / "fct_fashion.toml", REPO_ROOT / "recipes" / "fct_shapes.toml")
    if path.is_file()
]
FIELDS = (
    "dataset",
    "side_info.dim",
    "side_info.epochs",
    "old_epochs",
    "new_epochs",
    "transform_epochs",
    "train_limit",
    "test_limit",
)
GALLERY_VIEWS = [
    ("new", "new gallery (full backfill)"),
    ("old", "old gallery, untransformed"),
    ("fct", "FCT gallery: h(old, side-info)"),
]


# --------------------------------------------------------------------- a new run


def preset_names() -> list[str]:
    return [f"{path.stem} / {preset}" for path in RECIPES for preset in load_recipe(path).presets]


def split_preset(name: str) -> tuple[Path, str]:
    stem, preset = name.split(" / ")
    return REPO_ROOT / "recipes" / f"{stem}.toml", preset


def preset_values(name: str) -> dict:
    _, config = config_from_recipe(*split_preset(name))
    return {field: config_value(config, field) for field in FIELDS}


FORM = PresetForm("fct", preset_values, FIELDS)


def draw_widgets(presets: list[str]) -> dict:
    FORM.restore(presets)
    datasets = literal_choices(experiment.Config, "dataset")
    top = st.columns(4)
    FORM.preset_select(top[0], presets, help="Starting values from the FCT recipe(s) in recipes/")
    top[1].selectbox("Dataset", datasets, key="fct_dataset")
    top[2].slider(
        "Side-info dim",
        min_value=MIN_DIM,
        max_value=MAX_DIM,
        step=8,
        key=FORM.key("side_info.dim"),
        help="Size of the label-free side-information stored next to each old embedding",
    )
    top[3].number_input(
        "Side-info epochs", min_value=1, max_value=500, step=1, key=FORM.key("side_info.epochs")
    )
    low = st.columns(5)
    low[0].number_input("Old epochs", min_value=1, max_value=500, step=1, key="fct_old_epochs")
    low[1].number_input("New epochs", min_value=1, max_value=500, step=1, key="fct_new_epochs")
    low[2].number_input(
        "Transformation epochs", min_value=1, max_value=500, step=1, key="fct_transform_epochs"
    )
    FORM.train_limit_input(low[3])
    low[4].number_input(
        "Test limit",
        min_value=0,
        step=1000,
        key="fct_test_limit",
        help="At most this many query/gallery images (0: all)",
    )
    return FORM.values()


def build_config(preset: str, overrides: list[str], settings):
    recipe, name = split_preset(preset)
    return preset_config(recipe, name, overrides, settings)


def new_experiment(settings) -> None:
    if not RECIPES:
        st.warning("No FCT recipe found under recipes/ (expected recipes/fct_fashion.toml).")
        return
    presets = preset_names()
    values = draw_widgets(presets)
    try:
        _, args = build_config(st.session_state.fct_preset, FORM.overrides(values), settings)
    except PlaygroundError as err:
        show_error(err)
        return
    st.caption("Same run from the command line (it runs in the background, even if you leave the page):")
    st.code(shown_command(args), language="bash", wrap_lines=True)
    if st.button("Run", type="primary", icon=":material/play_arrow:", key="fct_train"):
        start_job(args, f"FCT: {st.session_state.fct_preset}", settings, "fct_run")
    st.session_state[job_recipes_key("fct_run")] = RECIPES  # the picker below follows its jobs


# --------------------------------------------------------------------- the run's numbers


@st.cache_resource(max_entries=4, show_spinner="Loading the run...")
def cached_run(path: str, stamp: float) -> fct.FCTRun:
    """One loaded run (embeddings stay in memory); ``stamp`` reloads a folder that changed."""
    return fct.load_fct_run(path)


def open_run(path: Path) -> fct.FCTRun:
    metrics = path / "metrics.json"
    return cached_run(str(path), metrics.stat().st_mtime if metrics.is_file() else 0.0)


def percent(row: dict, key: str) -> str:
    return mean_std_cell(row[key], row.get(f"{key}_std"), digits=1, scale=100)


def note(column, label: str, value: str, detail: str, help: str | None = None) -> None:
    """A metric card with a grey line of context under the value (no arrow)."""
    column.metric(label, value, detail, delta_color="off", delta_arrow="off", help=help)


def compatibility(run: fct.FCTRun) -> None:
    rows = fct.compatibility_rows(run)
    show_chart(compatibility_chart(rows))
    table = pd.DataFrame(
        [
            {
                "case": r["case"],
                "method": r["method"],
                "query": r["query"],
                "gallery": r["gallery"],
                **{f"{label} (%)": percent(r, key) for key, label in MEASURES},
            }
            for r in rows
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    if "fct/map_recovery" in run.metrics:
        st.caption(
            f"FCT (new-fct) recovers **{run.metrics['fct/map_recovery']:.1%}** of the full-backfill "
            "(new-new) mAP without re-embedding a single gallery image."
        )


def side_info(run: fct.FCTRun) -> None:
    rows = fct.tradeoff_rows(run)
    if not rows:
        st.info("This run has no side-info sweep.")
        return
    by_dim = {r["dim"]: r for r in rows}
    default = run.side_info.get("dim")
    if st.session_state.get("fct_dim") not in by_dim:  # another run, other sizes
        st.session_state.pop("fct_dim", None)
    dim = st.select_slider(
        "Side-info dimension",
        options=list(by_dim),
        key="fct_dim",
        value=default if default in by_dim else rows[-1]["dim"],
        format_func=size,
    )
    chosen, none = by_dim[dim], by_dim.get(0)
    new_new = {key: run.metrics.get(f"retrieval/new-new/{key}") for key in ("top1", "mAP")}
    cols = st.columns(4)
    delta = (
        (lambda key: f"{100 * (chosen[key] - none[key]):+.1f} pts vs none") if none else (lambda key: None)
    )
    cols[0].metric("new-fct top-1", percent(chosen, "top1") + " %", delta("top1"))
    cols[1].metric("new-fct mAP", percent(chosen, "mAP") + " %", delta("mAP"))
    note(
        cols[2],
        "Side-info per image",
        f"{chosen['bytes']:.0f} B",
        f"+ {run.metrics.get('cost/old_embedding_bytes', 0):.0f} B old embedding",
    )
    if new_new["mAP"] is not None:
        note(
            cols[3],
            "New model (full backfill)",
            f"{100 * new_new['mAP']:.1f} % mAP",
            f"top-1 {100 * new_new['top1']:.1f} %",
        )
    show_chart(tradeoff_chart(rows, dim, new_new["mAP"]))


def cost(run: fct.FCTRun) -> None:
    c = fct.cost_summary(run)
    needed = (
        "side_info_bytes",
        "transformation_macs",
        "new_model_macs",
        "backfill_transform_s",
        "backfill_reembed_s",
    )
    if not all(key in c for key in needed):
        st.info("This run recorded no cost figures.")
        return
    cols = st.columns(5)
    note(
        cols[0],
        "Extra storage per image",
        f"{c['side_info_bytes']:.0f} B",
        f"+ {c.get('old_embedding_bytes', 0):.0f} B old embedding",
        help="side-info stored next to each old embedding",
    )
    note(
        cols[1],
        "Transformation MACs",
        f"{c['transformation_macs']:,.0f}",
        f"{run.transformation_macs_share:.1%} of the new model's",
        help=f"new model: {c['new_model_macs']:,.0f} MACs per image",
    )
    note(cols[2], "Backfill: transform", f"{c['backfill_transform_s']:.3g} s", "per 10k images")
    note(cols[3], "Backfill: re-embed", f"{c['backfill_reembed_s']:.3g} s", "per 10k images")
    note(cols[4], "Speed-up", f"{run.backfill_speedup:.1f}×", "transform vs re-embed")
    st.caption(
        "Re-embedding was timed on images already decoded in memory, which flatters it: "
        "a real backfill would also read and decode every image."
    )


def upgrades(run: fct.FCTRun) -> None:
    study = run.upgrade
    if not study.get("policies"):
        st.info("This run has no upgrade study (runs made before it existed); start a new run.")
        return
    table = pd.DataFrame(study["policies"])
    table[["top1", "mAP", "share_of_reembed"]] *= 100
    st.dataframe(
        table[list(POLICY_COLUMNS)].rename(columns=POLICY_COLUMNS).round(2),
        hide_index=True,
        width="stretch",
        height=35 * (len(table) + 1) + 3,  # every policy without scrolling
    )
    if study.get("curves"):
        fractions = study["fractions"]
        step = round(100 * fractions[1]) if len(fractions) > 1 else 100
        share = st.slider("Gallery re-embedded (%)", 0, 100, 50, step=step, key="backfill_share")
        index = min(range(len(fractions)), key=lambda i: abs(100 * fractions[i] - share))
        cols = st.columns(len(study["curves"]))
        for col, (name, curves) in zip(cols, study["curves"].items()):
            col.markdown(
                f"**{TRANSFORMATIONS.get(name, name)}** at {100 * fractions[index]:.0f}% re-embedded"
            )
            col.dataframe(
                pd.DataFrame(
                    [
                        {"order": ORDER_NAMES.get(o, o), "mAP (%)": c[index], "area": study["areas"][name][o]}
                        for o, c in curves.items()
                    ]
                ).round(2),
                hide_index=True,
            )
    if run.multi_seed:
        st.caption("The charts are the first seed's; the report's tables give mean ± std over seeds.")
    for chart in upgrade_charts(study):
        show_chart(chart)


# --------------------------------------------------------------------- embeddings


def projection(run: fct.FCTRun) -> None:
    coords, labels = fct.projection_points(run)
    show_chart(projection_chart(coords, labels, run.classes))


def random_query(size: int) -> None:
    st.session_state.fct_query = random.randrange(size)


def neighbour_row(run: fct.FCTRun, found: fct.Neighbours, title: str) -> None:
    hits = sum(found.same_class)
    st.markdown(f"**{title}**: {hits} of {len(found.indices)} same class")
    captions = [
        f"{'✓' if same else '✗'} {run.label_name(label)} · {dist:.2f}"
        for same, label, dist in zip(found.same_class, found.labels, found.distances)
    ]
    if run.has_images:
        image_grid([upscale(fct.image(run, i), 80) for i in found.indices], captions, columns=8, width=80)
    else:
        st.caption(" · ".join(f"#{i} {c}" for i, c in zip(found.indices, captions)))


def query_picker(run: fct.FCTRun) -> None:
    size = fct.gallery_size(run)
    if st.session_state.get("fct_query", 0) >= size:
        st.session_state.fct_query = 0
    left, middle, right = st.columns([2, 1, 2], vertical_alignment="bottom")
    query = left.number_input(
        "Query image (index in the test set)", min_value=0, max_value=size - 1, step=1, key="fct_query"
    )
    middle.button(
        "Random query", icon=":material/casino:", key="fct_random", on_click=random_query, args=(size,)
    )
    k = right.slider("Neighbours", min_value=1, max_value=10, value=5, key="fct_k")
    if is_reference(run.path) and size < int(run.config.get("test_limit") or 0):
        st.caption(
            f"This shipped reference run keeps the first {size:,} test images for browsing, so neighbours "
            "come from those; the figures above are over the whole test set."
        )
    label = run.label_name(int(run.embeddings["labels"][query]))
    if run.has_images:
        st.image(upscale(fct.image(run, int(query)), 96), caption=f"query #{query}: {label}", width=96)
    else:
        st.info(
            f"Query #{query} is a {label}. This run kept no thumbnails (its test set was too large), "
            "so neighbours are listed by index and class."
        )
    for gallery, title in GALLERY_VIEWS:
        neighbour_row(run, fct.neighbours(run, int(query), gallery, k), title)


# --------------------------------------------------------------------- the page


def section(title: str, draw, run: fct.FCTRun, intro: str = "") -> None:
    """One part of the page; an error in it (say, a run without embeddings) leaves the others standing."""
    st.subheader(title)
    if intro:
        st.caption(intro)
    try:
        draw(run)
    except PlaygroundError as err:
        show_error(err)


def describe(run: fct.FCTRun) -> str:
    parts = [
        run.description or f"dataset {run.config.get('dataset', '?')}",
        f"{run.distance} distance",
        f"side-info {run.side_info.get('method', '?')} {run.side_info.get('dim', '?')}-d",
    ]
    if run.multi_seed:
        source = run.artifact_dir.name if run.artifact_dir else "none"
        parts.append(f"mean ± std over {len(run.seeds)} seeds (embeddings from {source})")
    return " · ".join(parts)


def show_run(run: fct.FCTRun) -> None:
    st.caption(describe(run))
    section(
        "Compatibility",
        compatibility,
        run,
        "Query model - gallery model. new-old is an upgrade without backfill; new-fct transforms the "
        "stored old embeddings with side-info instead of re-embedding the images.",
    )
    section("Side-info size", side_info, run)
    section("Backfill cost", cost, run)
    section(
        "Upgrade policies and partial backfill",
        upgrades,
        run,
        "Every way to move the gallery to the new model on the same queries, with its cost; then the "
        "h-transformed gallery re-embedded bit by bit, in the order each uncertainty score gives.",
    )
    section(
        "Your own gallery",
        lambda r: gallery_panel(r, Path(settings.runs_root).expanduser()),
        run,
        "Your images, upgraded with this run's models one step at a time (`playground gallery` does "
        "the same from a terminal). The curves are this run's test gallery; the line marks your share.",
    )
    section(
        "Gallery embeddings in 2-D",
        projection,
        run,
        "Every panel is projected onto the new model's two principal directions: transformed galleries "
        "should land where the new model puts the same images; raw old embeddings do not.",
    )
    section(
        "A query and its neighbours",
        query_picker,
        run,
        "The new model embeds the query; its nearest items are looked up in each gallery (the query's "
        "own entry left out). Captions: ✓ same class as the query or ✗ not, the class, the distance.",
    )


settings = sidebar_settings()
st.title("Forward compatible training")
st.markdown(
    "Upgrade an embedding model without re-embedding the gallery (Ramanujan et al., CVPR 2022): a "
    "small transformation maps each stored old embedding, plus a few bytes of label-free side-info, "
    "into the new model's space. Compared with independent training and BCT on retrieval."
)
root = Path(settings.runs_root).expanduser()
chosen = choose_run(
    fct.find_fct_runs,
    root,
    "fct_run",
    "FCT run",
    f"No FCT runs under `{root}` yet. Start one above, or from a terminal:\n\n"
    "`playground run recipes/fct_fashion.toml --preset quick`",
    new_experiment,
    settings,
)
try:
    show_run(open_run(chosen))
except PlaygroundError as err:
    show_error(err)
