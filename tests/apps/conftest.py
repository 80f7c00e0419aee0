"""Fixtures for the page tests (``tests/conftest.py`` already gives every test its own
``PLAYGROUND_HOME`` as the ``playground_home`` fixture and trains on one thread)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.conftest import REPO as REPO_ROOT

APP_FILE = REPO_ROOT / "apps" / "app.py"
RECIPE = REPO_ROOT / "recipes" / "baseline_fashion.toml"
# a digits run that trains in about a second and still scores well above chance
TINY_DIGITS = ["dataset=digits", "epochs=1", "train_limit=600", "batch_size=8", "width=16"]


@pytest.fixture
def digits_run(playground_home) -> Path:
    """One finished classify run under the test's runs root; returns its run directory."""
    from playground.core.runner import config_from_recipe

    module, config = config_from_recipe(RECIPE, "quick", TINY_DIGITS)
    result = module.run(dataclasses.replace(config, save_checkpoint=False))
    return result.run_dir
