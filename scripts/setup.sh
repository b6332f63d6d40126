#!/usr/bin/env bash
# Create ./.venv (if needed) and install deeprl into it. Usage: scripts/setup.sh [EXTRAS]
# e.g. `scripts/setup.sh test` or `scripts/setup.sh test,bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
# torch 2.13.0 first: on the project machines it resolves to the local CPU build, so the
# unpinned requirement below is already satisfied and no CUDA packages are pulled.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
extras=${1:-}
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
