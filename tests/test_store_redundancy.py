"""Redundant labels in the store: each item goes to k distinct annotators, nobody gets an item twice,
a split vote goes to a reviewer; pool samples are escalated without their image; a version-1
database is upgraded in place with every decision kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from playground.errors import ConflictError, DataFormatError, StoreError
from playground.store import QueueItem, Store, spreadsheet_safe
from playground.store_schema import samples

CLASSES = ["cat", "dog", "bird"]
V1_DUMP = Path(__file__).parent / "fixtures" / "store_v1.sql"


def item(name: str, uncertainty: float = 0.5, image=True, reason: str = "uncertain") -> QueueItem:
    pixels = np.full((4, 4), 7, dtype=np.uint8) if image else None
    return QueueItem(name, pixels, [0.6, 0.3, 0.1], uncertainty, class_names=CLASSES, reason=reason)


@pytest.fixture
def store(store_url):
    with Store(store_url) as opened:
        yield opened


def decide_all(store: Store, queue: str, annotator: str, label_of) -> list[str]:
    """``annotator`` labels everything they are offered; ``label_of(external_id)`` picks the class."""
    seen = []
    while (leased := store.lease_next(queue, annotator)) is not None:
        seen.append(leased.external_id)
        store.submit(
            f"{annotator}-{leased.escalation_id}",
            leased.escalation_id,
            annotator,
            "correct",
            label_of(leased.external_id),
        )
    return seen


def test_each_item_goes_to_k_distinct_annotators_and_nobody_gets_one_twice(store):
    store.enqueue("pets", [item(f"img-{i}", i / 10) for i in range(4)], redundancy=2)
    assert store.redundancy("pets") == 2
    assert store.progress("pets")["total"] == 8  # one escalation per annotator asked
    ann = decide_all(store, "pets", "ann", lambda _: 0)
    bob = decide_all(store, "pets", "bob", lambda _: 0)
    carl = decide_all(store, "pets", "carl", lambda _: 0)
    assert sorted(ann) == sorted(bob) == [f"img-{i}" for i in range(4)]  # each once, most uncertain first
    assert ann[0] == "img-3" and carl == []  # two people per item: the third gets nothing
    by_item = {}
    for row in store.labels("pets"):
        by_item.setdefault(row["external_id"], []).append(row["annotator"])
    assert all(sorted(names) == ["ann", "bob"] for names in by_item.values())


def test_a_second_decision_by_the_same_person_on_another_copy_is_refused(store):
    store.enqueue("pets", [item("img-0")], redundancy=2)
    first = store.lease_next("pets", "ann")
    store.submit("r1", first.escalation_id, "ann", "accept")
    other = next(
        i for i in (first.escalation_id + 1, first.escalation_id - 1) if store.item(i).copy != first.copy
    )
    with pytest.raises(ConflictError, match="already labelled"):
        store.submit("r2", other, "ann", "accept")
    assert len(store.labels("pets")) == 1


def test_a_split_vote_goes_to_a_reviewer_and_an_agreed_one_does_not(store):
    store.enqueue("pets", [item("agree", 0.9), item("split", 0.1)], redundancy=2)
    decide_all(store, "pets", "ann", lambda _: 1)
    decide_all(store, "pets", "bob", lambda name: 1 if name == "agree" else 2)
    assert store.progress("pets")["by_reason"] == {"uncertain": 4, "review": 1}
    review = store.lease_next("pets", "rita")
    assert (review.external_id, review.reason, review.copy) == ("split", "review", 2)
    store.submit("rv", review.escalation_id, "rita", "correct", 2)
    assert store.lease_next("pets", "rita") is None
    assert store.lease_next("pets", "ann") is None  # ann voted on it: she does not review it


def test_after_a_skip_the_same_person_does_not_get_the_other_copy_first(store):
    store.enqueue("pets", [item("a", 0.9), item("b", 0.1)], redundancy=2)
    first = store.lease_next("pets", "ann")
    store.submit("s1", first.escalation_id, "ann", "skip")
    assert store.lease_next("pets", "ann").external_id == "b"


def test_pool_samples_are_escalated_without_their_image_once(store):
    store.create_queue("pool", CLASSES, redundancy=1)
    with store.engine.begin() as conn:
        queue_id = conn.exec_driver_sql("SELECT id FROM queues WHERE name = 'pool'").scalar()
        conn.execute(
            samples.insert().values(
                queue_id=queue_id,
                external_id="a.png",
                image=b"\x07" * 16,
                dtype="uint8",
                shape="[4, 4]",
                meta="{}",
                created_at=0.0,
            )
        )
    assert store.enqueue("pool", [item("a.png", image=False)]) == 1
    assert store.enqueue("pool", [item("a.png", image=False)]) == 0  # idempotent
    leased = store.lease_next("pool", "ann")
    assert leased.image.shape == (4, 4) and int(leased.image[0, 0]) == 7
    with pytest.raises(DataFormatError, match="no image and is not in queue"):
        store.enqueue("pool", [item("missing.png", image=False)])


def test_create_queue_is_idempotent_and_checks_its_classes(store):
    store.create_queue("q", CLASSES)
    store.create_queue("q", CLASSES)
    with pytest.raises(DataFormatError):
        store.create_queue("q", ["a", "b"])
    with pytest.raises(StoreError, match="redundancy"):
        store.create_queue("r", CLASSES, redundancy=0)
    store.set_redundancy("q", 3)
    assert store.redundancy("q") == 3


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(store):
    assert spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert [spreadsheet_safe(v) for v in ("+1", "-1", "@x", "ok", 3)] == ["'+1", "'-1", "'@x", "ok", 3]
    store.enqueue("q", [item("=cmd|'/c calc'!A1")])
    leased = store.lease_next("q", "ann")
    store.submit("r", leased.escalation_id, "ann", "accept")
    assert "\n'=cmd|" in store.labels_csv("q")


def test_a_version_1_database_is_upgraded_in_place_keeping_every_decision(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DUMP.read_text())
    with Store(f"sqlite:///{path}") as store:
        assert store.redundancy("pets") == 1
        assert store.progress("pets")["by_action"] == {"accept": 1, "correct": 1}
        assert [(d.action, d.undone) for d in store.history("pets")] == [
            ("ood", True),
            ("correct", False),
            ("accept", False),
        ]
        leased = store.lease_next("pets", "carl")
        store.submit("new", leased.escalation_id, "carl", "accept")
    with Store(f"sqlite:///{path}") as again:  # a second open finds it upgraded
        assert len(again.labels("pets")) == 3
