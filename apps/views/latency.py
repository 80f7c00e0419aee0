"""Latency benchmark: every precision/runtime variant of one CNN, latency and accuracy side by side.

Widgets -> :func:`playground.latency.experiment.run` (recipes/latency_fashion.toml with the changed
fields as ``--set`` overrides); a run is read back through :mod:`playground.latency.results` and its charts
are the report's (:mod:`playground.latency.charts`) at the batch size picked here. Figures that cannot be
trusted (too wide a spread, too few timed calls: :func:`playground.latency.results.trust_flags`) are named in
a warning above the table and in its ``trust`` column; variants asked for that did not run are listed below
it with their reasons.
"""

from pathlib import Path

import streamlit as st
from charts import show_chart
from common import PresetForm, choose_run, preset_run_button, recipe_values, show_error, sidebar_settings

from playground.core.config import load_recipe
from playground.errors import PlaygroundError
from playground.latency import results as lat
from playground.latency.charts import latency_chart, pareto_chart
from playground.latency.uploads import MAX_MODEL_MB, save_model_upload
from playground.latency.variants import VARIANTS

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipes" / "latency_fashion.toml"
FIELDS = (
    "methods",
    "batch_sizes",
    "threads",
    "width",
    "epochs",
    "models_from",
    "model",
    "weights",
    "input_shape",
    "calibration_dir",
    "eval_dir",
    "max_drop",
)
FORM = PresetForm("lat", recipe_values(RECIPE, FIELDS), FIELDS)
BATCHES = [1, 8, 16, 32, 64, 128, 256]
TABLE_COLUMNS = [
    "variant",
    "trust",
    "backend",
    "precision",
    "iters",
    "speedup_vs_torch_fp32",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "throughput",
    "accuracy",
    "ood_accuracy",
    "far_agreement",
    "compat_map_ratio",
    "size_mb",
    "peak_mb",
]


# --------------------------------------------------------------------- a new run


def take_upload(upload, root: Path) -> None:
    """Save an uploaded model file once (not on every rerun) and point the model or weights field at it;
    a refused file shows its error for as long as it stays in the uploader."""
    saved = st.session_state.get("lat_upload_saved")
    if saved is None or saved[0] != upload.file_id:
        try:
            path, error = save_model_upload(upload.getvalue(), upload.name, root / "uploads"), None
        except PlaygroundError as err:
            path, error = None, err
        saved = st.session_state["lat_upload_saved"] = (upload.file_id, path, error)
        if path is not None:  # the field is drawn already: it takes the path before the next run draws it
            st.session_state["lat_upload_field"] = (
                "lat_model" if path.suffix == ".onnx" else "lat_weights",
                path,
            )
            st.rerun()
    if saved[2] is not None:
        show_error(saved[2])


def own_model_fields(root: Path) -> None:
    """A team's model: a torchvision/timm name or an uploaded ONNX file (weights as an upload too), their
    image folders on this machine, and the accuracy budget of the pick."""
    if "lat_upload_field" in st.session_state:
        key, path = st.session_state.pop("lat_upload_field")
        st.session_state[key] = str(path)
    left, right = st.columns(2)
    left.text_input(
        "Model",
        key="lat_model",
        placeholder="torchvision:resnet50, timm:mobilenetv3_large_100 or /path/to/model.onnx",
        help="Nothing is downloaded: torchvision and timm models start from random weights unless you "
        "give weights",
    )
    right.text_input("Input shape", key="lat_input_shape", placeholder="3x224x224 (default: the model's)")
    upload = st.file_uploader(
        "Or upload an ONNX model, or .safetensors weights for the model named above",
        type=["onnx", "safetensors"],
        key="lat_upload",
        max_upload_size=MAX_MODEL_MB,
    )
    if upload is not None:
        take_upload(upload, root)
    left, middle, right = st.columns(3)
    left.text_input("Calibration images (folder)", key="lat_calibration_dir", help="int8 calibration")
    middle.text_input(
        "Labelled eval images (ImageFolder)", key="lat_eval_dir", help="DIR/<class>/<image>: accuracy"
    )
    right.number_input(
        "Pick within (accuracy points)",
        min_value=-1.0,
        max_value=100.0,
        step=0.5,
        key="lat_max_drop",
        help="The fastest variant within this accuracy drop is named and explained (-1: no pick)",
    )
    if st.session_state["lat_weights"]:
        st.caption(f"Weights: {st.session_state['lat_weights']}")


