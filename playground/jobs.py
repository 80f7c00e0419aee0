"""Background jobs: runs started from a page that survive the browser.

A job is one ``playground run`` (the same arguments the CLI takes), or one step of a labelling
project's loop (``playground label round NAME`` / ``label retrain NAME``: args starting with
``label``), recorded in the project's database (the ``jobs`` table beside the annotation store) and
run by a worker process of its own: ``playground jobs work ID``, started in a new session, so
leaving the page, closing the browser or restarting the app does not touch it. The worker

1. waits in the queue, with a heartbeat, until a slot is free: at most ``$PLAYGROUND_JOB_SLOTS``
   jobs (default 1: the runs use every core) run at once, oldest first;
2. runs the recipe in-process through the run template, writing the run's overall progress
   (:class:`~playground.core.progress.RunProgress`) and its run folder into the job's row every
   :data:`HEARTBEAT` seconds (a label step's "k of N images" through :class:`CountProgress`);
3. records ``finished`` (with the run folder), ``failed`` (the one-line error; the traceback is in
   the job's log, ``<PLAYGROUND_HOME>/jobs/<id>.log``), or ``cancelled``.

:meth:`Jobs.cancel` stops the whole process tree (the worker leads its own process group, which
holds its data-loader and seed workers). A job whose heartbeat stops (the machine rebooted, the
worker was killed) reads as ``interrupted`` the next time anyone lists the jobs: nothing shows as
running for ever.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update

from playground.core.runs import playground_home
from playground.core.status import describe_progress, format_duration, process_alive
from playground.errors import PlaygroundError, StoreError
from playground.store import Store
from playground.store_checks import row_id, row_limit, timestamp
from playground.store_schema import jobs as jobs_table

QUEUED, RUNNING = "queued", "running"
FINAL = ("finished", "failed", "cancelled", "interrupted")
HEARTBEAT = 2.0  # seconds between a worker's heartbeats
STALE = 30.0  # a job row not heard from for this long is interrupted
GRACE = 5.0  # seconds a cancelled job gets to stop before it is killed
LABEL_ACTIONS = ("round", "retrain")  # `playground label ACTION NAME ...` may run as a job


def job_slots() -> int:
    """How many jobs run at once: ``$PLAYGROUND_JOB_SLOTS`` (default 1)."""
    from playground.core.config_values import env_count

    return env_count("PLAYGROUND_JOB_SLOTS", 1, "jobs")


@dataclasses.dataclass(frozen=True)
class Job:
    """One background run, as recorded in the database."""

    id: int
    title: str
    args: list[str]
    status: str
    pid: int | None
    host: str
    run_dir: str | None
    error: str
    progress: dict[str, Any]
    cancel_requested: bool
    created_at: float
    started_at: float | None
    ended_at: float | None
    heartbeat_at: float

    @classmethod
    def from_row(cls, row) -> Job:
        values = dict(row._mapping)
        values["args"] = json.loads(values["args"])
        values["progress"] = json.loads(values["progress"] or "{}")
        values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)

    @property
    def active(self) -> bool:
        return self.status in (QUEUED, RUNNING)

    @property
    def command(self) -> str:
        """The same run from the command line."""
        import shlex

        return shlex.join(
            ["playground", *self.args] if is_label_job(self.args) else ["playground", "run", *self.args]
        )

    def describe(self, now: float | None = None) -> str:
        """One line for the job list: what it is doing, or how it ended."""
        now = time.time() if now is None else now
        if self.status == QUEUED:
            return f"queued {format_duration(now - self.created_at)} ago, waiting for a free slot"
        if self.status == RUNNING:
            return describe_progress(self.progress)
        took = format_duration((self.ended_at or now) - (self.started_at or self.created_at))
        detail = f": {self.error}" if self.error else ""
        return f"{self.status} after {took}{detail}"


class Jobs:
    """The job list in the project's database (``Store`` URL rules: ``$PLAYGROUND_DB`` or SQLite)."""

    def __init__(self, url: str | None = None, store: Store | None = None) -> None:
        self.store = store or Store(url)

    # ----------------------------------------------------------------- pages and the CLI

    def submit(self, args: list[str], title: str) -> Job:
        """Queue ``playground run ARGS`` (or ``playground label round|retrain NAME ...`` when ARGS start
        with ``label``) and start its worker; returns the job at once."""
        if not isinstance(args, (list, tuple)) or not args or not all(isinstance(a, str) for a in args):
            raise PlaygroundError("a job needs the `playground run` arguments, starting with the recipe")
        if any("\x00" in a for a in args) or not isinstance(title, str) or "\x00" in title:
            raise PlaygroundError("a job's title and arguments must be text without NUL bytes")
        if args[0] == "label" and (len(args) < 3 or args[1] not in LABEL_ACTIONS):
            raise PlaygroundError(
                "a labelling job is `label round NAME` or `label retrain NAME` (and options)"
            )
        now = time.time()
        values = dict(
            title=title[:256],
            args=json.dumps(list(args)),
            status=QUEUED,
            host=socket.gethostname(),
            error="",
            progress="{}",
            cancel_requested=0,
            created_at=now,
            heartbeat_at=now,
        )
        job_id = self.store.write(
            lambda conn: conn.execute(insert(jobs_table).values(**values)).inserted_primary_key[0]
        )
        pid = self._start_worker(job_id)
        self.store.write(
            lambda conn: conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(pid=pid))
        )
        return self.get(job_id)

    def _start_worker(self, job_id: int) -> int:
        log = log_path(job_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PLAYGROUND_DB": self.store.url}
        with open(log, "ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "playground.cli", "jobs", "work", str(job_id)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: the browser and the app can go
            )
        return worker.pid

    def get(self, job_id: int) -> Job:
        job_id = row_id(job_id, "a job id")
        row = self.store.read(
            lambda conn: conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
        )
        if row is None:
            raise PlaygroundError(f"there is no job {job_id}; list them with `playground jobs`")
        return Job.from_row(row)

    def list(self, limit: int = 20) -> list[Job]:
        """The newest ``limit`` jobs (dead ones marked interrupted first)."""
        query = select(jobs_table).order_by(jobs_table.c.id.desc()).limit(row_limit(limit))
        self.reap()
        return [Job.from_row(row) for row in self.store.read(lambda conn: conn.execute(query).all())]

    def reap(self, now: float | None = None) -> int:
        """Mark queued or running jobs that stopped sending heartbeats as interrupted; how many."""
        now, host = timestamp(now), socket.gethostname()
        active = self.store.read(
            lambda conn: conn.execute(
                select(jobs_table.c.id, jobs_table.c.pid, jobs_table.c.host, jobs_table.c.heartbeat_at).where(
                    jobs_table.c.status.in_((QUEUED, RUNNING))
                )
            ).all()
        )
        dead = [
            row.id
            for row in active
            if now - row.heartbeat_at > STALE
            or (
                row.host == host
                and row.pid
                and now - row.heartbeat_at > HEARTBEAT * 3
                and not process_alive(row.pid)
            )
        ]
        for job_id in dead:
            self._end(
                job_id,
                "interrupted",
                "its worker stopped without finishing (the machine or the worker was stopped)",
            )
        return len(dead)

    def cancel(self, job_id: int) -> str:
        """Stop a queued or running job and its whole process tree; says what happened (cancelling a
        finished job changes nothing)."""
        job = self.get(job_id)
        if not job.active:
            return f"job {job_id} is already {job.status}; nothing to cancel"
        self.store.write(
            lambda conn: conn.execute(
                update(jobs_table).where(jobs_table.c.id == job_id).values(cancel_requested=1)
            )
        )
        if job.pid and job.host == socket.gethostname():
            stop_process_group(job.pid)
        self._end(job_id, "cancelled", "cancelled by the user")  # if the worker could not say so itself
        return f"job {job_id} cancelled"

    def _end(self, job_id: int, status: str, error: str = "", run_dir: str | None = None) -> bool:
        """Move an active job to a final ``status``; False when it had already ended."""
        values = dict(status=status, error=error, ended_at=time.time())
        if run_dir is not None:
            values["run_dir"] = run_dir
        active = and_(jobs_table.c.id == job_id, jobs_table.c.status.in_((QUEUED, RUNNING)))
        return bool(
            self.store.write(
                lambda conn: conn.execute(update(jobs_table).where(active).values(**values)).rowcount
            )
        )

    # ----------------------------------------------------------------- the worker

    def work(self, job_id: int) -> int:
        """Run one job to its end (``playground jobs work ID``; started by :meth:`submit`)."""
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        listener = JobListener()
        beat = threading.Thread(target=self._heartbeats, args=(job_id, listener), daemon=True)
        beat.start()
        try:
            if not self._wait_for_slot(job_id):
                return 0
            run_dir = self._run(job_id, listener)
        except SystemExit:
            cancelled = self.get(job_id).cancel_requested
            self._end(
                job_id,
                "cancelled" if cancelled else "interrupted",
                "cancelled by the user" if cancelled else "stopped",
            )
            return 143
        except KeyboardInterrupt:
            self._end(job_id, "interrupted", "stopped")
            return 130
        except Exception as err:
            from playground.core.experiment import one_line

            self._end(job_id, "failed", one_line(err), _run_dir_of(listener))
            if not isinstance(err, PlaygroundError):
                raise  # the traceback goes to the job's log
            return 2
        finally:
            listener.done = True
        self._end(job_id, "finished", "", run_dir)
        return 0

    def _wait_for_slot(self, job_id: int) -> bool:
        """Wait until this job may run and mark it running; False when it was cancelled meanwhile."""
        slots = job_slots()
        while True:
            job = self.get(job_id)
            if job.status != QUEUED:
                return False
            if self.store.write(self._claim, job_id, slots):
                return True
            time.sleep(1.0)

    @staticmethod
    def _claim(conn, job_id: int, slots: int) -> bool:
        """Mark ``job_id`` running if a slot is free and it is the oldest live queued job. On a server,
        claims run side by side: each first locks the active jobs' rows (in id order, so two claims
        cannot deadlock), so no other claim commits between the count and the update below and two
        workers never take the same last slot. SQLite's ``BEGIN IMMEDIATE`` already serialises them."""
        active = jobs_table.c.status.in_((QUEUED, RUNNING))
        conn.execute(select(jobs_table.c.id).where(active).order_by(jobs_table.c.id).with_for_update())
        fresh = jobs_table.c.heartbeat_at > time.time() - STALE
        running = conn.execute(
            select(func.count()).select_from(jobs_table).where(jobs_table.c.status == RUNNING, fresh)
        ).scalar()
        first = conn.execute(
            select(func.min(jobs_table.c.id)).where(
                jobs_table.c.status == QUEUED, or_(fresh, jobs_table.c.id == job_id)
            )
        ).scalar()
        if running >= slots or first != job_id:
            return False
        now = time.time()
        claimed = conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id, jobs_table.c.status == QUEUED)
            .values(status=RUNNING, started_at=now, heartbeat_at=now, pid=os.getpid())
        )
        return claimed.rowcount == 1

    def _run(self, job_id: int, listener: JobListener) -> str | None:
        """Run the job in this process; its run folder (a label step's model version folder, or None)."""
        from playground.cli import build_parser, run_parsed

        args = self.get(job_id).args
        if is_label_job(args):
            return self._run_label(build_parser().parse_args(args), args[1], listener)
        return str(run_parsed(build_parser().parse_args(["run", *args]), listener).run_dir)

    def _run_label(self, parsed, action: str, listener: JobListener) -> str | None:
        """A labelling round or retrain on this job's database, its progress counted for the heartbeat."""
        listener.run = CountProgress("scoring images" if action == "round" else "training models")
        if action == "round":
            from playground.label.rounds import run_round

            report = run_round(
                self.store, parsed.name, parsed.version, parsed.order, parsed.seed, listener.run
            )
            print(report.describe())  # into the job's log
            return None
        from playground.label.retrain import retrain

        version = retrain(self.store, parsed.name, parsed.policy, parsed.seed, listener.run)
        print(f"{parsed.name} v{version.number}: {version.detail}")
        return version.path

    def _heartbeats(self, job_id: int, listener: JobListener) -> None:
        while not listener.done:
            values: dict[str, Any] = {"heartbeat_at": time.time()}
            if listener.run is not None:
                values["progress"] = json.dumps(listener.run.snapshot())
                values["run_dir"] = _run_dir_of(listener)
            try:
                self.store.write(self._beat, job_id, values)
            except StoreError:
                pass  # a busy database: the next beat tries again
            time.sleep(HEARTBEAT)

    @staticmethod
    def _beat(conn, job_id: int, values: dict[str, Any]) -> None:
        active = and_(jobs_table.c.id == job_id, jobs_table.c.status.in_((QUEUED, RUNNING)))
        conn.execute(update(jobs_table).where(active).values(**values))


