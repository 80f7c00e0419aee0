"""Uncertainty & OOD detection: which model knows when it does not know?

Pick an OOD run (or make one), then look at one image (from the benchmark's sets, uploaded or
drawn) through every method: each ensemble member and each MC-dropout / BNN posterior sample
side by side, the spread, a chosen OOD score and its in/OOD verdict against a threshold. Beneath:
the run's ROC curves, reliability diagram, method tables and checks. Every chart is built by
``playground.uncertainty.charts`` (the report's PNGs come from the same functions) and drawn here
with ``show_chart``.
"""

import random
from pathlib import Path

import pandas as pd
import streamlit as st
import torch
from charts import show_chart
from common import (
    PresetForm,
    choose_run,
    literal_choices,
    preset_run_button,
    recipe_values,
    show_error,
    sidebar_settings,
    upscale,
)
from image_input import drawn_image, uploaded_image

from playground.core.config import load_recipe
from playground.core.device import choose_device
from playground.data.ood import FAR_SETS, load_ood_data
from playground.errors import PlaygroundError
from playground.uncertainty import experiment, inspection, report
from playground.uncertainty import results as ood
from playground.uncertainty.benchmark import MethodSettings, evaluation_sets
from playground.uncertainty.charts import (
    METHOD_LABELS,
    SAMPLE_NOUNS,
    SCORE_LABELS,
    reliability_chart,
    roc_chart,
    samples_chart,
    set_label,
    spread_chart,
    verdict_chart,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "uncertainty_fashion.toml"
FIELDS = ("dataset", "far_sets", "bench.bnn_layers", "net.epochs", "bench.members", "train_limit")
FAR_CHOICES = [name for name in FAR_SETS if name != "folder"]  # a folder also needs ood_folder: CLI only
SOURCES = ("A benchmark image", "Upload an image", "Draw one")
QUIET = dict(delta_color="off", delta_arrow="off")  # a metric's note, not a change
FLAGGED = "The share of each set flagged as OOD at this threshold (on the test set: false alarms)."
NOT_STORED = (
    " Scored now with the run's saved models: the run stored no per-image scores for this method and score."
)


# --------------------------------------------------------------------- a new run


FORM = PresetForm("ood", recipe_values(RECIPE, FIELDS), FIELDS)


def draw_widgets(presets: list[str]) -> dict:
    FORM.restore(presets)
    top = st.columns(4)
    FORM.preset_select(
        top[0],
        presets,
        help="Starting values from recipes/uncertainty_fashion.toml (quick: about 3-4 minutes on a CPU)",
    )
    top[1].selectbox(
        "In-distribution dataset",
        literal_choices(experiment.Config, "dataset"),
        key=FORM.key("dataset"),
        help="Its held-out classes (heldout_classes) become the near-OOD set",
    )
    top[2].multiselect("Far OOD sets", FAR_CHOICES, key=FORM.key("far_sets"))
    top[3].selectbox(
        "BNN layers",
        literal_choices(MethodSettings, "bnn_layers"),
        key=FORM.key("bench.bnn_layers"),
        help="last: a Bayesian last layer on a deterministic body; all: every layer Bayesian",
    )
    low = st.columns(3)
    low[0].number_input("Epochs", min_value=1, max_value=500, step=1, key=FORM.key("net.epochs"))
    low[1].number_input("Ensemble members", min_value=2, max_value=20, step=1, key=FORM.key("bench.members"))
    FORM.train_limit_input(low[2], what="in-distribution training images")
    return FORM.values()


def new_experiment(settings) -> None:
    if not RECIPE.is_file():
        st.warning("No OOD recipe found (expected recipes/uncertainty_fashion.toml).")
        return
    values = draw_widgets(list(load_recipe(RECIPE).presets))
    preset_run_button(RECIPE, FORM, values, settings, "ood_run", "ood_train", "Uncertainty & OOD")


# --------------------------------------------------------------------- cached loading


def stamp(path: Path) -> float:
    """Changes when the run folder's metrics are rewritten, so a re-used folder is reloaded."""
    metrics = path / "metrics.json"
    return metrics.stat().st_mtime if metrics.is_file() else 0.0


@st.cache_resource(max_entries=4, show_spinner="Loading the run...")
def cached_run(path: str, stamp: float) -> ood.OODRun:
    return ood.load_ood_run(path)


@st.cache_resource(max_entries=2, show_spinner="Loading the run's models...")
def cached_methods(path: str, stamp: float, device: str):
    return ood.load_methods(cached_run(path, stamp), device)


@st.cache_resource(max_entries=2, show_spinner="Regenerating the run's data sets...")
def cached_sets(path: str, stamp: float) -> dict:
    """The images the run scored, set by set in the run's order, and the in-distribution labels.

    ``cache_resource`` rather than ``cache_data``: the tensors are read-only and can be large
    (Fashion-MNIST: about 14,000 images), so they are shared, not copied on every rerun.
    """
    data = load_ood_data(cached_run(path, stamp).config.data_spec())
    return {
        "images": evaluation_sets(data),
        "labels": {"test": data.test.labels, "corrupted": data.corrupted.labels},
    }


@st.cache_resource(max_entries=4, show_spinner="Scoring the run's sets with this method (once)...")
def cached_predictions(path: str, stamp: float, device: str, method: str) -> dict:
    """Every set predicted by ``method``: for (method, score) pairs the run did not store."""
    methods, sets = cached_methods(path, stamp, device), cached_sets(path, stamp)["images"]
    return {name: methods.get(method).predict(images) for name, images in sets.items()}


# --------------------------------------------------------------------- picking an image


def set_caption(run: ood.OODRun, name: str) -> str:
    if name == "test":
        return "in-distribution test"
    if name == "corrupted":
        return "corrupted test (blur, noise, contrast)"
    if name == "near":
        return f"near OOD: held-out {', '.join(run.results.heldout) or 'classes'}"
    return f"far OOD: {name}"


def random_index(size: int) -> None:
    st.session_state.ood_index = random.randrange(size)


def benchmark_image(run: ood.OODRun, sets: dict) -> tuple[torch.Tensor, str, tuple[str, int]]:
    names = [name for name in ["test", *run.sets, "corrupted"] if name in sets["images"]]
    if st.session_state.get("ood_set") not in names:
        st.session_state.ood_set = names[0]
    cols = st.columns([3, 2, 1], vertical_alignment="bottom")
    set_name = cols[0].selectbox("Set", names, key="ood_set", format_func=lambda n: set_caption(run, n))
    size = sets["images"][set_name].shape[0]
    if st.session_state.get("ood_index", 0) >= size:
        st.session_state.ood_index = 0
    index = int(
        cols[1].number_input(
            "Index", min_value=0, max_value=size - 1, step=1, key="ood_index", help=f"0 to {size - 1}"
        )
    )
    cols[2].button("Random", icon=":material/casino:", key="ood_random", on_click=random_index, args=(size,))
    caption = f"{set_caption(run, set_name)} #{index}"
    if set_name in sets["labels"]:
        caption += f": {run.classes[int(sets['labels'][set_name][index])]}"
    return sets["images"][set_name][index], caption, (set_name, index)


# --------------------------------------------------------------------- one image through every method


def summary_frame(inspected: dict[str, inspection.ImagePrediction], classes: list[str]) -> pd.DataFrame:
    """Methods as columns; the prediction, its spread and every score as rows (text, "–" where none)."""
    frame = pd.DataFrame(
        inspection.image_summary(inspected, classes), index=list(inspection.SUMMARY_ROWS)
    ).fillna("–")
    return frame.loc[[row for row in inspection.SUMMARY_ROWS if (frame.loc[row] != "–").any()]]


def set_order(run: ood.OODRun, present) -> list[str]:
    """The sets in the page's order (test, the run's OOD sets, corrupted), those in ``present`` only."""
    return [name for name in ["test", *run.sets, "corrupted"] if name in present]


def choose_score(run: ood.OODRun, inspected: dict[str, inspection.ImagePrediction]) -> tuple[str, str]:
    methods = [m for m in METHOD_LABELS if m in inspected]
    if st.session_state.get("ood_method") not in methods:
        st.session_state.ood_method = "ensemble" if "ensemble" in methods else methods[0]
    cols = st.columns(2)
    method = cols[0].selectbox(
        "Method",
        methods,
        key="ood_method",
        format_func=METHOD_LABELS.get,
        help="feature space: Mahalanobis and KNN on the single model's embedding",
    )
    options = list(inspected[method].scores)
    if st.session_state.get("ood_score") not in options:
        st.session_state.ood_score = run.default_score(method, options)
    score = cols[1].selectbox(
        "OOD score",
        options,
        key="ood_score",
        format_func=lambda s: SCORE_LABELS.get(s, s),
        help="Higher always means more likely out of distribution",
    )
    return method, score


def threshold_slider(run: ood.OODRun, reference: dict, method: str, score: str) -> float:
    scale = inspection.operating_point(reference)
    low, high, default = scale.low, scale.high, scale.fpr95_threshold
    return st.slider(
        "Threshold: scores above it are flagged as OOD",
        min_value=low,
        max_value=high,
        value=default,
        step=(high - low) / 500,
        format="%.4g",
        key=f"ood_threshold|{run.name}|{method}|{score}",
        help=f"Starts at {default:.4g}, which keeps 95% of the in-distribution test images "
        "(the operating point of FPR95)",
    )


def verdict_metrics(
    run: ood.OODRun, value: float, threshold: float, rates: dict, chosen: tuple, picked
) -> None:
    """Score, threshold and verdict of one image; ``chosen`` is (method, score), ``picked`` (set, index)
    for an image of the run's own sets."""
    method, score = chosen
    is_ood = value > threshold
    cols = st.columns(4)
    about = f"{METHOD_LABELS[method]} · {SCORE_LABELS.get(score, score)}"
    cols[0].metric("Score", f"{value:.4g}", help=about)
    cols[1].metric("Threshold", f"{threshold:.4g}", f"{rates['test']:.1%} of test flagged", **QUIET)
    cols[2].metric(
        "Verdict",
        "OOD" if is_ood else "in distribution",
        f"score {'>' if is_ood else '≤'} threshold",
        delta_color="inverse" if is_ood else "normal",
        delta_arrow="off",
    )
    row = run.stored_row(method, score)
    if picked is not None and row is not None:
        set_name, index = picked
        cols[3].metric(
            "In the run",
            f"{float(run.scores[row][set_name][index]):.4g}",
            "as the run scored it",
            **QUIET,
            help="MC dropout and the BNN draw their samples per call, so one image alone can score a "
            "little differently from the batch the run scored",
        )


def flagged_table(run: ood.OODRun, rates: dict[str, float], stored: bool, where) -> None:
    """The share of each set flagged as OOD (:func:`playground.uncertainty.inspection.flagged_rates`)."""
    frame = pd.DataFrame([{"set": set_label(n), "flagged as OOD": rates[n]} for n in set_order(run, rates)])
    bar = st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)
    where.dataframe(frame, hide_index=True, width="stretch", column_config={"flagged as OOD": bar})
    where.caption(FLAGGED + ("" if stored else NOT_STORED))


