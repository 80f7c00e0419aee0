"""The Runs page: every run with its status, the reference runs, the column order, one run opened."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from playground.core.registry import BY_KEY
from playground.core.runs import Metrics
from playground.core.status import RunStatus, write_status
from tests.apps.conftest import open_page_at

RUNNING = {"stage": "train", "step": 2, "total": 5, "index": 2, "stages": 5, "fraction": 0.4}
CLASSIFY = {"test/accuracy": 0.91, "test/accuracy/bag": 0.8, "test/loss": 0.3, "model/parameters": 1234.0}
FCT = {
    "fct/map_recovery": 0.7,
    "retrieval/new-fct/mAP": 0.6,
    "cost/backfill_speedup": 9.0,
    "run/seconds": 5.0,
}


def fake_run(
    root: Path, name: str, experiment: str, state: str, metrics: dict | None = None, age: float = 0, **status
) -> Path:
    """A run folder written by hand: config, metrics (when given), report and ``status.json`` in ``state``;
    ``age`` seconds old. A running one has a fresh heartbeat from this (live) process unless ``status``
    says otherwise."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(f'experiment = "{experiment}"\n\n[config]\nseed = 0\n')
    if metrics is not None:
        values = Metrics()
        for metric, value in metrics.items():
            values.add(
                metric, value, "", "test", **({"class_name": "Bag"} if metric.endswith("/bag") else {})
            )
        (folder / "metrics.json").write_text(json.dumps(values.to_json()))
        (folder / "report.md").write_text(f"# {name}: the report\n\nAll is well.\n")
    now = time.time() - age
    fields = dict(started=now - 72, updated=now, pid=os.getpid(), host=socket.gethostname()) | status
    if state == "complete":
        fields |= dict(ended=now, seconds=72.0)
    write_status(folder, RunStatus(state, **fields))
    os.utime(folder, (now, now))
    return folder


@pytest.fixture
def reference(tmp_path, monkeypatch) -> Path:
    """A reference folder holding one complete classify run."""
    root = tmp_path / "reference"
    fake_run(root, "classify-reference", "classify", "complete", CLASSIFY, age=10**6)
    monkeypatch.setenv("PLAYGROUND_REFERENCE", str(root))
    return root


@pytest.fixture
def four_states(playground_home) -> Path:
    """A complete, a running, a failed and a stale (so interrupted) run, newest first in that order."""
    fake_run(playground_home, "done", "classify", "complete", CLASSIFY, age=40)
    fake_run(playground_home, "busy", "fct", "running", progress=RUNNING, age=0)
    fake_run(playground_home, "broken", "fct", "failed", age=20, error="CUDA out of memory")
    fake_run(playground_home, "gone", "classify", "running", age=3600, progress=RUNNING)
    return playground_home


def table(at):
    return at.dataframe[0].value.set_index("run")


def test_every_run_shows_its_status_and_only_complete_runs_show_numbers(four_states):
    at = open_page_at("views/runs.py")
    frame = table(at)
    assert list(frame.index) == ["busy", "broken", "done", "gone"]
    status = frame["status"]
    assert status["done"] == "complete in 1 min 12 s"
    assert status["busy"].startswith("running: train") and "40%" in status["busy"]
    assert status["broken"] == "failed: CUDA out of memory"
    assert status["gone"].startswith("interrupted: its process stopped without finishing")
    assert frame.loc["done", "test/accuracy"] == 0.91
    for name in ("busy", "broken", "gone"):
        assert math.isnan(frame.loc[name, "test/accuracy"])
    assert "fct/map_recovery" not in frame  # no fct run is complete
    assert at.dataframe[0].proto.placeholder == "–"  # a missing number reads as a dash, not None
    assert any("Refreshes every" in caption.value for caption in at.caption)


def test_nothing_running_no_refresh(playground_home):
    fake_run(playground_home, "done", "classify", "complete", CLASSIFY)
    at = open_page_at("views/runs.py")
    assert list(table(at).index) == ["done"]
    assert not any("Refreshes every" in caption.value for caption in at.caption)


