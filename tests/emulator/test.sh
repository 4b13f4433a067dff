#!/usr/bin/env bash
# Run the emulator's own tests with the venv's pytest (venv created like run.sh does).
# Extra arguments are passed to pytest.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="$(python3 "$HERE/bootstrap.py")"
export PYTHONDONTWRITEBYTECODE=1
cd "$HERE"
exec "$PY" -m pytest -p no:cacheprovider -q "$HERE/test_extension.py" "$@"
