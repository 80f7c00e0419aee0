"""The annotation store: the queue, leases, idempotent decisions, undo, export, and that it holds up
with eight annotator processes at once and when a process is killed mid-write; on SQLite and on
PostgreSQL (``store_url`` in tests/conftest.py)."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
import signal
import threading
import time
import traceback

import numpy as np
import pytest
from sqlalchemy import func, select

from playground.errors import ConflictError, DataFormatError, StoreError
from playground.store import QueueItem, Store, default_url
from playground.store_schema import audit, decisions, escalations, samples, schema_lock

CLASSES = ["cat", "dog", "bird"]


def make_items(n: int, uncertainties: list[float] | None = None, prefix: str = "img") -> list[QueueItem]:
    """``n`` items; item i predicts class ``i % 3`` and has uncertainty ``uncertainties[i]``
    (default i / n).
    """
    rng = np.random.default_rng(n)
    items = []
    for i in range(n):
        probs = [0.2, 0.2, 0.2]
        probs[i % 3] = 0.6
        items.append(
            QueueItem(
                f"{prefix}-{i}",
                rng.integers(0, 256, (8, 8), dtype=np.uint8),
                probs,
                uncertainty=uncertainties[i] if uncertainties else i / n,
                class_names=CLASSES,
                meta={"true_label": (i + 1) % 3},
            )
        )
    return items


@pytest.fixture
def store(store_url):
    """An empty store on SQLite and on PostgreSQL (``store_url`` in tests/conftest.py)."""
    with Store(store_url) as opened:
        yield opened


def count(store: Store, table, *where) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


# --------------------------------------------------------------------- enqueue


def test_enqueue_is_idempotent_per_queue_and_keeps_images_and_metadata(store):
    items = make_items(5)
    assert store.enqueue("q", items, model="ensemble") == 5
    assert store.enqueue("q", items) == 0
    assert store.enqueue("q", make_items(7)[3:]) == 2  # img-3, img-4 are there already
    assert store.enqueue("other", items[:2]) == 2  # the same ids in another queue are other samples
    assert count(store, samples) == 9 and count(store, escalations) == 9
    assert store.queues() == ["other", "q"] and store.class_names("q") == CLASSES
    assert store.progress("q") == {
        "total": 7,
        "open": 7,
        "leased": 0,
        "done": 0,
        "by_reason": {"uncertain": 7},
        "by_action": {},
    }
    item = store.lease_next("q", "alice")
    assert item.external_id == "img-6"  # the most uncertain of the 7
    first = store.lease_next("q", "bob")
    original = items[4]
    assert first.external_id == "img-4" and np.array_equal(first.image, original.image)
    assert first.image.dtype == np.uint8 and first.meta == {"true_label": 2}
    assert first.predicted == 1 and first.predicted_name == "dog"
    assert first.top_k(2) == [(1, "dog", 0.6), (0, "cat", 0.2)]


def test_enqueue_keeps_float_and_channel_first_images(store):
    image = np.linspace(0, 1, 2 * 3 * 4, dtype=np.float64).reshape(3, 2, 4)[:1]  # (1, H, W)
    rgb = np.random.default_rng(0).random((3, 5, 6))  # (C, H, W)
    store.enqueue("q", [QueueItem("gray", image, [0.5, 0.5], 0.9), QueueItem("rgb", rgb, [0.3, 0.7], 0.1)])
    gray, colour = store.lease_next("q", "a"), store.lease_next("q", "b")
    assert gray.image.shape == (2, 4) and gray.image.dtype == np.float32
    assert np.allclose(gray.image, image[0])
    assert colour.image.shape == (5, 6, 3) and np.allclose(colour.image, rgb.transpose(1, 2, 0))
    assert store.class_names("q") == ["0", "1"]  # no class names given: the indices


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(probs=[0.5, 0.5]), "2 class probabilities but queue 'q' has 3 classes"),
        (dict(probs=[0.5, float("nan"), 0.5]), "finite"),
        (dict(image=np.zeros((2, 3, 4, 5))), "(H, W)"),
        (dict(image=np.full((4, 4), 2.0)), "[0, 1]"),
        (dict(reason="bored"), "reason"),
        (dict(uncertainty=float("inf")), "finite"),
        (dict(class_names=["a", "b", "c"]), "classes"),
        (dict(meta={"x": object()}), "JSON"),
    ],
)
def test_enqueue_rejects_bad_items_and_adds_nothing(store, change, message):
    store.enqueue("q", make_items(1))
    bad = QueueItem(**{**make_items(2, prefix="new")[1].__dict__, **change})
    with pytest.raises(DataFormatError, match=re.escape(message)):
        store.enqueue("q", [make_items(1, prefix="fine")[0], bad])
    assert count(store, samples) == 1


# --------------------------------------------------------------------- leases


def test_leases_go_by_priority_one_annotator_per_item(store):
    store.enqueue("q", make_items(3, uncertainties=[0.1, 0.9, 0.5]))
    alice = store.lease_next("q", "alice")
    assert alice.external_id == "img-1" and alice.leased_by == "alice" and alice.status == "leased"
    assert store.lease_next("q", "alice").escalation_id == alice.escalation_id  # the same item back
    assert store.lease_next("q", "bob").external_id == "img-2"
    assert store.lease_next("q", "carol").external_id == "img-0"
    assert store.lease_next("q", "dave") is None
    assert store.progress("q")["leased"] == 3
    with pytest.raises(ConflictError, match="being reviewed by alice"):
        store.submit("r-bob", alice.escalation_id, "bob", "accept")
    assert store.annotators() == ["alice", "bob", "carol", "dave"]


def test_an_expired_lease_returns_the_item_to_the_queue(store):
    store.enqueue("q", make_items(1))
    held = store.lease_next("q", "alice", lease_seconds=10, now=1000)
    assert store.lease_next("q", "bob", now=1010) is None  # still alice's at the last second
    assert store.progress("q", now=1011)["open"] == 1
    taken = store.lease_next("q", "bob", now=1011)
    assert taken.escalation_id == held.escalation_id and taken.leased_by == "bob"
    with pytest.raises(ConflictError, match="being reviewed by bob"):
        store.submit("r-alice", held.escalation_id, "alice", "accept", now=1012)
    assert store.submit("r-bob", held.escalation_id, "bob", "accept", now=1012).annotator == "bob"


def test_a_lease_is_renewed_when_its_holder_asks_again(store):
    store.enqueue("q", make_items(1))
    store.lease_next("q", "alice", lease_seconds=10, now=0)
    assert store.lease_next("q", "alice", lease_seconds=10, now=8).lease_expires == 18
    assert store.lease_next("q", "bob", now=15) is None


# --------------------------------------------------------------------- decisions


def test_accept_correct_and_ood_store_their_labels(store):
    store.enqueue("q", make_items(3, uncertainties=[0.9, 0.8, 0.7]))
    first, second, third = (store.lease_next("q", name) for name in ("a", "b", "c"))
    accepted = store.submit("r1", first.escalation_id, "a", "accept")
    corrected = store.submit("r2", second.escalation_id, "b", "correct", label=2)
    flagged = store.submit("r3", third.escalation_id, "c", "ood", label=1)
    assert (accepted.action, accepted.label) == ("accept", 0)  # the model's prediction for img-0
    assert (corrected.action, corrected.label) == ("correct", 2)
    assert (flagged.action, flagged.label) == ("ood", None)
    assert store.progress("q")["done"] == 3 and store.progress("q")["by_action"] == {
        "accept": 1,
        "correct": 1,
        "ood": 1,
    }
    assert store.lease_next("q", "a") is None
    with pytest.raises(ConflictError, match="already decided \\(accept\\) by a"):
        store.submit("r4", first.escalation_id, "b", "correct", label=1)


def test_skip_hands_the_item_back_and_puts_it_last_for_the_skipper(store):
    store.enqueue("q", make_items(2, uncertainties=[0.9, 0.1]))
    top = store.lease_next("q", "alice")
    skipped = store.submit("s1", top.escalation_id, "alice", "skip")
    assert skipped.action == "skip" and skipped.label is None
    assert store.item(top.escalation_id).status == "open" and store.labels("q") == []
    assert store.lease_next("q", "alice").external_id == "img-1"  # alice sees the other one first
    assert store.lease_next("q", "bob").external_id == "img-0"  # bob gets the skipped one
    assert count(store, decisions) == 1


def test_replaying_a_request_returns_the_stored_decision_and_changes_nothing(store):
    store.enqueue("q", make_items(2))
    item = store.lease_next("q", "alice")
    first = store.submit("req-1", item.escalation_id, "alice", "correct", label=2)
    rows = count(store, decisions), count(store, audit)
    assert store.submit("req-1", item.escalation_id, "alice", "correct", label=2) == first
    assert (count(store, decisions), count(store, audit)) == rows
    with pytest.raises(ConflictError, match="already used for another decision"):
        store.submit("req-1", item.escalation_id, "alice", "accept")
    with pytest.raises(ConflictError, match="already used"):
        store.submit("req-1", store.lease_next("q", "bob").escalation_id, "bob", "accept")
    assert (count(store, decisions), count(store, audit) - 2) == rows  # bob registered and leased


# --------------------------------------------------------------------- undo, history, export


def test_undo_marks_the_last_decision_and_gives_its_item_back(store):
    store.enqueue("q", make_items(4, uncertainties=[0.9, 0.8, 0.7, 0.6]))
    a = store.lease_next("q", "alice")
    store.submit("r1", a.escalation_id, "alice", "accept")
    b = store.lease_next("q", "alice")
    store.submit("r2", b.escalation_id, "alice", "correct", label=0)
    store.submit("r3", store.lease_next("q", "bob").escalation_id, "bob", "ood")
    c = store.lease_next("q", "alice")  # alice's next item, held when she undoes
    undone = store.undo_last("q", "alice")
    assert undone.request_id == "r2" and undone.undone
    assert store.item(c.escalation_id).status == "open"
    again = store.lease_next("q", "alice")
    assert again.escalation_id == b.escalation_id and again.status == "leased"
    assert [row["external_id"] for row in store.labels("q")] == ["img-0", "img-2"]
    store.submit("r4", b.escalation_id, "alice", "ood")
    assert {r["external_id"]: r["action"] for r in store.labels("q")}["img-1"] == "ood"
    history = store.history("q")
    assert [(d.request_id, d.undone) for d in history] == [
        ("r4", False),
        ("r3", False),
        ("r2", True),
        ("r1", False),
    ]
    assert [d.request_id for d in (store.undo_last("q", "alice"), store.undo_last("q", "alice"))] == [
        "r4",
        "r1",
    ]
    assert store.undo_last("q", "alice") is None
    assert count(store, decisions) == 4 and store.progress("q")["done"] == 1  # bob's stays


def test_labels_export_to_csv_and_json(store, tmp_path):
    store.enqueue("q", make_items(3, uncertainties=[0.9, 0.8, 0.7]))
    for request, (action, label) in enumerate([("accept", None), ("correct", 2), ("ood", None)]):
        store.submit(
            f"r{request}", store.lease_next("q", "alice").escalation_id, "alice", action, label=label
        )
    rows = list(csv.DictReader(io.StringIO(store.export_csv("q", tmp_path / "l.csv").read_text())))
    assert [(r["external_id"], r["label"], r["class_name"], r["action"], r["annotator"]) for r in rows] == [
        ("img-0", "0", "cat", "accept", "alice"),
        ("img-1", "2", "bird", "correct", "alice"),
        ("img-2", "", "", "ood", "alice"),
    ]
    assert rows[0]["decided_at"].endswith("+00:00")
    exported = json.loads(store.export_json("q", tmp_path / "l.json").read_text())
    assert exported["queue"] == "q" and exported["class_names"] == CLASSES
    assert [(r["external_id"], r["label"]) for r in exported["labels"]] == [
        ("img-0", 0),
        ("img-1", 2),
        ("img-2", None),
    ]


def test_the_audit_trail_says_who_did_what(store):
    store.enqueue("q", make_items(1), model="ensemble")
    item = store.lease_next("q", "alice")
    store.submit("r1", item.escalation_id, "alice", "accept")
    store.undo_last("q", "alice")
    trail = [(row["actor"], row["action"]) for row in reversed(store.audit_trail())]
    assert trail == [
        ("ensemble", "enqueue"),
        ("alice", "register"),
        ("alice", "lease"),
        ("alice", "accept"),
        ("alice", "undo"),
    ]
    assert store.audit_trail(1)[0]["detail"] == {"escalation": item.escalation_id}


# --------------------------------------------------------------------- where the database is


def pragma(store: Store, name: str):
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_the_default_database_sits_in_playground_home_in_wal_mode(playground_home):
    assert default_url() == f"sqlite:///{playground_home.resolve() / 'playground.db'}"
    with Store() as store:
        store.enqueue("q", make_items(1))
        assert (
            pragma(store, "journal_mode"),
            pragma(store, "synchronous"),
            pragma(store, "foreign_keys"),
        ) == ("wal", 2, 1)  # 2: FULL
    assert (playground_home / "playground.db").is_file()


def test_playground_db_and_an_explicit_url_are_honoured(tmp_path, monkeypatch, playground_home):
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'labels.db'}"
    monkeypatch.setenv("PLAYGROUND_DB", url)
    assert default_url() == url
    with Store() as store:
        store.enqueue("q", make_items(2))
    with Store(url) as again:
        assert again.progress("q")["total"] == 2
    assert not (playground_home / "playground.db").exists()
    with pytest.raises(StoreError, match="cannot use the database URL"):
        Store("not a url")
    with pytest.raises(StoreError, match="cannot use the database URL"):
        Store("nosuchdb://host/db")


def test_opening_a_store_waits_while_another_creates_or_upgrades_the_tables(store, store_url):
    """Processes that start at once change the tables one at a time (SQLite: the write lock; PostgreSQL:
    ``schema_lock``), so no two of them create or alter the same table."""
    store.enqueue("q", make_items(1))
    opened, seen = threading.Event(), []

    def open_another():
        with Store(store_url) as another:
            opened.set()
            seen.append(another.queues())

    thread = threading.Thread(target=open_another, daemon=True)

    def change_the_tables(conn):
        schema_lock(conn)
        thread.start()
        return opened.wait(0.5)

    assert store.write(change_the_tables) is False  # the other store waited for this transaction
    thread.join(timeout=30)
    assert opened.is_set() and seen == [["q"]]


# --------------------------------------------------------------------- processes at once


def annotate(url: str, name: str, how_many: int, barrier, results) -> None:
    """A child process: lease and accept ``how_many`` items, then replay every request."""
    try:
        store = Store(url)
        barrier.wait(timeout=60)
        done = []
        for i in range(how_many):
            item = store.lease_next("q", name)
            done.append(
                (
                    f"{name}-{i}",
                    item.escalation_id,
                    store.submit(f"{name}-{i}", item.escalation_id, name, "accept"),
                )
            )
        replays_match = all(store.submit(rid, esc, name, "accept") == first for rid, esc, first in done)
        results.put((name, len(done), replays_match, ""))
    except Exception:  # noqa: BLE001 - reported to the parent
        results.put((name, 0, False, traceback.format_exc()))


@pytest.mark.slow
def test_eight_annotator_processes_decide_every_item_exactly_once(store_url):
    url = store_url
    workers, each = 8, 50
    with Store(url) as store:
        store.enqueue("q", make_items(workers * each))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=annotate, args=(url, f"annotator-{k}", each, barrier, results), daemon=True)
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert [error for *_, error in reports if error] == []
    assert all(done == each and replays for _, done, replays, _ in reports)
    with Store(url) as store:
        assert count(store, decisions) == workers * each
        assert store.progress("q")["done"] == workers * each
        with store.engine.connect() as conn:
            per_item = conn.execute(
                select(decisions.c.escalation_id, func.count()).group_by(decisions.c.escalation_id)
            ).all()
            request_ids = conn.execute(select(func.count(func.distinct(decisions.c.request_id)))).scalar()
        assert len(per_item) == workers * each and {n for _, n in per_item} == {1}
        assert request_ids == workers * each


# --------------------------------------------------------------------- a process killed mid-write


def decide_until_killed(url: str, log_path: str) -> None:
    """A child process: decide items one by one, logging each request id once its commit returned."""
    store = Store(url)
    with open(log_path, "a", encoding="utf-8") as log:
        for i in range(10**6):
            item = store.lease_next("q", "crasher")
            if item is None:
                return
            store.submit(
                f"crash-{i}", item.escalation_id, "crasher", ("accept", "correct", "ood")[i % 3], label=1
            )
            log.write(f"crash-{i}\n")
            log.flush()
            os.fsync(log.fileno())


def logged(path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


@pytest.mark.slow
def test_a_process_killed_mid_decision_loses_no_committed_decision(store_url, tmp_path):
    url, log = store_url, tmp_path / "committed.txt"
    with Store(url) as store:
        store.enqueue("q", make_items(1000))
    child = multiprocessing.get_context("spawn").Process(
        target=decide_until_killed, args=(url, str(log)), daemon=True
    )
    child.start()
    deadline = time.monotonic() + 60
    while len(logged(log)) < 50 and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    recorded = logged(log)
    assert 50 <= len(recorded) < 1000
    with Store(url) as store:
        if store.engine.dialect.name == "sqlite":
            assert pragma(store, "integrity_check") == "ok"
        with store.engine.connect() as conn:
            stored = set(conn.execute(select(decisions.c.request_id)).scalars())
            effective = dict(
                conn.execute(
                    select(decisions.c.escalation_id, func.count())
                    .where(decisions.c.undone_at.is_(None), decisions.c.action != "skip")
                    .group_by(decisions.c.escalation_id)
                ).all()
            )
            done = set(conn.execute(select(escalations.c.id).where(escalations.c.status == "done")).scalars())
        assert (
            set(recorded) <= stored and len(stored) - len(recorded) <= 1
        )  # at most one commit not yet logged
        assert set(effective) == done and set(effective.values()) == {1}
