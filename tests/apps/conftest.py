"""Fixtures for the page tests: a fresh runs root, a quick digits run, a single torch thread."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_FILE = REPO_ROOT / "apps" / "app.py"
RECIPE = REPO_ROOT / "recipes" / "baseline_fashion.toml"
# a digits run that trains in about a second and still scores well above chance
TINY_DIGITS = ["dataset=digits", "epochs=1", "train_limit=600", "batch_size=8", "width=16"]


@pytest.fixture
def runs_root(tmp_path, monkeypatch) -> Path:
    """``PLAYGROUND_HOME`` pointed at an empty folder, so nothing lands in the repository."""
    root = tmp_path / "runs"
    monkeypatch.setenv("PLAYGROUND_HOME", str(root))
    return root


@pytest.fixture
def one_thread():
    """Train on one thread: on a busy 2-core machine this is several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def digits_run(runs_root, one_thread) -> Path:
    """One finished classify run under ``runs_root``; returns its run directory."""
    from playground.core.runner import config_from_recipe

    module, config = config_from_recipe(RECIPE, "quick", TINY_DIGITS)
    result = module.run(dataclasses.replace(config, out=str(runs_root), save_checkpoint=False))
    return result.run_dir
