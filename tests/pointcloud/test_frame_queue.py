"""Uncertain frames first: a folder's frames in the store's queue by uncertainty, leased one
annotator at a time, closed by a commit, and never duplicated by a replayed, concurrent or
repeated scoring."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from playground.errors import ConflictError
from playground.pointcloud.cuboid import Cuboid
from playground.pointcloud.frame_queue import (
    enqueue_frames,
    is_frame_queue,
    mark_committed,
    next_frame,
    queue_name,
    queued_frames,
)
from playground.pointcloud.prelabels import FrameUncertainty
from playground.store import Store

CAR = Cuboid((10.0, 0.0, 0.8), (4.2, 1.8, 1.6), 0.0, "car")
WALKER = Cuboid((6.0, 4.0, 0.9), (0.7, 0.6, 1.7), 0.0, "pedestrian")


def found(score: float, by_class=(1, 0)) -> FrameUncertainty:
    return FrameUncertainty(
        score, score, score, None, sum(by_class), 1, 0, by_class, np.zeros((4, 4), np.uint8)
    )


SCORES = {"000000": found(0.2), "000001": found(0.9), "000002": found(0.5, (0, 2))}


@pytest.fixture
def store(store_url):
    with Store(store_url) as opened:
        yield opened


def test_the_queue_hands_out_frames_most_uncertain_first_and_a_committed_one_never_again(store):
    assert enqueue_frames(store, "drive", SCORES) == (3, 0)
    assert [(f.frame, f.status) for f in queued_frames(store, "drive")] == [
        ("000001", "open"),
        ("000002", "open"),
        ("000000", "open"),
    ]
    assert next_frame(store, "drive", "alice") == "000001"
    assert next_frame(store, "drive", "alice") == "000001"  # she holds it until she commits
    assert next_frame(store, "drive", "bob") == "000002"  # two annotators, two frames
    assert mark_committed(store, "drive", "000001", [CAR, CAR, WALKER], "alice", "req-1")
    assert next_frame(store, "drive", "alice") == "000000"
    assert next_frame(store, "drive", "carol") is None  # done, or held by bob and alice
    statuses = {f.frame: (f.status, f.leased_by) for f in queued_frames(store, "drive")}
    assert statuses == {"000001": ("done", None), "000002": ("leased", "bob"), "000000": ("leased", "alice")}
    labels = store.labels(queue_name("drive"))
    assert [(r["external_id"], r["class_name"], r["annotator"]) for r in labels] == [
        ("000001", "car", "alice")
    ]


def test_a_commit_closes_the_item_once_with_its_class_or_ood_and_respects_another_lease(store):
    enqueue_frames(store, "drive", SCORES)
    assert mark_committed(store, "drive", "000000", [], "alice", "r0")  # nothing of the two classes
    assert mark_committed(store, "drive", "000002", [WALKER, CAR.with_(label="pole")], "alice", "r2")
    assert not mark_committed(store, "drive", "000002", [WALKER], "alice", "r2")  # replayed: done already
    assert not mark_committed(store, "drive", "999999", [CAR], "alice", "r9")  # not queued
    assert not mark_committed(store, "other", "000000", [CAR], "alice", "r9")  # no queue at all
    assert {r["external_id"]: r["action"] for r in store.labels(queue_name("drive"))} == {
        "000000": "ood",
        "000002": "correct",
    }
    assert next_frame(store, "drive", "bob") == "000001"
    with pytest.raises(ConflictError, match="bob"):
        mark_committed(store, "drive", "000001", [CAR], "alice", "r1")


def test_a_frame_whose_lease_ran_out_is_open_again_for_the_next_annotator(store):
    enqueue_frames(store, "drive", SCORES)
    assert next_frame(store, "drive", "bob", lease_seconds=0.0) == "000001"
    time.sleep(0.01)
    assert [(f.frame, f.status, f.leased_by) for f in queued_frames(store, "drive")][0] == (
        "000001",
        "open",
        None,
    )
    assert next_frame(store, "drive", "alice") == "000001"


def test_rescoring_moves_open_frames_adds_new_ones_and_keeps_committed_ones_done(store):
    enqueue_frames(store, "drive", SCORES)
    mark_committed(store, "drive", "000001", [CAR], "alice", "req-1")
    rescored = {"000000": found(0.95), "000001": found(0.1), "000002": found(0.5), "000003": found(0.7)}
    assert enqueue_frames(store, "drive", rescored) == (1, 1)  # 000003 is new; only 000000 moved
    frames = queued_frames(store, "drive")
    assert [(f.frame, f.status) for f in frames] == [
        ("000000", "open"),
        ("000001", "done"),  # keeps its priority and its decision
        ("000003", "open"),
        ("000002", "open"),
    ]
    assert [f.uncertainty for f in frames] == [0.95, 0.9, 0.7, 0.5]
    assert enqueue_frames(store, "drive", rescored) == (0, 0)  # replayed: nothing changes
    assert (
        len(store.queue_items(queue_name("drive"))) == 4 and store.progress(queue_name("drive"))["done"] == 1
    )


def test_concurrent_scorings_of_one_folder_keep_one_item_per_frame(store_url):
    many = {f"{k:06d}": found(k / 40) for k in range(40)}
    errors = []

    def score_and_enqueue():
        try:
            with Store(store_url) as mine:
                enqueue_frames(mine, "drive", many)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=score_and_enqueue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Store(store_url) as store:
        items = store.queue_items(queue_name("drive"))
    assert sorted(r["external_id"] for r in items) == sorted(many)
    assert [r["external_id"] for r in items][:3] == ["000039", "000038", "000037"]


def test_frame_queues_are_told_apart_from_2d_queues():
    assert queue_name("drive") == "pointcloud/drive" and is_frame_queue("pointcloud/drive")
    assert not is_frame_queue("fashion")
