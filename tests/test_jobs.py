"""Background jobs: runs that outlive the page that started them, queue for a slot, and can be cancelled."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, insert, select, update

from playground.core.status import process_alive, read_status
from playground.jobs import STALE, Jobs, job_slots, log_path
from playground.store import Store
from playground.store_schema import jobs as jobs_table
from tests.apps.conftest import TINY_DIGITS
from tests.conftest import REPO

CLASSIFY = str(REPO / "recipes" / "classify_fashion.toml")
ACTIVE = str(REPO / "recipes" / "active_fashion.toml")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_THREADS", "1")


def digits_args(*extra: str) -> list[str]:
    args = [CLASSIFY, "--preset", "quick"]
    for override in TINY_DIGITS + ["save_models=false", *extra]:
        args += ["--set", override]
    return args


def wait(jobs: Jobs, job_id: int, until, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while not until(job := jobs.get(job_id)):
        assert time.monotonic() < deadline, job.describe()
        time.sleep(0.2)
    return job


def test_a_job_runs_in_its_own_process_group_and_records_its_run(playground_home):
    jobs = Jobs()
    job = jobs.submit(digits_args(), "digits")
    assert job.status == "queued" and job.pid and os.getpgid(job.pid) == job.pid  # not the caller's group
    assert os.getpgid(job.pid) != os.getpgid(0)
    done = wait(jobs, job.id, lambda j: not j.active)
    assert done.status == "finished" and done.error == "" and done.started_at >= done.created_at
    run_dir = Path(done.run_dir)
    assert run_dir.parent == playground_home and read_status(run_dir).state == "complete"
    assert done.progress["elapsed"] > 0 and "finished after" in done.describe()
    assert done.command.startswith("playground run ") and "dataset=digits" in done.command


def test_cancel_stops_the_whole_tree_and_cancelling_twice_changes_nothing(playground_home):
    jobs = Jobs()
    job = jobs.submit([*digits_args("epochs=500"), "--seeds", "0,1", "--jobs", "2"], "two seeds at once")
    running = wait(jobs, job.id, lambda j: j.status == "running" and j.run_dir)
    deadline = time.monotonic() + 180  # two processes importing torch on 2 busy cores
    while len(live_members(running.pid)) < 3:  # the worker and its two seed processes
        assert time.monotonic() < deadline, live_members(running.pid)
        time.sleep(0.2)
    assert jobs.cancel(job.id) == f"job {job.id} cancelled"
    assert jobs.cancel(job.id) == f"job {job.id} is already cancelled; nothing to cancel"
    stopped = jobs.get(job.id)
    assert stopped.status == "cancelled" and stopped.ended_at is not None
    assert not process_alive(running.pid)
    assert live_members(running.pid) == []  # nothing of its process group is left (zombies aside)
    status = wait_for_status(Path(running.run_dir))
    assert status.state == "interrupted" and status.error == "cancelled"


def live_members(group: int) -> list[int]:
    """The processes of process group ``group`` that still run (not zombies)."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def wait_for_status(run_dir: Path, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while (status := read_status(run_dir)).state == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    return status


