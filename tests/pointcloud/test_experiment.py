"""The cuboid-proposals experiment: the recipe's quick preset end to end on tiny frames, and bad configs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from playground.core.config import build_config, config_to_toml, tomllib
from playground.core.registry import get_experiment
from playground.core.runner import config_from_recipe, run_recipe
from playground.core.runs import load_run
from playground.errors import ConfigError
from playground.pointcloud import experiment
from playground.pointcloud.experiment import Config, run
from playground.pointcloud.export import from_nuscenes, read_kitti
from playground.pointcloud.proposals import ProposalParams
from playground.pointcloud.scenes import SceneSpec
from tests.conftest import REPO

RECIPE = REPO / "recipes" / "pointcloud_proposals.toml"
TINY = ["scene.target_points=30000", "scene.rings=32", "scenes=2"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run_recipe(RECIPE, "quick", TINY + [f"out={tmp_path_factory.mktemp('runs')}"])


def test_quick_preset_end_to_end(tiny_run):
    folder = tiny_run.run_dir
    metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    for name in ("proposals/recall_bev50", "proposals/precision_bev50", "proposals/seconds_per_100k_points"):
        assert name in metrics
    assert metrics["proposals/recall_bev50"] >= 0.8  # measured 0.94 on these two 30k-point frames
    assert metrics["proposals/precision_bev50"] >= 0.6  # measured 0.79
    assert metrics["proposals/seconds_per_100k_points"] > 0  # the <= 1 s target: see the full preset
    assert metrics["scenes/frames"] == 2 and 25_000 < metrics["scenes/points_per_frame"] < 36_000
    assert metrics["proposals/car/ground_truth"] + metrics["proposals/pedestrian/ground_truth"] >= 25
    report = (folder / "report.md").read_text()
    assert "| all |" in report and "![bird's-eye view](bev.png)" in report
    assert (folder / "bev.png").stat().st_size > 20_000
    assert 'experiment = "pointcloud"' in (folder / "config.toml").read_text()


def test_metric_records_carry_the_split_and_the_iou_class_and_measure_tags(tiny_run):
    measured = load_run(tiny_run.run_dir).measured  # as written to metrics.json
    (recall,) = measured.select(
        split="test", iou="bev", iou_threshold=0.5, class_name="car", measure="recall"
    )
    assert recall.name == "proposals/car/recall_bev50"
    overall = [r for r in measured.select(split="test", measure="recall") if "class_name" not in r.tags]
    assert {(r.name, r.tags["iou"]) for r in overall} == {
        ("proposals/recall_bev50", "bev"),
        ("proposals/recall_3d50", "3d"),
    }
    (truth,) = measured.select(split="test", class_name="pedestrian", measure="ground_truth")
    assert truth.name == "proposals/pedestrian/ground_truth"
    stages = measured.select(split="", stage=..., measure="stage_seconds")
    assert {r.tags["stage"] for r in stages} == {"voxel", "ground", "cluster", "fit"}
    (timing,) = measured.select(split="", measure="seconds_per_100k_points")
    assert timing.name == "proposals/seconds_per_100k_points"


def test_the_run_writes_loadable_boxes(tiny_run):
    folder = tiny_run.run_dir
    proposals = from_nuscenes(json.loads((folder / "proposals.json").read_text()))
    truth = from_nuscenes(json.loads((folder / "ground_truth.json").read_text()))
    assert sorted(proposals) == sorted(truth) == ["000000", "000001"]
    kitti = read_kitti(folder / "label_2")
    assert [len(kitti[f]) for f in sorted(kitti)] == [len(proposals[f]) for f in sorted(proposals)]
    frames = tiny_run.results.frames
    assert [b.label for b in kitti["000000"]] == [b.label for b in frames[0].proposals]


def test_recipe_presets_and_registry():
    module = get_experiment("pointcloud")
    assert module.Config is Config
    _, quick = config_from_recipe(RECIPE, "quick")
    _, full = config_from_recipe(RECIPE, "full")
    assert (quick.scenes, quick.scene.target_points, quick.scene.rings) == (3, 100_000, 64)
    assert quick.scene == SceneSpec() and quick.proposals == ProposalParams()  # the recipe names the defaults
    assert full.scenes > quick.scenes and full.timing_repeats > quick.timing_repeats


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(scenes=0), "scenes"),
        (dict(iou_threshold=1.5), "iou_threshold"),
        (dict(scenes=2, plot_scene=2), "plot_scene"),
        (dict(scene=dict(dropout=1.0)), r"\[scene\]: scene.dropout"),
        (dict(proposals=dict(eps=-1.0)), r"\[proposals\]: proposals.eps"),
        (dict(min_gt_points=-1), "min_gt_points"),
        (dict(scene=dict(seed=3)), "scene.seed follows the run's seed"),
        (dict(proposals=dict(seed=3)), "proposals.seed follows the run's seed"),
    ],
)
def test_bad_configs_are_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        build_config(Config, change)


def test_a_direct_run_with_another_threshold_names_its_metrics(tmp_path):
    result = run(
        Config(
            scenes=1,
            scene=SceneSpec(target_points=8000, rings=32, cars=3, pedestrians=3, poles=1, walls=0),
            iou_threshold=0.7,
            out=str(tmp_path),
        )
    )
    assert (
        "proposals/recall_bev70" in result.metrics.values
        and "proposals/recall_bev50" not in result.metrics.values
    )
    assert result.run_dir.parent == tmp_path


def test_set_scene_and_proposals_keys_reach_every_frame_with_its_own_seed(monkeypatch):
    overrides = ["scene.cars=3", "scene.target_points=5000", "proposals.eps=0.8", "seed=7", "scenes=2"]
    _, config = config_from_recipe(RECIPE, "quick", overrides)
    scenes, proposed = experiment.load(config), []
    assert [s.spec for s in scenes] == [dataclasses.replace(config.scene, seed=seed) for seed in (7, 8)]
    assert scenes[0].spec.cars == 3 and len(scenes[0]) < 6000 and config.scene.seed == 0
    monkeypatch.setattr(
        experiment,
        "timed_proposals",
        lambda points, params, repeats: proposed.append(params) or ([], 0.0, {}),
    )
    assert experiment.run_frame(config, 1, scenes[1]).name == "000008"
    assert proposed == [ProposalParams(eps=0.8, seed=7)]


def test_old_flat_keys_still_work_in_recipes_overrides_and_old_run_configs(tmp_path, capsys):
    recipe = tmp_path / "old_pointcloud.toml"
    recipe.write_text(
        'experiment = "pointcloud"\n[config]\ncars = 3\neps = 0.8\n[presets.quick]\nrings = 16\n'
    )
    _, config = config_from_recipe(recipe, "quick", ["target_points=5000", "min_cluster_points=9"])
    assert config.scene == SceneSpec(cars=3, rings=16, target_points=5000)
    assert config.proposals == ProposalParams(eps=0.8, min_cluster_points=9)
    assert "cars in recipe" in capsys.readouterr().err
    old = tomllib.loads(config_to_toml(Config()))["config"]  # a run's config.toml before the sections:
    scene, proposals = old.pop("scene"), old.pop("proposals")
    old.update({key: scene[key] for key in experiment.OLD_SCENE_KEYS})
    old.update({key: proposals[key] for key in experiment.OLD_PROPOSAL_KEYS})
    assert build_config(Config, old, "old run") == Config()


def test_average_precision_per_class_as_kitti_computes_it(tiny_run):
    values = json.loads((tiny_run.run_dir / "metrics.json").read_text())["metrics"]
    for label in ("car", "pedestrian"):
        ap = {key: values[f"detect/geometric/{label}/ap_{key}"] for key in ("bev50", "bev70", "3d50", "3d70")}
        assert all(0.0 <= v <= 1.0 for v in ap.values()), ap
        assert ap["bev50"] >= ap["bev70"] and ap["bev50"] >= ap["3d50"] >= ap["3d70"], ap
    assert (
        values["detect/geometric/car/ap_bev50"] >= 0.8
    )  # measured 0.95 on these two frames (pedestrians 0.86)
    report = (tiny_run.run_dir / "report.md").read_text()
    assert "## Average precision (KITTI's AP|R40" in report and "| AP BEV IoU 0.7 (%) |" in report


def test_the_annotators_edits_from_nothing_and_from_the_proposals(tiny_run):
    values = json.loads((tiny_run.run_dir / "metrics.json").read_text())["metrics"]
    visible = (values["proposals/car/ground_truth"] + values["proposals/pedestrian/ground_truth"]) / 2
    assert values["edits/nothing/added_per_frame"] == visible == values["edits/nothing/edits_per_frame"]
    geometric = {
        k: values[f"edits/geometric/{k}_per_frame"] for k in ("accepted", "adjusted", "added", "edits")
    }
    assert geometric["accepted"] + geometric["adjusted"] >= 0.8 * visible  # most boxes come pre-drawn
    assert geometric["edits"] < values["edits/nothing/edits_per_frame"]
    assert "## The annotators' edits per frame" in (tiny_run.run_dir / "report.md").read_text()
