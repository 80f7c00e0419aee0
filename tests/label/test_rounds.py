"""Tests for labelling rounds: the seed round without a model, scored rounds (routes that add up, no
auto-label before enough calibration labels, accurate auto-labels after), calibration picks, stale
model versions, one round at a time, and resuming a round whose process died."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time

import pytest
from sqlalchemy import func, insert, select

from playground.errors import ConflictError, DataFormatError
from playground.label.project import init_project, pool_meta
from playground.label.retrain import retrain
from playground.label.rounds import round_history, run_round
from playground.store_schema import escalations, rounds, routes
from tests.label.conftest import CLASSES, label_queue, tiny, true_label


def queued(store, project) -> list[tuple[int, str]]:
    """``(sample id, reason)`` of every escalation in the project's queue."""
    query = select(escalations.c.sample_id, escalations.c.reason).where(
        escalations.c.queue_id == project.queue_id
    )
    return [tuple(row) for row in store.read(lambda conn: conn.execute(query).all())]


def round_routes(store, number: int) -> dict[int, object]:
    """``sample id -> routes row`` of round ``number``."""
    query = select(routes).join(rounds, rounds.c.id == routes.c.round_id).where(rounds.c.number == number)
    return {row.sample_id: row for row in store.read(lambda conn: conn.execute(query).all())}


def round_count(store) -> int:
    return store.read(lambda conn: conn.execute(select(func.count()).select_from(rounds)).scalar())


def add_running_round(
    store, project, number: int, model_version: int, pid: int, host: str | None = None
) -> int:
    now = time.time()
    row = dict(
        project_id=project.id,
        number=number,
        model_version=model_version,
        status="running",
        detail="{}",
        started_at=now,
        heartbeat_at=now,
        pid=pid,
        host=host or socket.gethostname(),
    )
    return store.write(lambda conn: conn.execute(insert(rounds).values(**row)).inserted_primary_key[0])


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_the_first_round_queues_a_diverse_seed_set_and_calibration_picks(store, project):
    report = run_round(store, "shapes")
    assert (report.number, report.model_version, report.resumed) == (1, 0, False)
    assert report.counts == {"pool": 90, "labelled": 0, "seed": 10, "calibration": 4}  # 4 = 20 x 0.2
    meta = pool_meta(store, project)
    reasons = queued(store, project)
    seeds = [sid for sid, reason in reasons if reason == "seed"]
    calibration = [sid for sid, reason in reasons if reason == "calibration"]
    assert len(seeds) == 10 and len(calibration) == 4 and len(reasons) == 14
    assert not any(meta[sid]["held_out"] for sid in seeds)  # held-out images are never trained on
    assert all(meta[sid]["held_out"] for sid in calibration)
    assert len({true_label(meta[sid]["path"]) for sid in seeds}) == 3  # diverse: every colour is there
    recorded = round_routes(store, 1)
    assert {sid: row.route for sid, row in recorded.items()} == {sid: reason for sid, reason in reasons}
    assert round_history(store, project)[0]["status"] == "complete"


def test_no_second_seed_round_while_seed_items_wait(store, project):
    run_round(store, "shapes")
    with pytest.raises(ConflictError, match="14 seed items still wait"):
        run_round(store, "shapes")
    assert round_count(store) == 1
    label_queue(store, "shapes")
    assert run_round(store, "shapes").number == 2  # no model yet, nothing waiting: another seed set


def test_a_scored_round_routes_every_candidate_with_the_newest_version(store, project):
    run_round(store, "shapes")
    label_queue(store, "shapes")
    version = retrain(store, "shapes")
    assert version.number == 1 and version.detail["policy"] == "scratch"
    assert (version.detail["labels"], version.detail["held_out"]) == (10, 4)
    assert 0.0 <= version.detail["accuracy"] <= 1.0
    report = run_round(store, "shapes")
    counts = report.counts
    assert (report.number, report.model_version) == (2, 1)
    assert counts["labelled"] == 14
    routed = sum(counts[key] for key in ("auto", "escalate", "ood", "defer", "calibration"))
    assert routed == counts["pool"] - counts["labelled"] == 76
    assert counts["auto"] == 0 and math.isinf(report.threshold["confidence"])  # 4 < min_calibration
    assert counts["escalate"] + counts["calibration"] == 20  # the budget
    recorded = round_routes(store, 2)
    assert len(recorded) == 76 and {row.route for row in recorded.values()} <= {
        "auto",
        "escalate",
        "ood",
        "defer",
        "calibration",
    }
    meta = pool_meta(store, project)
    uncertain = [sid for sid, reason in queued(store, project) if reason == "uncertain"]
    assert len(uncertain) == counts["escalate"]
    assert not any(meta[sid]["held_out"] for sid in uncertain)  # held-out only as random calibration picks
    assert {recorded[sid].route for sid in uncertain} == {"escalate"}
    scored = [row for row in recorded.values() if row.route != "calibration"]
    assert all(0 <= row.predicted < 3 and 1 / 3 <= row.confidence <= 1 for row in scored)


def test_random_order_and_an_unknown_order(store, project):
    run_round(store, "shapes")
    label_queue(store, "shapes")
    retrain(store, "shapes")
    with pytest.raises(DataFormatError, match="unknown order 'sideways'"):
        run_round(store, "shapes", order="sideways")
    report = run_round(store, "shapes", order="random", seed=3)
    assert report.counts["escalate"] + report.counts["calibration"] == 20
    assert round_history(store, project)[-1]["order"] == "random"


