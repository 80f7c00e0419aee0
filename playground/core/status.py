"""Whether a run is running, complete, failed or interrupted: ``status.json`` in its folder.

The run template (:func:`playground.core.experiment.run_experiment`) writes the status when the
run folder is made and keeps a heartbeat in it while the run works, with the run's overall
progress (:class:`~playground.core.progress.RunProgress`). The states:

- ``running``: the heartbeat is fresh (written every :data:`HEARTBEAT` seconds);
- ``complete``: metrics, report and results are written; the status keeps the run's timeline (when
  each stage began), from which the next run of the same configuration estimates its time left;
- ``failed``: the run raised; ``error`` holds the one-line message;
- ``interrupted``: the process was stopped (Ctrl-C, a cancelled job, a kill, a power cut). A
  ``running`` status whose heartbeat is older than :data:`STALE` seconds, or whose process is gone
  from this machine, reads as interrupted: nothing shows as running for ever.

Runs made before the status file existed read as complete when they have a report, else as
interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

STATUS = "status.json"
STATES = ("running", "complete", "failed", "interrupted")
HEARTBEAT = 2.0  # seconds between heartbeats
STALE = 60.0  # a heartbeat older than this means the process is gone


@dataclasses.dataclass
class RunStatus:
    """One run's state, as written in ``status.json``."""

    state: str
    started: float = 0.0
    updated: float = 0.0  # the last heartbeat
    ended: float | None = None
    pid: int = 0
    host: str = ""
    error: str = ""
    progress: dict[str, Any] = dataclasses.field(default_factory=dict)  # RunProgress.snapshot()
    timeline: list[list] = dataclasses.field(default_factory=list)  # [[stage, seconds from start], ...]
    seconds: float | None = None  # wall time of a finished run
    threads: int = 0  # torch's CPU threads while it ran
    cpus: int = 0  # the machine's CPU count

    @property
    def finished(self) -> bool:
        return self.state != "running"

    def describe(self) -> str:
        """One line: ``complete in 3 min 12 s``, ``running: train 2/5 (40%), about 1 min left``."""
        if self.state == "complete":
            return "complete" if self.seconds is None else f"complete in {format_duration(self.seconds)}"
        if self.state == "running":
            return "running: " + describe_progress(self.progress)
        return f"{self.state}: {self.error}" if self.error else self.state


def format_duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 12 s``, ``1 h 05 min``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def describe_progress(snapshot: dict[str, Any]) -> str:
    """A progress snapshot as one line: stage, k of N, step, percent, elapsed and time left."""
    if not snapshot:
        return "starting"
    parts = [snapshot.get("stage") or "starting"]
    if snapshot.get("stages"):
        parts.append(f"stage {snapshot['index']} of {snapshot['stages']}")
    if snapshot.get("total"):
        parts.append(f"step {snapshot['step']}/{snapshot['total']}")
    if snapshot.get("fraction") is not None:
        parts.append(f"{snapshot['fraction']:.0%}")
    parts.append(f"{format_duration(snapshot.get('elapsed'))} elapsed")
    left = snapshot.get("left")
    stage_left = snapshot.get("stage_left")
    if left is not None:
        parts.append(f"about {format_duration(left)} left")
    elif stage_left is not None:
        parts.append(f"about {format_duration(stage_left)} left in this stage")
    else:
        parts.append("time left unknown")
    return " · ".join(parts)


def write_status(folder: Path, status: RunStatus) -> None:
    """Replace ``folder/status.json`` atomically (a reader never sees half a file)."""
    target = Path(folder) / STATUS
    temporary = target.with_name(f".{STATUS}.{os.getpid()}.{threading.get_ident()}")
    temporary.write_text(json.dumps(dataclasses.asdict(status), indent=1), encoding="utf-8")
    os.replace(temporary, target)


def read_status(folder: str | Path, now: float | None = None) -> RunStatus:
    """The run's status; a stale heartbeat or a vanished process reads as ``interrupted``."""
    folder = Path(folder)
    try:
        data = json.loads((folder / STATUS).read_text(encoding="utf-8"))
        status = RunStatus(**{f.name: data[f.name] for f in dataclasses.fields(RunStatus) if f.name in data})
    except FileNotFoundError:
        return _legacy_status(folder)
    except (OSError, ValueError, TypeError, KeyError, RecursionError) as err:
        return RunStatus("interrupted", error=f"its {STATUS} is damaged ({str(err)[:200]})")
    damage = _damage(status)
    if damage:
        return RunStatus("interrupted", error=f"its {STATUS} is damaged ({damage})")
    if status.state not in STATES:
        return RunStatus("interrupted", error=f"its {STATUS} names an unknown state {status.state!r}")
    if status.state == "running":
        return _check_alive(status, time.time() if now is None else now)
    return status


