#!/usr/bin/env bash
# Validates the infrastructure on any machine: pinned virtualenvs (created on first use,
# rebuilt when infra/requirements.txt changes), cfn-lint and checkov on both templates, then
# pytest on infra/tests (the policy-versus-code drift test and the deployment safety tests).
# Works from any directory. On 2 cores with a Rust build running alongside: 2m20s cold (both
# virtualenvs installed), 25 s warm (checkov about half of it).
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$INFRA/.." && pwd)"
REQUIREMENTS="$INFRA/requirements.txt"

# cfn-lint, botocore, pytest: target/tools/infra-venv (shared with least-privilege.sh).
source "$INFRA/venv.sh"
ensure_infra_venv

# checkov pins a botocore the infra venv cannot share: a virtualenv of its own, from the
# "#checkov " lines of requirements.txt.
CHECKOV_VENV="$ROOT/target/tools/checkov-venv"
checkov_pins="$(sed -n 's/^#checkov //p' "$REQUIREMENTS")"
want="$(printf '%s\n' "$checkov_pins" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$CHECKOV_VENV/bin/checkov" ] || [ "$(cat "$CHECKOV_VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "==> checkov venv: installing the #checkov lines of $REQUIREMENTS into $CHECKOV_VENV" >&2
  rm -rf "$CHECKOV_VENV"
  mkdir -p "$(dirname "$CHECKOV_VENV")"
  python3 -m venv "$CHECKOV_VENV"
  printf '%s\n' "$checkov_pins" >"$CHECKOV_VENV/requirements.txt"
  "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$CHECKOV_VENV/requirements.txt"
  echo "$want" >"$CHECKOV_VENV/.requirements.sha256"
fi

echo "==> cfn-lint" >&2
# No rule is suppressed: both templates pass cfn-lint's defaults as they are. A future
# suppression belongs in the template's Metadata (cfn-lint: config: ignore_checks) with a
# comment saying why.
"$VENV/bin/cfn-lint" "$INFRA/template.yaml" "$INFRA/member-account.yaml"
echo "cfn-lint: template.yaml and member-account.yaml passed" >&2

echo "==> checkov" >&2
# The cloudformation framework reads AWS::Serverless::Function as it is (no SAM transform
# needed). Every finding is fixed or skipped in the resource's Metadata (checkov: skip: id,
# comment saying why); none is skipped here. --skip-download: no call to the vendor's
# platform (this machine reaches none, and the checks need none).
(cd "$INFRA" && "$CHECKOV_VENV/bin/checkov" --framework cloudformation \
  --file template.yaml --file member-account.yaml --skip-download --compact --quiet)

echo "==> pytest infra/tests" >&2
cd "$INFRA"
# -p no:cacheprovider: no .pytest_cache in the source tree.
"$VENV/bin/python" -m pytest -p no:cacheprovider -q "$INFRA/tests" "$@"
