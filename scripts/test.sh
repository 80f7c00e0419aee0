#!/usr/bin/env bash
# Set up everything, check formatting and lint, then run the whole test suite (slow and browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff format --check --quiet . || { echo "[test] run: .venv/bin/ruff format ." >&2; exit 1; }
.venv/bin/ruff check --quiet .
# One worker per core (pytest-xdist), whole files per worker so module fixtures are built once;
# tests/conftest.py deals the files holding slow tests first. Each test uses one torch thread.
exec .venv/bin/python -m pytest -q --timeout=1200 -n auto --dist loadfile "$@"
