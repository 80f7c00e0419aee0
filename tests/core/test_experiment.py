"""The run template: every experiment is seeded, threaded, placed and written the same way."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from playground.core.config import RunConfig, apply_overrides, build_config
from playground.core.experiment import Finished, run_experiment
from playground.core.runs import Metrics, load_run
from playground.errors import ConfigError, DataNotFoundError


@dataclasses.dataclass
class Toy(RunConfig):
    name: str = "toy"
    size: int = 3


def toy_steps(run, data):
    metrics = Metrics()
    metrics.add("draw", float(torch.rand(1)), "value")
    if run.save_models:
        (run.dir.path / "model.txt").write_text("weights")
    return Finished(metrics, f"# toy on {run.device}\n", {"data": data, "threads": torch.get_num_threads()})


def load_toy(config, device, progress):
    if config.size < 0:
        raise DataNotFoundError("no such data")
    return list(range(config.size))


def test_the_template_seeds_writes_and_hands_back_typed_results(playground_home):
    first = run_experiment("toy", Toy(seed=5), load_toy, toy_steps)
    second = run_experiment("toy", Toy(seed=5), load_toy, toy_steps)
    assert first.metrics.values["draw"] == second.metrics.values["draw"]  # seeded
    assert first.run_dir != second.run_dir and first.run_dir.parent == playground_home
    info = load_run(first.run_dir)
    assert info.experiment == "toy" and info.metrics["draw"] == first.metrics.values["draw"]
    assert json.loads((first.run_dir / "metrics.json").read_text())["units"]["draw"] == "value"
    assert first.report == (first.run_dir / "report.md").read_text() == "# toy on cpu\n"
    assert first.results["data"] == [0, 1, 2] and (first.run_dir / "model.txt").is_file()


def test_the_one_save_flag_and_the_thread_count(playground_home):
    before = torch.get_num_threads()
    try:
        result = run_experiment("toy", Toy(save_models=False, threads=1), load_toy, toy_steps)
    finally:
        torch.set_num_threads(before)
    assert not (result.run_dir / "model.txt").exists() and result.results["threads"] == 1


def test_bad_data_fails_before_a_run_folder_exists(playground_home):
    with pytest.raises(DataNotFoundError):
        run_experiment("toy", Toy(size=-1), load_toy, toy_steps)
    assert not playground_home.exists() or not any(playground_home.iterdir())


def test_renamed_save_keys_still_work_with_a_notice(capsys):
    config = build_config(Toy, {"save_checkpoint": False}, "recipe x")
    assert config.save_models is False
    assert "save_checkpoint in recipe x is now save_models" in capsys.readouterr().err
    values = apply_overrides({}, ["save_checkpoints=false"], Toy)
    assert values == {"save_models": False}
    with pytest.raises(ConfigError, match="threads"):
        Toy(threads=-1)