def verdict(
    run: ood.OODRun, key: tuple, inspected: dict, method: str, score: str, picked: tuple | None
) -> None:
    value = inspected[method].scores[score]
    reference = run.reference_scores(method, score, lambda: cached_predictions(*key, method))
    threshold = threshold_slider(run, reference, method, score)
    rates = inspection.flagged_rates(reference, threshold)
    verdict_metrics(run, value, threshold, rates, (method, score), picked)
    left, right = st.columns([2, 1])
    show_chart(verdict_chart(reference, set_order(run, reference), value, threshold, score), left)
    flagged_table(run, rates, run.stored_row(method, score) is not None, right)


def explorer(run: ood.OODRun, key: tuple) -> None:
    if not run.has_models:
        st.info(
            "This run saved no models (save_models = false), so single images cannot be scored. "
            "Its curves and tables are below."
        )
        return
    methods, sets = cached_methods(*key), cached_sets(*key[:2])
    shape = tuple(sets["images"]["test"].shape[1:])
    source = st.radio("Image", SOURCES, horizontal=True, key="ood_source", label_visibility="collapsed")
    picked = None
    try:
        if source == SOURCES[0]:
            image, caption, picked = benchmark_image(run, sets)
        elif source == SOURCES[1]:
            image, caption = uploaded_image(shape, "ood")
        else:
            image, caption = drawn_image(shape, "ood")
    except PlaygroundError as err:
        show_error(err)
        return
    if image is None:
        return
    inspected = inspection.inspect_image(methods, image)
    method, score = choose_score(run, inspected)
    shown = "single" if method == "feature" else method  # feature scores read the single model's embedding
    left, right = st.columns([1, 4], vertical_alignment="center")
    left.image(upscale(image, 160), caption=caption, width=160)
    title = f"{METHOD_LABELS[shown]}: mean probability ± std over samples"
    show_chart(spread_chart(inspected[shown], run.classes, title), right)
    sampled = [m for m in SAMPLE_NOUNS if m in inspected]
    for column, name in zip(st.columns(len(sampled)), sampled):
        entry, noun = inspected[name], SAMPLE_NOUNS[name]
        title = f"{METHOD_LABELS[name]}: {entry.samples} {noun}s"
        show_chart(samples_chart(entry, run.classes, title, noun.split()[-1]), column)
    st.table(summary_frame(inspected, run.classes))
    st.caption(
        "p̄: the mean over samples or members. Spread: the standard deviation over samples of the predicted "
        "class's probability. Every score reads higher as more out of distribution."
    )
    st.markdown(f"##### Verdict: {METHOD_LABELS[method]}, {SCORE_LABELS.get(score, score)}")
    verdict(run, key, inspected, method, score, picked)