def test_one_slot_queues_the_second_job_and_a_queued_job_can_be_cancelled(store_url, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_DB", store_url)  # the workers' database: SQLite, and a server
    jobs = Jobs()
    first = jobs.submit(digits_args("epochs=500"), "first")
    second = jobs.submit(digits_args(), "second")
    third = jobs.submit(digits_args(), "third")
    wait(jobs, first.id, lambda j: j.status == "running")
    time.sleep(2.5)  # the others had time to claim a slot and must not have
    assert [jobs.get(j.id).status for j in (second, third)] == ["queued", "queued"]
    assert "waiting for a free slot" in jobs.get(second.id).describe()
    assert jobs.cancel(second.id) == f"job {second.id} cancelled"
    assert jobs.cancel(first.id) == f"job {first.id} cancelled"
    done = wait(jobs, third.id, lambda j: not j.active)
    assert done.status == "finished" and jobs.get(second.id).run_dir is None  # it never ran


def test_a_dead_worker_is_never_shown_as_running_for_ever(playground_home):
    jobs = Jobs()
    job = jobs.submit(digits_args("epochs=500"), "killed")
    wait(jobs, job.id, lambda j: j.status == "running")
    os.killpg(job.pid, signal.SIGKILL)  # a power cut, as far as the job can tell
    found = wait(jobs, job.id, lambda j: jobs.reap() >= 0 and not j.active, timeout=30)
    assert found.status == "interrupted" and "stopped without finishing" in found.error


def test_a_job_from_another_machine_that_stopped_beating_is_interrupted(playground_home):
    """The app restarted on another host, or the machine rebooted: only the heartbeat is left to judge."""
    jobs = Jobs()
    job = jobs.submit(digits_args("epochs=500"), "elsewhere")
    wait(jobs, job.id, lambda j: j.status == "running")
    os.killpg(job.pid, signal.SIGKILL)
    old = time.time() - STALE - 5
    jobs.store.write(
        lambda conn: conn.execute(
            update(jobs_table).where(jobs_table.c.id == job.id).values(host="another-host", heartbeat_at=old)
        )
    )
    assert [j.status for j in jobs.list() if j.id == job.id] == ["interrupted"]


def test_a_failed_job_keeps_its_one_line_error_and_a_log(playground_home):
    jobs = Jobs()
    job = jobs.submit([CLASSIFY, "--preset", "quick", "--set", "dataset=folder"], "no data")
    done = wait(jobs, job.id, lambda j: not j.active)
    assert done.status == "failed" and "data_root" in done.error and "\n" not in done.error
    assert log_path(job.id).is_file()


def queued_job(store: Store, title: str) -> int:
    """A queued job's row, as ``Jobs.submit`` writes it, without starting its worker."""
    now = time.time()
    values = dict(title=title, args="[]", status="queued", host="here", error="", progress="{}")
    row = dict(values, cancel_requested=0, created_at=now, heartbeat_at=now)
    return store.write(lambda conn: conn.execute(insert(jobs_table).values(**row)).inserted_primary_key[0])


def test_two_workers_never_both_take_the_last_free_slot(store_url):
    """One slot, jobs 1 and 2 queued. Worker 2's claim counts the running jobs (none), then worker 1's
    claim commits, then worker 2 looks for the oldest queued job: unless the claims are serialised
    (SQLite's write lock; on a server, the rows locked first) worker 2 would find itself first and run
    too. With the lock, worker 1 waits for worker 2's claim, which finds job 1 ahead of it."""
    with Store(store_url) as store:
        first, second = queued_job(store, "first"), queued_job(store, "second")
        counted, first_done, claims = threading.Event(), threading.Event(), {}

        def pause_after_counting(conn, cursor, statement, *args):
            if "count(" in statement.lower():
                counted.set()
                first_done.wait(1.0)  # without a lock, worker 1's claim commits meanwhile

        def second_claim(conn):
            event.listen(conn, "after_cursor_execute", pause_after_counting)
            return Jobs._claim(conn, second, 1)

        worker = threading.Thread(target=lambda: claims.update(second=store.write(second_claim)))
        worker.start()
        assert counted.wait(30)
        claims["first"] = store.write(Jobs._claim, first, 1)
        first_done.set()
        worker.join(timeout=60)
        running = store.read(
            lambda conn: conn.execute(select(func.count()).where(jobs_table.c.status == "running")).scalar()
        )
    assert claims == {"first": True, "second": False} and running == 1


def test_bad_submissions_and_settings(playground_home, monkeypatch):
    jobs = Jobs()
    with pytest.raises(Exception, match="arguments"):
        jobs.submit([], "nothing")
    with pytest.raises(Exception, match="no job 99"):
        jobs.cancel(99)
    monkeypatch.setenv("PLAYGROUND_JOB_SLOTS", "zero")
    with pytest.raises(Exception, match="PLAYGROUND_JOB_SLOTS"):
        job_slots()
    monkeypatch.setenv("PLAYGROUND_JOB_SLOTS", "3")
    assert job_slots() == 3


@pytest.mark.slow
def test_two_jobs_that_fill_the_same_queue_at_once_store_each_item_once(playground_home, monkeypatch):
    from sqlalchemy import select

    from playground.store import Store
    from playground.store_schema import queues, samples

    monkeypatch.setenv("PLAYGROUND_JOB_SLOTS", "2")
    tiny = [
        "dataset=digits",
        "data.pool_limit=0",
        "data.test_limit=200",
        "data.calibration_size=200",
        'data.ood_sets=["shapes"]',
        "data.ood_limit=100",
        "loop.initial=20",
        "loop.query=20",
        "loop.budget=60",
        "loop.pool_subset=300",
        "loop.mc_samples=4",
        "train.epochs=5",
        "train.min_steps=20",
        "train.max_steps=40",
        "escalation.annotator_budget=20",
        'methods=["random", "bald"]',
        "policy_strategy=bald",
        "queue=shared",
    ]
    args = [ACTIVE, "--preset", "quick", *[a for o in tiny for a in ("--set", o)]]
    jobs = Jobs()
    both = [jobs.submit(args, f"active {i}") for i in range(2)]
    wait(jobs, both[0].id, lambda j: j.status == "running")
    assert wait(jobs, both[1].id, lambda j: j.status != "queued").status == "running"  # two slots
    runs = [Path(wait(jobs, job.id, lambda j: not j.active, timeout=600).run_dir).name for job in both]
    assert [jobs.get(job.id).status for job in both] == ["finished", "finished"]
    store = Store()
    ids = store.read(
        lambda conn: list(
            conn.execute(
                select(samples.c.external_id).join(queues).where(queues.c.name == "shared")
            ).scalars()
        )
    )
    per_run = [sum(i.startswith(f"{run}/") for i in ids) for run in runs]
    assert per_run[0] == per_run[1] > 0 and sum(per_run) == len(ids) == store.progress("shared")["total"]


def test_the_jobs_command_starts_lists_and_cancels(capsys, playground_home):
    from playground.cli import main

    assert main(["jobs"]) == 0 and "no jobs yet" in capsys.readouterr().out
    assert main(["jobs", "start", *digits_args("epochs=500")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("job 1 queued: playground run ") and str(log_path(1)) in out
    wait(Jobs(), 1, lambda j: j.status == "running")
    assert main(["jobs"]) == 0 and "running" in capsys.readouterr().out.splitlines()[0]
    assert main(["jobs", "cancel", "1"]) == 0 and capsys.readouterr().out.strip() == "job 1 cancelled"
    with pytest.raises(SystemExit):  # bad options fail as argparse fails, before a job exists
        main(["jobs", "start", CLASSIFY, "--bogus"])
    assert [j.id for j in Jobs().list()] == [1]


def test_a_job_outlives_the_process_that_started_it(playground_home):
    """The app that queued a job is restarted (here: the `playground jobs start` process exits at once and
    is killed with its whole process group); the job runs on to the end."""
    import subprocess
    import sys

    starter = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "jobs", "start", *digits_args("epochs=3")],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.wait(timeout=120) == 0 and "job 1 queued" in starter.stdout.read()
    try:
        os.killpg(starter.pid, signal.SIGKILL)  # whatever the starter left in its group goes too
    except ProcessLookupError:
        pass
    done = wait(Jobs(), 1, lambda j: not j.active)
    assert done.status == "finished" and read_status(done.run_dir).state == "complete"
