"""Seeds aggregated in one place: numeric folder order, the one band, the one cell format."""

from __future__ import annotations

import math

import numpy as np
import pytest

from playground.core.runs import Metrics, RunDir
from playground.core.seeds import (
    aggregate_scalars,
    band,
    first_seed,
    mean_std_cell,
    metric_cell,
    runs_root_of,
    seed_folders,
    seed_of,
)


def make_seed_folder(parent, seed: int):
    run = RunDir.create(f"seed{seed}", parent)
    (run.path / "config.toml").write_text('experiment = "classify"\n')
    return run.path


def test_seed_folders_sort_by_number_not_text(tmp_path):
    for seed in (10, 2, 1):
        make_seed_folder(tmp_path, seed)
    (tmp_path / "seed3-but-not-a-run").mkdir()  # no config.toml
    (tmp_path / "notes").mkdir()
    folders = seed_folders(tmp_path)
    assert [seed_of(p) for p in folders] == [1, 2, 10]
    assert first_seed(tmp_path) == folders[0]
    assert first_seed(folders[1]) == folders[1]
    assert runs_root_of(folders[0]) == tmp_path.parent and runs_root_of(tmp_path) == tmp_path.parent


def test_scalars_are_mean_and_sample_std():
    seeds = [Metrics({"acc": v}, {"acc": "fraction"}) for v in (0.80, 0.82, 0.87)]
    merged = aggregate_scalars(seeds)
    assert merged.values["acc"] == pytest.approx(np.mean([0.80, 0.82, 0.87]))
    assert merged.values["acc:std"] == pytest.approx(np.std([0.80, 0.82, 0.87], ddof=1))
    assert merged.units["acc:std"] == "fraction"
    assert aggregate_scalars(seeds[:1]).values["acc:std"] == 0.0


def test_the_band_is_mean_plus_minus_one_sample_std_and_absent_for_one_seed():
    curves = [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0, 6.0]]  # cut to the shortest
    b = band(curves)
    assert b.seeds == 2 and b.mean.tolist() == [2.0, 3.0, 4.0]
    assert b.std == pytest.approx([math.sqrt(2)] * 3)
    assert b.low == pytest.approx(b.mean - b.std) and b.high == pytest.approx(b.mean + b.std)
    single = band([[1.0, 2.0]])
    assert single.std is None and single.low.tolist() == single.high.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError):
        band([])


def test_one_cell_format():
    assert mean_std_cell(0.91234) == "0.912"
    assert mean_std_cell(0.91234, 0.0041) == "0.912 ± 0.004"
    assert mean_std_cell(0.91234, 0.0041, digits=1, scale=100) == "91.2 ± 0.4"
    assert mean_std_cell(600.0, 0.0, digits=0, shared=True) == "600"
    assert mean_std_cell(600.0, 2.0, digits=0, shared=True) == "600 ± 2"
    assert mean_std_cell(None) == mean_std_cell(float("nan")) == "–"
    values = {"top1": 0.5, "top1:std": 0.25}
    assert metric_cell(values, "top1", 2) == "0.50 ± 0.25" and metric_cell(values, "mAP") == "–"


@pytest.mark.parametrize("seeds", [[], (), [0, 1, 0]])
def test_an_empty_or_repeated_seed_list_is_refused_before_any_work(seeds, tmp_path):
    from playground.core.registry import REPO
    from playground.core.runner import run_recipe
    from playground.errors import ConfigError

    with pytest.raises(ConfigError, match="seeds must be one or more different seeds"):
        run_recipe(REPO / "recipes" / "optimizers_fashion.toml", "quick", [f"out={tmp_path}"], seeds=seeds)
    assert not any(tmp_path.iterdir())
