"""Cuboid annotations in the project database: commit, idempotent replay, conflicts, undo, audit."""

from __future__ import annotations

import sqlite3

import pytest

from playground.errors import ConflictError, StoreError
from playground.pointcloud.annotations import CuboidAnnotations
from playground.pointcloud.cuboid import Cuboid
from playground.store import Store

CAR = Cuboid((10.0, 2.0, 0.8), (4.2, 1.8, 1.6), 0.3, "car", 0.9)
WALKER = Cuboid((6.0, -3.0, 0.85), (0.75, 0.6, 1.7), -1.2, "pedestrian")


@pytest.fixture
def db(tmp_path):
    annotations = CuboidAnnotations(url=f"sqlite:///{tmp_path / 'store.db'}")
    yield annotations
    annotations.close()


def test_commit_persists_across_connections(db, tmp_path):
    first = db.commit("kitti", "000001", [CAR], "alice", "r1", now=100.0)
    assert first.id == 1 and first.cuboids == (CAR,) and first.annotator == "alice"
    db.commit("kitti", "000001", [CAR, WALKER], "alice", "r2", base_revision=first.id, now=101.0)
    db.close()
    reopened = CuboidAnnotations(url=f"sqlite:///{tmp_path / 'store.db'}")
    assert reopened.current("kitti", "000001") == [CAR, WALKER]
    assert reopened.current("kitti", "000001")[0].score == 0.9
    assert reopened.frames("kitti") == ["000001"] and reopened.datasets() == ["kitti"]
    assert reopened.current("kitti", "000002") == [] and reopened.head("kitti", "000002") is None
    with sqlite3.connect(tmp_path / "store.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT count(*) FROM pc_revisions").fetchone()[0] == 2
    reopened.close()


def test_a_replayed_request_changes_nothing(db):
    first = db.commit("kitti", "000001", [CAR], "alice", "same-id")
    again = db.commit("kitti", "000001", [CAR], "alice", "same-id")
    assert again == first and len(db.history("kitti", "000001")) == 1
    with pytest.raises(ConflictError, match="already used"):
        db.commit("kitti", "000001", [WALKER], "alice", "same-id")


def test_a_stale_base_revision_is_a_conflict(db):
    start = db.head("kitti", "7")
    assert start is None
    db.commit("kitti", "7", [CAR], "alice", "a1", base_revision=0)
    with pytest.raises(ConflictError, match="changed since revision 0"):
        db.commit("kitti", "7", [WALKER], "bob", "b1", base_revision=0)
    assert db.current("kitti", "7") == [CAR]


def test_undo_restores_the_previous_revision_and_only_its_author_may(db):
    db.commit("kitti", "1", [CAR], "alice", "a1", now=1.0)
    db.commit("kitti", "1", [CAR, WALKER], "alice", "a2", now=2.0)
    db.commit("kitti", "1", [], "bob", "b1", now=3.0)
    with pytest.raises(ConflictError, match="bob's"):
        db.undo_last("kitti", "1", "alice")
    undone = db.undo_last("kitti", "1", "bob", now=4.0)
    assert undone.undone and undone.undone_at == 4.0 and undone.request_id == "b1"
    assert db.current("kitti", "1") == [CAR, WALKER]
    db.undo_last("kitti", "1", "alice", now=5.0)
    assert db.current("kitti", "1") == [CAR]
    db.undo_last("kitti", "1", "alice", now=6.0)
    assert db.current("kitti", "1") == [] and db.undo_last("kitti", "1", "alice") is None
    history = db.history("kitti", "1")
    assert [r.request_id for r in history] == ["b1", "a2", "a1"] and all(r.undone for r in history)


def test_every_change_is_audited(db):
    db.commit("kitti", "1", [CAR], "alice", "a1", now=10.0)
    db.commit("kitti", "1", [CAR, WALKER], "alice", "a2", now=11.0)
    db.undo_last("kitti", "1", "alice", now=12.0)
    trail = [row for row in db.store.audit_trail() if row["entity"] == "pointcloud_frame"]
    assert [row["action"] for row in trail] == ["cuboids_undo", "cuboids_commit", "cuboids_commit"]
    undo, second, first = trail
    assert undo["actor"] == "alice" and undo["at"] == 12.0
    assert undo["detail"]["revision"] == second["detail"]["revision"] and undo["detail"]["boxes_now"] == 1
    assert second["detail"]["labels"] == {"car": 1, "pedestrian": 1} and second["detail"]["boxes_before"] == 1
    assert first["detail"]["before"] == 0 and first["detail"]["frame"] == "1"


def test_shares_the_store_with_the_annotation_queue(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'shared.db'}")
    boxes = CuboidAnnotations(store)
    boxes.commit("lidar", "f", [CAR], "carol", "c1")
    assert "carol" in store.annotators()  # one annotator registry for both
    assert boxes.export("lidar") == {"f": [CAR]}
    with pytest.raises(StoreError, match="annotator name"):
        boxes.commit("lidar", "f", [CAR], " ", "c2")
    with pytest.raises(StoreError, match="no frame"):
        boxes.history("lidar", "missing")
    store.close()


def test_hostile_input_is_refused_before_it_reaches_the_database(store_url):
    """On SQLite and PostgreSQL (which refuses a NUL byte even in a query): NaN times, boxes that are
    not a list, limits and base revisions that are not whole numbers, names no frame can have."""
    from playground.errors import DataFormatError

    db = CuboidAnnotations(url=store_url)
    db.commit("kitti", "1", [CAR], "alice", "a1", now=1.0)
    for bad_time in (float("nan"), float("inf"), 1e30, "5"):
        with pytest.raises(StoreError, match="a time must be a finite number of seconds"):
            db.commit("kitti", "1", [WALKER], "alice", "a2", now=bad_time)
    for boxes in (None, "car", {"center": [0, 0, 0]}):
        with pytest.raises(DataFormatError, match="a commit takes a list of cuboids"):
            db.commit("kitti", "1", boxes, "alice", "a3")
    with pytest.raises(DataFormatError, match="not a cuboid") as refused:
        db.commit("kitti", "1", [{"center": "x" * 100_000, "size": [1, 1, 1]}], "alice", "a4")
    assert len(str(refused.value)) < 400
    for bad in (float("nan"), -1, "1", 10**30):
        with pytest.raises(StoreError, match="base revision must be a whole number"):
            db.commit("kitti", "1", [WALKER], "alice", "a5", base_revision=bad)
        with pytest.raises(StoreError, match="the limit must be a whole number"):
            db.history("kitti", "1", limit=bad)
    with pytest.raises(DataFormatError, match="meta must be a dict"):
        db.add_frame("kitti", "2", meta=[1, 2])
    with pytest.raises(StoreError, match="control character"):
        db.commit("kitti\x00", "1", [WALKER], "alice", "a6")
    assert db.head("kitti\x00", "1") is None and db.frames("kitti\x00") == []
    assert db.undo_last("kitti", "1\x00", "alice") is None
    with pytest.raises(StoreError, match="no frame"):
        db.history("kitti", "1\x00")
    assert [r.request_id for r in db.history("kitti", "1")] == ["a1"]  # nothing else got in
    db.close()
