"""Binning the training loss, averaging curves over seeds, reading them back (old runs too)."""

from __future__ import annotations

import dataclasses

import pytest

from playground.core.runs import RESULTS, RunDir
from playground.errors import DataFormatError, DataNotFoundError
from playground.optimizers.curves import (
    Curves,
    binned,
    find_runs,
    load_curves,
    mean_std,
    read_curves,
    write_curves,
)


def curves(offset: float) -> Curves:
    return Curves(
        [0, 1, 2],
        [2.0 + offset, 1.0 + offset, 0.5 + offset],
        [0.1, 0.5 + offset, 0.8 + offset],
        [0.5, 1.0, 1.5, 2.0],
        [1.5 + offset, 1.2, 0.9, 0.6],
    )


def test_binned_means_per_bin_with_x_in_epochs():
    xs, means = binned([4, 2, 6, 0, 1, 1, 1, 1], per_epoch=4, bins=2)
    assert xs == [0.5, 1.0, 1.5, 2.0] and means == [3, 3, 1, 1]
    xs, means = binned(list(range(10)), per_epoch=5, bins=3)  # uneven bins: 1, 2, 2 values
    assert xs == [0.2, 0.6, 1.0, 1.2, 1.6, 2.0] and means == [0, 1.5, 3.5, 5, 6.5, 8.5]
    assert binned([3.0, 5.0], per_epoch=1, bins=10) == (
        [1.0, 2.0],
        [3.0, 5.0],
    )  # never more bins than batches


def test_mean_std_over_seeds():
    merged = mean_std([curves(0.0), curves(0.2)])
    assert merged.seeds == 2 and merged.epochs == [0, 1, 2] and merged.train_x == [0.5, 1.0, 1.5, 2.0]
    assert merged.val_loss == pytest.approx([2.1, 1.1, 0.6])
    assert merged.val_loss_std == pytest.approx([0.2 / 2**0.5] * 3)
    assert merged.val_accuracy_std[0] == 0.0 and merged.train_loss_std[1] == 0.0
    assert mean_std([curves(0.0)]).val_loss_std is None
    short = curves(0.0)
    short.val_loss = short.val_loss[:2]
    with pytest.raises(DataFormatError, match="different lengths"):
        mean_std([curves(0.0), short])


def seed_folder(parent, seed: int) -> RunDir:
    folder = RunDir(parent / f"seed{seed}-20260101-000000")
    folder.path.mkdir()
    (folder.path / "config.toml").write_text('experiment = "optimizers"\n')  # a seed folder is a run
    return folder


def test_write_read_and_load_a_multi_seed_parent(tmp_path):
    for seed, offset in ((0, 0.0), (1, 0.2)):
        write_curves(seed_folder(tmp_path, seed), {"adam": curves(offset), "gd": curves(offset)})
    first = tmp_path / "seed0-20260101-000000"
    assert sorted(p.name for p in first.iterdir()) == ["config.toml", RESULTS]
    assert read_curves(first)["adam"] == curves(0.0)
    loaded = load_curves(tmp_path)
    assert list(loaded) == ["adam", "gd"] and loaded["adam"].seeds == 2
    assert loaded["gd"].val_accuracy == pytest.approx([0.1, 0.6, 0.9])
    with pytest.raises(DataNotFoundError, match="no 'curves' results"):
        load_curves(tmp_path / "missing")
    bad = RunDir.create("bad", tmp_path)
    bad.write_result("curves", {"adam": {"epochs": [0]}})
    with pytest.raises(DataFormatError, match="holds no optimizers curves"):
        read_curves(bad.path)


def test_runs_made_before_results_json_still_open_from_their_curves_json(tmp_path):
    """An old multi-seed run: each seed folder has ``curves.json`` and no ``results.json``."""
    parent = RunDir.create("old", tmp_path)
    (parent.path / "config.toml").write_text('experiment = "optimizers"\n')
    for seed, offset in ((0, 0.0), (1, 0.2)):
        folder = seed_folder(parent.path, seed)
        folder.write_json("curves.json", {"adam": dataclasses.asdict(curves(offset))})
        assert not (folder.path / RESULTS).exists()
    assert read_curves(parent.path / "seed1-20260101-000000")["adam"] == curves(0.2)
    loaded = load_curves(parent.path)
    assert loaded["adam"].seeds == 2 and loaded["adam"].val_loss == pytest.approx([2.1, 1.1, 0.6])
    assert [info.path for info in find_runs(tmp_path)] == [parent.path]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(epochs="abc"), "epochs is not a list of numbers"),  # was read and drawn as is
        (dict(val_loss=[1.0, "x", 2.0]), "val_loss is not a list of numbers"),
        (dict(val_accuracy=[0.5]), "has validation series of unequal lengths"),
        (dict(train_loss=[1.0]), "has training series of unequal lengths"),
        (dict(seeds=0), "has a seed count that is not"),
    ],
)
def test_curves_of_the_wrong_types_or_lengths_are_refused_but_nan_losses_are_kept(tmp_path, change, message):
    run = RunDir.create("bad", tmp_path)
    run.write_result("curves", {"adam": {**dataclasses.asdict(curves(0.0)), **change}})
    with pytest.raises(DataFormatError, match=f"holds damaged optimizers curves: 'adam' {message}"):
        read_curves(run.path)
    diverged = dataclasses.replace(curves(0.0), val_loss=[2.0, float("nan"), float("nan")])
    write_curves(run, {"adam": diverged})
    assert read_curves(run.path)["adam"].val_loss[0] == 2.0
