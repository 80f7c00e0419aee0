"""The uncertainty & OOD page under AppTest: no run yet, a tiny run, its widgets, uploads and drawing."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from playground.uncertainty.benchmark import MethodSettings
from playground.uncertainty.methods import NetSpec
from tests.apps.conftest import APP_FILE, wait_for_jobs
from tests.data.test_image_file import header_png
from tests.uncertainty.test_experiment import old_layout

PAGE = "views/uncertainty.py"
# a digits run that trains in about ten seconds; the ensemble still beats chance on every set
TINY_OOD = dict(
    dataset="digits",
    far_sets=["shapes", "gaussian", "uniform"],
    net=NetSpec(width=8, pool_size=2, embedding_dim=32, epochs=6, lr=3e-3, batch_size=64),
    bench=MethodSettings(members=3, mc_samples=4, bnn_samples=4),
    ood_limit=300,
    device="cpu",
)


@pytest.fixture(scope="module")
def ood_template(tmp_path_factory):
    """One tiny OOD run, trained once for this module; tests copy it into their runs root."""
    from playground.uncertainty.experiment import Config, run

    return run(Config(**TINY_OOD, out=str(tmp_path_factory.mktemp("ood-template")))).run_dir


@pytest.fixture
def ood_run(ood_template, playground_home):
    return shutil.copytree(ood_template, playground_home / ood_template.name)


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP_FILE), default_timeout=120).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def image_caption(at: AppTest) -> str:
    return at.image[0].captions[0]


def threshold_key(run_name: str, method: str, score: str) -> str:
    return f"ood_threshold|{run_name}|{method}|{score}"


def png(width: int, height: int) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height))
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill="white")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_without_runs_the_page_offers_the_quick_preset():
    at = open_page()
    assert "No OOD run" in at.info[0].value
    assert "playground run recipes/uncertainty_fashion.toml --preset quick" in at.info[0].value
    assert at.button(key="ood_train").label == "Run the quick preset"
    assert at.code[0].value == "playground run recipes/uncertainty_fashion.toml --preset quick"
    at.number_input(key="ood_bench.members").set_value(4).run()
    assert not at.exception and at.code[0].value.endswith("--preset quick --set bench.members=4")
    at.selectbox(key="ood_bench.bnn_layers").select("last").run()
    assert not at.exception and "--set bench.bnn_layers=last --set bench.members=4" in at.code[0].value
    at.selectbox(key="ood_preset").select("full").run()
    assert (
        at.button(key="ood_train").label == "Run the full preset"
        and at.number_input(key="ood_bench.members").value == 5
        and at.number_input(key="ood_net.epochs").value == 12
        and at.selectbox(key="ood_bench.bnn_layers").value == "head"
    )
    assert not at.metric and not at.get("plotly_chart")


def test_the_run_button_trains_a_run_and_opens_it(playground_home):
    at = open_page()
    at.selectbox(key="ood_dataset").select("digits")
    at.multiselect(key="ood_far_sets").set_value(["shapes", "uniform"])
    at.number_input(key="ood_net.epochs").set_value(1)
    at.number_input(key="ood_bench.members").set_value(2)
    at.number_input(key="ood_train_limit").set_value(300)
    at.run()
    assert "--set dataset=digits" in at.code[0].value and "--set bench.members=2" in at.code[0].value
    assert "--set net.epochs=1" in at.code[0].value
    at.button(key="ood_train").click().run()
    assert not at.exception and not at.error
    [job] = wait_for_jobs(at)
    assert job.status == "finished", job.describe()
    run_dirs = [p for p in playground_home.iterdir() if (p / "config.toml").is_file()]
    assert len(run_dirs) == 1 and at.selectbox(key="ood_run").value == run_dirs[0].name
    assert at.table and metrics(at)["Verdict"] in ("OOD", "in distribution")


def test_a_training_error_is_one_line():
    at = open_page()
    at.selectbox(key="ood_dataset").select("digits").run()  # digits is also a far set in the preset
    assert not at.exception and "\n" not in at.error[0].value
    assert "cannot also be a far OOD set" in at.error[0].value


def test_a_run_shows_an_image_through_every_method_and_the_tables(ood_run):
    at = open_page()
    assert not at.error
    assert at.selectbox(key="ood_run").value == ood_run.name
    assert image_caption(at).startswith("in-distribution test #0: ")
    shown = metrics(at)
    assert shown["Score"] == shown["In the run"]  # the ensemble is deterministic: the run's own score
    assert shown["Verdict"] in ("OOD", "in distribution")
    summary = at.table[0].value
    assert list(summary.columns) == [
        "single model",
        "temperature scaled",
        "MC dropout",
        "deep ensemble",
        "Bayesian NN (pyro)",
        "feature space",
    ]
    assert summary.loc["samples", "deep ensemble"] == "3" and summary.loc["samples", "MC dropout"] == "4"
    assert summary.loc["Mahalanobis", "feature space"] != "–"
    assert len(at.get("plotly_chart")) == 7  # spread, 3 sample heatmaps, histogram, ROC, reliability
    titles = chart_titles(at)  # the library's charts (playground/uncertainty/charts.py), drawn by plotly
    assert titles[0] == "deep ensemble: mean probability ± std over samples"
    assert titles[1:4] == [
        "deep ensemble: 3 members",
        "MC dropout: 4 dropout samples",
        "Bayesian NN (pyro): 4 posterior samples",
    ]
    assert titles[4] == "Where this image falls: mutual information (BALD) by set"
    text = "\n".join(m.value for m in at.markdown)
    assert "near AUROC / FPR95" in text and "corrupted ECE" in text and "mutual_information" in text
    assert "ensemble far AUROC >= single MSP far AUROC + 0.02" in text


def test_set_index_method_and_threshold_change_what_is_shown(ood_run):
    at = open_page()
    first = metrics(at)["Score"]
    at.number_input(key="ood_index").set_value(7).run()
    assert not at.exception and image_caption(at).startswith("in-distribution test #7: ")
    assert metrics(at)["Score"] != first
    at.selectbox(key="ood_set").select("shapes").run()
    assert image_caption(at) == "far OOD: shapes #7"
    assert metrics(at)["Verdict"] == "OOD"  # shapes lie far above the test scores of this run's ensemble
    score = float(metrics(at)["Score"])
    at.slider(key=threshold_key(ood_run.name, "ensemble", "mutual_information")).set_value(score * 1.01).run()
    assert metrics(at)["Verdict"] == "in distribution"
    at.selectbox(key="ood_method").select("feature").run()
    assert not at.exception and at.selectbox(key="ood_score").value == "mahalanobis"
    assert metrics(at)["Score"] == metrics(at)["In the run"]
    at.selectbox(key="ood_method").select("mc_dropout").run()
    assert at.selectbox(key="ood_score").value == "entropy"  # what the run reported MC dropout with
    at.selectbox(key="ood_score").select("msp").run()  # not stored by the run: scored now with its models
    assert not at.exception and not at.error
    assert "In the run" not in metrics(at) and any("Scored now" in c.value for c in at.caption)
    at.button(key="ood_random").click().run()
    assert image_caption(at) == f"far OOD: shapes #{at.number_input(key='ood_index').value}"


def test_roc_set_and_reliability_method_pickers(ood_run):
    at = open_page()
    assert "In-distribution test against near (legend: AUROC)" in chart_titles(at)
    at.selectbox(key="ood_roc_set").select("uniform").run()
    assert "In-distribution test against uniform (legend: AUROC)" in chart_titles(at)
    at.selectbox(key="ood_rel_method").select("bnn").run()
    assert not at.exception and "Bayesian NN (pyro): accuracy against confidence" in chart_titles(at)


def test_uploads_are_checked_and_converted(ood_run):
    at = open_page()
    at.radio(key="ood_source").set_value("Upload an image").run()
    assert not at.exception and not at.metric
    at.file_uploader(key="ood_upload").set_value(("notes.png", b"this is not an image", "image/png")).run()
    assert not at.exception and not at.metric
    assert "notes.png is not an image" in at.error[0].value and "\n" not in at.error[0].value
    at.file_uploader(key="ood_upload").set_value(("wide.png", png(5000, 8), "image/png")).run()
    assert "at most 4096 pixels" in at.error[0].value
    bomb = header_png(30000, 30000)
    at.file_uploader(key="ood_upload").set_value(("bomb.png", bomb, "image/png")).run()
    assert not at.exception and not at.metric
    assert at.error[0].value.startswith("bomb.png cannot be read as an image: too many pixels")
    at.file_uploader(key="ood_upload").set_value(("disc.png", png(40, 30), "image/png")).run()
    assert not at.exception and not at.error
    assert image_caption(at) == "upload: disc.png"
    assert metrics(at)["Verdict"] in ("OOD", "in distribution") and "In the run" not in metrics(at)


def test_drawing_without_strokes_asks_for_a_drawing(ood_run):
    at = open_page()
    at.radio(key="ood_source").set_value("Draw one").run()
    assert not at.exception and not at.error and not at.metric
    assert (
        any("Draw with the mouse" in c.value for c in at.caption)
        or "streamlit-drawable-canvas" in at.info[0].value
    )


@pytest.fixture(scope="module")
def bnn_template(tmp_path_factory):
    """A tiny run of the BNN alone (methods = ["bnn"]): no single model, ensemble or feature rows."""
    from playground.uncertainty.experiment import Config, run

    return run(Config(**TINY_OOD, methods=["bnn"], out=str(tmp_path_factory.mktemp("ood-bnn")))).run_dir


def test_a_run_of_some_methods_shows_what_it_has(bnn_template, playground_home):
    shutil.copytree(bnn_template, playground_home / bnn_template.name)
    at = open_page()
    assert not at.exception and not at.error
    assert at.selectbox(key="ood_run").value == bnn_template.name
    assert any("methods run: Bayesian NN (pyro)" in c.value for c in at.caption)
    assert list(at.table[0].value.columns) == ["Bayesian NN (pyro)"]
    assert at.selectbox(key="ood_method").options == ["Bayesian NN (pyro)"]
    assert at.selectbox(key="ood_score").value == "mutual_information" and "In the run" in metrics(at)
    assert at.selectbox(key="ood_rel_method").value == "bnn"
    assert len(at.get("plotly_chart")) == 5  # spread, 1 sample heatmap, histogram, ROC, reliability
    text = "\n".join(m.value for m in at.markdown)
    assert "`bnn` (mutual_information)" in text and "`ensemble`" not in text
    assert "BNN mutual-information far AUROC" in text and "ensemble far AUROC" not in text
    at.selectbox(key="ood_score").select("energy").run()  # not stored by the run: scored now with the BNN
    assert not at.exception and not at.error and "In the run" not in metrics(at)


def test_a_run_made_before_results_json_still_opens(ood_template, playground_home):
    old_layout(ood_template, playground_home / ood_template.name)  # "ood", flat keys, ood_results.json
    at = open_page()
    assert not at.exception and not at.error
    assert at.selectbox(key="ood_run").value == ood_template.name
    assert len(at.get("plotly_chart")) == 7 and metrics(at)["Score"] == metrics(at)["In the run"]
    assert "In-distribution test against near (legend: AUROC)" in chart_titles(at)
    assert any("near AUROC / FPR95" in m.value for m in at.markdown)
