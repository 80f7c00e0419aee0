"""Uncertainty & OOD detection: which model knows when it does not know?

Pick an OOD run (or make one), then look at one image (from the benchmark's sets, uploaded or
drawn) through every method: each ensemble member and each MC-dropout / BNN posterior sample
side by side, the spread, a chosen OOD score and its in/OOD verdict against a threshold. Beneath:
the run's ROC curves, reliability diagram, method tables and checks.
"""

import random
from pathlib import Path

import pandas as pd
import streamlit as st
import torch
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
from ood_charts import (
    SCORE_LABELS,
    histogram_chart,
    reliability_figure,
    roc_figure,
    samples_heatmap,
    short_label,
    spread_chart,
)

from playground.core.config import load_recipe
from playground.core.device import choose_device
from playground.data.ood import FAR_SETS, load_ood_data
from playground.errors import PlaygroundError
from playground.uncertainty import experiment, report
from playground.uncertainty import results as ood
from playground.uncertainty.benchmark import MethodSettings, evaluation_sets
from playground.uncertainty.scores import score as ood_score

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "uncertainty_fashion.toml"
FIELDS = ("dataset", "far_sets", "bench.bnn_layers", "net.epochs", "bench.members", "train_limit")
FAR_CHOICES = [name for name in FAR_SETS if name != "folder"]  # a folder also needs ood_folder: CLI only

METHODS = {
    "single": "single model",
    "temp_scaled": "temperature scaled",
    "mc_dropout": "MC dropout",
    "ensemble": "deep ensemble",
    "bnn": "Bayesian NN (pyro)",
    "feature": "feature space",
}
SAMPLED = {"ensemble": "member", "mc_dropout": "dropout sample", "bnn": "posterior sample"}
SOURCES = ("A benchmark image", "Upload an image", "Draw one")


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
    preset_run_button(RECIPE, FORM, values, settings, experiment.run, "ood_run", "ood_train")


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


def set_label(run: ood.OODRun, name: str) -> str:
    if name == "test":
        return "in-distribution test"
    if name == "corrupted":
        return "corrupted test (blur, noise, contrast)"
    if name == "near":
        return f"near OOD: held-out {', '.join(run.results.get('heldout', [])) or 'classes'}"
    return f"far OOD: {name}"


def random_index(size: int) -> None:
    st.session_state.ood_index = random.randrange(size)


def benchmark_image(run: ood.OODRun, sets: dict) -> tuple[torch.Tensor, str, tuple[str, int]]:
    names = [name for name in ["test", *run.sets, "corrupted"] if name in sets["images"]]
    if st.session_state.get("ood_set") not in names:
        st.session_state.ood_set = names[0]
    cols = st.columns([3, 2, 1], vertical_alignment="bottom")
    set_name = cols[0].selectbox("Set", names, key="ood_set", format_func=lambda n: set_label(run, n))
    size = sets["images"][set_name].shape[0]
    if st.session_state.get("ood_index", 0) >= size:
        st.session_state.ood_index = 0
    index = int(
        cols[1].number_input(
            "Index", min_value=0, max_value=size - 1, step=1, key="ood_index", help=f"0 to {size - 1}"
        )
    )
    cols[2].button("Random", icon=":material/casino:", key="ood_random", on_click=random_index, args=(size,))
    caption = f"{set_label(run, set_name)} #{index}"
    if set_name in sets["labels"]:
        caption += f": {run.classes[int(sets['labels'][set_name][index])]}"
    return sets["images"][set_name][index], caption, (set_name, index)


# --------------------------------------------------------------------- one image through every method


def reference_scores(run: ood.OODRun, key: tuple, method: str, score: str) -> dict[str, torch.Tensor]:
    """Per set the score of every image: the run's own where it stored them, else scored now (cached)."""
    row = run.stored_row(method, score)
    if row is not None:
        return run.scores[row]
    return {name: ood_score(p, score) for name, p in cached_predictions(*key, method).items()}