# --------------------------------------------------------------------- the run's curves and tables


def roc_curves(run: ood.OODRun, key: tuple) -> None:
    if not run.results.roc or not run.sets:
        st.info("This run has no ROC curves (it stored no evaluation).")
        return
    set_name = st.selectbox("OOD set", run.sets, key="ood_roc_set", format_func=lambda n: set_caption(run, n))
    read_with = {row: run.row_score(row) for row in run.results.roc}
    show_chart(roc_chart(run.results, [set_name], read_with))


def reliability(run: ood.OODRun, key: tuple) -> None:
    methods = list(run.results.reliability)
    if not methods:
        st.info("This run has no reliability bins (it stored no evaluation).")
        return
    if st.session_state.get("ood_rel_method") not in methods:
        st.session_state.ood_rel_method = "ensemble" if "ensemble" in methods else methods[0]
    method = st.selectbox(
        "Method", methods, key="ood_rel_method", format_func=lambda m: METHOD_LABELS.get(m, m)
    )
    show_chart(reliability_chart(run.results, [method]))


def tables(run: ood.OODRun, key: tuple) -> None:
    st.markdown("##### OOD detection (AUROC ↑ / FPR95 ↓)")
    st.markdown(report.detection_table(run.metrics, run.ood_sets))
    st.markdown("##### Accuracy, calibration and cost")
    st.markdown(report.calibration_table(run.metrics))
    st.markdown("##### Every score for every method (far AUROC, near in brackets)")
    st.markdown(report.score_table(run.metrics))
    st.caption(report.READING.replace("\n", " "))


