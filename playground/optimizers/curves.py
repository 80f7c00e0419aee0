"""Training curves of an optimizers run: record, bin, average over seeds, read back.

One run keeps its curves as the :data:`CURVES` section of its ``results.json`` (runs made before
that file kept them in ``curves.json``, still read): per optimizer, the validation loss and
accuracy at epochs 0 (before training, the same start for every optimizer) to E, and the training
loss as the mean batch loss over ``points_per_epoch`` bins of each epoch. A multi-seed parent folder
(``playground run ... --seeds 0,1,2``) has one such section per ``seed<k>-...`` folder;
:func:`load_curves` reads them all and gives the mean and standard deviation per point.

Pages use this module to draw a past run; it never trains anything.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from playground.core.runs import RunDir, RunInfo, list_runs, read_result
from playground.core.seeds import band
from playground.core.seeds import seed_folders as all_seed_folders
from playground.errors import DataFormatError, PlaygroundError

CURVES = "curves"  # the results.json section: optimizer name -> its Curves
LEGACY_CURVES = "curves.json"  # where runs made before results.json kept them
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


def write_curves(run_dir: RunDir, curves: dict[str, Curves]) -> None:
    """Store ``curves`` as the run's :data:`CURVES` results section."""
    run_dir.write_result(CURVES, {name: asdict(c) for name, c in curves.items()})


def read_curves(path: Path) -> dict[str, Curves]:
    """The curves of one run folder: its :data:`CURVES` section (or an old run's ``curves.json``)."""
    saved = read_result(path, CURVES, legacy=LEGACY_CURVES)
    try:
        curves = {name: Curves(**fields) for name, fields in saved.items()}
    except (AttributeError, TypeError) as err:
        raise DataFormatError(f"{path} holds no optimizers curves: {str(err)[:200]}") from None
    for name, one in curves.items():
        problem = _problem(one)
        if problem:
            raise DataFormatError(f"{path} holds damaged optimizers curves: {str(name)[:40]!r} {problem}")
    return curves


def _problem(curves: Curves) -> str:
    """What is wrong with curves read from a file ("" when nothing): series that are not lists of
    numbers (NaN allowed: a diverged run), or validation and training series of unequal lengths."""
    for series in ("epochs", "train_x", *SERIES, *(f"{s}_std" for s in SERIES)):
        values = getattr(curves, series)
        if values is None and series.endswith("_std"):
            continue
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            return f"{series} is not a list of numbers"
    if not len(curves.epochs) == len(curves.val_loss) == len(curves.val_accuracy):
        return "has validation series of unequal lengths"
    if len(curves.train_x) != len(curves.train_loss):
        return "has training series of unequal lengths"
    if isinstance(curves.seeds, bool) or not isinstance(curves.seeds, int) or curves.seeds < 1:
        return "has a seed count that is not a whole number of at least 1"
    return ""


def has_curves(path: Path) -> bool:
    """Whether the run folder ``path`` finished writing its curves."""
    try:
        read_result(path, CURVES, legacy=LEGACY_CURVES)
    except PlaygroundError:
        return False
    return True


def seed_folders(path: Path) -> list[Path]:
    """The per-seed folders of a multi-seed parent with curves, in seed order (empty for a single run)."""
    return [p for p in all_seed_folders(path) if has_curves(p)]


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
        if info.experiment == EXPERIMENT and (has_curves(info.path) or seed_folders(info.path))
    ]
