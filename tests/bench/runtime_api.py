"""Just enough of the Lambda Runtime API (2018-06-01) to run a function's release binary as
Lambda does: the process asks for its next invocation and posts a response or an error. One
server per process, so that a stopped process's pending request cannot take another's event.
Used by the benchmarks (bench.py, compare.py) and the load test (tests/load/load.py)."""

import http.server
import time
from typing import Callable, NamedTuple, Optional

TRACE_ID = "Root=1-00000000-000000000000000000000000"


class Invocation(NamedTuple):
    request_id: str
    body: bytes
    deadline_ms: int  # epoch milliseconds, as Lambda-Runtime-Deadline-Ms


class RuntimeApi(http.server.ThreadingHTTPServer):
    """`next_invocation()` blocks until there is one (None: answer nothing, the process is being
    stopped); `on_result(request_id, "response" | "error", body, perf_counter time)` gets what
    the process posts; `on_init_error(path, body)` an initialisation error."""

    daemon_threads = True

    def __init__(self, next_invocation: Callable[[], Optional[Invocation]],
                 on_result: Callable[[str, str, bytes, float], None],
                 on_init_error: Callable[[str, bytes], None], function_arn: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.next_invocation, self.on_result, self.on_init_error = next_invocation, on_result, on_init_error
        self.function_arn = function_arn

    @property
    def address(self) -> str:
        """What AWS_LAMBDA_RUNTIME_API says."""
        return f"127.0.0.1:{self.server_address[1]}"


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler for local harnesses: no access log, and a peer that went away (a
    stopped function process) is no error."""

    def log_message(self, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Handler(QuietHandler):
    server: RuntimeApi
    # Keep-alive, as Lambda's Runtime API: a connection per request would add a connect and a
    # thread start to every event the benchmark times.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without this, Nagle's algorithm holds the
    # body until the client's delayed ACK (40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            return self.send_error(404)
        invocation = self.server.next_invocation()
        if invocation is None:
            return
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", self.server.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", TRACE_ID)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(invocation.body)))
        self.end_headers()
        self.wfile.write(invocation.body)

    def do_POST(self):
        now = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        # /2018-06-01/runtime/invocation/<id>/(response|error), /2018-06-01/runtime/init/error
        parts = self.path.strip("/").split("/")
        if len(parts) == 5 and parts[2] == "invocation" and parts[4] in ("response", "error"):
            self.server.on_result(parts[3], parts[4], body, now)
        else:
            self.server.on_init_error(self.path, body)
