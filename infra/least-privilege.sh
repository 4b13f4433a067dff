#!/usr/bin/env bash
# Least privilege, proven from behaviour: judges the emulator's call log (every AWS call the
# functions made during the Rust integration tests; tests/tools.sh start_emulator writes it to
# CMK_GUARD_CALL_LOG) against the functions' IAM policies in template.yaml and
# member-account.yaml. Every call must be allowed (action, resource, conditions), and nothing
# may be granted that no call used. Usage: infra/least-privilege.sh CALL_LOG [pytest args]
# A missing or empty call log is a failure: nothing was proven. Works from any directory.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "usage: $0 CALL_LOG [pytest args] (the emulator's CMK_GUARD_CALL_LOG)" >&2
  exit 2
fi
CALL_LOG="$(realpath -m "$1")"
shift
if [ ! -s "$CALL_LOG" ]; then
  echo "least privilege: the call log $CALL_LOG is missing or empty: run the Rust tests against an emulator started with CMK_GUARD_CALL_LOG (tests/tools.sh start_emulator)" >&2
  exit 1
fi

source "$INFRA/venv.sh"
ensure_infra_venv

echo "==> pytest infra/least_privilege ($CALL_LOG: $(wc -l <"$CALL_LOG") calls)" >&2
cd "$INFRA"
# -p no:cacheprovider: no .pytest_cache in the source tree.
CMK_GUARD_CALL_LOG="$CALL_LOG" "$VENV/bin/python" -m pytest -p no:cacheprovider -q \
  "$INFRA/least_privilege" "$@"
