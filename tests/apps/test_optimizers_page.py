"""The Optimizers page: trajectories follow the widgets; the curves of the latest run; the quick-preset
button.

The page is run on its own (it is not in the navigation yet), with ``apps/`` on ``sys.path`` as
Streamlit puts it there for ``apps/app.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.jobs import Jobs
from playground.optimizers import experiment
from playground.optimizers.experiment import Config
from tests.apps.conftest import plotly_array, wait_for_jobs
from tests.conftest import REPO

PAGE = REPO / "apps" / "views" / "optimizers.py"
TINY = dict(
    dataset="digits",
    epochs=1,
    full_batch_epochs=3,
    width=8,
    embedding_dim=32,
    batch_size=32,
    trajectory_steps=20,
    functions=["saddle"],
    methods=["gd", "adam"],
)


@pytest.fixture
def page(monkeypatch) -> AppTest:
    monkeypatch.syspath_prepend(str(REPO / "apps"))
    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not at.exception
    return at


def chart(at: AppTest, key: str) -> dict:
    """The plotly chart whose widget key contains ``key`` (trajectory, curves)."""
    charts = [c for c in at.get("plotly_chart") if f"opt_{key}_chart" in c.proto.id]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


def paths_in(spec: dict) -> dict[str, int]:
    """Optimizer label -> number of points drawn of its path."""
    return {
        d["name"]: len(plotly_array(d["x"]))
        for d in spec["data"]
        if d.get("mode") == "lines" and d.get("name")
    }


def test_trajectories_follow_function_step_and_learning_rate(page):
    at = page
    assert at.selectbox(key="opt_function").value == "himmelblau"
    table = at.dataframe[0].value
    assert list(table["optimizer"]) == ["GD (full batch)", "Adagrad", "RMSprop", "Adam", "AdaDelta"]
    assert table["distance to nearest minimum"].max() < 1e-3  # 200 steps: every one reaches a minimum
    trajectory = chart(at, "trajectory")
    assert set(paths_in(trajectory).values()) == {201}
    assert [d["type"] for d in trajectory["data"][:3]] == ["contour", "scatter", "scatter"]  # minima, start
    frames = trajectory["frames"]  # ▶ Play: the paths' x and y at up to 60 steps, in the last traces
    assert len(frames) == 60 and frames[-1]["traces"] == list(range(3, 3 + 2 * 5))
    assert (
        len(plotly_array(frames[-1]["data"][0]["x"])) == 201
        and len(plotly_array(frames[0]["data"][0]["x"])) == 1
    )
    at.slider(key="opt_step").set_value(10).run()
    assert set(paths_in(chart(at, "trajectory")).values()) == {11}
    assert at.dataframe[0].value["distance to nearest minimum"].min() > 0.1
    at.selectbox(key="opt_function").select("quadratic").run()
    assert not at.exception
    assert at.number_input(key="opt_lr_gd").value == 0.15  # the learning rates follow the function
    assert "10" in at.latex[0].value and at.number_input(key="opt_condition").value == 10.0
    assert at.dataframe[0].value["diverged at step"].isna().all()
    at.number_input(key="opt_condition").set_value(100.0).run()
    assert "100" in at.latex[0].value
    assert at.dataframe[0].value.iloc[0]["diverged at step"] > 0  # GD at lr 0.15 > 2/κ blows up
    at.number_input(key="opt_condition").set_value(10.0).run()
    before = at.dataframe[0].value.iloc[0][["x", "y"]].tolist()
    at.number_input(key="opt_lr_gd").set_value(0.05).run()
    assert at.dataframe[0].value.iloc[0][["x", "y"]].tolist() != before


def test_noise_separates_gd_from_sgd_and_divergence_is_shown(page):
    at = page
    at.multiselect(key="opt_optimizers").set_value(["gd", "sgd"]).run()
    same = at.dataframe[0].value
    assert same.iloc[0]["x"] == same.iloc[1]["x"]  # no noise: one update rule, one path
    at.number_input(key="opt_noise").set_value(5.0).run()
    noisy = at.dataframe[0].value
    assert noisy.iloc[0]["x"] == same.iloc[0]["x"] and noisy.iloc[1]["x"] != same.iloc[1]["x"]
    at.number_input(key="opt_lr_sgd").set_value(100.0).run()
    assert (
        not at.exception
        and noisy.iloc[1]["diverged at step"] != at.dataframe[0].value.iloc[1]["diverged at step"]
    )
    assert at.dataframe[0].value.iloc[1]["diverged at step"] < 10
    at.multiselect(key="opt_optimizers").set_value([]).run()
    assert "Pick at least one optimizer." in [i.value for i in at.info]


def test_curves_of_the_latest_run_and_of_a_multi_seed_run(page, playground_home):
    at = page
    assert any("No optimizers runs" in i.value for i in at.info)
    experiment.run(Config(**TINY, out=str(playground_home)))
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == 2  # the trajectories and the run's curves
    names = at.selectbox(key="opt_run").options
    assert len(names) == 1 and names[0].startswith("optimizers-")
    assert list(at.dataframe[1].value["optimizer"]) == ["GD (full batch)", "Adam"]
    curves = chart(at, "curves")  # training loss, validation loss, validation accuracy: 2 lines each
    assert [d["name"] for d in curves["data"]] == ["GD (full batch)", "Adam"] * 3
    assert [a["text"] for a in curves["layout"]["annotations"]][:3] == [
        "Training loss",
        "Validation loss",
        "Validation accuracy",
    ]
    accuracy = curves["data"][4]
    assert accuracy["xaxis"] == "x3" and len(plotly_array(accuracy["x"])) == 4  # gd: epochs 0 to 3

    from playground.core.runner import run_seeds

    run_seeds(experiment, Config(**TINY, name="seeded", out=str(playground_home)), [0, 1])
    at.run()
    newest = at.selectbox(key="opt_run").options[0]
    assert newest.startswith("seeded-")  # newest first
    at.selectbox(key="opt_run").select(newest).run()
    assert "mean ± std over 2 seeds" in chart(at, "curves")["layout"]["title"]["text"]
    assert " ± " in at.dataframe[1].value["test accuracy"].iloc[1]
    assert " ± " not in at.dataframe[1].value["updates"].iloc[1]  # the seeds share the update count
    assert chart(at, "curves")["layout"]["xaxis"].get("type") != "log"
    at.toggle(key="opt_log_epochs").set_value(True).run()
    layout = chart(at, "curves")["layout"]
    assert layout["xaxis"]["type"] == "log" == layout["xaxis3"]["type"]


def test_quick_preset_button_starts_a_background_job_that_can_be_cancelled(page, playground_home):
    at = page
    at.button(key="opt_run_quick").click().run()
    assert not at.exception and not at.error
    [job] = Jobs().list()
    assert job.title == "Optimizers: quick" and job.active
    assert Path(job.args[0]).name == "optimizers_fashion.toml" and job.args[1:3] == ["--preset", "quick"]
    assert any(f"Job {job.id}" in p.proto.text for p in at.get("progress"))
    assert Jobs().cancel(job.id) == f"job {job.id} cancelled"
    [job] = wait_for_jobs(at)
    assert job.status == "cancelled"
    assert any("cancelled" in w.value for w in at.warning)


def test_a_run_with_damaged_curves_is_one_error_line(page, playground_home):
    """Issue 25: curves whose series are text were drawn as they were (or failed inside the chart)."""
    from playground.core.runs import RunDir
    from playground.core.status import RunStatus, write_status

    run = RunDir.create("optimizers", playground_home)
    (run.path / "config.toml").write_text('experiment = "optimizers"\n[config]\n')
    run.write_result(
        "curves",
        {"adam": {"epochs": "abc", "val_loss": [], "val_accuracy": [], "train_x": [], "train_loss": []}},
    )
    write_status(run.path, RunStatus("complete", seconds=1.0))
    page.run()
    assert not page.exception
    assert any(
        "holds damaged optimizers curves: 'adam' epochs is not a list of numbers" in e.value
        for e in page.error
    )
