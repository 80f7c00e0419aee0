"""The annotation store's database: connecting, the tables, and the records it takes and gives
(the store itself is :mod:`playground.store`).

On SQLite every write transaction starts with ``BEGIN IMMEDIATE``, so concurrent writers (other
processes included) wait on the busy timeout instead of failing to upgrade a read lock, and
``synchronous=FULL`` makes a committed decision survive a power cut, not only a crash. On PostgreSQL
(psycopg 3; ``postgresql://`` means ``postgresql+psycopg://``) transactions are READ COMMITTED:
writers do not wait for one another, so the store's writes are conditional updates, leases lock their
row (``FOR UPDATE SKIP LOCKED``), and creating or upgrading the tables holds :func:`schema_lock`.
Times are Unix seconds (floats); probabilities, class names, metadata and audit details are JSON
text; an image is its raw pixels (uint8 or float32) with its dtype and shape.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from playground.core.runs import playground_home
from playground.errors import ConflictError, DataFormatError, StoreError

SCHEMA_VERSION = 2  # 2: redundant labels (queues.redundancy, escalations.copy), accounts, labelling projects
ACTIONS = ("accept", "correct", "skip", "ood")
REASONS = ("uncertain", "ood", "seed", "calibration", "review")  # see playground.label.rounds
ROLES = ("annotator", "reviewer", "admin")
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
)


# --------------------------------------------------------------------- connecting


def default_url(home: str | Path | None = None) -> str:
    """``$PLAYGROUND_DB`` if set, else SQLite at ``<home or PLAYGROUND_HOME or ./runs>/playground.db``
    (:class:`~playground.store.Store` creates the folder)."""
    if os.environ.get("PLAYGROUND_DB", "").strip():
        return os.environ["PLAYGROUND_DB"].strip()
    root = Path(home).expanduser() if home else playground_home()
    return f"sqlite:///{root.resolve() / 'playground.db'}"


def _sqlite_connect(dbapi_connection, _record) -> None:
    """Let SQLAlchemy's ``begin`` event emit BEGIN (pysqlite's own would be deferred); set the pragmas."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(
        "BEGIN IMMEDIATE" if conn.get_execution_options().get("playground_write") else "BEGIN"
    )


def open_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite with WAL, the pragmas and ``BEGIN IMMEDIATE`` for writes."""
    try:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver is psycopg2; we ship psycopg 3
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "postgresql":
            return create_engine(parsed, pool_pre_ping=True, isolation_level="READ COMMITTED")
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as err:
        raise StoreError(
            f"cannot use the database URL {url!r}: {err}; "
            "give e.g. sqlite:///runs/playground.db or postgresql+psycopg://host/db"
        ) from None
    if parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"cannot create the folder {folder} for the annotation database: {err.strerror}"
            ) from None
    engine = create_engine(parsed)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def schema_lock(conn: Connection) -> None:
    """On PostgreSQL, wait for (and hold until the transaction ends) the lock on creating or upgrading
    the tables of the connection's schema, so processes that start at once do not both create or alter
    them; SQLite's ``BEGIN IMMEDIATE`` already serialises writers."""
    if conn.dialect.name == "postgresql":
        key = func.hashtext(func.concat("playground.store_schema:", func.current_schema()))
        conn.execute(select(func.pg_advisory_xact_lock(key)))


# --------------------------------------------------------------------- tables


metadata = MetaData()


def _id() -> Column:
    return Column("id", Integer, primary_key=True)


def _ref(name: str, target: str, **kwargs) -> Column:
    return Column(name, Integer, ForeignKey(f"{target}.id"), **kwargs)


