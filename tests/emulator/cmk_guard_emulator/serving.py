"""How the emulator is served: moto's app behind cheroot, with HTTP/1.1 keep-alive.

werkzeug's development server (what `moto_server` runs) answers every request with
`Connection: close` and starts a thread per connection: each call paid a TCP connect and a
thread start on top of moto's own work, and no test could tell whether a client reuses its
connections, as it must against AWS. cheroot (CherryPy's WSGI server) keeps connections open
and answers from a pool of threads. (waitress, tried first, hands every request between its
I/O thread and a worker and stalled 30-100 ms several times more often.)

What differs from werkzeug's server, and why it does not matter here:
- the request URI as sent is in REQUEST_URI, where moto looks for werkzeug's RAW_URI (an
  ARN in a path arrives with its `/` encoded; moto matches routes on the raw form), and
  PATH_INFO keeps `%2F` encoded: `WerkzeugPaths` gives moto both as werkzeug did;
- request headers with an underscore in the name reach moto as they are (werkzeug dropped
  them and moto's handler put them back).
"""

import gc
from typing import Any, Callable
from urllib.parse import unquote_to_bytes, urlsplit

# Injected slow answers sleep in a worker thread: enough threads that the load test's
# concurrent callers and a test's slow answers never queue behind each other.
THREADS = 64
# The load test's processes connect all at once.
LISTEN_BACKLOG = 1024
# An idle kept-alive connection stays open longer than a client keeps it in its pool (the
# SDK's: 90 s): a client must never send on a connection the server has just closed.
IDLE_SECONDS = 300
GC_LESS_OFTEN = 10


class WerkzeugPaths:
    """The request's path as werkzeug's server gives it to moto: RAW_URI is the URI as sent
    (cheroot calls it REQUEST_URI), and PATH_INFO is wholly percent-decoded, as PEP 3333 has it
    (cheroot leaves `%2F` encoded there, which moto's routes and the request log would see)."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        uri = environ.get("REQUEST_URI")
        if uri:
            environ.setdefault("RAW_URI", uri)
            target = uri.split("?", 1)[0]
            path = urlsplit(target).path if "://" in target else target
            environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
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
    from cheroot import wsgi

    quieter_collector()
    server = wsgi.Server(
        (host, port),
        WerkzeugPaths(app),
        numthreads=THREADS,
        request_queue_size=LISTEN_BACKLOG,
        timeout=IDLE_SECONDS,
    )
    # cheroot closes kept-alive connections beyond ten: every function process and test
    # keeps its own.
    server.keep_alive_conn_limit = None
    server.safe_start()