@pytest.mark.parametrize(("newest", "first"), [("fct", "fct/map_recovery"), ("classify", "test/accuracy")])
def test_the_newest_runs_technique_comes_first_headline_before_the_tail(playground_home, newest, first):
    fake_run(
        playground_home, "a-classify", "classify", "complete", CLASSIFY, age=100 * (newest != "classify")
    )
    fake_run(playground_home, "a-fct", "fct", "complete", FCT, age=100 * (newest != "fct"))
    at = open_page_at("views/runs.py")
    columns = list(at.dataframe[0].value.columns)
    assert columns[:5] == ["run", "source", "technique", "status", "started"]
    classify = ["test/accuracy", "test/loss", "model/parameters", "test/accuracy/bag"]
    fct = ["fct/map_recovery", "retrieval/new-fct/mAP", "cost/backfill_speedup", "run/seconds"]
    assert columns[5:] == (fct + classify if newest == "fct" else classify + fct)
    assert columns[5] == first


def test_the_metrics_tab_puts_the_headline_first_and_per_class_numbers_last(playground_home):
    fake_run(playground_home, "done", "classify", "complete", CLASSIFY)
    at = open_page_at("views/runs.py")
    metrics = at.dataframe[-1].value
    assert list(metrics["metric"]) == ["test/accuracy", "test/loss", "model/parameters", "test/accuracy/bag"]


def test_every_technique_names_headlines_that_pick_its_metrics():
    from playground.core.registry import TECHNIQUES, headline_names

    assert all(t.headlines for t in TECHNIQUES)
    names = [
        "al/bald/final_accuracy",
        "al/random/final_accuracy",
        "al/bald/compute_s",
        "escalation/auto_label_error",
    ]
    assert headline_names("active", names) == [
        "al/bald/final_accuracy",
        "al/random/final_accuracy",
        "escalation/auto_label_error",
    ]
    assert headline_names("unknown", names) == []


def test_reference_runs_are_listed_after_the_users_and_open(four_states, reference):
    at = open_page_at("views/runs.py")
    frame = table(at)
    assert list(frame.index)[-1] == "classify-reference"
    assert frame.loc["classify-reference", "source"] == "reference"
    assert set(frame.drop("classify-reference")["source"]) == {"yours"}
    assert "4 runs" in at.caption[0].value and "1 reference run" in at.caption[0].value
    at.selectbox(key="runs_open").select("classify-reference").run()
    assert not at.exception
    assert any("reference run shipped with the playground" in c.value for c in at.caption)
    assert any(m.value.startswith("### classify-reference: the report") for m in at.markdown)


def test_no_runs_says_what_to_do_and_links_every_technique():
    at = open_page_at("views/runs.py")
    assert "playground run recipes/classify_fashion.toml" in at.info[0].value
    assert "reference" not in at.info[0].value
    links = [link.proto.page for link in at.page_link]
    assert all(any(link.endswith(key) for link in links) for key in BY_KEY)
    assert not at.dataframe


def test_no_runs_of_ones_own_shows_the_reference_runs(reference):
    at = open_page_at("views/runs.py")
    assert "1 **reference run**" in at.info[0].value
    assert list(table(at).index) == ["classify-reference"]


@pytest.mark.parametrize(
    ("name", "kind", "line"),
    [
        ("broken", "error", "failed: CUDA out of memory"),
        ("gone", "warning", "interrupted: its process stopped without finishing"),
    ],
)
def test_a_run_that_did_not_complete_says_so_and_shows_its_folder(four_states, name, kind, line):
    at = open_page_at("views/runs.py")
    at.selectbox(key="runs_open").select(name).run()
    assert not at.exception
    [shown] = getattr(at, kind)
    assert shown.value.startswith(line) and "\n" not in shown.value
    files = at.dataframe[1].value
    assert list(files["name"]) == ["config.toml", "status.json"]
    assert any("before writing its report" in info.value for info in at.info)


def test_a_running_run_shows_its_progress(four_states):
    at = open_page_at("views/runs.py")
    assert at.selectbox(key="runs_open").value == "busy"
    assert at.info[0].value.startswith("running: train") and "40%" in at.info[0].value
    assert at.get("progress")[0].value == 40
    assert any("written when the run completes" in info.value for info in at.info)


def test_a_damaged_status_reads_as_interrupted_not_a_traceback(playground_home):
    folder = fake_run(playground_home, "damaged", "classify", "complete", CLASSIFY)
    (folder / "status.json").write_text("{ not json")
    at = open_page_at("views/runs.py")
    assert table(at).loc["damaged", "status"].startswith("interrupted: its status.json is damaged")
    assert at.warning[0].value.startswith("interrupted")


