#!/usr/bin/env bash
# Start the local AWS emulator (moto 5.2.5 + cmk_guard_emulator patches) in the
# foreground on 127.0.0.1:PORT (default 5000). Creates tests/emulator/.venv on
# first use. Usage: tests/emulator/run.sh [PORT]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${1:-5000}"
PY="$(python3 "$HERE/bootstrap.py")"
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$PY" -m cmk_guard_emulator --host 127.0.0.1 --port "$PORT"
