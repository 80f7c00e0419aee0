"""The run directory and the results schema.

Every experiment writes ``<PLAYGROUND_HOME>/<name>-<timestamp>/`` (default home ``./runs``):

- ``config.toml``: what actually ran;
- ``metrics.json``: ``{"metrics": {name: number}, "units": {name: unit}}``. Names are
  slash-separated (``test/accuracy``); rates are fractions in [0, 1]. When several seeds
  ran, ``name`` is the mean and ``name:std`` the standard deviation;
- ``report.md``: a readable report that links its plots (PNG files beside it).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import math
import os
import re
import shutil
import statistics
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from playground.core.config import config_to_toml, tomllib
from playground.errors import DataFormatError, DataNotFoundError, PlaygroundError


def playground_home() -> Path:
    """The runs root: ``$PLAYGROUND_HOME`` or ``./runs``."""
    return Path(os.environ.get("PLAYGROUND_HOME", "runs"))


@dataclasses.dataclass
class Metrics:
    """Numbers with units, in the one schema every run writes."""

    values: dict[str, float] = dataclasses.field(default_factory=dict)
    units: dict[str, str] = dataclasses.field(default_factory=dict)

    def add(self, name: str, value: float, unit: str = "") -> None:
        self.values[name] = float(value)
        if unit:
            self.units[name] = unit

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.values, "units": self.units}


@dataclasses.dataclass
class Result:
    """What ``run()`` returns: the numbers, the report text and where they were written."""

    metrics: Metrics
    report: str
    run_dir: Path
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


class RunDir:
    """One run's folder; created fresh, never overwriting an earlier run."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, name: str, root: str | Path | None = None) -> RunDir:
        """A new ``<root>/<name>-<timestamp>`` folder (under torchrun: rank 0 only)."""
        from playground.core.distributed import is_main_process

        if not is_main_process():  # other ranks write into a scratch folder, removed at exit
            scratch = Path(tempfile.mkdtemp(prefix=f"{name}-rank-"))
            atexit.register(shutil.rmtree, scratch, ignore_errors=True)
            return cls(scratch)
        root = Path(root) if root is not None else playground_home()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = root / f"{name}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = root / f"{name}-{stamp}-{suffix}"
        path.mkdir(parents=True)
        return cls(path)

    def write_config(self, config: Any, experiment: str) -> Path:
        return self._write("config.toml", config_to_toml(config, {"experiment": experiment}))

    def write_metrics(self, metrics: Metrics) -> Path:
        return self._write("metrics.json", json.dumps(metrics.to_json(), indent=2, sort_keys=True))

    def write_report(self, text: str) -> Path:
        return self._write("report.md", text)

    def write_json(self, name: str, data: Any) -> Path:
        return self._write(name, json.dumps(data, indent=2))

    def save_figure(self, figure, name: str) -> Path:
        """Save a matplotlib figure as ``name``.png and close it."""
        import matplotlib.pyplot as plt

        path = self.path / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        return path

    def _write(self, name: str, text: str) -> Path:
        path = self.path / name
        path.write_text(text, encoding="utf-8")
        return path


def aggregate_seeds(per_seed: list[Metrics]) -> Metrics:
    """Mean over seeds as ``name`` and sample standard deviation as ``name:std``."""
    merged = Metrics()
    for name in per_seed[0].values:
        values = [m.values[name] for m in per_seed if name in m.values]
        unit = per_seed[0].units.get(name, "")
        merged.add(name, statistics.fmean(values), unit)
        merged.add(f"{name}:std", statistics.stdev(values) if len(values) > 1 else 0.0, unit)
    return merged


@dataclasses.dataclass
class RunInfo:
    """A past run as listed by ``playground runs`` and the Runs page."""

    path: Path
    experiment: str
    metrics: dict[str, float]
    units: dict[str, str]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def report(self) -> str:
        report = self.path / "report.md"
        return report.read_text(encoding="utf-8") if report.is_file() else ""

    @property
    def plots(self) -> list[Path]:
        return sorted(self.path.glob("*.png"))


