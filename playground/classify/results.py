"""Reading a classify run back: its metrics and the typed results its charts are drawn from."""

from __future__ import annotations

from pathlib import Path

import torch

from playground.classify.experiment import CONFUSION, EXPERIMENT, HISTORY, ClassifyResults
from playground.core.runs import Metrics, RunInfo, list_runs, load_run, read_result
from playground.core.training import History
from playground.errors import DataFormatError


def find_classify_runs(root: str | Path | None = None) -> list[RunInfo]:
    """The classify runs under ``root`` (default the playground home), newest first."""
    return list_runs(root, EXPERIMENT)


def load_classify_run(path: str | Path) -> tuple[Metrics, ClassifyResults]:
    """A finished classify run's metrics and results (history, test confusion matrix, classes).

    Runs made before the confusion matrix was stored raise DataNotFoundError (run them again)."""
    path = Path(path)
    history = read_result(path, HISTORY, legacy="history.json")
    confusion = read_result(path, CONFUSION)
    try:
        matrix = torch.tensor(confusion["matrix"], dtype=torch.long)
        classes = [str(c) for c in confusion["classes"]]
        epochs, step_loss = list(history["epochs"]), [float(v) for v in history["step_loss"]]
    except (KeyError, TypeError, ValueError) as err:
        raise DataFormatError(f"{path}/results.json does not hold a classify run's results ({err})") from None
    if matrix.ndim != 2 or matrix.shape != (len(classes), len(classes)):
        raise DataFormatError(
            f"{path}/results.json: the confusion matrix does not match its {len(classes)} classes"
        )
    return load_run(path).measured, ClassifyResults(History(epochs), matrix, classes, step_loss)
