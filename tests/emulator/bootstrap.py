#!/usr/bin/env python3
"""Create/refresh tests/emulator/.venv from requirements.txt (stdlib only).

Safe to run concurrently from several processes: an exclusive fcntl lock on
tests/emulator/.venv.lock serialises creation, and the hash stamp is written
last, so a process that sees a matching stamp sees a complete venv.
Reinstalls only when requirements.txt (or the Python version) changes.
Prints the venv's python path on stdout.
"""

import fcntl
import hashlib
import os
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
REQ = os.path.join(HERE, "requirements.txt")
LOCK = os.path.join(HERE, ".venv.lock")
STAMP = os.path.join(VENV, ".requirements.sha256")
PY = os.path.join(VENV, "bin", "python")


def wanted_hash() -> str:
    h = hashlib.sha256()
    with open(REQ, "rb") as f:
        h.update(f.read())
    h.update(sys.version.encode())
    return h.hexdigest()


def is_current(want: str) -> bool:
    try:
        with open(STAMP) as f:
            return f.read().strip() == want and os.path.exists(PY)
    except OSError:
        return False


def main() -> None:
    want = wanted_hash()
    if not is_current(want):
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not is_current(want):  # somebody else may have done it meanwhile
                if os.path.exists(STAMP):
                    os.remove(STAMP)
                if not os.path.exists(PY):
                    print("[emulator] creating virtualenv in", VENV, file=sys.stderr)
                    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
                print("[emulator] installing", REQ, file=sys.stderr)
                subprocess.check_call(
                    [PY, "-m", "pip", "install", "--disable-pip-version-check",
                     "-q", "-r", REQ],
                    stdout=sys.stderr,
                )
                tmp = STAMP + ".tmp"
                with open(tmp, "w") as f:
                    f.write(want + "\n")
                os.replace(tmp, STAMP)
    print(PY)


if __name__ == "__main__":
    main()
