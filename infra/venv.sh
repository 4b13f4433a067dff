# The infra checks' pinned virtualenv (target/tools/infra-venv), created on first use and
# rebuilt when infra/requirements.txt changes. Source it (from bash, with `set -e`), then call
# `ensure_infra_venv`: it sets VENV and (re)installs when needed. Used by least-privilege.sh;
# check.sh does the same by itself until it is switched to this file.

ensure_infra_venv() {
  local infra root requirements stamp want
  infra="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  root="$(cd "$infra/.." && pwd)"
  VENV="$root/target/tools/infra-venv"
  requirements="$infra/requirements.txt"
  stamp="$VENV/.requirements.sha256"
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> infra venv: installing $requirements into $VENV" >&2
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
  fi
}