# --------------------------------------------------------------------- real runs


def test_lists_real_runs_and_opens_the_chosen_report(digits_run, playground_home):
    copy = playground_home / "copied-run"
    shutil.copytree(digits_run, copy)
    report = copy / "report.md"
    report.write_text(report.read_text().replace("# classify_fashion:", "# copied run:", 1))
    time.sleep(0.01)
    copy.touch()  # newest first
    at = open_page_at("views/runs.py")
    frame = at.dataframe[0].value
    assert list(frame["run"]) == ["copied-run", digits_run.name]
    assert list(frame.columns)[5:7] == ["test/accuracy", "test/loss"] and frame["test/accuracy"][1] > 0.5
    assert all(status.startswith("complete in ") for status in frame["status"])
    assert at.selectbox(key="runs_open").value == "copied-run"
    assert at.success[0].value.startswith("complete")
    assert any(m.value.startswith("### copied run") for m in at.markdown)
    at.selectbox(key="runs_open").select(digits_run.name).run()
    assert not at.exception
    assert any(m.value.startswith("### classify_fashion: small_cnn on digits") for m in at.markdown)
    captions = {c for image in at.image for c in image.captions}
    assert captions == {"accuracy per class", "confusion matrix", "training curves"}
    assert not any("![" in m.value for m in at.markdown)
    metrics = at.dataframe[-1].value
    assert list(metrics["metric"])[0] == "test/accuracy"


def test_compares_complete_runs_side_by_side(digits_run, playground_home):
    other = playground_home / "other-run"
    shutil.copytree(digits_run, other)
    metrics_file = other / "metrics.json"
    metrics_file.write_text(
        metrics_file.read_text().replace('"test/accuracy": ', '"test/accuracy": 0.25, "x": ', 1)
    )
    fake_run(playground_home, "busy", "classify", "running", progress=RUNNING)
    at = open_page_at("views/runs.py")
    assert at.multiselect(key="runs_compare").options == ["other-run", digits_run.name]  # not the running one
    frame = at.dataframe[1].value
    assert sorted(frame.columns) == sorted(["other-run", digits_run.name])
    assert frame.index[0] == "test/accuracy"
    assert frame.loc["test/accuracy", "other-run"] == 0.25
    assert frame.loc["test/accuracy", digits_run.name] > 0.5
    assert "x" not in frame.index  # only metrics both runs have
    assert at.get("plotly_chart")
    at.multiselect(key="runs_compare").set_value(["other-run"]).run()
    assert not at.exception
    assert any("two or more runs" in c.value for c in at.caption)


def test_sweeps_are_listed_under_the_runs_and_open_with_their_report(playground_home, reference):
    fake_run(playground_home, "done", "classify", "complete", CLASSIFY)
    sweep = playground_home / "sweep-classify_fashion-quick"
    sweep.mkdir()
    ledger = {"a": {"status": "done"}, "b": {"status": "failed", "error": "RuntimeError: boom"}}
    (sweep / "trials.json").write_text(json.dumps(ledger))
    at = open_page_at("views/runs.py")
    assert not at.exception and "1 run and 1 sweep under" in at.caption[0].value
    assert at.selectbox(key="runs_open").options == [
        "done",
        "sweep-classify_fashion-quick (sweep)",
        "classify-reference (reference)",
    ]
    sweeps = at.dataframe[1].value.set_index("sweep")
    assert sweeps.loc["sweep-classify_fashion-quick", "trials done"] == 1
    assert sweeps.loc["sweep-classify_fashion-quick", "failed"] == 1
    assert sweeps.loc["sweep-classify_fashion-quick", "status"].startswith("unfinished")
    at.selectbox(key="runs_open").select("sweep-classify_fashion-quick").run()
    assert not at.exception and at.warning[0].value.startswith("unfinished: 1 trial done, 1 failed")
    (sweep / "metrics.json").write_text('{"metrics": {}, "units": {}}')
    (sweep / "report.md").write_text(
        "# Sweep: 2 trials\n\n| width | test/accuracy |\n|---|---|\n| 4 | 0.9 |\n"
    )
    at.run()
    assert at.success[0].value == "complete: 1 trial done, 1 failed"
    assert any(m.value.startswith("### Sweep: 2 trials") for m in at.markdown)
