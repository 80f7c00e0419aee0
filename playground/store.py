"""The annotation store: escalated samples, model predictions, annotator decisions, an audit trail.

The project's database: SQLite in WAL mode at ``<PLAYGROUND_HOME>/playground.db`` by default,
any SQLAlchemy URL (``$PLAYGROUND_DB`` or ``Store(url)``) for a server such as PostgreSQL.

- :meth:`Store.enqueue` adds samples with the model's prediction as escalations, once per
  ``(queue, external_id)``; the most uncertain come first.
- :meth:`Store.lease_next` leases one item to one annotator; the lease runs out after
  ``lease_seconds`` and the item returns to the queue, so several annotators work at once.
- :meth:`Store.submit` records one decision in one transaction, keyed by a request id:
  replaying the id returns the stored decision and changes nothing.
- Decisions are never deleted; :meth:`Store.undo_last` marks one undone. Labels export to CSV
  and JSON. Every change writes an ``audit`` row in the same transaction.

SQL is built only from SQLAlchemy expressions with bound parameters. Connecting (WAL,
``BEGIN IMMEDIATE`` for writes, ``synchronous=FULL``), the tables and the records live in
:mod:`playground.store_schema`.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import case, insert, or_, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError

from playground.accounts import refusal
from playground.errors import ConflictError, StoreError
from playground.store_checks import database_errors, lookup_name, row_id, shown
from playground.store_migrate import upgrade, upgrade_sqlite
from playground.store_queries import (
    Lost,
    as_decision,
    available,
    by_annotator,
    check_redundancy,
    check_right,
    decision_query,
    iso_time,
    lease_length,
    on_sample,
    samples_with,
    spreadsheet_safe,
    standing,
    timestamp,
    write_audit,
)
from playground.store_queues import StoreQueues
from playground.store_read import LABEL_FIELDS, StoreReading
from playground.store_schema import (
    ACTIONS,
    SCHEMA_VERSION,
    Decision,
    Item,
    QueueItem,
    annotators,
    clean_name,
    decisions,
    default_url,
    escalations,
    metadata,
    open_engine,
    predictions,
    queues,
    samples,
    schema_info,
    schema_lock,
)

ATTEMPTS = 8  # a write that lost a race (another lease, a duplicate insert) is retried this often

__all__ = [
    "ACTIONS",
    "LABEL_FIELDS",
    "Decision",
    "Item",
    "QueueItem",
    "Store",
    "check_redundancy",
    "default_url",
    "spreadsheet_safe",
]


class Store(StoreQueues, StoreReading):
    """The annotation queue in one database; safe to share between threads and processes."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self.engine = open_engine(self.url)
        self._writer = self.engine.execution_options(playground_write=True)
        if self.engine.dialect.name == "sqlite":
            with self._errors():
                upgrade_sqlite(self.engine, SCHEMA_VERSION)
        self.write(self._create_schema)

    @property
    def location(self) -> str:
        """The database URL, password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- transactions

    def _errors(self):
        return database_errors(repr(self))

    def write(self, work, *args):
        """``work(conn, *args)`` in one write transaction, retried when it lost a race to another writer.

        Public so that other annotation tables (``pointcloud.annotations``) share the retry and error
        handling; ``work`` must be safe to run again."""
        for attempt in range(ATTEMPTS):
            try:
                with self._errors(), self._writer.begin() as conn:
                    return work(conn, *args)
            except (IntegrityError, Lost):
                if attempt == ATTEMPTS - 1:
                    raise ConflictError(
                        "the annotation database kept changing under this request; try again"
                    ) from None
                time.sleep(0.01 * (attempt + 1))

    def read(self, work, *args):
        """``work(conn, *args)`` on a read connection."""
        with self._errors(), self.engine.connect() as conn:
            return work(conn, *args)

    def _create_schema(self, conn: Connection) -> None:
        schema_lock(conn)  # a server: one process at a time creates or upgrades the tables
        metadata.create_all(conn)
        version = conn.execute(select(schema_info.c.version)).scalar()
        if version is None:
            conn.execute(insert(schema_info).values(version=SCHEMA_VERSION))
        elif version > SCHEMA_VERSION:
            raise StoreError(
                f"the annotation database {self!r} has schema version {version}, newer than this "
                f"playground's {SCHEMA_VERSION}; upgrade the playground"
            )
        elif version < SCHEMA_VERSION:
            upgrade(conn, version, SCHEMA_VERSION)
            conn.execute(update(schema_info).values(version=SCHEMA_VERSION))

    # ----------------------------------------------------------------- lookups

    def _queue_id(self, conn: Connection, queue: str) -> int:
        """The queue's id; its name is stripped as it was when the queue was made. An unknown name's
        error lists at most ten queues, each on one line and cut to 40 characters."""
        name = lookup_name(queue)
        found = None
        if name is not None:
            found = conn.execute(select(queues.c.id).where(queues.c.name == name)).scalar()
        if found is None:
            names = self._queue_names(conn)
            known = ", ".join(" ".join(name.split())[:40] for name in names[:10]) or "none yet"
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            asked = shown(queue.strip() if isinstance(queue, str) else queue)
            raise StoreError(f"no annotation queue named {asked} (queues: {known}{more})")
        return found

    def _queue_names(self, conn: Connection) -> list[str]:
        return list(conn.execute(select(queues.c.name).order_by(queues.c.name)).scalars())

    def annotator_id(self, conn: Connection, name: str, now: float) -> int:
        """The annotator's id, registering the name on first use."""
        found = conn.execute(select(annotators.c.id).where(annotators.c.name == name)).scalar()
        if found is not None:
            return found
        new = conn.execute(insert(annotators).values(name=name, created_at=now)).inserted_primary_key[0]
        write_audit(conn, now, name, "register", "annotator", new)
        return new

    def _item(self, conn: Connection, escalation_id: int) -> Item:
        row = conn.execute(
            select(
                escalations,
                samples.c.external_id,
                samples.c.image,
                samples.c.dtype,
                samples.c.shape,
                samples.c.meta,
                predictions.c.probs,
                predictions.c.predicted,
                predictions.c.uncertainty,
                predictions.c.disagreement,
                queues.c.name.label("queue"),
                queues.c.class_names,
                annotators.c.name.label("holder"),
            )
            .join(samples, samples.c.id == escalations.c.sample_id)
            .join(predictions, predictions.c.id == escalations.c.prediction_id)
            .join(queues, queues.c.id == escalations.c.queue_id)
            .outerjoin(annotators, annotators.c.id == escalations.c.leased_by)
            .where(escalations.c.id == escalation_id)
        ).first()
        if row is None:
            raise StoreError(f"no escalated item with id {escalation_id}")
        return Item.from_row(row)

    def _decision(self, conn: Connection, *where) -> Decision | None:
        """The newest decision matching ``where``."""
        row = conn.execute(decision_query().where(*where).order_by(decisions.c.id.desc()).limit(1)).first()
        return None if row is None else as_decision(row)

    # ----------------------------------------------------------------- queues and items

    def register_annotator(self, name: str) -> str:
        """Register ``name`` (stripped, 1-64 characters); returns it. Leasing or submitting does it too."""
        name = clean_name(name, "annotator name")
        self.write(self.annotator_id, name, time.time())
        return name

    def annotators(self) -> list[str]:
        return self.read(
            lambda conn: list(conn.execute(select(annotators.c.name).order_by(annotators.c.name)).scalars())
        )

    def queues(self) -> list[str]:
        return self.read(self._queue_names)

    def class_names(self, queue: str) -> list[str]:
        def work(conn):
            return json.loads(
                conn.execute(
                    select(queues.c.class_names).where(queues.c.id == self._queue_id(conn, queue))
                ).scalar()
            )

        return self.read(work)

    def item(self, escalation_id: int) -> Item:
        """One escalated item, whatever its status."""
        return self.read(self._item, row_id(escalation_id, "an item id"))

    # ----------------------------------------------------------------- leasing

    def lease_next(
        self, queue: str, annotator: str, lease_seconds: float = 300.0, now: float | None = None
    ) -> Item | None:
        """Lease the most uncertain open item (or one whose lease ran out) to ``annotator``; None when
        the queue is empty. An annotator who holds a lease gets that item back, its lease renewed.
        Items this annotator skipped come last."""
        annotator = clean_name(annotator, "annotator name")
        return self.write(self._lease, queue, annotator, lease_length(lease_seconds), timestamp(now))

    def _lease(self, conn: Connection, queue: str, annotator: str, seconds: float, now: float) -> Item | None:
        queue_id = self._queue_id(conn, queue)
        check_right(conn, queue_id, annotator, "annotate", queue)
        who = self.annotator_id(conn, annotator, now)
        esc = escalations.c
        held = conn.execute(
            select(esc.id)
            .where(
                esc.queue_id == queue_id,
                esc.status == "leased",
                esc.leased_by == who,
                esc.lease_expires >= now,
            )
            .order_by(esc.lease_expires.desc())
            .limit(1)
        ).scalar()
        if held is not None:
            conn.execute(update(escalations).where(esc.id == held).values(lease_expires=now + seconds))
            return self._item(conn, held)
        # computed once per lease (a correlated EXISTS per candidate slows SQLite as decisions grow)
        skipped = esc.sample_id.in_(samples_with(by_annotator(who, decisions.c.action == "skip")))
        decided = esc.sample_id.in_(samples_with(by_annotator(who, decisions.c.action != "skip")))
        allowed = [esc.queue_id == queue_id, available(now), ~decided]
        if refusal(conn, queue_id, annotator, "review") is not None:
            allowed.append(esc.reason != "review")
        chosen = conn.execute(
            select(esc.id)
            .where(*allowed)
            .order_by(case((skipped, 1), else_=0), esc.priority.desc(), esc.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=escalations)  # a server: pass over rows being leased
        ).scalar()
        if chosen is None:
            return None
        taken = conn.execute(
            update(escalations)
            .where(esc.id == chosen, available(now))
            .values(status="leased", leased_by=who, lease_expires=now + seconds, updated_at=now)
        )
        if taken.rowcount != 1:
            raise Lost
        write_audit(conn, now, annotator, "lease", "escalation", chosen, {"until": now + seconds})
        return self._item(conn, chosen)

    # ----------------------------------------------------------------- decisions

    def submit(
        self,
        request_id: str,
        escalation_id: int,
        annotator: str,
        action: str,
        label: int | None = None,
        now: float | None = None,
    ) -> Decision:
        """Record one decision in one transaction; replaying ``request_id`` returns the stored one.

        ``accept`` takes the model's label, ``correct`` needs ``label``, ``ood`` stores no label,
        ``skip`` hands the item back to the queue without deciding it.
        """
        request_id = clean_name(request_id, "request id", 128)
        annotator = clean_name(annotator, "annotator name")
        if action not in ACTIONS:
            raise StoreError(f"unknown action {shown(action)}; choose one of {', '.join(ACTIONS)}")
        return self.write(
            self._submit,
            request_id,
            row_id(escalation_id, "an item id"),
            annotator,
            action,
            label,
            timestamp(now),
        )

    def _submit(
        self,
        conn: Connection,
        request_id: str,
        escalation_id: int,
        annotator: str,
        action: str,
        label: int | None,
        now: float,
    ) -> Decision:
        stored = self._decision(conn, decisions.c.request_id == request_id)
        if stored is not None:
            return stored.replayed(escalation_id, annotator, action, label)
        item = self._item(conn, escalation_id)
        label = item.decided_label(action, label)
        queue_id = conn.execute(
            select(escalations.c.queue_id).where(escalations.c.id == escalation_id)
        ).scalar()
        check_right(
            conn, queue_id, annotator, "review" if item.reason == "review" else "annotate", item.queue
        )
        who = self.annotator_id(conn, annotator, now)
        self._check_claimable(conn, item, annotator, now)
        if (
            action != "skip"
            and conn.execute(select(on_sample(item.sample_id, by_annotator(who, standing())))).scalar()
        ):
            raise ConflictError(
                f"{annotator} already labelled item {item.external_id!r}; each person labels it once"
            )
        done = {"status": "open"} if action == "skip" else {"status": "done"}
        claimed = conn.execute(
            update(escalations)
            .where(
                escalations.c.id == escalation_id,
                escalations.c.status.in_(("open", "leased")),
                or_(
                    escalations.c.leased_by.is_(None),
                    escalations.c.leased_by == who,
                    escalations.c.lease_expires < now,
                ),
            )
            .values(leased_by=None, lease_expires=None, updated_at=now, **done)
        )
        if claimed.rowcount != 1:
            raise Lost  # changed since it was read (servers without serialised writers): read again
        new = conn.execute(
            insert(decisions).values(
                request_id=request_id,
                escalation_id=escalation_id,
                annotator_id=who,
                action=action,
                label=label,
                created_at=now,
            )
        )
        write_audit(
            conn,
            now,
            annotator,
            action,
            "escalation",
            escalation_id,
            {"request_id": request_id, "label": label, "decision": new.inserted_primary_key[0]},
        )
        if action != "skip" and item.reason != "review":
            self._review_if_split(conn, queue_id, item, now)
        return self._decision(conn, decisions.c.id == new.inserted_primary_key[0])

    def _check_claimable(self, conn: Connection, item: Item, annotator: str, now: float) -> None:
        if item.status == "done":
            by = self._decision(conn, decisions.c.escalation_id == item.escalation_id, standing())
            raise ConflictError(
                f"item {item.external_id!r} was already decided"
                + (f" ({by.action}) by {by.annotator}" if by else "")
            )
        if item.status == "leased" and item.leased_by != annotator and item.lease_expires >= now:
            raise ConflictError(
                f"item {item.external_id!r} is being reviewed by {item.leased_by} until "
                f"{iso_time(item.lease_expires)}; take the next item instead"
            )

    def undo_last(
        self, queue: str, annotator: str, lease_seconds: float = 300.0, now: float | None = None
    ) -> Decision | None:
        """Mark ``annotator``'s last decision in ``queue`` undone and lease its item back to them
        (their other lease returns to the queue); None when there is nothing to undo."""
        annotator = clean_name(annotator, "annotator name")
        return self.write(self._undo, queue, annotator, lease_length(lease_seconds), timestamp(now))

    def _undo(
        self, conn: Connection, queue: str, annotator: str, seconds: float, now: float
    ) -> Decision | None:
        queue_id, who = self._queue_id(conn, queue), self.annotator_id(conn, annotator, now)
        last = self._decision(
            conn, escalations.c.queue_id == queue_id, decisions.c.annotator_id == who, standing()
        )
        if last is None:
            return None
        conn.execute(update(decisions).where(decisions.c.id == last.id).values(undone_at=now))
        conn.execute(
            update(escalations)
            .where(
                escalations.c.queue_id == queue_id,
                escalations.c.status == "leased",
                escalations.c.leased_by == who,
            )
            .values(status="open", leased_by=None, lease_expires=None, updated_at=now)
        )
        conn.execute(
            update(escalations)
            .where(escalations.c.id == last.escalation_id)
            .values(status="leased", leased_by=who, lease_expires=now + seconds, updated_at=now)
        )
        write_audit(conn, now, annotator, "undo", "decision", last.id, {"escalation": last.escalation_id})
        return self._decision(conn, decisions.c.id == last.id)
