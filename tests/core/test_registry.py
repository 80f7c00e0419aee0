"""One name per technique: the registry's key is the package, experiment, recipe prefix, page and tests."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from playground.core.config import load_recipe
from playground.core.registry import OLD_NAMES, OLD_RECIPES, REPO, TECHNIQUES, canonical_key, get_experiment
from playground.core.runner import config_from_recipe
from playground.core.runs import RunDir, load_run
from playground.errors import ConfigError


@pytest.mark.parametrize("technique", TECHNIQUES, ids=lambda t: t.key)
def test_the_key_names_package_experiment_recipes_page_and_tests(technique):
    assert (REPO / "playground" / technique.key / "__init__.py").is_file()
    module = get_experiment(technique.key)
    assert module.__name__ == f"playground.{technique.key}.experiment"
    assert module.EXPERIMENT == technique.key and callable(module.run) and module.Config
    assert technique.recipes, f"no recipes/{technique.key}_*.toml"
    for recipe in technique.recipes:
        assert load_recipe(recipe).experiment == technique.key
    assert (REPO / "apps" / technique.page).is_file()
    assert (REPO / "tests" / technique.key).is_dir()
    importlib.import_module(technique.equations)


def test_every_recipe_belongs_to_a_technique():
    owned = {path for t in TECHNIQUES for path in t.recipes}
    assert set((REPO / "recipes").glob("*.toml")) == owned


def test_old_names_still_work_with_a_notice(capsys):
    assert canonical_key("ood") == "uncertainty" and canonical_key("cuboids") == "pointcloud"
    assert get_experiment("ood").EXPERIMENT == "uncertainty"
    assert '"ood" is now called "uncertainty"' in capsys.readouterr().err
    for old, new in OLD_RECIPES.items():
        assert not (REPO / "recipes" / old).exists()
        recipe = load_recipe(REPO / "recipes" / old)
        assert recipe.path.name == new
        assert f"{old} is now {new}" in capsys.readouterr().err
    _, config = config_from_recipe(REPO / "recipes" / "baseline_fashion.toml", "quick")
    assert config.name == "classify_fashion"
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        get_experiment("nope")


def test_runs_made_under_an_old_experiment_name_open_under_the_new_one(tmp_path):
    for old, key in OLD_NAMES.items():
        run = RunDir.create(f"old-{old}", tmp_path)
        (run.path / "config.toml").write_text(f'experiment = "{old}"\n\n[config]\nseed = 0\n')
        assert load_run(run.path).experiment == key


def test_the_readme_index_is_generated_from_the_registry():
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "readme_index.py"), "--check"], capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()


def test_help_lists_every_technique():
    from playground.cli import build_parser

    text = build_parser().format_help()
    for technique in TECHNIQUES:
        assert technique.key in text and technique.title in text


def test_old_page_paths_are_free_and_lead_to_an_existing_page():
    pages = {path.stem for path in (REPO / "apps" / "views").glob("*.py")}
    old = [(name, t) for t in TECHNIQUES for name in t.old_pages]
    assert {name for name, _ in old} == {"classifier", "cuboids", "optimize"}
    for name, technique in old:
        assert name not in pages and (REPO / "apps" / technique.page).is_file()
