"""The annotation store's query pieces: which items are free to lease, which decisions still stand,
a decision on another copy of the same sample, the audit row every change writes, and the checks
(classes, redundancy, rights) a write makes first. :class:`~playground.store.Store` composes them."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import and_, exists, insert, or_, select
from sqlalchemy.engine import Connection

from playground.accounts import refusal
from playground.errors import AccessError, DataFormatError, StoreError
from playground.store_checks import (  # noqa: F401 - the input checks, imported from here by the store
    MAX_LEASE_SECONDS,
    lease_length,
    timestamp,
)
from playground.store_schema import Decision, annotators, audit, decisions, escalations, samples


class Lost(Exception):
    """A conditional update matched no row: another writer got there first; retry."""


def iso_time(seconds: float | None) -> str | None:
    return (
        None
        if seconds is None
        else datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")
    )


def write_audit(
    conn: Connection,
    at: float,
    actor: str,
    action: str,
    entity: str,
    entity_id: int,
    detail: dict | None = None,
) -> None:
    conn.execute(
        insert(audit).values(
            at=at,
            actor=actor,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=json.dumps(detail or {}),
        )
    )


def available(now: float):
    """Open, or leased with a lease that has run out."""
    return or_(
        escalations.c.status == "open",
        and_(escalations.c.status == "leased", escalations.c.lease_expires < now),
    )


def check_classes(prepared: dict, names: list[str], queue: str) -> None:
    if len(prepared["probs"]) != len(names):
        raise DataFormatError(
            f"item {prepared['external_id']!r} has {len(prepared['probs'])} class probabilities "
            f"but queue {queue!r} has {len(names)} classes: {names}"
        )
    if prepared["class_names"] not in (None, names):
        raise DataFormatError(
            f"item {prepared['external_id']!r} names the classes {prepared['class_names']} "
            f"but queue {queue!r} has the classes {names}"
        )


def check_redundancy(redundancy) -> int:
    """``redundancy`` as an int from 1 to 20 (distinct annotators asked per item)."""
    if isinstance(redundancy, bool) or not isinstance(redundancy, int) or not 1 <= redundancy <= 20:
        raise StoreError(
            f"redundancy (annotators per item) must be a whole number from 1 to 20, got {redundancy!r}"
        )
    return redundancy


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: one starting with ``= + - @`` (or a tab or carriage
    return) would run as a formula (CSV injection), so it gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def decision_query():
    return (
        select(decisions, samples.c.external_id, annotators.c.name.label("annotator"))
        .join(escalations, escalations.c.id == decisions.c.escalation_id)
        .join(samples, samples.c.id == escalations.c.sample_id)
        .join(annotators, annotators.c.id == decisions.c.annotator_id)
    )


def standing():
    """The decision that currently labels an item: not undone, not a skip."""
    return and_(decisions.c.undone_at.is_(None), decisions.c.action != "skip")


def by_annotator(who: int, *where):
    """A decision of annotator ``who`` that still stands (not undone), matching ``where``."""
    return and_(decisions.c.annotator_id == who, decisions.c.undone_at.is_(None), *where)


def on_sample(sample_id, decision_filter):
    """Some copy of ``sample_id`` (any of the k escalations of one sample) has a matching decision."""
    copy = escalations.alias("same_sample")
    return exists().where(
        copy.c.sample_id == sample_id, decisions.c.escalation_id == copy.c.id, decision_filter
    )


def samples_with(decision_filter):
    """The samples (any of their copies) that have a decision matching ``decision_filter``."""
    copy = escalations.alias("same_sample")
    return (
        select(copy.c.sample_id)
        .join(decisions, decisions.c.escalation_id == copy.c.id)
        .where(decision_filter)
    )


def check_right(conn: Connection, queue_id: int, name: str, need: str, queue: str) -> None:
    reason = refusal(conn, queue_id, name, need)
    if reason is not None:
        raise AccessError(reason)  # it names the person and the project


def as_decision(row) -> Decision:
    return Decision(
        id=row.id,
        request_id=row.request_id,
        escalation_id=row.escalation_id,
        external_id=row.external_id,
        annotator=row.annotator,
        action=row.action,
        label=row.label,
        created_at=row.created_at,
        undone_at=row.undone_at,
    )