def test_auto_labels_wait_for_enough_calibration_labels_then_are_accurate(store, image_folder):
    project = init_project(
        store,
        "shapes",
        image_folder,
        CLASSES,
        tiny(held_out=0.5, alpha=0.3, budget=30, seed_size=20, min_calibration=20),
    ).project
    run_round(store, "shapes")
    label_queue(store, "shapes")
    retrain(store, "shapes")
    second = run_round(store, "shapes")
    assert second.counts["auto"] == 0 and math.isinf(second.threshold["confidence"])  # 15 < 20 held out
    label_queue(store, "shapes")  # 15 more held-out labels: 30
    third = run_round(store, "shapes")  # the same model version, better calibrated
    assert third.model_version == 1 and third.threshold["calibration_error"] <= 0.3
    auto = {sid: row.predicted for sid, row in round_routes(store, 3).items() if row.route == "auto"}
    meta = pool_meta(store, project)
    wrong = sum(true_label(meta[sid]["path"]) != label for sid, label in auto.items())
    assert third.counts["auto"] == len(auto) >= 5
    assert wrong / len(auto) <= 0.15


def test_a_stale_model_version_is_refused_and_writes_nothing(store, project):
    with pytest.raises(ConflictError, match="there is no model version yet"):
        run_round(store, "shapes", version=1)
    run_round(store, "shapes")
    label_queue(store, "shapes")
    retrain(store, "shapes")
    retrain(store, "shapes", policy="scratch")  # v2
    before = (round_count(store), len(queued(store, project)))
    for stale in (1, 3):
        with pytest.raises(
            ConflictError, match=f"model version {stale} of 'shapes' is stale: the newest is v2"
        ):
            run_round(store, "shapes", version=stale)
    assert (round_count(store), len(queued(store, project))) == before
    assert run_round(store, "shapes", version=2).model_version == 2


def test_a_second_round_while_one_runs_is_refused(store, project):
    add_running_round(store, project, number=1, model_version=0, pid=os.getpid())
    with pytest.raises(ConflictError, match=f"round 1 of 'shapes' is already running \\(pid {os.getpid()}"):
        run_round(store, "shapes")
    assert round_count(store) == 1 and queued(store, project) == []
    assert round_history(store, project)[0]["status"] == "running"


def test_a_round_on_another_machine_counts_as_alive_until_its_heartbeat_stops(store, project):
    add_running_round(store, project, number=1, model_version=0, pid=1, host="elsewhere")
    with pytest.raises(ConflictError, match="already running \\(pid 1 on elsewhere\\)"):
        run_round(store, "shapes")
    store.write(lambda conn: conn.execute(rounds.update().values(heartbeat_at=time.time() - 600)))
    assert round_history(store, project)[0]["status"] == "interrupted"
    report = run_round(store, "shapes")
    assert (report.number, report.resumed, report.counts["seed"]) == (1, True, 10)


def test_a_round_whose_process_died_is_resumed_keeping_what_it_scored(store, project):
    run_round(store, "shapes")
    label_queue(store, "shapes")
    retrain(store, "shapes")
    round_id = add_running_round(store, project, number=2, model_version=1, pid=dead_pid())
    assert round_history(store, project)[-1]["status"] == "interrupted"
    meta = pool_meta(store, project)
    kept = next(
        sid for sid in sorted(meta) if not meta[sid]["held_out"] and sid not in round_routes(store, 1)
    )
    row = dict(round_id=round_id, sample_id=kept, route="scored", predicted=2, confidence=0.3456)
    store.write(lambda conn: conn.execute(insert(routes).values(uncertainty=-5.0, ood_score=0.0, **row)))
    report = run_round(store, "shapes")
    assert (report.number, report.resumed, report.model_version) == (2, True, 1)
    assert round_count(store) == 2
    recorded = round_routes(store, 2)
    assert (
        recorded[kept].confidence == pytest.approx(0.3456) and recorded[kept].predicted == 2
    )  # not rescored
    assert recorded[kept].route == "defer"  # its kept uncertainty (-5) is the lowest of all
    assert len(recorded) == 76 and round_history(store, project)[-1]["status"] == "complete"


def test_a_dead_round_of_a_stale_version_is_closed_and_a_new_one_starts(store, project):
    run_round(store, "shapes")
    label_queue(store, "shapes")
    add_running_round(store, project, number=2, model_version=0, pid=dead_pid())
    retrain(store, "shapes")
    report = run_round(store, "shapes")
    assert (report.number, report.resumed, report.model_version) == (3, False, 1)
    history = round_history(store, project)
    assert [entry["status"] for entry in history] == ["complete", "failed", "complete"]
    assert "stale" in history[1]["error"]


def test_a_failed_round_is_recorded_with_its_error(store, project, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("playground.label.rounds._seed_round", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_round(store, "shapes")
    history = round_history(store, project)
    assert history[0]["status"] == "failed" and history[0]["error"] == "RuntimeError: disk on fire"
    monkeypatch.undo()
    assert run_round(store, "shapes").number == 2  # a failed round does not block the next
