"""Binning the training loss, averaging curves over seeds, reading them back."""

from __future__ import annotations

import pytest

from playground.errors import DataFormatError, DataNotFoundError
from playground.optimizers.curves import Curves, binned, load_curves, mean_std, read_curves, write_curves


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


def test_write_read_and_load_a_multi_seed_parent(tmp_path):
    for seed, offset in ((0, 0.0), (1, 0.2)):
        folder = tmp_path / f"seed{seed}-20260101-000000"
        folder.mkdir()
        (folder / "config.toml").write_text('experiment = "optimizers"\n')  # a seed folder is a run
        write_curves(folder / "curves.json", {"adam": curves(offset), "gd": curves(offset)})
    assert read_curves(tmp_path / "seed0-20260101-000000")["adam"] == curves(0.0)
    loaded = load_curves(tmp_path)
    assert list(loaded) == ["adam", "gd"] and loaded["adam"].seeds == 2
    assert loaded["gd"].val_accuracy == pytest.approx([0.1, 0.6, 0.9])
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_curves(tmp_path / "missing")
    (tmp_path / "bad.json").write_text('{"adam": {"epochs": [0]}}')
    with pytest.raises(DataFormatError, match="not an optimizers curves file"):
        read_curves(tmp_path / "bad.json")
