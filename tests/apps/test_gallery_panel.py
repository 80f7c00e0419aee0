"""The FCT page's own-gallery panel: create from a folder, upgrade, backfill, roll back, errors shown."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from playground.fct.experiment import Config, run
from playground.fct.tasks import load_task
from tests.apps.test_pages import open_app
from tests.fct.test_results import TINY_FCT
from tests.fct.test_versions import write_pngs


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A tiny FCT run that saved its models (and FastFill's head), and a folder of 20 digit images."""
    config = Config(**{**TINY_FCT, "save_models": True}, out=str(tmp_path_factory.mktemp("runs")))
    config = dataclasses.replace(config, upgrade=dataclasses.replace(config.upgrade, adapters=[], edges=0))
    photos = write_pngs(tmp_path_factory.mktemp("photos"), load_task("digits").test.images[:20])
    return run(config).run_dir, photos


def status(at):
    """The gallery's status table as {version: row}."""
    table = next(df.value for df in at.dataframe if "version" in df.value.columns)
    return {row["version"]: row for row in table.to_dict("records")}


def test_a_gallery_is_created_upgraded_backfilled_and_rolled_back(template, playground_home):
    run_dir, photos = template
    shutil.copytree(run_dir, playground_home / run_dir.name)
    at = open_app("views/fct.py")
    assert at.text_input(key="gallery_path").value.endswith(f"galleries/{run_dir.name}")
    at.text_input(key="gallery_images").input(str(photos)).run()
    at.button(key="gallery_create").click().run()
    assert not at.exception and not at.error
    assert "v1 holds 20 images" in at.success[0].value
    assert status(at)["v1"]["active"] == "●" and at.button(key="gallery_rollback").disabled
    at.button(key="gallery_upgrade").click().run()  # by h, the default
    rows = status(at)
    assert rows["v2"]["active"] == "●" and rows["v2"]["transformed by h"] == 20
    at.slider(key="gallery_share").set_value(50).run()
    at.button(key="gallery_backfill").click().run()
    rows = status(at)
    assert (rows["v2"]["embedded"], rows["v2"]["transformed by h"]) == (10, 10)
    assert any("50% of 20 images re-embedded" in c.value for c in at.caption)
    assert any(
        chart.proto.spec and "your gallery (50%)" in chart.proto.spec for chart in at.get("plotly_chart")
    )
    at.button(key="gallery_rollback").click().run()
    assert status(at)["v1"]["active"] == "●" and not at.exception


def test_a_run_without_models_and_a_missing_folder_are_shown_as_errors(template, playground_home, tmp_path):
    run_dir, _ = template
    bare = shutil.copytree(
        run_dir, playground_home / run_dir.name, ignore=shutil.ignore_patterns("old_model*")
    )
    at = open_app("views/fct.py")
    at.text_input(key="gallery_images").input(str(tmp_path / "nowhere")).run()
    at.button(key="gallery_create").click().run()
    assert not at.exception
    assert any("old_model.safetensors" in e.value and "save_models" in e.value for e in at.error)
    assert not (playground_home / "galleries" / bare.name / "gallery.json").exists()
