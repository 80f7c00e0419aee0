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
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from playground.core.checkpoint import cut, short
from playground.core.config import config_to_toml, tomllib
from playground.core.paths import check_output_folder
from playground.core.registry import canonical_key
from playground.errors import ConfigError, DataFormatError, DataNotFoundError, PlaygroundError


def playground_home() -> Path:
    """The runs root: ``$PLAYGROUND_HOME`` or ``./runs`` (an empty ``$PLAYGROUND_HOME`` counts as unset,
    not as the current folder)."""
    return Path(os.environ.get("PLAYGROUND_HOME", "").strip() or "runs")


def reference_root() -> Path:
    """The reference runs a source checkout ships (the runs the README quotes), which every page opens
    on until the user has runs of their own: ``$PLAYGROUND_REFERENCE`` or ``<checkout>/reference``.
    Read-only: runs are never written there."""
    configured = os.environ.get("PLAYGROUND_REFERENCE", "").strip()
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "reference"


def run_roots(root: str | Path | None = None) -> list[Path]:
    """Where runs are read from: the runs root (``root`` or the playground home), then the reference."""
    return [Path(root) if root is not None else playground_home(), reference_root()]


def is_reference(path: Path) -> bool:
    """Whether ``path`` is one of the shipped reference runs."""
    return Path(path).resolve().is_relative_to(reference_root().resolve())


RESULTS = "results.json"  # the run's one results file: {"format": RESULTS_FORMAT, "sections": {...}}
RESULTS_FORMAT = "playground.results/1"
STD = ":std"  # a multi-seed run stores each metric's spread over seeds as "<name>:std"


@dataclasses.dataclass(frozen=True)
class Record:
    """One number a run measured: a unique ``name``, its ``unit``, the data ``split`` it was measured
    on ("test", "val", "train"; "" when it is about no split) and ``tags``, the parameters it was
    measured under (``{"side_info_dim": 32}``). Readers select records by split and tags; nothing
    is ever parsed back out of a name."""

    name: str
    value: float
    unit: str = ""
    split: str = ""
    tags: dict[str, Any] = dataclasses.field(default_factory=dict)
    std: float | None = None  # the sample standard deviation over seeds, for a multi-seed run

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "split": self.split,
            "tags": self.tags,
        }
        return data | ({"std": self.std} if self.std is not None else {})


@dataclasses.dataclass
class Metrics:
    """Numbers with units, split and tags, in the one schema every run writes.

    ``values`` and ``units`` map each unique name to its number and unit (the flat view most
    code reads); ``splits`` and ``tags`` hold the rest of each :class:`Record`.
    """

    values: dict[str, float] = dataclasses.field(default_factory=dict)
    units: dict[str, str] = dataclasses.field(default_factory=dict)
    splits: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def add(self, name: str, value: float, unit: str = "", split: str = "", **tags: Any) -> None:
        """Record ``name`` (unique in the run) with its unit, split and tags (``side_info_dim=32``)."""
        self.values[name] = float(value)
        if unit:
            self.units[name] = unit
        if split:
            self.splits[name] = split
        if tags:
            self.tags[name] = tags

    def records(self) -> list[Record]:
        """Every metric as a :class:`Record` (a multi-seed mean carries its ``std``)."""
        return [
            Record(
                name,
                value,
                self.units.get(name, ""),
                self.splits.get(name, ""),
                self.tags.get(name, {}),
                self.values.get(name + STD),
            )
            for name, value in self.values.items()
            if not name.endswith(STD)
        ]

    def select(self, split: str | None = None, **tags: Any) -> list[Record]:
        """The records measured on ``split`` (any when None) whose tags include every ``tags`` pair
        (a tag given as ``...`` only has to be present)."""
        return [
            record
            for record in self.records()
            if (split is None or record.split == split)
            and all(k in record.tags and (v is ... or record.tags[k] == v) for k, v in tags.items())
        ]

    def to_json(self) -> dict[str, Any]:
        """``records`` (the typed layout) plus ``metrics`` and ``units``, the flat view jq users know."""
        return {"records": [r.to_json() for r in self.records()], "metrics": self.values, "units": self.units}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metrics:
        """Read ``metrics.json``: the typed layout, or the old one (``metrics`` and ``units`` only,
        runs made before records existed: no split, no tags)."""
        metrics = cls(dict(data.get("metrics", {})), dict(data.get("units", {})))
        for record in data.get("records", []):
            if record.get("split"):
                metrics.splits[record["name"]] = record["split"]
            if record.get("tags"):
                metrics.tags[record["name"]] = dict(record["tags"])
        return metrics


@dataclasses.dataclass
class Result:
    """What ``run()`` returns: the numbers, the report text and where they were written."""

    metrics: Metrics
    report: str
    run_dir: Path
    results: Any = None  # the technique's typed results, in memory (what its steps returned)
    seeds: list[Result] = dataclasses.field(default_factory=list)  # a multi-seed run: each seed's result


MAX_NAME_CHARS = 120  # a run folder's name is the run's name plus a timestamp: well under 255


