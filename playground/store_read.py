"""Reading the annotation store back: progress counts, who decided what, the current labels, their
CSV (spreadsheet-safe) and JSON exports, and the audit trail. :class:`~playground.store.Store`
inherits these from :class:`StoreReading`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlalchemy import and_, case, func, select

from playground.errors import StoreError
from playground.store_checks import row_limit
from playground.store_queries import (
    as_decision,
    decision_query,
    iso_time,
    spreadsheet_safe,
    standing,
    timestamp,
)
from playground.store_schema import Decision, annotators, audit, decisions, escalations, samples

LABEL_FIELDS = ("external_id", "label", "class_name", "action", "annotator", "decided_at")


class StoreReading:
    """The read side of :class:`~playground.store.Store` (which gives ``read``, ``_queue_id`` and
    ``class_names``)."""

    def progress(self, queue: str, now: float | None = None) -> dict:
        """Counts: ``total``, ``open`` (expired leases included), ``leased``, ``done``, ``by_reason``
        and ``by_action`` (effective decisions)."""
        status = case(
            (and_(escalations.c.status == "leased", escalations.c.lease_expires < timestamp(now)), "open"),
            else_=escalations.c.status,
        )

        def work(conn):
            queue_id = self._queue_id(conn, queue)
            counts = conn.execute(
                select(status.label("status"), escalations.c.reason, func.count())
                .where(escalations.c.queue_id == queue_id)
                .group_by(status, escalations.c.reason)
            )
            actions = conn.execute(
                select(decisions.c.action, func.count())
                .join(escalations)
                .where(escalations.c.queue_id == queue_id, standing())
                .group_by(decisions.c.action)
            )
            return list(counts), dict(list(actions))

        counts, by_action = self.read(work)
        result = {"total": 0, "open": 0, "leased": 0, "done": 0, "by_reason": {}, "by_action": by_action}
        for state, reason, count in counts:
            result["total"] += count
            result[state] += count
            result["by_reason"][reason] = result["by_reason"].get(reason, 0) + count
        return result

    def queue_items(self, queue: str, now: float | None = None) -> list[dict]:
        """Every escalation of ``queue``, highest priority first: ``escalation_id``, ``external_id``,
        ``priority``, ``status`` (``open`` for a lease that ran out), ``leased_by``, ``reason``."""
        moment = timestamp(now)
        esc = escalations.c
        status = case((and_(esc.status == "leased", esc.lease_expires < moment), "open"), else_=esc.status)

        def work(conn):
            query = (
                select(esc.id, samples.c.external_id, esc.priority, status.label("status"), esc.reason)
                .add_columns(annotators.c.name.label("leased_by"))
                .join(samples, samples.c.id == esc.sample_id)
                .outerjoin(annotators, annotators.c.id == esc.leased_by)
                .where(esc.queue_id == self._queue_id(conn, queue))
                .order_by(esc.priority.desc(), esc.id)
            )
            return list(conn.execute(query))

        return [
            {
                "escalation_id": row.id,
                "external_id": row.external_id,
                "priority": row.priority,
                "status": row.status,
                "leased_by": row.leased_by if row.status == "leased" else None,
                "reason": row.reason,
            }
            for row in self.read(work)
        ]

    def history(self, queue: str, limit: int = 50) -> list[Decision]:
        """Who decided what in ``queue``, newest first; skips and undone decisions included."""
        limit = row_limit(limit)

        def work(conn):
            query = decision_query().where(escalations.c.queue_id == self._queue_id(conn, queue))
            return [
                as_decision(row) for row in conn.execute(query.order_by(decisions.c.id.desc()).limit(limit))
            ]

        return self.read(work)

    def labels(self, queue: str) -> list[dict]:
        """The current label of every decided item: ``LABEL_FIELDS``, in decision order."""

        def work(conn):
            query = decision_query().where(escalations.c.queue_id == self._queue_id(conn, queue), standing())
            return list(conn.execute(query.order_by(decisions.c.id)))

        names = self.class_names(queue)
        return [
            {
                "external_id": row.external_id,
                "label": row.label,
                "class_name": None if row.label is None else names[row.label],
                "action": row.action,
                "annotator": row.annotator,
                "decided_at": iso_time(row.created_at),
            }
            for row in self.read(work)
        ]

    def labels_csv(self, queue: str) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LABEL_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(
            {key: spreadsheet_safe(value) for key, value in row.items()} for row in self.labels(queue)
        )
        return buffer.getvalue()

    def labels_json(self, queue: str) -> str:
        return json.dumps(
            {"queue": queue, "class_names": self.class_names(queue), "labels": self.labels(queue)}, indent=2
        )

    def export_csv(self, queue: str, path: str | Path) -> Path:
        """Write :meth:`labels` as CSV (an OOD item has an empty label); returns the path."""
        return _write(path, self.labels_csv(queue))

    def export_json(self, queue: str, path: str | Path) -> Path:
        """Write ``{"queue", "class_names", "labels": [...]}``; returns the path."""
        return _write(path, self.labels_json(queue))

    def audit_trail(self, limit: int = 100) -> list[dict]:
        """The newest audit rows: at, actor, action, entity, entity_id, detail."""
        limit = row_limit(limit)

        def work(conn):
            return list(conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit)).mappings())

        return [{**row, "detail": json.loads(row["detail"])} for row in self.read(work)]


def _write(path: str | Path, text: str) -> Path:
    """``text`` written to ``path``; a folder, a missing parent or no permission is one clear error."""
    path = Path(path)
    try:
        path.write_text(text, encoding="utf-8")
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise StoreError(
            f"cannot write the labels to {path}: {getattr(err, 'strerror', None) or err}"
        ) from None
    return path
