"""How the emulator is served: moto's app behind waitress, with HTTP/1.1 keep-alive.

werkzeug's development server (what `moto_server` runs) answers every request with
`Connection: close` and starts a thread per connection, so each call the guard makes paid a
TCP connect and a thread start on top of moto's own work, and the benchmark measured the
server more than the guard. waitress keeps connections open and answers from a fixed pool of
threads, as a real endpoint keeps a client's connections open.

What differs from werkzeug's server, and why it does not matter here:
- waitress drops request headers with an underscore in the name (werkzeug drops them too;
  moto's own handler then re-adds them for S3 user metadata, which the guard never sends);
- the request URI as sent is in REQUEST_URI, where moto looks for werkzeug's RAW_URI (an
  ARN in a path arrives with its `/` encoded; moto matches routes on the raw form): it is
  copied across.
"""

import gc
from typing import Any, Callable

# Injected slow answers sleep in a worker thread: enough threads that the load test's
# concurrent callers and a test's slow answers never queue behind each other.
THREADS = 64
# Every function process keeps its own pool of connections open.
CONNECTION_LIMIT = 1000
GC_LESS_OFTEN = 10


class RawUri:
    """Gives moto the request URI as sent, under the name werkzeug's server uses."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "RAW_URI" not in environ and "REQUEST_URI" in environ:
            environ["RAW_URI"] = environ["REQUEST_URI"]
        return self.app(environ, start_response)


def quieter_collector() -> None:
    """Python's cyclic collector stops every thread while it walks the heap; with moto's
    modules and a growing request log a full collection took 60-225 ms, a pause every
    client saw as one slow answer. Everything loaded at start is frozen out of the walk, and
    the youngest generation is collected ten times less often (memory is not this server's
    constraint)."""
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0 * GC_LESS_OFTEN, gen1, gen2)


def serve(app: Callable[..., Any], host: str, port: int) -> None:
    import waitress

    quieter_collector()
    waitress.serve(
        RawUri(app),
        host=host,
        port=port,
        threads=THREADS,
        connection_limit=CONNECTION_LIMIT,
        _quiet=True,
    )
