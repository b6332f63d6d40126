#!/usr/bin/env bash
# Install the test dependencies and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
exec .venv/bin/python -m pytest -q -n 2 "$@"
