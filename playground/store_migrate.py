"""Upgrading an annotation database written by an older playground, in place and keeping every row.

Version 1 → 2 (redundant labels and accounts): ``queues`` gains ``redundancy`` (1: one annotator per
item, as before) and ``escalations`` gains ``copy`` (0 for every existing row), its unique key
becoming ``(sample_id, copy)`` instead of ``sample_id``; ``users`` and ``members`` are new tables
(``metadata.create_all`` makes them). SQLite cannot drop a unique constraint, so the escalations
table is rebuilt under the same name, the way SQLite's documentation describes: foreign keys off,
rename the old table (``legacy_alter_table`` on, so that the decisions still point at
``escalations``), create the new one, copy, drop the old, check the foreign keys, commit.
"""

from __future__ import annotations

from sqlalchemy import MetaData, Table, UniqueConstraint, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from playground.errors import StoreError

COPIED = (
    "id, queue_id, sample_id, prediction_id, reason, priority, status, leased_by, lease_expires, updated_at"
)


def upgrade(conn: Connection, version: int, target: int) -> None:
    """Bring a server database's tables from ``version`` to ``target`` inside the caller's transaction."""
    if version == 1 and target >= 2:
        conn.execute(text("ALTER TABLE queues ADD COLUMN redundancy INTEGER NOT NULL DEFAULT 1"))
        conn.execute(text('ALTER TABLE escalations ADD COLUMN "copy" INTEGER NOT NULL DEFAULT 0'))
        for constraint in Table("escalations", MetaData(), autoload_with=conn).constraints:
            columns = [c.name for c in getattr(constraint, "columns", [])]
            if isinstance(constraint, UniqueConstraint) and columns == ["sample_id"]:
                conn.execute(text(f'ALTER TABLE escalations DROP CONSTRAINT "{constraint.name}"'))
        conn.execute(
            text(
                'ALTER TABLE escalations ADD CONSTRAINT uq_escalations_sample_copy UNIQUE (sample_id, "copy")'
            )
        )
        version = 2
    if version != target:
        raise StoreError(f"cannot upgrade the annotation database from schema version {version} to {target}")


def upgrade_sqlite(engine: Engine, target: int) -> None:
    """Upgrade a version-1 SQLite file before the store opens it.

    Rebuilding a table that other tables point at needs foreign keys off, which SQLite only allows
    outside a transaction: this runs on the raw connection, in one ``BEGIN IMMEDIATE`` transaction
    (a second process waits, then finds the work done), and checks the foreign keys before committing.
    """
    raw = engine.raw_connection()
    db = raw.driver_connection
    try:
        if not _version_table(db):
            return
        db.execute("PRAGMA foreign_keys=OFF")
        db.execute("PRAGMA legacy_alter_table=ON")  # renaming must not rewrite the decisions' reference
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("SELECT version FROM schema_info").fetchone()
            if version is not None and version[0] == 1 and target >= 2:
                _rebuild_sqlite_v1(db, engine)
                db.execute("UPDATE schema_info SET version = 2")
                if db.execute("PRAGMA foreign_key_check").fetchall():
                    raise StoreError("the upgraded annotation database failed its foreign-key check")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("PRAGMA legacy_alter_table=OFF")
        db.execute("PRAGMA foreign_keys=ON")
        raw.close()


def _version_table(db) -> bool:
    found = db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_info'")
    return found.fetchone() is not None


def _rebuild_sqlite_v1(db, engine: Engine) -> None:
    from playground.store_schema import escalations  # the version-2 definition

    db.execute("ALTER TABLE queues ADD COLUMN redundancy INTEGER NOT NULL DEFAULT 1")
    db.execute("DROP INDEX IF EXISTS ix_escalations_queue_status_priority")
    db.execute("ALTER TABLE escalations RENAME TO escalations_v1")
    db.execute(str(CreateTable(escalations).compile(engine)))
    for index in escalations.indexes:
        db.execute(str(CreateIndex(index).compile(engine)))
    db.execute(f'INSERT INTO escalations ({COPIED}, "copy") SELECT {COPIED}, 0 FROM escalations_v1')
    db.execute("DROP TABLE escalations_v1")