def summary_frame(inspected: dict[str, ood.ImagePrediction], classes: list[str]) -> pd.DataFrame:
    """Methods as columns; the prediction, its spread and every score as rows (text, "–" where none)."""
    columns = {}
    for method, label in METHODS.items():
        if method not in inspected:
            continue
        entry = inspected[method]
        column = {}
        if entry.probs is not None:
            column = {
                "samples": f"{entry.samples}",
                "prediction": classes[entry.predicted],
                "p̄(prediction)": f"{entry.confidence:.3f}",
                "spread: std of p(prediction)": f"{entry.spread:.3f}",
            }
        column.update({SCORE_LABELS.get(name, name): f"{value:.4g}" for name, value in entry.scores.items()})
        columns[label] = column
    rows = [
        "samples",
        "prediction",
        "p̄(prediction)",
        "spread: std of p(prediction)",
        *[SCORE_LABELS[name] for name in SCORE_LABELS],
    ]
    frame = pd.DataFrame(columns, index=rows).fillna("–")
    return frame.loc[[row for row in rows if (frame.loc[row] != "–").any()]]


def set_order(run: ood.OODRun, present) -> list[str]:
    """The sets in the page's order (test, the run's OOD sets, corrupted), those in ``present`` only."""
    return [name for name in ["test", *run.sets, "corrupted"] if name in present]


def flagged_frame(run: ood.OODRun, rates: dict[str, float]) -> pd.DataFrame:
    """The share of each set flagged as OOD (:func:`playground.uncertainty.results.flagged_rates`)."""
    return pd.DataFrame(
        [{"set": short_label(name), "flagged as OOD": rates[name]} for name in set_order(run, rates)]
    )


