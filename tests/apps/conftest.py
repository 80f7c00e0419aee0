"""Fixtures for the page tests (``tests/conftest.py`` already gives every test its own
``PLAYGROUND_HOME`` as the ``playground_home`` fixture and trains on one thread)."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO as REPO_ROOT

APP_FILE = REPO_ROOT / "apps" / "app.py"
RECIPE = REPO_ROOT / "recipes" / "classify_fashion.toml"
# a digits run that trains in about a second and still scores well above chance
TINY_DIGITS = ["dataset=digits", "epochs=1", "train_limit=600", "batch_size=8", "width=16"]


@pytest.fixture
def digits_run(playground_home) -> Path:
    """One finished classify run under the test's runs root; returns its run directory."""
    from playground.core.runner import config_from_recipe

    module, config = config_from_recipe(RECIPE, "quick", TINY_DIGITS)
    result = module.run(dataclasses.replace(config, save_models=False))
    return result.run_dir


def open_page_at(page: str):
    """The app (navigation included, so page links work), switched to ``page``, with no exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP_FILE), default_timeout=120).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def plotly_array(value) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array ``{"dtype", "bdata"}``."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def plotly_spec(at, key: str) -> dict:
    """The spec of the one plotly chart whose widget id contains ``key``."""
    charts = [c for c in at.get("plotly_chart") if key in c.proto.id]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


@pytest.fixture(autouse=True)
def one_thread_jobs(monkeypatch):
    """Background jobs a page starts train on one thread too (their workers inherit the environment)."""
    monkeypatch.setenv("PLAYGROUND_THREADS", "1")


def wait_for_jobs(at, timeout: float = 300.0):
    """Wait until no background job is queued or running, then run the page again; returns the jobs."""
    import time

    from playground.jobs import Jobs

    jobs = Jobs()
    deadline = time.monotonic() + timeout
    while any(job.active for job in jobs.list()):
        assert time.monotonic() < deadline, [job.describe() for job in jobs.list()]
        time.sleep(0.5)
    at.run()
    assert not at.exception, at.exception
    return jobs.list()
