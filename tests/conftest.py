"""Shared fixtures: every test writes runs into its own temporary PLAYGROUND_HOME."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# Tests are small: one thread avoids oversubscription on a 2-core machine.
torch.set_num_threads(int(os.environ.get("PLAYGROUND_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def keep_main_module():
    """Streamlit's AppTest leaves ``sys.modules["__main__"]`` pointing at the app script; a later
    spawn-context child would then re-run ``apps/app.py`` and fail. Put pytest's back after each test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(autouse=True)
def playground_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "runs"
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    monkeypatch.delenv("PLAYGROUND_DATA", raising=False)
    monkeypatch.delenv("PLAYGROUND_DEVICE", raising=False)
    monkeypatch.delenv("PLAYGROUND_DB", raising=False)  # the annotation store follows PLAYGROUND_HOME
    monkeypatch.setenv("PLAYGROUND_REFERENCE", str(tmp_path / "no-reference"))  # tests of it set their own
    return home


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A database URL for the annotation store, on each backend: a fresh SQLite file, or a fresh schema
    of the PostgreSQL test database ``$PLAYGROUND_TEST_PG`` (``scripts/postgres.sh`` makes one), selected
    through the URL's ``search_path`` and dropped afterwards, so tests (and pytest-xdist workers) never
    see each other's rows. Without a server the postgresql variant skips, or fails when
    ``PLAYGROUND_REQUIRE_PG=1`` (CI)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server = os.environ.get("PLAYGROUND_TEST_PG", "").strip()
    if not server:
        reason = "no PostgreSQL server: set PLAYGROUND_TEST_PG (bash scripts/postgres.sh prints one)"
        if os.environ.get("PLAYGROUND_REQUIRE_PG") == "1":
            pytest.fail(f"{reason}; PLAYGROUND_REQUIRE_PG=1 requires it")
        pytest.skip(reason)
    yield from _postgres_schema(server)


def _postgres_schema(server: str):
    """A new schema in the ``server`` database for one test: its URL, then the schema is dropped."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    schema = f"test_{uuid.uuid4().hex[:16]}"
    base = make_url(server)
    engine = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as err:  # noqa: BLE001 - any failure to reach the server reads the same
        engine.dispose()
        pytest.fail(f"cannot create a schema in the PostgreSQL test database {base!r}: {err}")
    options = " ".join(filter(None, [base.query.get("options", ""), f"-csearch_path={schema}"]))
    try:
        yield base.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text("SET lock_timeout = '20s'"))
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def needs_fashion_mnist():
    return pytest.mark.skipif(
        not FASHION_DIR.is_dir() and not os.environ.get("CI"),
        reason="Fashion-MNIST not installed (sudo apt-get install dataset-fashion-mnist)",
    )


def pytest_collection_modifyitems(config, items):
    """Files holding a slow test run first (in their own order): under pytest-xdist (``scripts/test.sh``
    runs ``-n auto --dist loadfile``) the long files then start at once on every worker, rather than
    one of them being dealt last to a worker that is otherwise done."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
