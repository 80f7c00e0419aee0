"""The labelling loop page under AppTest: no project yet, a small project after one round and a retrain
(counts, tables, charts), Start round / Retrain as background jobs (waiting while one runs), and the
page refused to annotators once accounts exist."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

import playground.accounts as accounts_module
from playground.accounts import Accounts
from playground.jobs import Jobs
from playground.label.project import init_project, open_project
from playground.label.retrain import retrain
from playground.label.rounds import run_round
from playground.label.summary import project_summary
from playground.store import Store, default_url
from playground.store_schema import jobs as jobs_table
from playground.store_schema import rounds
from tests.apps.conftest import APP_FILE, plotly_spec, wait_for_jobs
from tests.label.conftest import CLASSES, label_queue, tiny, true_label, write_images

PAGE = "views/label.py"


@pytest.fixture
def project(playground_home, tmp_path) -> dict:
    """Project ``shapes`` (30 images, two annotators per item) after its seed round, labelled by ann and
    bob (bob calls one red image green), and model v1; returns its summary."""
    images = tmp_path / "images"
    write_images(images, per_class=10)
    wrong = "red_000.png"
    with Store(default_url()) as store:
        init_project(store, "shapes", images, CLASSES, tiny(redundancy=2, seed_size=14))
        run_round(store, "shapes")
        label_queue(store, "shapes", "ann")
        label_queue(store, "shapes", "bob", label_of=lambda p: 1 if p == wrong else true_label(p))
        retrain(store, "shapes")
        return project_summary(store, open_project(store, "shapes"))


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP_FILE), default_timeout=120).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def table(at: AppTest, first_column: str):
    """The one table whose first column is ``first_column`` (round, version, annotator, classes)."""
    (found,) = [df.value for df in at.dataframe if df.value.columns[0] == first_column]
    return found


def buttons(at: AppTest) -> dict[str, bool]:
    """Start round / Retrain -> disabled."""
    return {b.label: b.disabled for b in at.button if b.label in ("Start round", "Retrain")}


def test_with_no_project_the_page_says_how_to_make_one(playground_home):
    at = open_page()
    assert [t.value for t in at.title] == ["Labelling loop"]
    assert "playground label init NAME --images DIR" in at.info[0].value
    assert not [s for s in at.selectbox if s.key == "label_project"] and not buttons(at)
    assert not at.get("plotly_chart") and not at.error


def test_a_new_project_says_what_to_do_first(playground_home, tmp_path):
    write_images(tmp_path / "images", per_class=4)
    with Store(default_url()) as store:
        init_project(store, "fresh", tmp_path / "images", CLASSES, tiny())
    at = open_page()
    assert metrics(at)["Pool"] == "12" and metrics(at)["Newest model"] == "none yet"
    assert [i.value.split(":")[0] for i in at.info] == [
        "No round yet",
        "No model version yet",
        "Nobody has labelled anything in this project yet.",
    ]
    assert not at.dataframe and not at.get("plotly_chart")
    assert buttons(at) == {"Start round": False, "Retrain": False} and not at.error


def test_a_project_shows_its_counts_rounds_versions_and_people(project):
    at = open_page()
    assert at.selectbox(key="label_project").value == "shapes"
    shown = metrics(at)
    assert shown["Pool"] == "30" and shown["Labelled by people"] == str(project["labelled"])
    assert shown["Awaiting a reviewer"] == str(project["awaiting_review"])
    accuracy = project["versions"][0]["accuracy"]
    assert shown["Newest model"] == f"v1 · {accuracy:.0%}"
    assert buttons(at) == {"Start round": False, "Retrain": False}

    counts = project["rounds"][0]["counts"]
    shown_rounds = table(at, "round")
    assert list(shown_rounds["round"]) == [1] and list(shown_rounds["model"]) == ["none"]
    assert shown_rounds["escalated"][0] == counts["seed"] + counts["calibration"]
    assert shown_rounds["not scored"][0] == 30 - counts["seed"] - counts["calibration"]
    bars = {trace["name"]: trace["y"] for trace in plotly_spec(at, "label_rounds_chart")["data"]}
    assert bars == {
        "escalated": [shown_rounds["escalated"][0]],
        "not scored": [shown_rounds["not scored"][0]],
    }

    versions = table(at, "version")
    assert list(versions["version"]) == ["v1"] and versions["held-out accuracy"][0] == pytest.approx(accuracy)
    (line,) = plotly_spec(at, "label_versions_chart")["data"]
    assert line["y"] == pytest.approx([100 * accuracy])

    people = table(at, "annotator")
    assert list(people["annotator"]) == ["ann", "bob"]
    assert list(people["decisions"]) == [a["decisions"] for a in project["annotators"]]
    assert min(people["decisions"]) >= counts["seed"] + counts["calibration"] - 1
    agreement = table(at, "classes")
    assert list(agreement["classes"]) == ["all classes", *CLASSES]
    alpha = project["agreement"]["alpha"]
    assert 0 < alpha < 1 and agreement["alpha"][0] == pytest.approx(alpha)  # bob's one slip
    assert any(f"{alpha:.3f}" in m.value for m in at.markdown)
    assert "playground label round shapes" in at.code[0].value


def add_job_row(status: str, args: list[str], progress: dict) -> None:
    """A label job as a worker's heartbeat leaves it (no worker process behind it)."""
    now = time.time()
    values = dict(
        title=" ".join(args),
        args=json.dumps(args),
        status=status,
        host=socket.gethostname(),
        error="",
        progress=json.dumps(progress),
        cancel_requested=0,
        created_at=now,
        started_at=now,
        heartbeat_at=now,
    )
    with Store(default_url()) as store:
        store.write(lambda conn: conn.execute(insert(jobs_table).values(**values)))