def check_run_target(name: str, root: str | Path | None = None) -> Path:
    """Refuse, before any work, a run ``name`` that is not a plain folder name and a runs ``root``
    (default the playground home) where no run folder can be made: a file, under a file, or
    read-only. Returns the root. Every run calls it before loading data and again when its folder
    is made."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or len(name) > MAX_NAME_CHARS:
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise ConfigError(
            f"name {shown!r} cannot name a run folder; give a plain name of 1 to {MAX_NAME_CHARS} "
            "characters without / or \\"
        )
    what = "runs root (--out)" if root is not None else "runs root ($PLAYGROUND_HOME)"
    return check_output_folder(root if root is not None else playground_home(), what)


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
        root = check_run_target(name, root)
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

    def write_result(self, section: str, data: Any) -> Path:
        """Store ``data`` (JSON values or a dataclass of them) as ``section`` of the run's one results
        file, ``results.json``; read it back with :func:`read_result`."""
        sections = _result_sections(self.path)
        sections[section] = dataclasses.asdict(data) if dataclasses.is_dataclass(data) else data
        return self._write(RESULTS, json.dumps({"format": RESULTS_FORMAT, "sections": sections}, indent=1))

    def write_json(self, name: str, data: Any) -> Path:
        return self._write(name, json.dumps(data, indent=2))

    def save_chart(self, chart) -> Path:
        """Save a :class:`~playground.core.charts.Chart` as ``<chart.name>.png``."""
        from playground.core.charts import save_png

        return save_png(chart, self.path / f"{chart.name}.png")

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


@dataclasses.dataclass
class RunInfo:
    """A past run as listed by ``playground runs`` and the Runs page."""

    path: Path
    experiment: str
    metrics: dict[str, float]
    units: dict[str, str]
    measured: Metrics = dataclasses.field(default_factory=Metrics)  # the typed records, for select()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self):
        """The run's :class:`~playground.core.status.RunStatus` (read now: a running run moves on)."""
        from playground.core.status import read_status

        return read_status(self.path)

    @property
    def reference(self) -> bool:
        return is_reference(self.path)

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
    except (OSError, ValueError, RecursionError):  # missing, not UTF-8, not JSON, nested too deep
        data = {}
    try:
        measured = Metrics.from_json(data if isinstance(data, dict) else {})
    except (TypeError, ValueError, AttributeError, KeyError):  # damaged: read as a run without metrics
        measured = Metrics()
    return RunInfo(path, experiment, measured.values, measured.units, measured)


def _experiment_of(config_path: Path) -> str:
    try:
        experiment = tomllib.loads(config_path.read_text(encoding="utf-8")).get("experiment", "?")
    except (OSError, ValueError):  # unreadable, not UTF-8, not TOML (TOMLDecodeError is a ValueError)
        return "?"
    return (
        canonical_key(experiment) if isinstance(experiment, str) else "?"
    )  # runs made before the rename say "ood" or "cuboids"


def list_runs(root: str | Path | None = None, experiment: str | None = None) -> list[RunInfo]:
    """Past runs under ``root`` (default the playground home), newest first; only ``experiment``'s
    when given."""
    root = Path(root) if root is not None else playground_home()
    if not root.is_dir():
        return []
    runs = [load_run(p) for p in root.iterdir() if (p / "config.toml").is_file()]
    runs = [r for r in runs if experiment is None or r.experiment == experiment]
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
    from playground.core.seeds import mean_std_cell  # seeds builds on this module

    rows = []
    for name, value in metrics.values.items():
        if name.endswith(":std"):
            continue
        std = metrics.values.get(f"{name}:std")
        shown = format_number(value) if std is None else mean_std_cell(value, std, ".4g")
        rows.append([name, shown, metrics.units.get(name, "")])
    return markdown_table(["metric", "value", "unit"], rows)


# --------------------------------------------------------------------- reading runs back


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
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise DataFormatError(f"{config_file} is not valid TOML ({err}); the run folder is damaged") from None
    if not isinstance(data.get("experiment", ""), str) or not isinstance(data.get("config", {}), dict):
        raise DataFormatError(
            f"{config_file} must name its experiment as text and hold a [config] table; "
            "the run folder is damaged"
        )
    return data


def read_result(path: str | Path, section: str, legacy: str | None = None) -> Any:
    """``section`` of a run's ``results.json``. Runs made before that file existed kept each section in
    a file of its own: ``legacy`` names it (e.g. ``"curves.json"``) and it is read instead."""
    path = Path(path)
    sections = _result_sections(path)
    if section in sections:
        return sections[section]
    if legacy and (path / legacy).is_file() and not (legacy == RESULTS and sections):
        return read_json(path / legacy)
    raise DataNotFoundError(f"{path} has no {section!r} results in {RESULTS}: the run did not finish")


def _result_sections(path: Path) -> dict[str, Any]:
    """The sections of ``path/results.json``; {} when there is none or it is another layout (an old
    latency run's ``results.json`` held its rows directly)."""
    file = path / RESULTS
    if not file.is_file():
        return {}
    data = read_json(file)
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        return {}
    sections = data.get("sections") or {}
    if not isinstance(sections, dict):
        raise DataFormatError(f"{file}: its sections are {short(sections)}, not a JSON object")
    return sections


def read_json(file: Path) -> Any:
    """A JSON file a run wrote: DataNotFoundError when it is missing (the run did not finish),
    DataFormatError when it is damaged."""
    if not file.is_file():
        raise DataNotFoundError(f"{file.parent} has no {file.name}: the run did not finish")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: nested too deep
        raise DataFormatError(f"{file} is not valid JSON ({cut(str(err))})") from None