def model_choice(root: Path) -> None:
    """Train a new benchmark CNN, re-time the models a past latency run saved (no training), or
    benchmark a team's own model."""
    own = st.toggle(
        "Your own model (torchvision, timm or ONNX)",
        value=bool(st.session_state["lat_model"]),
        key="lat_own",
        help="Off: the project's CNN trained on Fashion-MNIST",
    )
    if own:
        st.session_state["lat_models_from"] = ""
        own_model_fields(root)
        return
    for field in ("model", "weights", "input_shape", "calibration_dir", "eval_dir"):
        st.session_state[f"lat_{field}"] = ""
    saved = [str(info.path) for info in lat.find_latency_runs(root) if (info.path / "models").is_dir()]
    if st.session_state["lat_models_from"] not in saved:
        st.session_state["lat_models_from"] = ""
    st.selectbox(
        "Model",
        [""] + saved,
        key="lat_models_from",
        format_func=lambda path: (
            "Train a new benchmark CNN (and the pruned and student models)"
            if not path
            else f"Re-time the saved models of {Path(path).name}"
        ),
        help="A run saves its trained models; re-timing them measures the same weights again "
        "(on other threads or batch sizes) without training. Width and epochs are then ignored.",
    )


def draw_widgets(presets: list[str], root: Path) -> dict:
    FORM.restore(presets)
    model_choice(root)
    top = st.columns([1, 4])
    FORM.preset_select(
        top[0],
        presets,
        help="Starting values from recipes/latency_fashion.toml (quick: a few minutes on a CPU)",
    )
    top[1].multiselect(
        "Variants",
        list(VARIANTS),
        key="lat_methods",
        help="The config's methods: torch_fp32 is the reference every other variant is checked against",
    )
    low = st.columns(4)
    low[0].multiselect(
        "Batch sizes", sorted(set(BATCHES) | set(st.session_state["lat_batch_sizes"])), key="lat_batch_sizes"
    )
    low[1].number_input(
        "Threads",
        min_value=0,
        max_value=256,
        step=1,
        key="lat_threads",
        help="torch and ONNX Runtime intra-op threads (0: leave as is)",
    )
    project = not st.session_state["lat_model"]
    low[2].number_input(
        "CNN width",
        disabled=not project,
        min_value=1,
        max_value=512,
        step=8,
        key="lat_width",
        help="Channels of the first stage (then 2x and 4x)",
    )
    low[3].number_input("Epochs", min_value=1, max_value=100, key="lat_epochs", disabled=not project)
    values = FORM.values()
    # the same choice in any click order: in the recipe's (and VARIANTS') order
    return values | {
        "methods": [v for v in VARIANTS if v in values["methods"]],
        "batch_sizes": sorted(values["batch_sizes"]),
    }


def new_experiment(settings) -> None:
    if not RECIPE.is_file():
        st.warning("No latency recipe found (expected recipes/latency_fashion.toml).")
        return
    values = draw_widgets(list(load_recipe(RECIPE).presets), Path(settings.runs_root).expanduser())
    preset_run_button(RECIPE, FORM, values, settings, "lat_run", "lat_train", "Latency")


# --------------------------------------------------------------------- checks and comparison


def checks_section(results: dict, batch: int) -> None:
    st.subheader("Checks")
    st.caption(
        "Every variant against torch_fp32 on real test images; int8 variants must show integer kernels "
        "in the executed graph, not just a smaller file."
    )
    st.dataframe(lat.checks_frame(results), hide_index=True)
    for name, ran_int8, evidence in lat.int8_verdicts(results):
        if ran_int8:
            st.success(f"**{name}** ran int8 kernels: {evidence}", icon=":material/check_circle:")
        else:
            st.warning(f"**{name}** did not run int8 kernels: {evidence}", icon=":material/warning:")
    for name, check in results["checks"].items():
        if check.get("parity_ok") is False:
            st.warning(
                check.get("explanation")
                or f"**{name}** is outside its parity tolerance against torch_fp32 "
                f"(max |Δ| {check.get('max_abs_diff', float('nan')):.3g}).",
                icon=":material/warning:",
            )
    if note := lat.overhead_note(results, batch):
        st.info(note, icon=":material/info:")
    flags = lat.slow_flags(results, batch)
    for flag in flags:
        st.warning(
            f"**{flag['variant']} is slower than {flag['counterpart']}** at batch {batch} "
            f"({flag['p50_ms']:.3f} vs {flag['counterpart_p50_ms']:.3f} ms p50). Likely: {flag['reason']}.",
            icon=":material/speed:",
        )
    if not flags:
        st.caption(f"No reduced-precision variant is slower than its fp32 counterpart at batch {batch}.")


