#!/usr/bin/env bash
# Set up everything, then start the Streamlit app on http://127.0.0.1:8501 (localhost only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/playground app "$@"
