"""3D cuboid annotations per point-cloud frame, kept in the project's database (:mod:`playground.store`).

A frame (``dataset``, ``frame``) holds a list of cuboids. The annotator edits boxes freely in
the viewer; nothing is stored until they *commit*. A commit stores the frame's whole box list as
a new revision in one transaction, keyed by a request id: replaying the id returns the stored
revision and changes nothing (a double-click or a retried request is harmless). Revisions are
never deleted: :meth:`CuboidAnnotations.undo_last` marks the frame's newest revision undone, so
the one before it becomes current again. An optional ``base_revision`` makes a commit fail with
:class:`~playground.errors.ConflictError` when someone else committed the frame in between.
Every commit and undo writes an ``audit`` row (actor, action, frame, box counts) in the same
transaction, readable with :meth:`Store.audit_trail`.

The tables (``pc_frames``, ``pc_revisions``) live beside the store's own and reuse its engine,
its write transactions (``BEGIN IMMEDIATE`` on SQLite, retried on a lost race), its annotator
registry and its audit table; they are created on first use, so older databases gain them
without a migration.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from playground.core.files import json_object_text
from playground.errors import ConflictError, DataFormatError, StoreError
from playground.pointcloud.cuboid import Cuboid
from playground.store import Store
from playground.store_checks import clean_name, lookup_name, row_limit, shown, timestamp
from playground.store_schema import annotators, audit

ENTITY = "pointcloud_frame"

pointcloud_metadata = MetaData()
pc_frames = Table(
    "pc_frames",
    pointcloud_metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset", String(128), nullable=False),
    Column("frame", String(256), nullable=False),
    Column("source", Text, nullable=False),
    Column("meta", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("dataset", "frame", name="uq_pc_frames_dataset_frame"),
)
pc_revisions = Table(
    "pc_revisions",
    pointcloud_metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", String(128), nullable=False, unique=True),
    Column("frame_id", Integer, ForeignKey("pc_frames.id"), nullable=False, index=True),
    Column("annotator_id", Integer, ForeignKey(annotators.c.id), nullable=False),
    Column("cuboids", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("undone_at", Float),
)


@dataclass(frozen=True)
class Revision:
    """One committed state of a frame's cuboids."""

    id: int
    request_id: str
    dataset: str
    frame: str
    annotator: str
    cuboids: tuple[Cuboid, ...]
    created_at: float
    undone_at: float | None = None

    @property
    def undone(self) -> bool:
        return self.undone_at is not None


def _now(now: float | None) -> float:
    """``now`` or the clock's time; a NaN, infinite or far-off time is refused (:func:`timestamp`)."""
    return timestamp(now)


def _boxes(cuboids) -> list[Cuboid]:
    """A commit's boxes: a list of :class:`Cuboid` s or their dicts."""
    if isinstance(cuboids, (str, bytes, Mapping)) or not isinstance(cuboids, Iterable):
        raise DataFormatError(f"a commit takes a list of cuboids, got {type(cuboids).__name__}")
    return [b if isinstance(b, Cuboid) else Cuboid.from_dict(b) for b in cuboids]


def _encode(boxes: list[Cuboid]) -> str:
    return json.dumps([b.to_dict() for b in boxes])


def _counts(boxes) -> dict[str, int]:
    return dict(sorted(Counter(b.label for b in boxes).items()))


def _revision_query():
    return (
        select(pc_revisions, pc_frames.c.dataset, pc_frames.c.frame, annotators.c.name.label("annotator"))
        .join(pc_frames, pc_frames.c.id == pc_revisions.c.frame_id)
        .join(annotators, annotators.c.id == pc_revisions.c.annotator_id)
    )


def _as_revision(row) -> Revision:
    boxes = tuple(Cuboid.from_dict(d) for d in json.loads(row.cuboids))
    return Revision(
        row.id, row.request_id, row.dataset, row.frame, row.annotator, boxes, row.created_at, row.undone_at
    )


