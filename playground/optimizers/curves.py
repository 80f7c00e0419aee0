"""Training curves of an optimizers run: record, bin, average over seeds, read back.

One run writes ``curves.json``: per optimizer, the validation loss and accuracy at epochs
0 (before training, the same start for every optimizer) to E, and the training loss as
the mean batch loss over ``points_per_epoch`` bins of each epoch. A multi-seed parent folder
(``playground run ... --seeds 0,1,2``) has one such file per ``seed<k>-...`` folder;
:func:`load_curves` reads them all and gives the mean and standard deviation per point.

Pages use this module to draw a past run; it never trains anything.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from playground.core.runs import RunInfo, list_runs
from playground.core.seeds import band
from playground.core.seeds import seed_folders as all_seed_folders
from playground.errors import DataFormatError, DataNotFoundError

CURVES_FILE = "curves.json"
SERIES = ("val_loss", "val_accuracy", "train_loss")
EXPERIMENT = "optimizers"


@dataclass
class Curves:
    """One optimizer's curves; ``*_std`` are filled when several seeds were averaged."""

    epochs: list[float]  # 0, 1, ..., E for the validation series
    val_loss: list[float]
    val_accuracy: list[float]
    train_x: list[float]  # bin ends, in epochs, for the training loss
    train_loss: list[float]
    val_loss_std: list[float] | None = None
    val_accuracy_std: list[float] | None = None
    train_loss_std: list[float] | None = None
    seeds: int = 1


def binned(values: list[float], per_epoch: int, bins: int) -> tuple[list[float], list[float]]:
    """``(x in epochs, mean of values per bin)``: each epoch's ``per_epoch`` values cut into ``bins``."""
    xs, means = [], []
    bins = max(1, min(bins, per_epoch))
    for epoch in range(len(values) // per_epoch):
        first = epoch * per_epoch
        for b in range(bins):
            start, end = first + (per_epoch * b) // bins, first + (per_epoch * (b + 1)) // bins
            xs.append(epoch + (end - first) / per_epoch)
            means.append(statistics.fmean(values[start:end]))
    return xs, means


def mean_std(runs: list[Curves]) -> Curves:
    """Point-wise mean and sample standard deviation over seeds (same config, same lengths)."""
    if len(runs) == 1:
        return runs[0]
    lengths = {tuple(len(getattr(c, s)) for s in SERIES) for c in runs}
    if len(lengths) > 1:
        raise DataFormatError("the seeds' curves have different lengths; were they run with the same config?")
    out = {}
    for series in SERIES:
        spread = band([getattr(c, series) for c in runs])
        out[series], out[f"{series}_std"] = spread.mean.tolist(), spread.std.tolist()
    return Curves(runs[0].epochs, train_x=runs[0].train_x, seeds=len(runs), **out)


def write_curves(path: Path, curves: dict[str, Curves]) -> None:
    path.write_text(json.dumps({name: asdict(c) for name, c in curves.items()}, indent=1), encoding="utf-8")


def read_curves(path: Path) -> dict[str, Curves]:
    """``curves.json`` of one run folder (or the file itself)."""
    path = path / CURVES_FILE if path.is_dir() else path
    if not path.is_file():
        raise DataNotFoundError(f"{path} does not exist; the run may have been interrupted")
    try:
        return {
            name: Curves(**fields) for name, fields in json.loads(path.read_text(encoding="utf-8")).items()
        }
    except (json.JSONDecodeError, TypeError) as err:
        raise DataFormatError(f"{path} is not an optimizers curves file: {err}") from None


def seed_folders(path: Path) -> list[Path]:
    """The per-seed folders of a multi-seed parent with curves, in seed order (empty for a single run)."""
    return [p for p in all_seed_folders(path) if (p / CURVES_FILE).is_file()]


def load_curves(path: str | Path) -> dict[str, Curves]:
    """Optimizer name -> curves for a run folder; a multi-seed parent gives mean ± std."""
    path = Path(path)
    seeds = seed_folders(path)
    if not seeds:
        return read_curves(path)
    per_seed = [read_curves(folder) for folder in seeds]
    names = [name for name in per_seed[0] if all(name in run for run in per_seed)]
    return {name: mean_std([run[name] for run in per_seed]) for name in names}


def find_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Finished optimizers runs (with curves) under the runs root, newest first."""
    return [
        info
        for info in list_runs(root)
        if info.experiment == EXPERIMENT and ((info.path / CURVES_FILE).is_file() or seed_folders(info.path))
    ]