def choose_score(run: ood.OODRun, inspected: dict[str, ood.ImagePrediction]) -> tuple[str, str]:
    methods = [m for m in METHODS if m in inspected]
    if st.session_state.get("ood_method") not in methods:
        st.session_state.ood_method = "ensemble" if "ensemble" in methods else methods[0]
    cols = st.columns(2)
    method = cols[0].selectbox(
        "Method",
        methods,
        key="ood_method",
        format_func=METHODS.get,
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


def verdict(
    run: ood.OODRun,
    key: tuple,
    inspected: dict[str, ood.ImagePrediction],
    method: str,
    score: str,
    picked: tuple | None,
) -> None:
    value = inspected[method].scores[score]
    reference = reference_scores(run, key, method, score)
    scale = ood.operating_point(reference)
    low, high, default = scale.low, scale.high, scale.fpr95_threshold
    threshold = st.slider(
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
    rates = ood.flagged_rates(reference, threshold)
    is_ood = value > threshold
    cols = st.columns(4)
    cols[0].metric("Score", f"{value:.4g}", help=f"{METHODS[method]} · {SCORE_LABELS.get(score, score)}")
    cols[1].metric(
        "Threshold",
        f"{threshold:.4g}",
        f"{rates['test']:.1%} of test flagged",
        delta_color="off",
        delta_arrow="off",
    )
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
            delta_color="off",
            delta_arrow="off",
            help="MC dropout and the BNN draw their samples per call, so one image alone can score a "
            "little differently from the batch the run scored",
        )
    left, right = st.columns([2, 1])
    left.plotly_chart(
        histogram_chart(
            set_order(run, reference),
            reference,
            value,
            threshold,
            score,
        ),
        width="stretch",
    )
    with right:
        st.dataframe(
            flagged_frame(run, rates),
            hide_index=True,
            width="stretch",
            column_config={
                "flagged as OOD": st.column_config.ProgressColumn(
                    format="percent", min_value=0.0, max_value=1.0
                )
            },
        )
        st.caption(
            "The share of each set flagged as OOD at this threshold (on the test set: false alarms)."
            + (
                ""
                if row
                else " Scored now with the run's saved models: the run stored no per-image "
                "scores for this method and score."
            )
        )


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
    inspected = ood.inspect_image(methods, image)
    method, score = choose_score(run, inspected)
    shown = (
        "single" if method == "feature" else method
    )  # the feature scores read the single model's embedding
    left, right = st.columns([1, 4], vertical_alignment="center")
    left.image(upscale(image, 160), caption=caption, width=160)
    right.plotly_chart(
        spread_chart(
            inspected[shown].probs, run.classes, f"{METHODS[shown]}: mean probability ± std over samples"
        ),
        width="stretch",
    )
    sampled = [m for m in SAMPLED if m in inspected]
    for column, name in zip(st.columns(len(sampled)), sampled):
        probs = inspected[name].probs
        column.plotly_chart(
            samples_heatmap(
                probs,
                run.classes,
                f"{METHODS[name]}: {probs.shape[0]} {SAMPLED[name]}s",
                SAMPLED[name].split()[-1],
            ),
            width="stretch",
        )
    st.table(summary_frame(inspected, run.classes))
    st.caption(
        "p̄: the mean over samples or members. Spread: the standard deviation over samples of the predicted "
        "class's probability. Every score reads higher as more out of distribution."
    )
    st.markdown(f"##### Verdict: {METHODS[method]}, {SCORE_LABELS.get(score, score)}")
    verdict(run, key, inspected, method, score, picked)


# --------------------------------------------------------------------- the run's curves and tables


def roc_curves(run: ood.OODRun, key: tuple) -> None:
    roc = run.results.get("roc")
    if not roc or not run.sets:
        st.info("This run has no ROC curves (no ood_results.json).")
        return
    set_name = st.selectbox("OOD set", run.sets, key="ood_roc_set", format_func=lambda n: set_label(run, n))
    read_with = {row: run.row_score(row) for row in roc}
    figure = roc_figure(roc, run.results.get("ood", {}), read_with, set_name)
    st.plotly_chart(figure, width="stretch")


def reliability(run: ood.OODRun, key: tuple) -> None:
    bins = run.results.get("reliability")
    if not bins:
        st.info("This run has no reliability bins (no ood_results.json).")
        return
    methods = list(bins)
    if st.session_state.get("ood_rel_method") not in methods:
        st.session_state.ood_rel_method = "ensemble" if "ensemble" in methods else methods[0]
    method = st.selectbox("Method", methods, key="ood_rel_method", format_func=lambda m: METHODS.get(m, m))
    figure = reliability_figure(
        bins[method], run.results.get("calibration", {}).get(method, {}), METHODS.get(method, method)
    )
    st.plotly_chart(figure, width="stretch")


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


def describe(run: ood.OODRun) -> str:
    c, ran = run.config, run.methods
    parts = [
        f"in distribution: {c.dataset} without "
        f"{', '.join(run.results.get('heldout', [])) or c.heldout_classes}",
        f"far sets: {', '.join(c.far_sets)}",
    ]
    if c.methods:
        parts.append(f"methods run: {', '.join(METHODS.get(m, m) for m in ran)}")
    parts += [
        text
        for method, text in (
            ("ensemble", f"{c.bench.members}-member ensemble"),
            ("mc_dropout", f"MC dropout {c.bench.mc_samples} samples"),
            (
                "bnn",
                f"BNN ({c.bench.bnn_layers} layer{'s' if c.bench.bnn_layers == 'all' else ''}) "
                f"{c.bench.bnn_samples} samples",
            ),
        )
        if method in ran
    ]
    if run.seeds:
        source = run.artifact_dir.name if run.artifact_dir else "none"
        parts.append(
            f"numbers: mean ± std over {len(run.seeds)} seeds; images, scores and models from {source}"
        )
    return " · ".join(parts)


def show_run(run: ood.OODRun, key: tuple) -> None:
    st.caption(describe(run))
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
        section(
            "Reliability",
            reliability,
            run,
            key,
            "Accuracy against confidence in 15 bins, on the test set and under corruption.",
        )
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
    path = root / chosen
    key = (str(path), stamp(path))
    run = cached_run(*key)
    show_run(run, (*key, str(choose_device(settings.device))))
except PlaygroundError as err:
    show_error(err)