def compare_section(root: Path, chosen: Path, results: dict) -> None:
    st.subheader("Compare with past runs")
    others = [info.name for info in lat.find_latency_runs(root) if info.path != chosen]
    if not others:
        st.caption("No other latency run under the runs root yet.")
        return
    picked = st.multiselect("Other latency runs", others, key="lat_compare")
    if not picked:
        st.caption("Pick runs to compare p50 at batch 1 and accuracy per variant.")
        return
    runs = {chosen.name: results}
    for name in picked:
        try:
            runs[name] = lat.load_results(root / name)
        except PlaygroundError as err:
            show_error(err)
    st.dataframe(lat.compare_frame(runs, batch=1), hide_index=True)


# --------------------------------------------------------------------- the page


def skipped_note(chosen: Path, results: dict) -> None:
    """Every variant the run was asked for that did not run, with the reason."""
    skipped = lat.skipped_variants(chosen, results)
    if skipped:
        lines = "\n".join(f"- **{name}**: {why}" for name, why in skipped.items())
        st.info(f"**Asked for but not run** ({len(skipped)}):\n\n{lines}", icon=":material/block:")


def batch_choice(batches: list[int]) -> int:
    if st.session_state.get("lat_batch") not in batches:  # a run with other batch sizes was opened
        st.session_state["lat_batch"] = batches[0]
    return st.radio(
        "Batch size",
        batches,
        horizontal=True,
        key="lat_batch",
        help="The table and both charts show this batch size",
    )


def show_run(root: Path, chosen: Path) -> None:
    try:
        results = lat.load_results(chosen)
    except PlaygroundError as err:
        show_error(err)
        return
    st.markdown(f"**Hardware:** {lat.hardware_line(results['hardware'])}")
    batch = batch_choice(lat.batch_sizes(results))
    flags = lat.trust_flags(results, batch)
    if warning := lat.trust_warning(flags):
        st.warning(warning, icon=":material/report:")
    frame = lat.with_trust(lat.at_batch(results, batch), flags)
    measured = [c for c in TABLE_COLUMNS if c in frame.columns and frame[c].notna().any()]
    st.dataframe(frame[measured], hide_index=True)  # a column nothing measured (no --eval, say) is left out
    skipped_note(chosen, results)
    left, right = st.columns([3, 2])
    show_chart(pareto_chart(results["rows"], batch), left, key="lat_pareto")
    show_chart(latency_chart(results["rows"], batch), right, key="lat_bars")
    checks_section(results, batch)
    compare_section(root, chosen, results)


settings = sidebar_settings()
st.title("Latency benchmark")
st.markdown(
    "The project's CNN, or your own torchvision, timm or ONNX model, run as fp32, compiled, bf16, fp16 and "
    "int8 in PyTorch and ONNX Runtime (plus, for the project's CNN, a pruned copy and a distilled student). "
    "Each variant gets honest latency (warm-up, then p50/p90/p99 per batch size) next "
    "to its accuracy on clean and corrupted test images, so a speed-up is never shown without its cost. "
    "Every variant is checked against fp32, and an int8 variant counts only if integer kernels really ran."
)
root = Path(settings.runs_root).expanduser()
chosen = choose_run(
    lat.find_latency_runs,
    root,
    "lat_run",
    "Latency run",
    f"No latency benchmark run under `{root}` yet. Run the quick preset above, or from a terminal:"
    "\n\n`playground run recipes/latency_fashion.toml --preset quick`",
    new_experiment,
    settings,
)
show_run(root, chosen)