def checks(run: ood.OODRun, key: tuple) -> None:
    claims = report.claims(run.metrics, run.ood_sets)
    if not claims:
        st.info(f"No check applies to the methods this run measured ({', '.join(run.methods)}).")
        return
    st.markdown(
        "\n".join(
            f"- {':green[:material/check_circle:]' if ok else ':red[:material/cancel:]'} {text}"
            for text, ok in claims
        )
    )  # icons: no emoji font needed
    st.caption(
        "The issue's checks are meant for the full preset over 3 seeds "
        "(`--preset full --seeds 0,1,2`); a quick or single-seed run may miss some."
    )


# --------------------------------------------------------------------- the page


def section(title: str, draw, run: ood.OODRun, key: tuple, intro: str = "") -> None:
    """One part of the page; an error in it (say, data that cannot be regenerated) leaves the
    others standing.
    """
    st.subheader(title)
    if intro:
        st.caption(intro)
    try:
        draw(run, key)
    except PlaygroundError as err:
        show_error(err)


def show_run(run: ood.OODRun, key: tuple) -> None:
    st.caption(run.describe())
    section(
        "One image through every method",
        explorer,
        run,
        key,
        "Pick an image from the run's sets, upload one or draw one. Each ensemble member and each MC-dropout "
        "or BNN posterior sample gives its own prediction; where they disagree, the input is probably out of "
        "distribution.",
    )
    left, right = st.columns(2)
    with left:
        section("ROC curves", roc_curves, run, key, "OOD is the positive class; one curve per method row.")
    with right:
        intro = "Accuracy against confidence in 15 bins, on the test set and under corruption."
        section("Reliability", reliability, run, key, intro)
    section("Method comparison", tables, run, key)
    section("Checks", checks, run, key)


settings = sidebar_settings()
st.title("Uncertainty & OOD detection")
st.markdown(
    "A classifier trained on clothing will call a digit a *bag* with 99% confidence. Deep ensembles, "
    "MC dropout and a Bayesian network (pyro) read the disagreement between members or posterior samples "
    "to know when they do not know; temperature scaling is the calibrated single-model baseline."
)
root = Path(settings.runs_root).expanduser()
chosen = choose_run(
    ood.find_ood_runs,
    root,
    "ood_run",
    "OOD run",
    f"No OOD run under `{root}` yet. Run the quick preset above (about 3-4 minutes on a CPU), "
    "or from a terminal:\n\n`playground run recipes/uncertainty_fashion.toml --preset quick`",
    new_experiment,
    settings,
)
try:
    path = chosen
    key = (str(path), stamp(path))
    run = cached_run(*key)
    show_run(run, (*key, str(choose_device(settings.device))))
except PlaygroundError as err:
    show_error(err)
