"""The reference runs a source checkout ships (``reference/``): what every page opens on before the user
has runs of their own, what times a preset before it runs, and the figures the README's reference table
quotes (written by ``scripts/make_reference.py``, checked by ``tests/core/test_reference.py``).
"""

from __future__ import annotations

from playground.core.registry import headline_names
from playground.core.runs import RunInfo, format_number, list_runs, markdown_table, reference_root


def reference_runs() -> list[RunInfo]:
    """The shipped reference runs, by technique then name."""
    return sorted(list_runs(reference_root()), key=lambda info: (info.experiment, info.name))


def preset_of(info: RunInfo) -> str:
    """The preset a reference run ran (recorded by ``scripts/make_reference.py`` in ``PRESET``)."""
    marker = info.path / "PRESET"
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else "?"


def headline_cells(info: RunInfo, count: int = 3) -> str:
    """The first ``count`` of the technique's headline metrics, ``name value; ...``."""
    names = headline_names(info.experiment, info.metrics)[:count]
    return "; ".join(f"{name} {format_number(info.metrics[name])}" for name in names) or "-"


def reference_table() -> str:
    """The README's table of the shipped reference runs: technique, duration, headline figures, command."""
    from playground.core.status import format_duration

    rows = []
    for info in reference_runs():
        status = info.status
        took = format_duration(status.seconds) if status.seconds is not None else "?"
        machine = f" ({status.threads} thread, {status.cpus} CPUs)" if status.threads and status.cpus else ""
        command = f"`playground run recipes/{info.name.rsplit('-', 2)[0]}.toml --preset {preset_of(info)}`"
        rows.append([info.experiment, f"`{info.name}`", took + machine, headline_cells(info), command])
    return markdown_table(["technique", "run", "took", "headline figures", "the same run"], rows)
