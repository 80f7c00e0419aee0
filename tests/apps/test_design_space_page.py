"""The design-space page: a study's median errors and staircase EDFs, the picked model's full-training
command, and a damaged study shown as an error."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest

from tests.apps.conftest import REPO_ROOT, open_page_at, plotly_array

REFERENCE = sorted((REPO_ROOT / "reference").glob("design_space_fashion-*"))[-1]


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A copy of the shipped design-space study as the only reference run."""
    root = tmp_path / "reference"
    shutil.copytree(REFERENCE, root / REFERENCE.name)
    monkeypatch.setenv("PLAYGROUND_REFERENCE", str(root))
    return root / REFERENCE.name


def test_a_study_shows_each_spaces_median_error_and_its_edf_as_a_staircase(study, playground_home):
    at = open_page_at("views/design_space.py")
    metrics = json.loads((study / "metrics.json").read_text())["metrics"]
    samples = json.loads((study / "results.json").read_text())["sections"]["samples"]["spaces"]
    shown = {m.label: m.value for m in at.metric}
    for space in samples:
        assert shown[f"{space}: median error"] == f"{metrics[f'edf/{space}/error_median']:.1%}"
    edf = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    for trace, (space, models) in zip(edf, samples.items()):
        errors = sorted(100 * m["error"] for m in models if m["error"] is not None)
        assert trace["name"] == f"{space} (n={len(errors)})"
        x, y = plotly_array(trace["x"]), plotly_array(trace["y"])
        assert x[::2] == pytest.approx(errors) and (x[::2] == x[1::2]).all()  # rises at each model's error
        assert y[0] == 0 and y[-1] == 1 and (y[1:-1:2] == y[2::2]).all()  # flat between errors


def test_the_best_model_of_a_space_gets_the_command_that_trains_it_fully(study, playground_home):
    at = open_page_at("views/design_space.py")
    at.selectbox(key="ds_pick_space").select("regnety").run()
    assert not at.exception
    models = json.loads((study / "results.json").read_text())["sections"]["samples"]["spaces"]["regnety"]
    best = min((m for m in models if m["error"] is not None), key=lambda m: m["error"])
    words = shlex.split(at.code[-2].value)
    assert (
        words[:4] == ["playground", "run", "recipes/classify_fashion.toml", "--preset"] and words[4] == "full"
    )
    values = dict(w.split("=", 1) for w in words[5:] if w != "--set")
    assert values["model"] == '"anynet"' and json.loads(values["anynet.depths"]) == best["spec"]["depths"]
    assert json.loads(values["anynet.widths"]) == best["spec"]["widths"]


def test_a_damaged_study_is_an_error_naming_its_file(study, playground_home):
    damaged = {
        "format": "playground.results/1",
        "sections": {"samples": {"spaces": {"regnety": [{"spec": 3}]}}},
    }
    (study / "results.json").write_text(json.dumps(damaged))
    at = open_page_at("views/design_space.py")
    assert not at.exception
    assert any(
        "does not hold a design-space study" in e.value and "results.json" in e.value for e in at.error
    )
