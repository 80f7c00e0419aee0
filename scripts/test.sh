#!/usr/bin/env bash
# Set up everything, check formatting and lint, then run the whole test suite (slow and browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A PostgreSQL server for the store's tests (tests/conftest.py: store_url): started and given a test
# database by scripts/postgres.sh; without one those tests skip, unless PLAYGROUND_REQUIRE_PG=1 (CI).
if [[ -z "${PLAYGROUND_TEST_PG:-}" ]]; then
  if PLAYGROUND_TEST_PG=$(bash scripts/postgres.sh); then
    export PLAYGROUND_TEST_PG
  elif [[ "${PLAYGROUND_REQUIRE_PG:-0}" == 1 ]]; then
    echo "[test] PLAYGROUND_REQUIRE_PG=1 but there is no PostgreSQL server to test on (see above)" >&2
    exit 1
  else
    echo "[test] no PostgreSQL server: the store's postgresql tests skip" >&2
    unset PLAYGROUND_TEST_PG
  fi
fi
.venv/bin/ruff format --check --quiet . || { echo "[test] run: .venv/bin/ruff format ." >&2; exit 1; }
.venv/bin/ruff check --quiet .
# One worker per core (pytest-xdist), whole files per worker so module fixtures are built once;
# tests/conftest.py deals the files holding slow tests first. Each test uses one torch thread.
exec .venv/bin/python -m pytest -q --timeout=1200 -n auto --dist loadfile "$@"
