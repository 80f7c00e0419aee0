"""Labelling steps as background jobs (``label round|retrain NAME``): what is accepted, the command a
page shows, and the "k of N" progress the heartbeat writes. A job run end to end is in
``tests/apps/test_label_page.py`` (the page's Start round and Retrain buttons)."""

from __future__ import annotations

import dataclasses

import pytest

from playground.core.status import describe_progress
from playground.errors import PlaygroundError
from playground.jobs import CountProgress, Job, Jobs, is_label_job


@pytest.mark.parametrize(
    "args", [["label"], ["label", "round"], ["label", "init", "x"], ["label", "status", "x"]]
)
def test_only_a_round_or_a_retrain_of_a_named_project_is_a_label_job(playground_home, args):
    jobs = Jobs()
    with pytest.raises(PlaygroundError, match="`label round NAME` or `label retrain NAME`"):
        jobs.submit(args, "bad")
    assert jobs.list() == []  # refused before anything was written or started


def test_a_label_job_reads_as_its_own_command():
    job = Job(
        1,
        "t",
        ["label", "round", "my shapes"],
        "queued",
        None,
        "h",
        None,
        "",
        {},
        False,
        0.0,
        None,
        None,
        0.0,
    )
    assert is_label_job(job.args) and job.command == "playground label round 'my shapes'"
    recipe = dataclasses.replace(job, args=["recipes/classify_fashion.toml", "--preset", "quick"])
    assert not is_label_job(recipe.args)
    assert recipe.command == "playground run recipes/classify_fashion.toml --preset quick"


def test_count_progress_is_a_snapshot_of_k_of_n(monkeypatch):
    clock = iter([100.0, 104.0, 200.0, 206.0])
    monkeypatch.setattr("playground.jobs.time.monotonic", lambda: next(clock))
    progress = CountProgress("scoring images")  # started at 100 s
    progress(256, 1024)
    snapshot = progress.snapshot()  # 4 s later, a quarter done: 12 s left at this pace
    assert snapshot["step"] == 256 and snapshot["total"] == 1024 and snapshot["fraction"] == 0.25
    assert snapshot["elapsed"] == 4.0 and snapshot["left"] == 12.0
    assert describe_progress(snapshot).startswith("scoring images · step 256/1024 · 25% · ")
    empty = CountProgress("training models").snapshot()  # nothing counted yet: no fraction, no time left
    assert empty["fraction"] is None and empty["left"] is None and empty["elapsed"] == 6.0
    assert describe_progress(empty).startswith("training models · ")
