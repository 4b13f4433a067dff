"""python -m cmk_guard_emulator --host 127.0.0.1 --port 5000"""

import argparse
import os
import signal
import sys
from typing import Any


def main(argv: "list[str] | None" = None) -> None:
    parser = argparse.ArgumentParser(prog="cmk_guard_emulator")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))

    from . import apply_patches, make_app

    apply_patches()  # before any moto app / URL map exists
    from .serving import serve

    def _exit(signum: Any, frame: Any) -> None:
        sys.exit(0)

    signal.signal(signal.SIGINT, _exit)
    signal.signal(signal.SIGTERM, _exit)
    print(f"[emulator] moto + cmk_guard_emulator on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    serve(make_app(), args.host, args.port)


if __name__ == "__main__":
    main()
