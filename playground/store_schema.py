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

import os
import random
import re
import sqlite3
import time
from pathlib import Path

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
from playground.errors import StoreError
from playground.store_records import (  # noqa: F401 - the records, imported from here by callers
    REASONS,
    Decision,
    Item,
    QueueItem,
    clean_name,
    image_record,
    prepare_item,
)

SCHEMA_VERSION = 2  # 2: redundant labels (queues.redundancy, escalations.copy), accounts, labelling projects
ACTIONS = ("accept", "correct", "skip", "ood")
ROLES = ("annotator", "reviewer", "admin")
BUSY_SECONDS = 30.0  # how long a SQLite connection waits for another's lock
SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}",
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
        _retry_while_locked(cursor.execute, pragma)
    cursor.close()


def _retry_while_locked(step, *args, seconds: float = BUSY_SECONDS) -> None:
    """Run ``step`` again while SQLite says the database is locked, up to ``seconds``. Switching a new
    file to WAL while other connections open it at the same moment fails at once instead of waiting
    on the busy timeout (several Stores created together on a fresh database)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            step(*args)
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.005 + 0.02 * random.random())


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(
        "BEGIN IMMEDIATE" if conn.get_execution_options().get("playground_write") else "BEGIN"
    )


def without_password(text) -> str:
    """``text`` with any ``scheme://user:password@`` password shown as ``***``, cut to 200 characters:
    what an error message may repeat of a database URL."""
    text = str(text)
    where = r"(://[^:/@\s]*:)[^@\s]*@" if "://" in text else r"^([^:/@\s]*:)[^@\s]*@"  # with a scheme or not
    shown = re.sub(where, r"\1***@", text)
    return shown if len(shown) <= 200 else shown[:199] + "…"


def open_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite with WAL, the pragmas and ``BEGIN IMMEDIATE`` for writes."""
    try:
        if isinstance(url, str) and "\x00" in url:
            raise ArgumentError("it holds a NUL byte")
        parsed = make_url(url)
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver is psycopg2; we ship psycopg 3
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "postgresql":
            return create_engine(parsed, pool_pre_ping=True, isolation_level="READ COMMITTED")
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as err:  # ValueError: a bad port
        raise StoreError(
            f"cannot use the database URL {without_password(url)!r}: {without_password(err)}; "
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
