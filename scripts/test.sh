#!/usr/bin/env bash
# Sets everything up (idempotently) and runs the project's checks: ruff, mypy --strict, pytest.
# Extra arguments go to pytest.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/setup.sh --dev
export PATH="$repo/.venv/bin:$PATH"
echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy --strict"
mypy
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
