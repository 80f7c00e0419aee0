"""Reading FCT runs back: single and multi-seed folders, tables, neighbours and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from playground.core.config import tomllib
from playground.core.runs import Metrics, load_run
from playground.core.seeds import aggregate_scalars
from playground.core.status import RunStatus, write_status
from playground.errors import ConfigError, DataFormatError, DataNotFoundError, PlaygroundError
from playground.fct import results as fct
from playground.fct.pipeline import CASES
from playground.fct.retrieval import distances
from playground.fct.side_info import SideInfoSpec
from playground.fct.upgrade import UpgradeSpec

# trains in a few seconds on one CPU thread; the numbers are poor but every file is written
TINY_FCT = dict(
    dataset="digits",
    old_epochs=1,
    new_epochs=1,
    side_info=SideInfoSpec(epochs=1, batch_size=128),
    transform_epochs=2,
    side_info_sweep=[8],
    save_models=False,
    # every order and adapter, on few points, queries and epochs
    upgrade=UpgradeSpec(
        fractions=3, curve_queries=300, ensemble_size=2, variance_epochs=1, paired_images=[100, 400], epochs=2
    ),
)


def tiny_fct_run(out: Path) -> Path:
    """One finished tiny FCT run under ``out``; returns its folder (the page tests use it too)."""
    from playground.fct.experiment import Config, run

    return run(Config(**TINY_FCT, out=str(out))).run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tiny_fct_run(tmp_path_factory.mktemp("fct-runs"))


@pytest.fixture(scope="module")
def run(run_dir) -> fct.FCTRun:
    return fct.load_fct_run(run_dir)


def make_parent(run_dir: Path, parent: Path, seeds=(0, 1)) -> Path:
    """A multi-seed parent as ``playground run --seeds`` lays it out, from copies of one run."""
    parent.mkdir()
    shutil.copy(run_dir / "config.toml", parent / "config.toml")
    for seed in seeds:
        shutil.copytree(run_dir, parent / f"seed{seed}-20260101-000000")
    one = load_run(run_dir).metrics
    other = {name: value * 0.9 for name, value in one.items()}
    merged = aggregate_scalars([Metrics(one), Metrics(other)])
    (parent / "metrics.json").write_text(json.dumps(merged.to_json()))
    (parent / "report.md").write_text("# two seeds\n")
    write_status(parent, RunStatus("complete"))
    return parent


# --------------------------------------------------------------------- one run


def test_load_fct_run_reads_a_single_run(run, run_dir):
    assert run.path == run_dir and run.name == run_dir.name
    assert not run.multi_seed and run.seeds == [] and run.artifact_dir == run_dir
    assert run.distance == "l2" and run.config["dataset"] == "digits"
    assert run.classes == [str(d) for d in range(10)] and "digits" in run.description
    assert run.has_embeddings and run.has_images
    n = fct.gallery_size(run)
    assert run.embeddings["new"].shape == (n, 128) and run.embeddings["labels"].shape == (n,)


def test_compatibility_and_tradeoff_rows(run):
    rows = fct.compatibility_rows(run)
    assert [r["case"] for r in rows] == list(CASES)
    for row in rows:
        assert {"method", "query", "gallery"} <= set(row)
        assert all(0 <= row[key] <= 1 for key in ("top1", "top5", "mAP"))
        assert not any(key.endswith("_std") for key in row)
    sweep = fct.tradeoff_rows(run)
    assert [(r["dim"], r["bytes"]) for r in sweep] == [(0, 0), (8, 16), (32, 64)]  # fp16: 2 bytes a value
    assert all({"top1", "top5", "mAP"} <= set(r) for r in sweep)
    assert sweep[-1]["mAP"] == run.metrics["retrieval/new-fct/mAP"]
    cost = fct.cost_summary(run)
    assert cost["side_info_bytes"] == 64 and cost["transformation_macs"] > 0 and cost["backfill_speedup"] > 0
    assert run.backfill_speedup == cost["backfill_speedup"]
    assert run.transformation_macs_share == cost["transformation_macs"] / cost["new_model_macs"]


def costs_run(**costs: float) -> fct.FCTRun:
    """An FCT run read back without files, holding only the ``cost/...`` records given."""
    measured = Metrics()
    for name, value in costs.items():
        measured.add(f"cost/{name}", value, cost=name)
    return fct.FCTRun(Path("fct-run"), measured.values, {}, measured=measured)


def test_the_speed_up_is_the_recorded_one_else_reembed_over_transform_seconds():
    recorded = costs_run(backfill_speedup=25.0, backfill_reembed_s=9.0, backfill_transform_s=1.0)
    assert recorded.backfill_speedup == 25.0
    assert costs_run(backfill_reembed_s=6.0, backfill_transform_s=0.5).backfill_speedup == 12.0
    assert costs_run(backfill_reembed_s=1.0, backfill_transform_s=0.0).backfill_speedup == 1e12  # no 1/0
    assert costs_run(side_info_bytes=64).backfill_speedup is None


def test_the_transformation_share_of_the_new_models_macs():
    assert costs_run(transformation_macs=50, new_model_macs=1000).transformation_macs_share == 0.05
    assert costs_run(transformation_macs=50, new_model_macs=0).transformation_macs_share == 50.0
    assert costs_run(transformation_macs=50).transformation_macs_share is None


def test_the_side_info_range_the_page_offers_is_the_one_the_config_accepts():
    from playground.fct.experiment import Config
    from playground.fct.side_info import MAX_DIM, MIN_DIM

    assert SideInfoSpec(dim=MIN_DIM).dim == MIN_DIM
    assert SideInfoSpec(dim=MAX_DIM).dim == MAX_DIM
    for outside in (MIN_DIM - 1, MAX_DIM + 1):
        with pytest.raises(ConfigError, match=f"between {MIN_DIM} and {MAX_DIM}"):
            Config(side_info_sweep=[outside])


def test_projection_points_and_images(run):
    coords, labels = fct.projection_points(run)
    index = run.embeddings["projection_index"]
    assert set(coords) == {"new", "old", "fct", "fct_noside"} and len(labels) == len(index)
    assert all(len(points) == len(index) and len(points[0]) == 2 for points in coords.values())
    assert labels == run.embeddings["labels"][index].tolist()
    assert coords["fct"] == run.embeddings["projection_fct"].tolist()
    image = fct.image(run, 3)
    assert image.shape == (1, 8, 8) and 0 <= image.min() and image.max() <= 1


@pytest.mark.parametrize("gallery", ["new", "old", "fct"])
def test_neighbours_leave_the_query_out_nearest_first(run, gallery):
    found = fct.neighbours(run, 7, gallery, k=5)
    assert found.gallery == gallery and found.query_index == 7
    assert len(found.indices) == len(found.labels) == len(found.distances) == 5
    assert 7 not in found.indices and len(set(found.indices)) == 5
    assert found.distances == sorted(found.distances)
    labels = run.embeddings["labels"]
    assert found.query_label == int(labels[7]) and found.labels == labels[found.indices].tolist()
    assert found.same_class == [label == found.query_label for label in found.labels]
    expected = distances(run.embeddings["new"][7:8], run.embeddings[gallery][found.indices], run.distance)[0]
    assert torch.allclose(torch.tensor(found.distances), expected, atol=1e-3)
    others = torch.ones(fct.gallery_size(run), dtype=torch.bool)
    others[7] = False
    all_dist = distances(run.embeddings["new"][7:8], run.embeddings[gallery][others], run.distance)[0]
    assert found.distances[0] == pytest.approx(all_dist.min().item(), abs=1e-3)


def test_neighbours_rejects_bad_arguments_clearly(run):
    size = fct.gallery_size(run)
    with pytest.raises(ConfigError, match="out of range"):
        fct.neighbours(run, size, "new")
    with pytest.raises(ConfigError, match="unknown gallery"):
        fct.neighbours(run, 0, "newest")
    with pytest.raises(ConfigError, match="k must be"):
        fct.neighbours(run, 0, "new", k=0)
    assert len(fct.neighbours(run, 0, "new", k=10 * size).indices) == size - 1


# --------------------------------------------------------------------- listing and errors


def test_find_fct_runs_lists_only_fct_runs(run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path / "fct-copy")
    other = tmp_path / "baseline-1"
    other.mkdir()
    (other / "config.toml").write_text('experiment = "classify"\n[config]\nname = "baseline"\n')
    assert [info.name for info in fct.find_fct_runs(tmp_path)] == ["fct-copy"]
    assert fct.find_fct_runs(tmp_path / "missing") == []


def test_load_fct_run_errors_name_the_problem(run_dir, tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        fct.load_fct_run(tmp_path / "missing")
    with pytest.raises(DataNotFoundError, match="no config.toml"):
        fct.load_fct_run(tmp_path)
    other = tmp_path / "baseline"
    other.mkdir()
    (other / "config.toml").write_text('experiment = "classify"\n')
    with pytest.raises(DataFormatError, match="'classify' run, not an FCT run"):
        fct.load_fct_run(other)
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copy(run_dir / "config.toml", interrupted / "config.toml")
    with pytest.raises(DataNotFoundError, match="no retrieval metrics"):
        fct.load_fct_run(interrupted)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.toml").write_text("experiment = [")
    with pytest.raises(DataFormatError, match="not valid TOML"):
        fct.load_fct_run(broken)


def test_the_summary_section_and_an_old_runs_side_file_read_alike(run, run_dir, tmp_path):
    summary = fct.read_summary(run_dir)
    assert summary == run.results and {"cases", "sweep", "cost", "accuracy", "classes"} <= set(summary)
    old = shutil.copytree(run_dir, tmp_path / "fct-before-results-json")
    (old / "results.json").unlink()  # a run made before results.json: fct_results.json instead
    (old / fct.LEGACY_SUMMARY).write_text(json.dumps(summary))
    (old / "embeddings.safetensors").unlink()  # so the class names come from the side file
    legacy = fct.load_fct_run(old)
    assert legacy.results == summary and legacy.classes == run.classes and legacy.description
    assert fct.tradeoff_rows(legacy) == fct.tradeoff_rows(run)
    (old / fct.LEGACY_SUMMARY).unlink()
    assert fct.read_summary(old) == {} and fct.load_fct_run(old).classes == []  # numbers only


def test_a_run_without_embeddings_still_has_its_numbers(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "fct-lean")
    (copy / "embeddings.safetensors").unlink()
    lean = fct.load_fct_run(copy)
    assert not lean.has_embeddings and lean.classes == [str(d) for d in range(10)]
    assert len(fct.compatibility_rows(lean)) == len(CASES)
    with pytest.raises(DataNotFoundError, match="no embeddings.safetensors"):
        fct.neighbours(lean, 0, "new")


def test_metrics_carry_split_and_tags_and_old_runs_still_open(run, run_dir, tmp_path):
    """Parameters are tags, never parsed out of a name; runs written before records still open."""
    data = json.loads((run_dir / "metrics.json").read_text())
    sweep = [r for r in data["records"] if "side_info_dim" in r["tags"]]
    assert {r["tags"]["side_info_dim"] for r in sweep} == {0, 8, 32}
    top1 = [r for r in sweep if r["tags"]["measure"] == "top1"]
    assert all(r["split"] == "test" and r["unit"] == "fraction" for r in top1)
    assert data["metrics"]["side_info/dim_8/top1"] == next(
        r["value"] for r in top1 if r["tags"]["side_info_dim"] == 8
    )
    old = tmp_path / run_dir.name
    shutil.copytree(run_dir, old)
    (old / "metrics.json").write_text(json.dumps({"metrics": data["metrics"], "units": data["units"]}))
    config = tomllib.loads((old / "config.toml").read_text())["config"]
    assert run.side_info["dim"] == config["side_info"]["dim"] == 32
    section = config.pop("side_info")  # before the [config.side_info] section: flat keys
    config.pop("upgrade")  # and no [config.upgrade] section yet
    config.update(side_info_method=section["method"], side_info_dim=section["dim"])
    flat = "".join(f"{key} = {json.dumps(value)}\n" for key, value in config.items())
    (old / "config.toml").write_text(f'experiment = "fct"\n[config]\n{flat}')
    legacy = fct.load_fct_run(old)
    assert legacy.side_info["dim"] == 32 and legacy.side_info["method"] == "simclr"
    assert fct.tradeoff_rows(legacy) == fct.tradeoff_rows(run)
    assert fct.cost_summary(legacy) == fct.cost_summary(run) and "backfill_speedup" in fct.cost_summary(run)


# --------------------------------------------------------------------- several seeds


def test_multi_seed_parent_has_means_stds_and_first_seeds_artifacts(run_dir, tmp_path):
    parent = make_parent(run_dir, tmp_path / "fct-seeds", seeds=(10, 2))
    loaded = fct.load_fct_run(parent)
    assert loaded.multi_seed and [p.name.split("-")[0] for p in loaded.seeds] == ["seed2", "seed10"]
    assert loaded.artifact_dir == loaded.seeds[0] and loaded.classes == [str(d) for d in range(10)]
    row = fct.compatibility_rows(loaded)[1]
    single = load_run(run_dir).metrics["retrieval/new-new/top1"]
    assert row["top1"] == pytest.approx(0.95 * single) and row["top1_std"] > 0
    sweep = fct.tradeoff_rows(loaded)
    assert [r["dim"] for r in sweep] == [0, 8, 32] and all("mAP_std" in r and "top5" not in r for r in sweep)
    assert len(fct.neighbours(loaded, 0, "fct", k=3).indices) == 3
    assert [info.name for info in fct.find_fct_runs(tmp_path)] == ["fct-seeds"]


def test_multi_seed_parent_takes_artifacts_from_the_first_seed_that_has_them(run_dir, tmp_path):
    parent = make_parent(run_dir, tmp_path / "fct-seeds")
    first, second = sorted(parent.glob("seed*"))
    (first / "embeddings.safetensors").unlink()
    assert fct.load_fct_run(parent).artifact_dir == second
    (second / "embeddings.safetensors").unlink()
    bare = fct.load_fct_run(parent)
    assert bare.artifact_dir is None and bare.classes == [str(d) for d in range(10)]
    with pytest.raises(PlaygroundError, match="nor has any of its seed folders"):
        _ = bare.embeddings
