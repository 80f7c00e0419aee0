"""Filling the annotation store: queues with their classes and redundancy (k distinct annotators per
item), and escalating items (one escalation per annotator asked; a pool sample already stored is
escalated without its image). :class:`~playground.store.Store` inherits these from :class:`StoreQueues`."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping

from sqlalchemy import exists, insert, select, update
from sqlalchemy.engine import Connection

from playground.errors import DataFormatError, StoreError
from playground.store_checks import as_real, class_list, lookup_name
from playground.store_queries import (
    check_classes,
    check_redundancy,
    standing,
    timestamp,
    write_audit,
)
from playground.store_schema import (
    Item,
    QueueItem,
    clean_name,
    decisions,
    escalations,
    predictions,
    prepare_item,
    queues,
    samples,
)

REVIEW_PRIORITY = 1e9  # a split vote goes to the front of a reviewer's queue


class StoreQueues:
    """The write side that fills queues (``Store`` gives ``write``, ``read`` and ``_queue_id``)."""

    def enqueue(
        self,
        queue: str,
        items: list[QueueItem],
        model: str = "",
        now: float | None = None,
        redundancy: int | None = None,
    ) -> int:
        """Escalate ``items`` to ``queue`` (created on first use, asking ``redundancy`` distinct
        annotators per item, default 1); returns how many were new.

        Idempotent on ``(queue, external_id)``: an item already escalated is left as it is. An item of
        the queue's pool (a sample stored without an escalation) is escalated with its stored image.
        """
        queue = clean_name(queue, "queue name", 128)
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise DataFormatError(f"enqueue takes a list of QueueItem records, got {type(items).__name__}")
        prepared = [prepare_item(item) for item in items]
        model = clean_name(model, "model name", 128) if model else ""
        k = None if redundancy is None else check_redundancy(redundancy)
        return self.write(self._enqueue, queue, prepared, model, timestamp(now), k)

    def _enqueue(
        self, conn: Connection, queue: str, prepared: list[dict], model: str, now: float, k: int | None
    ) -> int:
        queue_id, names, redundancy = self._ensure_queue(conn, queue, prepared, now, k)
        found = self._existing(conn, queue_id, [p["external_id"] for p in prepared])
        added = 0
        for p in prepared:
            sample_id, escalated = found.get(p["external_id"], (None, False))
            if escalated:
                continue
            check_classes(p, names, queue)
            if sample_id is None:
                sample_id = self._insert_sample(conn, queue_id, p, queue, now)
            copies = 1 if p["escalation"]["reason"] == "review" else redundancy
            self._escalate(conn, queue_id, sample_id, p, model, now, range(copies))
            found[p["external_id"]] = (sample_id, True)
            added += 1
        write_audit(
            conn,
            now,
            model or "system",
            "enqueue",
            "queue",
            queue_id,
            {"added": added, "offered": len(prepared)},
        )
        return added

    def _insert_sample(self, conn: Connection, queue_id: int, p: dict, queue: str, now: float) -> int:
        if p["sample"] is None:
            raise DataFormatError(f"item {p['external_id']!r} has no image and is not in queue {queue!r}")
        return conn.execute(
            insert(samples).values(queue_id=queue_id, created_at=now, **p["sample"])
        ).inserted_primary_key[0]

    def _escalate(
        self, conn: Connection, queue_id: int, sample_id: int, p: dict, model: str, now: float, copies
    ) -> None:
        """The model's prediction for the sample and one escalation per copy (per annotator asked)."""
        prediction = conn.execute(
            insert(predictions).values(sample_id=sample_id, model=model, created_at=now, **p["prediction"])
        ).inserted_primary_key[0]
        for copy in copies:
            conn.execute(
                insert(escalations).values(
                    queue_id=queue_id,
                    sample_id=sample_id,
                    copy=copy,
                    status="open",
                    updated_at=now,
                    prediction_id=prediction,
                    **p["escalation"],
                )
            )

    def reprioritise(self, queue: str, priorities: dict[str, float], now: float | None = None) -> int:
        """Set the priority of the items of ``queue`` named in ``priorities`` (external id -> priority,
        e.g. a fresh uncertainty) that are not decided yet; decided items and reviews keep theirs.
        Returns how many escalations changed."""
        if not isinstance(priorities, Mapping):
            raise DataFormatError(
                f"priorities must map external ids to numbers, got {type(priorities).__name__}"
            )
        values = {lookup_name(k): as_real(v) for k, v in priorities.items()}
        if any(v is None for v in values.values()):
            raise DataFormatError("priorities must be finite numbers")
        values.pop(None, None)  # an id no sample can have (not text, or with a NUL byte) changes nothing
        moment = timestamp(now)

        def work(conn):
            queue_id, changed = self._queue_id(conn, queue), 0
            esc = escalations.c
            for external_id, priority in values.items():
                sample = select(samples.c.id).where(
                    samples.c.queue_id == queue_id, samples.c.external_id == external_id
                )
                changed += conn.execute(
                    update(escalations)
                    .where(
                        esc.sample_id.in_(sample),
                        esc.status != "done",
                        esc.reason != "review",
                        esc.priority != priority,
                    )
                    .values(priority=priority)
                ).rowcount
            write_audit(conn, moment, "system", "reprioritise", "queue", queue_id, {"changed": changed})
            return changed

        return self.write(work)

    def create_queue(self, queue: str, class_names: list[str], redundancy: int = 1) -> str:
        """Create ``queue`` with its classes (nothing escalated yet); the same call again changes
        nothing, and a different class list for an existing queue is an error."""
        queue = clean_name(queue, "queue name", 128)
        names = class_list(class_names)
        k = check_redundancy(redundancy)
        placeholder = {"probs": names, "class_names": names, "external_id": ""}
        self.write(lambda conn: self._ensure_queue(conn, queue, [placeholder], time.time(), k))
        return queue

    def set_redundancy(self, queue: str, redundancy: int) -> None:
        """Ask ``redundancy`` distinct annotators per item from now on (items already queued keep theirs)."""
        k = check_redundancy(redundancy)

        def work(conn):
            queue_id = self._queue_id(conn, queue)
            conn.execute(update(queues).where(queues.c.id == queue_id).values(redundancy=k))
            write_audit(conn, time.time(), "system", "redundancy", "queue", queue_id, {"redundancy": k})

        self.write(work)

    def redundancy(self, queue: str) -> int:
        def work(conn):
            return conn.execute(
                select(queues.c.redundancy).where(queues.c.id == self._queue_id(conn, queue))
            ).scalar()

        return self.read(work)

    def _ensure_queue(
        self, conn: Connection, queue: str, prepared: list[dict], now: float, k: int | None
    ) -> tuple[int, list, int]:
        row = conn.execute(select(queues).where(queues.c.name == queue)).first()
        if row is not None:
            names = json.loads(row.class_names)
            for p in prepared[:1]:
                check_classes(p, names, queue)
            return row.id, names, row.redundancy
        if not prepared:
            raise StoreError(f"queue {queue!r} does not exist yet; enqueue at least one item to create it")
        first = prepared[0]
        names = first["class_names"] or [str(c) for c in range(len(first["probs"]))]
        new = conn.execute(
            insert(queues).values(
                name=queue, class_names=json.dumps(names), created_at=now, redundancy=k or 1
            )
        )
        return new.inserted_primary_key[0], names, k or 1

    def _existing(
        self, conn: Connection, queue_id: int, ids: list[str], chunk: int = 500
    ) -> dict[str, tuple[int, bool]]:
        """``external_id -> (sample id, escalated already)`` for the ids already in the queue."""
        found: dict[str, tuple[int, bool]] = {}
        escalated = exists().where(escalations.c.sample_id == samples.c.id)
        for start in range(0, len(ids), chunk):
            rows = conn.execute(
                select(samples.c.external_id, samples.c.id, escalated).where(
                    samples.c.queue_id == queue_id, samples.c.external_id.in_(ids[start : start + chunk])
                )
            )
            found.update({row[0]: (row[1], bool(row[2])) for row in rows})
        return found

    def _review_if_split(self, conn: Connection, queue_id: int, item: Item, now: float) -> None:
        """Once every copy of a sample is decided, a split vote (no answer from more than half of
        the annotators; OOD counts as an answer) sends the sample to a reviewer: one more copy."""
        esc = escalations.c
        copies = conn.execute(
            select(esc.status, esc.reason, esc.prediction_id).where(esc.sample_id == item.sample_id)
        ).all()
        if any(row.reason == "review" for row in copies) or any(row.status != "done" for row in copies):
            return
        answers = conn.execute(
            select(decisions.c.action, decisions.c.label)
            .join(escalations, escalations.c.id == decisions.c.escalation_id)
            .where(esc.sample_id == item.sample_id, standing())
        ).all()
        votes = Counter("ood" if a.action == "ood" else a.label for a in answers)
        if len(answers) < 2 or max(votes.values()) * 2 > len(answers):
            return
        conn.execute(
            insert(escalations).values(
                queue_id=queue_id,
                sample_id=item.sample_id,
                copy=len(copies),
                prediction_id=copies[0].prediction_id,
                reason="review",
                priority=REVIEW_PRIORITY,
                status="open",
                updated_at=now,
            )
        )
        write_audit(conn, now, "system", "review", "escalation", item.escalation_id, {"votes": len(answers)})
