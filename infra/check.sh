#!/usr/bin/env bash
# Validates the infrastructure on any machine: a pinned virtualenv (created on first use,
# rebuilt when infra/requirements.txt changes), cfn-lint on both templates, then pytest on
# infra/tests (the policy-versus-code drift test). Works from any directory.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$INFRA/.." && pwd)"
VENV="$ROOT/target/tools/infra-venv"
REQUIREMENTS="$INFRA/requirements.txt"
STAMP="$VENV/.requirements.sha256"

want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "==> infra venv: installing $REQUIREMENTS into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  echo "$want" >"$STAMP"
fi

echo "==> cfn-lint" >&2
# No rule is suppressed: both templates pass cfn-lint's defaults as they are. A future
# suppression belongs in the template's Metadata (cfn-lint: config: ignore_checks) with a
# comment saying why.
"$VENV/bin/cfn-lint" "$INFRA/template.yaml" "$INFRA/member-account.yaml"
echo "cfn-lint: template.yaml and member-account.yaml passed" >&2

echo "==> pytest infra/tests" >&2
cd "$INFRA"
# -p no:cacheprovider: no .pytest_cache in the source tree.
"$VENV/bin/python" -m pytest -p no:cacheprovider -q "$INFRA/tests" "$@"
