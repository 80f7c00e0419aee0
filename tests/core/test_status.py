"""A run's status.json read back: a damaged file (wrong types, nested too deep) reads as an
interrupted run that says what is damaged, never as a TypeError in the runs list or the jobs page."""

from __future__ import annotations

import json
import socket
import time

import pytest

from playground.core.status import STATUS, read_status


@pytest.mark.parametrize(
    "content, damage",
    [
        ({"state": "running", "updated": "yesterday"}, "updated of the wrong type"),  # was a TypeError
        ({"state": "running", "updated": None, "pid": "12"}, "updated, pid of the wrong type"),
        ({"state": ["running"]}, "state of the wrong type"),
        ({"state": "running", "progress": {"fraction": "half"}}, "progress of the wrong type"),
        ({"state": "complete", "timeline": [["train", "soon"]]}, "timeline of the wrong type"),
        ({"state": "complete", "seconds": float("nan")}, "seconds of the wrong type"),
    ],
)
def test_a_status_with_fields_of_the_wrong_type_reads_as_damaged(tmp_path, content, damage):
    (tmp_path / STATUS).write_text(json.dumps(content))
    status = read_status(tmp_path)
    assert status.state == "interrupted" and status.error == f"its {STATUS} is damaged ({damage})"
    assert status.describe().startswith("interrupted: its status.json is damaged")


def test_a_status_nested_too_deep_reads_as_damaged_and_a_good_one_still_reads(tmp_path):
    (tmp_path / STATUS).write_text("[" * 100_000)
    assert "damaged (maximum recursion depth" in read_status(tmp_path).error  # was a RecursionError
    now = time.time()
    good = {
        "state": "running",
        "updated": now,
        "pid": 0,
        "host": socket.gethostname(),
        "timeline": [["a", 1]],
    }
    (tmp_path / STATUS).write_text(json.dumps(good))
    assert read_status(tmp_path, now=now).state == "running"
