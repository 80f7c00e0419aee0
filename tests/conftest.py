"""Shared fixtures: every test writes runs into its own temporary PLAYGROUND_HOME."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# Tests are small: one thread avoids oversubscription on a 2-core machine.
torch.set_num_threads(int(os.environ.get("PLAYGROUND_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def keep_main_module():
    """Streamlit's AppTest leaves ``sys.modules["__main__"]`` pointing at the app script; a later
    spawn-context child would then re-run ``apps/app.py`` and fail. Put pytest's back after each test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def playground_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "runs"
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    monkeypatch.delenv("PLAYGROUND_DATA", raising=False)
    monkeypatch.delenv("PLAYGROUND_DEVICE", raising=False)
    monkeypatch.delenv("PLAYGROUND_DB", raising=False)  # the annotation store follows PLAYGROUND_HOME
    monkeypatch.setenv("PLAYGROUND_REFERENCE", str(tmp_path / "no-reference"))  # tests of it set their own
    return home


def needs_fashion_mnist():
    return pytest.mark.skipif(
        not FASHION_DIR.is_dir() and not os.environ.get("CI"),
        reason="Fashion-MNIST not installed (sudo apt-get install dataset-fashion-mnist)",
    )


def pytest_collection_modifyitems(config, items):
    """Files holding a slow test run first (in their own order): under pytest-xdist (``scripts/test.sh``
    runs ``-n auto --dist loadfile``) the long files then start at once on every worker, rather than
    one of them being dealt last to a worker that is otherwise done."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