schema_info = Table("schema_info", metadata, Column("version", Integer, nullable=False))
queues = Table(
    "queues",
    metadata,
    _id(),
    Column("name", String(128), nullable=False, unique=True),
    Column("class_names", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("redundancy", Integer, nullable=False, server_default="1"),  # k distinct annotators per item
)
annotators = Table(
    "annotators",
    metadata,
    _id(),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)
samples = Table(
    "samples",
    metadata,
    _id(),
    _ref("queue_id", "queues", nullable=False),
    Column("external_id", String(256), nullable=False),
    Column("image", LargeBinary, nullable=False),
    Column("dtype", String(16), nullable=False),
    Column("shape", String(64), nullable=False),
    Column("meta", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("queue_id", "external_id", name="uq_samples_queue_external_id"),
)
predictions = Table(
    "predictions",
    metadata,
    _id(),
    _ref("sample_id", "samples", nullable=False),
    Column("model", String(128), nullable=False),
    Column("probs", Text, nullable=False),
    Column("predicted", Integer, nullable=False),
    Column("uncertainty", Float, nullable=False),
    Column("disagreement", Float, nullable=False),
    Column("created_at", Float, nullable=False),
)
escalations = Table(
    "escalations",
    metadata,
    _id(),
    _ref("queue_id", "queues", nullable=False),
    _ref("sample_id", "samples", nullable=False),
    Column("copy", Integer, nullable=False, server_default="0"),  # 0..k-1: one per annotator asked
    _ref("prediction_id", "predictions", nullable=False),
    Column("reason", String(16), nullable=False),
    Column("priority", Float, nullable=False),
    Column("status", String(16), nullable=False),  # open | leased | done
    _ref("leased_by", "annotators"),
    Column("lease_expires", Float),
    Column("updated_at", Float, nullable=False),
    Index("ix_escalations_queue_status_priority", "queue_id", "status", "priority"),
    UniqueConstraint("sample_id", "copy", name="uq_escalations_sample_copy"),
)
decisions = Table(
    "decisions",
    metadata,
    _id(),
    Column("request_id", String(128), nullable=False, unique=True),
    _ref("escalation_id", "escalations", nullable=False),
    _ref("annotator_id", "annotators", nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("label", Integer),
    Column("created_at", Float, nullable=False),
    Column("undone_at", Float),
    Index("ix_decisions_escalation_annotator", "escalation_id", "annotator_id"),
)
jobs = Table(  # background runs started from pages (playground.jobs)
    "jobs",
    metadata,
    _id(),
    Column("title", String(256), nullable=False),
    Column("args", Text, nullable=False),  # JSON: the `playground run` arguments
    Column(
        "status", String(16), nullable=False
    ),  # queued | running | finished | failed | cancelled | interrupted
    Column("pid", Integer),  # the worker, leader of its own process group
    Column("host", String(256), nullable=False),
    Column("run_dir", Text),
    Column("error", Text, nullable=False),
    Column("progress", Text, nullable=False),  # JSON: RunProgress.snapshot()
    Column("cancel_requested", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("heartbeat_at", Float, nullable=False),
    Index("ix_jobs_status", "status"),
)
users = Table(  # accounts (playground.accounts); an annotator's decisions carry the same name
    "users",
    metadata,
    _id(),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),  # argon2id, with its salt and parameters
    Column("role", String(16), nullable=False),  # annotator | reviewer | admin
    Column("disabled", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
)
members = Table(  # who works on which queue (a labelling project's queue has its name)
    "members",
    metadata,
    _id(),
    _ref("queue_id", "queues", nullable=False),
    _ref("user_id", "users", nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("queue_id", "user_id", name="uq_members_queue_user"),
)
projects = Table(  # labelling projects (playground.label): a pool of the user's images and its queue
    "projects",
    metadata,
    _id(),
    Column("name", String(128), nullable=False, unique=True),
    _ref("queue_id", "queues", nullable=False, unique=True),  # the queue of the same name
    Column("images_dir", Text, nullable=False),
    Column("settings", Text, nullable=False),  # JSON: ProjectSettings
    Column("created_at", Float, nullable=False),
)
model_versions = Table(  # the models a project trained from people's labels, in order
    "model_versions",
    metadata,
    _id(),
    _ref("project_id", "projects", nullable=False),
    Column("version", Integer, nullable=False),
    Column("path", Text, nullable=False),  # the folder of its safetensors weights
    Column("detail", Text, nullable=False),  # JSON: labels used, policy, held-out accuracy, seconds
    Column("created_at", Float, nullable=False),
    UniqueConstraint("project_id", "version", name="uq_model_versions_project_version"),
)
rounds = Table(  # one scoring pass over a project's pool
    "rounds",
    metadata,
    _id(),
    _ref("project_id", "projects", nullable=False),
    Column("number", Integer, nullable=False),
    Column("model_version", Integer, nullable=False),  # 0: no model yet (a diverse seed set)
    Column("status", String(16), nullable=False),  # running | complete | failed
    Column("pid", Integer),
    Column("host", String(256), nullable=False),
    Column("detail", Text, nullable=False),  # JSON: counts per route, threshold, error
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("ended_at", Float),
    UniqueConstraint("project_id", "number", name="uq_rounds_project_number"),
)
routes = Table(  # what a round decided for each pool sample
    "routes",
    metadata,
    _id(),
    _ref("round_id", "rounds", nullable=False),
    _ref("sample_id", "samples", nullable=False),
    Column("route", String(16), nullable=False),  # auto | escalate | ood | defer | seed | labelled
    Column("predicted", Integer, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("uncertainty", Float, nullable=False),
    Column("ood_score", Float, nullable=False),
    UniqueConstraint("round_id", "sample_id", name="uq_routes_round_sample"),
)
audit = Table(
    "audit",
    metadata,
    _id(),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("detail", Text, nullable=False),
)


def clean_name(value: Any, what: str, longest: int = 64) -> str:
    """``value`` stripped; a clear error when it is empty or longer than ``longest`` characters."""
    text = str(value if value is not None else "").strip()
    if not text or len(text) > longest:
        raise StoreError(f"the {what} must be 1 to {longest} characters long, got {text[:80]!r}")
    return text


# --------------------------------------------------------------------- what goes in


@dataclass
class QueueItem:
    """One sample to escalate: its image, the model's class probabilities and why it is escalated.

    ``image`` is (H, W) or (H, W, C) (a (1|3, H, W) array or tensor is moved channels-last), uint8
    or float in [0, 1]; None for a sample already in the queue's pool (a labelling project's).
    ``meta`` is any JSON-able data kept with the sample, e.g. the true label.
    """

    external_id: str
    image: Any
    probs: list[float]
    uncertainty: float
    disagreement: float = 0.0
    reason: str = "uncertain"
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)


def _numpy(value: Any) -> np.ndarray:
    """An array, a list or a (CPU or GPU, grad or not) tensor as a NumPy array."""
    return np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)


def image_record(image: Any) -> dict:
    """The image's raw pixels, dtype and shape; uint8 stays uint8, anything else becomes float32 in [0, 1]."""
    array = _numpy(image)
    if array.ndim == 3 and (array.shape[0] == 1 or (array.shape[0] == 3 and array.shape[2] not in (3, 4))):
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or not array.size:
        raise DataFormatError(f"an image must be (H, W) or (H, W, 1|3|4), got shape {tuple(array.shape)}")
    if array.dtype != np.uint8:
        array = array.astype(np.float32)
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise DataFormatError("a float image must have values in [0, 1]; pass uint8 for 0-255 pixels")
    array = np.ascontiguousarray(array)
    return {"image": array.tobytes(), "dtype": str(array.dtype), "shape": json.dumps(list(array.shape))}


def _probabilities(probs: Any, external_id: str) -> list[float]:
    try:
        values = [float(p) for p in _numpy(probs).astype(np.float64).reshape(-1)]
    except (TypeError, ValueError):
        values = []
    if len(values) < 2 or not all(math.isfinite(p) and p >= 0 for p in values):
        raise DataFormatError(
            f"item {external_id!r}: probs must be two or more finite, non-negative class probabilities"
        )
    return values


def prepare_item(item: QueueItem) -> dict:
    """Check ``item`` and turn it into column values for samples, predictions and escalations."""
    external_id = clean_name(item.external_id, "external id", 256)
    probs = _probabilities(item.probs, external_id)
    uncertainty, disagreement = float(item.uncertainty), float(item.disagreement)
    if not (math.isfinite(uncertainty) and math.isfinite(disagreement)):
        raise DataFormatError(f"item {external_id!r}: uncertainty and disagreement must be finite numbers")
    if item.reason not in REASONS:
        raise DataFormatError(
            f"item {external_id!r}: reason must be one of {', '.join(REASONS)}, got {item.reason!r}"
        )
    try:
        meta = json.dumps(item.meta or {})
    except TypeError as err:
        raise DataFormatError(f"item {external_id!r}: meta must be JSON-able ({err})") from None
    return {
        "external_id": external_id,
        "probs": probs,
        "class_names": None if item.class_names is None else [str(n) for n in item.class_names],
        "sample": None  # a pool sample already in the store is escalated without sending its image again
        if item.image is None
        else {"external_id": external_id, "meta": meta, **image_record(item.image)},
        "prediction": {
            "probs": json.dumps(probs),
            "predicted": int(np.argmax(probs)),
            "uncertainty": uncertainty,
            "disagreement": disagreement,
        },
        "escalation": {"reason": item.reason, "priority": uncertainty},
    }


# --------------------------------------------------------------------- what comes out


@dataclass
class Item:
    """An escalated sample as an annotator sees it."""

    escalation_id: int
    sample_id: int
    copy: int  # which of the k annotators asked for this sample (0..k-1; k for a reviewer)
    queue: str
    external_id: str
    image: np.ndarray
    probs: list[float]
    predicted: int
    class_names: list[str]
    uncertainty: float
    disagreement: float
    reason: str
    status: str
    leased_by: str | None
    lease_expires: float | None
    meta: dict

    @classmethod
    def from_row(cls, row) -> Item:
        image = np.frombuffer(row.image, dtype=row.dtype).reshape(json.loads(row.shape))
        return cls(
            escalation_id=row.id,
            sample_id=row.sample_id,
            copy=row.copy,
            queue=row.queue,
            external_id=row.external_id,
            image=image,
            probs=json.loads(row.probs),
            predicted=row.predicted,
            class_names=json.loads(row.class_names),
            uncertainty=row.uncertainty,
            disagreement=row.disagreement,
            reason=row.reason,
            status=row.status,
            leased_by=row.holder,
            lease_expires=row.lease_expires,
            meta=json.loads(row.meta),
        )

    @property
    def predicted_name(self) -> str:
        return self.class_names[self.predicted]

    def top_k(self, k: int = 3) -> list[tuple[int, str, float]]:
        """The ``k`` most probable classes: (index, name, probability), most probable first."""
        order = sorted(range(len(self.probs)), key=lambda c: -self.probs[c])[:k]
        return [(c, self.class_names[c], self.probs[c]) for c in order]

    def decided_label(self, action: str, label: int | None) -> int | None:
        """The label ``action`` stores: the model's for accept, ``label`` for correct, none otherwise."""
        if action == "accept":
            return self.predicted
        if action != "correct":
            return None
        if (
            label is None
            or isinstance(label, bool)
            or not isinstance(label, (int, np.integer))
            or not 0 <= label < len(self.class_names)
        ):
            raise StoreError(
                f"a correction needs a class index from 0 to {len(self.class_names) - 1}, got {label!r}"
            )
        return int(label)


@dataclass(frozen=True)
class Decision:
    """One annotator decision; ``undone_at`` is set when it was undone (decisions are never deleted)."""

    id: int
    request_id: str
    escalation_id: int
    external_id: str
    annotator: str
    action: str
    label: int | None
    created_at: float
    undone_at: float | None = None

    @property
    def undone(self) -> bool:
        return self.undone_at is not None

    def replayed(self, escalation_id: int, annotator: str, action: str, label: int | None) -> Decision:
        """This decision, when a replayed request asks for the same thing; a conflict otherwise."""
        same = (self.escalation_id, self.annotator, self.action) == (escalation_id, annotator, action)
        if not same or (action == "correct" and label != self.label):
            raise ConflictError(
                f"request id {self.request_id!r} was already used for another decision "
                f"({self.action} of item {self.external_id!r} by {self.annotator})"
            )
        return self
