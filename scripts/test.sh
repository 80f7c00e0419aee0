#!/usr/bin/env bash
# Set up everything, check formatting and lint, then run the whole test suite (slow and browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff format --check --quiet . || { echo "[test] run: .venv/bin/ruff format ." >&2; exit 1; }
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest -q --timeout=900 "$@"