class CuboidAnnotations:
    """Cuboids per frame in ``store`` (a :class:`~playground.store.Store`, or one opened at ``url``)."""

    def __init__(self, store: Store | None = None, url: str | None = None) -> None:
        self.store = store if store is not None else Store(url)
        self.store.write(lambda conn: pointcloud_metadata.create_all(conn))

    def close(self) -> None:
        self.store.close()

    # ----------------------------------------------------------------- frames

    def add_frame(
        self, dataset: str, frame: str, source: str = "", meta: dict | None = None, now: float | None = None
    ) -> int:
        """Register a frame (idempotent); returns its id. :meth:`commit` registers it too."""
        dataset, frame = clean_name(dataset, "dataset name", 128), clean_name(frame, "frame name", 256)
        source = "" if source is None else str(source)
        if "\x00" in source:
            raise StoreError("a frame's source must not hold a NUL byte")
        return self.store.write(
            self._frame_id, dataset, frame, source, json_object_text(meta, "a frame's meta"), _now(now), True
        )

    def _frame_id(
        self,
        conn: Connection,
        dataset: str,
        frame: str,
        source: str = "",
        meta: str = "{}",
        now: float = 0.0,
        create: bool = False,
    ) -> int | None:
        dataset, frame = lookup_name(dataset), lookup_name(frame)
        if dataset is None or frame is None:
            return None  # no stored frame has such a name
        found = conn.execute(
            select(pc_frames.c.id).where(pc_frames.c.dataset == dataset, pc_frames.c.frame == frame)
        ).scalar()
        if found is not None or not create:
            return found
        new = conn.execute(
            insert(pc_frames).values(dataset=dataset, frame=frame, source=source, meta=meta, created_at=now)
        )
        return new.inserted_primary_key[0]

    def datasets(self) -> list[str]:
        return self.store.read(
            lambda conn: list(
                conn.execute(select(pc_frames.c.dataset).distinct().order_by(pc_frames.c.dataset)).scalars()
            )
        )

    def frames(self, dataset: str) -> list[str]:
        dataset = lookup_name(dataset)
        if dataset is None:
            return []
        return self.store.read(
            lambda conn: list(
                conn.execute(
                    select(pc_frames.c.frame)
                    .where(pc_frames.c.dataset == dataset)
                    .order_by(pc_frames.c.frame)
                ).scalars()
            )
        )

    # ----------------------------------------------------------------- commits

    def commit(
        self,
        dataset: str,
        frame: str,
        cuboids: list[Cuboid],
        annotator: str,
        request_id: str,
        base_revision: int | None = None,
        now: float | None = None,
    ) -> Revision:
        """Store ``cuboids`` as the frame's current boxes, in one transaction; idempotent on ``request_id``.

        ``base_revision``: the revision id the annotator started from (0 for a frame with none);
        when given and the frame has moved on since, a :class:`ConflictError`.
        """
        dataset, frame = clean_name(dataset, "dataset name", 128), clean_name(frame, "frame name", 256)
        annotator = clean_name(annotator, "annotator name")
        request_id = clean_name(request_id, "request id", 128)
        boxes = _boxes(cuboids)
        if base_revision is not None:
            base_revision = row_limit(base_revision, "base revision")
        return self.store.write(
            self._commit, dataset, frame, boxes, annotator, request_id, base_revision, _now(now)
        )

    def _commit(
        self,
        conn: Connection,
        dataset: str,
        frame: str,
        boxes: list[Cuboid],
        annotator: str,
        request_id: str,
        base: int | None,
        now: float,
    ) -> Revision:
        stored = conn.execute(_revision_query().where(pc_revisions.c.request_id == request_id)).first()
        if stored is not None:
            return self._replayed(_as_revision(stored), dataset, frame, annotator, boxes)
        frame_id = self._frame_id(conn, dataset, frame, now=now, create=True)
        head = self._head(conn, frame_id)
        if base is not None and (head.id if head else 0) != base:
            by = f" by {head.annotator}" if head else ""
            raise ConflictError(
                f"frame {frame!r} changed since revision {base} (now revision "
                f"{head.id if head else 0}{by}); reload it and commit again"
            )
        who = self.store.annotator_id(conn, annotator, now)
        new = conn.execute(
            insert(pc_revisions).values(
                request_id=request_id,
                frame_id=frame_id,
                annotator_id=who,
                cuboids=_encode(boxes),
                count=len(boxes),
                created_at=now,
            )
        )
        revision_id = new.inserted_primary_key[0]
        self._audit(
            conn,
            now,
            annotator,
            "cuboids_commit",
            frame_id,
            {
                "dataset": dataset,
                "frame": frame,
                "revision": revision_id,
                "request_id": request_id,
                "boxes": len(boxes),
                "labels": _counts(boxes),
                "before": head.id if head else 0,
                "boxes_before": len(head.cuboids) if head else 0,
            },
        )
        return _as_revision(conn.execute(_revision_query().where(pc_revisions.c.id == revision_id)).first())

    @staticmethod
    def _replayed(
        stored: Revision, dataset: str, frame: str, annotator: str, boxes: list[Cuboid]
    ) -> Revision:
        if (stored.dataset, stored.frame, stored.annotator, list(stored.cuboids)) != (
            dataset,
            frame,
            annotator,
            boxes,
        ):
            raise ConflictError(
                f"request id {stored.request_id!r} was already used for another commit "
                f"(frame {stored.frame!r} by {stored.annotator})"
            )
        return stored

    def _head(self, conn: Connection, frame_id: int | None) -> Revision | None:
        if frame_id is None:
            return None
        row = conn.execute(
            _revision_query()
            .where(pc_revisions.c.frame_id == frame_id, pc_revisions.c.undone_at.is_(None))
            .order_by(pc_revisions.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else _as_revision(row)

    @staticmethod
    def _audit(conn: Connection, at: float, actor: str, action: str, frame_id: int, detail: dict) -> None:
        conn.execute(
            insert(audit).values(
                at=at,
                actor=actor,
                action=action,
                entity=ENTITY,
                entity_id=frame_id,
                detail=json.dumps(detail),
            )
        )

    def undo_last(
        self, dataset: str, frame: str, annotator: str, now: float | None = None
    ) -> Revision | None:
        """Mark the frame's current revision undone (only its author may); returns it, or None when the
        frame has nothing to undo. The revision before it becomes current."""
        annotator = clean_name(annotator, "annotator name")
        return self.store.write(self._undo, dataset, frame, annotator, _now(now))

    def _undo(
        self, conn: Connection, dataset: str, frame: str, annotator: str, now: float
    ) -> Revision | None:
        frame_id = self._frame_id(conn, dataset, frame)
        head = self._head(conn, frame_id)
        if head is None:
            return None
        if head.annotator != annotator:
            raise ConflictError(
                f"the last change to frame {frame!r} is {head.annotator}'s (revision {head.id}); "
                "only they can undo it"
            )
        conn.execute(update(pc_revisions).where(pc_revisions.c.id == head.id).values(undone_at=now))
        after = self._head(conn, frame_id)
        self._audit(
            conn,
            now,
            annotator,
            "cuboids_undo",
            frame_id,
            {
                "dataset": dataset,
                "frame": frame,
                "revision": head.id,
                "boxes": len(head.cuboids),
                "current": after.id if after else 0,
                "boxes_now": len(after.cuboids) if after else 0,
            },
        )
        return _as_revision(conn.execute(_revision_query().where(pc_revisions.c.id == head.id)).first())

    # ----------------------------------------------------------------- reading back

    def head(self, dataset: str, frame: str) -> Revision | None:
        """The frame's current revision, or None."""
        return self.store.read(lambda conn: self._head(conn, self._frame_id(conn, dataset, frame)))

    def current(self, dataset: str, frame: str) -> list[Cuboid]:
        """The frame's current cuboids (empty when none were committed or all were undone)."""
        head = self.head(dataset, frame)
        return list(head.cuboids) if head else []

    def history(self, dataset: str, frame: str, limit: int = 50) -> list[Revision]:
        """The frame's revisions, newest first, undone ones included."""
        limit = row_limit(limit)

        def work(conn):
            frame_id = self._frame_id(conn, dataset, frame)
            if frame_id is None:
                raise StoreError(f"no frame {shown(frame)} in dataset {shown(dataset)}")
            query = _revision_query().where(pc_revisions.c.frame_id == frame_id)
            return [
                _as_revision(r) for r in conn.execute(query.order_by(pc_revisions.c.id.desc()).limit(limit))
            ]

        return self.store.read(work)

    def export(self, dataset: str) -> dict[str, list[Cuboid]]:
        """Frame -> current cuboids for every frame of ``dataset`` (ready for :mod:`.export`)."""
        return {frame: self.current(dataset, frame) for frame in self.frames(dataset)}