class JobListener:
    """The progress callback a worker hands the run template: the template sets ``run`` to the
    run's :class:`~playground.core.progress.RunProgress`, which the heartbeat reads."""

    def __init__(self) -> None:
        self.run = None
        self.done = False

    def __call__(self, event) -> None:
        pass


class CountProgress:
    """A ``progress(done, total)`` callback (a labelling round's images, a retrain's models) seen by the
    heartbeat as a run's snapshot: "STAGE · step k/N · percent · elapsed · time left"."""

    run_dir = None

    def __init__(self, stage: str) -> None:
        self.stage, self.done, self.total = stage, 0, 0
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = int(done), int(total)

    def snapshot(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        fraction = min(1.0, self.done / self.total) if self.total else None
        left = elapsed * (1 - fraction) / fraction if fraction else None
        return {
            "stage": self.stage,
            "step": self.done,
            "total": self.total,
            "index": 1,
            "stages": None,
            "fraction": None if fraction is None else round(fraction, 4),
            "elapsed": round(elapsed, 1),
            "left": None if left is None else round(left, 1),
        }


def is_label_job(args: list[str]) -> bool:
    """Whether a job's args are a labelling step (``label round|retrain NAME ...``), not a recipe run."""
    return bool(args) and args[0] == "label"


def _run_dir_of(listener: JobListener) -> str | None:
    folder = getattr(listener.run, "run_dir", None)
    return str(folder) if folder is not None else None


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(143)


def log_path(job_id: int) -> Path:
    """Where a job's worker writes its output (the traceback of an unexpected failure)."""
    return playground_home().resolve() / "jobs" / f"{job_id}.log"


def stop_process_group(leader: int, grace: float = GRACE) -> None:
    """SIGTERM to the process group ``leader`` leads, SIGKILL to whatever is left after ``grace`` s."""
    try:
        os.killpg(leader, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and process_alive(leader):
        time.sleep(0.1)
    try:
        os.killpg(leader, signal.SIGKILL)  # children that outlived their leader (data loaders, seeds)
    except (ProcessLookupError, PermissionError):
        pass