def _damage(status: RunStatus) -> str:
    """What in a status read from a file has the wrong type ("" when nothing): a heartbeat time that
    is text would fail the liveness check, a progress that is not a snapshot its description."""

    def real(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    wrong = [name for name in ("started", "updated") if not real(getattr(status, name))]
    wrong += [
        name
        for name in ("ended", "seconds")
        if getattr(status, name) is not None and not real(getattr(status, name))
    ]
    wrong += [
        name
        for name in ("pid", "threads", "cpus")
        if isinstance(getattr(status, name), bool) or not isinstance(getattr(status, name), int)
    ]
    wrong += [name for name in ("state", "host", "error") if not isinstance(getattr(status, name), str)]
    if not isinstance(status.progress, dict):
        wrong.append("progress")
    elif status.progress:
        try:
            describe_progress(status.progress)
        except (TypeError, ValueError, KeyError):
            wrong.append("progress")
    if not isinstance(status.timeline, list) or not all(
        isinstance(step, list) and len(step) == 2 and isinstance(step[0], str) and real(step[1])
        for step in status.timeline
    ):
        wrong.append("timeline")
    return f"{', '.join(wrong)} of the wrong type" if wrong else ""


def _legacy_status(folder: Path) -> RunStatus:
    """A run from before ``status.json``: complete when it wrote its report."""
    if (folder / "report.md").is_file() and (folder / "metrics.json").is_file():
        return RunStatus("complete")
    return RunStatus("interrupted", error="it stopped before writing its metrics and report")


def _check_alive(status: RunStatus, now: float) -> RunStatus:
    gone = now - status.updated > STALE
    if not gone and status.host == socket.gethostname() and status.pid:
        gone = not process_alive(status.pid)
    if not gone:
        return status
    stopped = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status.updated))
    return dataclasses.replace(
        status,
        state="interrupted",
        error=f"its process stopped without finishing (last heard of at {stopped})",
    )


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class StatusKeeper:
    """Writes one run's ``status.json``: ``running`` with a heartbeat thread, then the final state.

    ``progress`` (a :class:`~playground.core.progress.RunProgress`) supplies the snapshot each
    heartbeat writes and, at the end, the timeline.
    """

    def __init__(self, folder: Path, progress) -> None:
        self.folder, self.progress = Path(folder), progress
        now = time.time()
        self.status = RunStatus(
            "running", started=now, updated=now, pid=os.getpid(), host=socket.gethostname()
        )
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._beat()
        self._thread = threading.Thread(target=self._loop, name="run-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        with self._lock:
            if self.status.state == "running":
                self.status.updated = time.time()
                self.status.progress = self.progress.snapshot()
                write_status(self.folder, self.status)

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                self._beat()
            except OSError:  # a full disk or a removed folder must not kill the run
                pass

    def finish(self, state: str, error: str = "") -> None:
        """Stop the heartbeat and write the final ``state`` (with the timeline)."""
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT + 1)
        with self._lock:
            now = time.time()
            self.status = dataclasses.replace(
                self.status,
                state=state,
                error=error,
                updated=now,
                ended=now,
                seconds=round(self.progress.elapsed, 2),
                progress=self.progress.snapshot(),
                timeline=self.progress.timeline,
            )
            write_status(self.folder, self.status)


# --------------------------------------------------------------------- the time a run will take

PLACE_FIELDS = ("seed", "name", "out", "device", "threads", "save_models", "data_root")  # not its work


def work_of(config_table: dict[str, Any]) -> dict[str, Any]:
    """A run's ``[config]`` table without the fields that do not change how long it takes."""
    return {k: v for k, v in config_table.items() if k not in PLACE_FIELDS}


@dataclasses.dataclass(frozen=True)
class TimedRun:
    """A complete earlier run of some work: where it is, when each stage began, its wall time."""

    folder: Path
    timeline: list[list]
    seconds: float
    threads: int = 0
    cpus: int = 0

    def describe(self) -> str:
        """``3 min 12 s (1 thread on a 2-CPU machine)``."""
        machine = (
            f" ({self.threads} thread(s) on a {self.cpus}-CPU machine)" if self.threads and self.cpus else ""
        )
        return format_duration(self.seconds) + machine


def find_timed_run(experiment: str, config, roots: list[Path], newest: int = 300) -> TimedRun | None:
    """The newest complete run of ``experiment`` with the same work as ``config`` under ``roots`` (the
    runs root, the shipped reference runs): how long the same work took before. None when there is none."""
    from playground.core.config import config_to_toml, tomllib
    from playground.core.registry import canonical_key

    wanted = work_of(tomllib.loads(config_to_toml(config))["config"])
    folders = [
        p for root in roots if Path(root).is_dir() for p in Path(root).iterdir() if (p / STATUS).is_file()
    ]
    folders.sort(key=lambda p: (p / STATUS).stat().st_mtime, reverse=True)
    for folder in folders[:newest]:
        try:
            stored = tomllib.loads((folder / "config.toml").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            canonical_key(stored.get("experiment", "")) != experiment
            or work_of(stored.get("config", {})) != wanted
        ):
            continue
        status = read_status(folder)
        if status.state == "complete" and status.timeline and status.seconds is not None:
            return TimedRun(folder, status.timeline, status.seconds, status.threads, status.cpus)
    return None


def find_profile(experiment: str, config, roots: list[Path]) -> tuple[list, float] | None:
    """``(timeline, seconds)`` of :func:`find_timed_run`, what :class:`RunProgress` times a run by."""
    timed = find_timed_run(experiment, config, roots)
    return (timed.timeline, timed.seconds) if timed else None