def load_run(path: str | Path) -> RunInfo:
    """Read one run directory (its metrics may be missing if it was interrupted)."""
    path = Path(path)
    if not path.is_dir():
        raise PlaygroundError(f"run {path} does not exist; list runs with `playground runs`")
    experiment = _experiment_of(path / "config.toml")
    try:
        data = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        data = {}
    return RunInfo(path, experiment, data.get("metrics", {}), data.get("units", {}))


def _experiment_of(config_path: Path) -> str:
    try:
        return tomllib.loads(config_path.read_text(encoding="utf-8")).get("experiment", "?")
    except (OSError, tomllib.TOMLDecodeError):
        return "?"


def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Past runs under ``root`` (default the playground home), newest first."""
    root = Path(root) if root is not None else playground_home()
    if not root.is_dir():
        return []
    runs = [load_run(p) for p in root.iterdir() if (p / "config.toml").is_file()]
    return sorted(runs, key=lambda r: (r.path.stat().st_mtime, r.name), reverse=True)


def format_number(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) >= 1e4:
        return f"{int(value):,}"
    return f"{value:.4g}"


def compare_runs(runs: list[RunInfo]) -> dict[str, dict[str, float]]:
    """Metric name -> {run name: value}, over the metrics at least two of ``runs`` share."""
    table: dict[str, dict[str, float]] = {}
    for info in runs:
        for name, value in info.metrics.items():
            table.setdefault(name, {})[info.name] = value
    return {name: row for name, row in table.items() if len(row) >= min(2, len(runs))}


def metric_cell(values: dict[str, float], name: str, digits: int = 3, scale: float = 1.0) -> str:
    """Metric ``name`` as ``mean``, or ``mean ± std`` when seeds were aggregated; "–" when absent."""
    if name not in values:
        return "–"
    std = values.get(f"{name}:std")
    text = f"{scale * values[name]:.{digits}f}"
    return text + (f" ± {scale * std:.{digits}f}" if std is not None else "")


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A small Markdown table; floats are shown with 4 significant digits."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return format_number(value)
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(metrics: Metrics) -> str:
    """The metrics as a Markdown table (mean ± std when seeds were aggregated)."""
    rows = []
    for name, value in metrics.values.items():
        if name.endswith(":std"):
            continue
        std = metrics.values.get(f"{name}:std")
        shown = format_number(value) + (f" ± {std:.2g}" if std is not None else "")
        rows.append([name, shown, metrics.units.get(name, "")])
    return markdown_table(["metric", "value", "unit"], rows)


# --------------------------------------------------------------------- reading runs back

SEED_FOLDER = re.compile(r"^seed(\d+)-")


def read_run_config(path: Path) -> dict[str, Any]:
    """The parsed ``config.toml`` of a run folder (``experiment`` and ``[config]``); clear errors
    otherwise.
    """
    config_file = path / "config.toml"
    if not config_file.is_file():
        raise DataNotFoundError(
            f"{path} has no config.toml, so it is not a run folder; "
            "pick a folder under the runs root (list them with `playground runs`)"
        )
    try:
        return tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise DataFormatError(f"{config_file} is not valid TOML ({err}); the run folder is damaged") from None


def read_json(file: Path) -> Any:
    """A JSON file a run wrote: DataNotFoundError when it is missing (the run did not finish),
    DataFormatError when it is damaged."""
    if not file.is_file():
        raise DataNotFoundError(f"{file.parent} has no {file.name}: the run did not finish")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataFormatError(f"{file} is not valid JSON ({err})") from None


def runs_root_of(run_path: Path) -> Path:
    """The runs root a run folder lives under (a seed folder sits one level deeper, in its parent run)."""
    return run_path.parent.parent if SEED_FOLDER.match(run_path.name) else run_path.parent


def seed_folders(path: Path) -> list[Path]:
    """Child run folders ``seed<N>-...`` in seed order."""
    folders = [
        p
        for p in path.iterdir()
        if p.is_dir() and SEED_FOLDER.match(p.name) and (p / "config.toml").is_file()
    ]
    return sorted(folders, key=lambda p: (int(SEED_FOLDER.match(p.name)[1]), p.name))


def first_seed(path: str | Path) -> Path:
    """The run folder itself, or its first seed folder for a multi-seed parent (where models and
    files are).
    """
    path = Path(path)
    folders = seed_folders(path) if path.is_dir() else []
    return folders[0] if folders else path