def test_while_a_job_of_the_project_runs_both_buttons_wait_and_its_progress_shows(project):
    progress = {"stage": "scoring images", "step": 12, "total": 16, "fraction": 0.75, "elapsed": 3.0}
    add_job_row("running", ["label", "round", "shapes"], progress)
    at = open_page()
    assert buttons(at) == {"Start round": True, "Retrain": True}
    assert {b.help for b in at.button if b.label in ("Start round", "Retrain")} == {
        "job 1 (label round shapes) is running: wait for it, or cancel it"
    }
    (bar,) = at.get("progress")
    assert bar.proto.value == 75 and "scoring images · step 12/16 · 75%" in bar.proto.text
    assert any("playground label round shapes" in c.value for c in at.caption)  # the job's command


def test_a_round_running_from_the_command_line_also_blocks_the_buttons(project):
    now = time.time()
    with Store(default_url()) as store:
        project_id = open_project(store, "shapes").id
        row = dict(project_id=project_id, number=2, model_version=1, status="running", detail="{}")
        alive = dict(started_at=now, heartbeat_at=now, pid=os.getpid(), host=socket.gethostname())
        store.write(lambda conn: conn.execute(insert(rounds).values(**row, **alive)))
    at = open_page()
    assert buttons(at) == {"Start round": True, "Retrain": True}
    assert any("round 2 is running (started from the command line)" in c.value for c in at.caption)
    assert list(table(at, "round")["status"]) == ["complete", "running"]


@pytest.mark.slow
def test_retrain_and_start_round_run_as_jobs_and_errors_are_one_line(project):
    at = open_page()
    at.button(key="label_retrain").click().run()  # v1 has learnt every label: nothing new to learn
    jobs = wait_for_jobs(at)
    assert jobs[0].status == "failed" and "already learnt from every label" in jobs[0].error
    assert jobs[0].command == "playground label retrain shapes"
    (error,) = at.error
    assert "already learnt from every label" in error.value and "Traceback" not in error.value
    assert buttons(at) == {"Start round": False, "Retrain": False}

    at.button(key="label_round").click().run()
    jobs = wait_for_jobs(at)
    assert jobs[0].status == "finished" and jobs[0].args == ["label", "round", "shapes"]
    assert any("finished" in s.value for s in at.success)
    shown_rounds = table(at, "round")
    assert list(shown_rounds["round"]) == [1, 2] and list(shown_rounds["model"]) == ["none", "v1"]
    assert shown_rounds["pool"][1] == 30 and shown_rounds["labelled by people"][1] == project["labelled"]
    assert len(Jobs().list()) == 2


# --------------------------------------------------------------------- accounts


@pytest.fixture
def accounts(project, monkeypatch) -> Accounts:
    monkeypatch.setattr(accounts_module, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    store = Store(default_url())
    accounts = Accounts(store)
    accounts.add("root", "correct horse", "admin")
    accounts.add("ann", "battery staple")
    accounts.add("rev", "staple battery", "reviewer")
    accounts.grant("ann", "shapes")
    yield accounts
    store.close()


def signed_in_page(name: str, password: str) -> AppTest:
    at = AppTest.from_file(str(APP_FILE), default_timeout=120).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button(key="FormSubmitter:login_form-Sign in").click().run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_an_annotator_is_refused_and_a_reviewer_sees_the_loop(accounts):
    at = signed_in_page("ann", "battery staple")
    assert [i.value for i in at.info] == [
        "Only reviewers and admins see the loop. Your items are on the Annotate page."
    ]
    assert not buttons(at) and not at.metric and not at.dataframe and not at.get("plotly_chart")
    at = signed_in_page("rev", "staple battery")
    assert metrics(at)["Pool"] == "30" and buttons(at) == {"Start round": False, "Retrain": False}
