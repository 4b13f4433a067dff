"""Request log: GET /_cmk_guard/requests lists every AWS API request served since start
or since the last POST /moto-api/reset (which clears it).

Each record also says who made the request and what it named: `app` (the `cmk-guard-...`
app name from the user agent), `region` (SigV4 credential scope), `principal` (the IAM role
behind assumed-role credentials) and `params` (the request's parameters, size-capped). With
the environment variable CMK_GUARD_CALL_LOG naming a file, every record with an `app` is
also appended there as one JSON line when its request ends, and resets never clear it: the
call log infra/least-privilege.sh judges against the functions' IAM policies.

The middleware also serves /_cmk_guard/options (options.py) and answers injected faults
(faults.py): both need the account/service/operation this module resolves.
"""

import json
import os
import re
import threading
import time
from http import HTTPStatus
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, parse_qsl

from moto.core.responses import BaseResponse

from . import faults, options

_lock = threading.Lock()
_log: list[dict[str, Any]] = []
_current = threading.local()

CALL_LOG_ENV = "CMK_GUARD_CALL_LOG"
_call_log_lock = threading.Lock()

# The SDKs put the app name into the user agent as `app/<name>` (x-amz-user-agent and
# user-agent); only the guard's own names count.
_APP_RE = re.compile(r"(?:^|\s)app/(cmk-guard-[A-Za-z0-9!#$%&'*+\-.^_`|~]+)")

# params size caps: enough to name every resource a request touches, never a whole document.
MAX_STRING = 512
MAX_ITEMS = 50
MAX_DEPTH = 8
MAX_PARAMS_JSON = 16384


def clear() -> None:
    with _lock:
        _log.clear()


def snapshot() -> list[dict[str, Any]]:
    with _lock:
        return [dict(r) for r in _log]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _json_answer(start_response: Callable[..., Any], status: int, body_obj: Any) -> list[bytes]:
    body = json.dumps(body_obj).encode()
    start_response(f"{status} {_reason(status)}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _credential_scope(environ: dict[str, Any]) -> list[str]:
    """[access key, date, region, service, "aws4_request"] of the SigV4 credential, or []."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:  # "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/kms/aws4_request, ..."
        return auth.split("Credential=", 1)[1].split(",", 1)[0].strip().split("/")
    except IndexError:
        pass
    credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")  # presigned
    return credential[0].split("/") if credential else []


def app_name(environ: dict[str, Any]) -> Optional[str]:
    """The `cmk-guard-<function>` app name the request's user agent carries, else None."""
    for header in ("HTTP_X_AMZ_USER_AGENT", "HTTP_USER_AGENT"):
        match = _APP_RE.search(environ.get(header, ""))
        if match:
            return match.group(1)
    return None


def _initial_record(environ: dict[str, Any]) -> dict[str, Any]:
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get("PATH_INFO", "")
    scope = _credential_scope(environ)
    service: Optional[str] = scope[3] if len(scope) > 3 else None
    operation: Optional[str] = None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        operation = target.split(".")[-1]
    else:
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        if action:
            operation = action[0]
    record: dict[str, Any] = {
        "service": service,
        "operation": operation or f"{method} {path}",
        "method": method,
        "path": path,
        "account": None,
        "app": app_name(environ),
        "region": scope[2] if len(scope) > 2 else None,
        "principal": None,
        # Until moto's handler parses the body: what the URL alone says.
        "params": _rest_params(path, environ.get("QUERY_STRING", ""), None, environ.get("HTTP_HOST")),
        # When the request arrived (epoch seconds) and how long the emulator took with it:
        # benchmarks tell the emulator's time from the function's.
        "received": time.time(),
        "ms": None,
        # The caller's end of the connection: requests on one connection share it, so tests
        # can tell a reused connection from a new one.
        "connection": f"{environ.get('REMOTE_ADDR', '')}:{environ.get('REMOTE_PORT', '')}",
    }
    _current.access_key = scope[0] if scope else None
    return record


def _cap(value: Any, depth: int = 0, string: int = MAX_STRING, items: int = MAX_ITEMS) -> tuple[Any, bool]:
    """`value` with long strings, long lists and deep nesting cut; (capped, whether cut)."""
    if isinstance(value, str):
        if len(value) > string:
            return value[:string] + f"...[{len(value)} chars]", True
        return value, False
    if depth >= MAX_DEPTH and isinstance(value, (dict, list)):
        return "...", True
    if isinstance(value, dict):
        out, cut = {}, False
        for key, item in value.items():
            out[str(key)], c = _cap(item, depth + 1, string, items)
            cut = cut or c
        return out, cut
    if isinstance(value, list):
        out_list, cut = [], len(value) > items
        for item in value[:items]:
            capped, c = _cap(item, depth + 1, string, items)
            out_list.append(capped)
            cut = cut or c
        return out_list, cut
    return value, False


def _single(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form or query pairs as {name: value}, repeated names as {name: [values]}."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            out[key] = [*out[key], value] if isinstance(out[key], list) else [out[key], value]
        else:
            out[key] = value
    return out


def _rest_params(path: str, query: str, body: Any, host: Optional[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"path": path, "query": _single(parse_qsl(query, keep_blank_values=True))}
    if host:
        params["host"] = host
    if body not in (None, "", b""):
        params["body"] = body
    return params


def _body_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    return raw if isinstance(raw, str) else ""


def request_params(resp: BaseResponse, record: dict[str, Any]) -> dict[str, Any]:
    """What a request names, by its protocol: the JSON body (json protocols, X-Amz-Target),
    the form parameters without Action/Version (query protocol), else (REST) the path, the
    query string and the body (JSON when it parses, else its text)."""
    headers = resp.headers
    text = _body_text(getattr(resp, "raw_body", None))
    content_type = str(headers.get("Content-Type") or "")
    query = resp.parsed_url.query if getattr(resp, "parsed_url", None) else ""
    if headers.get("X-Amz-Target"):
        try:
            body = json.loads(text) if text.strip() else {}
        except ValueError:
            body = {"_body": text}
        return body if isinstance(body, dict) else {"_body": body}
    if "x-www-form-urlencoded" in content_type or (record["method"] == "GET" and "Action=" in query):
        # werkzeug parses a form body into request.form and leaves request.data empty
        form = getattr(resp, "form_data", None)
        body_pairs = list(form.items(multi=True)) if form else parse_qsl(text, keep_blank_values=True)
        pairs = parse_qsl(query, keep_blank_values=True) + body_pairs
        return _single([(k, v) for k, v in pairs if k not in ("Action", "Version")])
    body: Any = text
    if text.strip():
        try:
            body = json.loads(text)
        except ValueError:
            pass
    return _rest_params(record["path"], query, body, headers.get("Host"))


def _principal(account: Optional[str], region: Optional[str], access_key: Optional[str]) -> Optional[str]:
    """The IAM role behind assumed-role credentials (moto remembers the role of every key
    sts:AssumeRole handed out), else None."""
    if not account or not access_key:
        return None
    try:
        from moto.iam.models import iam_backends
        from moto.utilities.utils import get_partition

        if account not in iam_backends:
            return None
        key = iam_backends[account][get_partition(region or "us-east-1")].access_keys.get(access_key)
        return getattr(key, "role_arn", None) if key is not None else None
    except Exception:  # noqa: BLE001 - logging must never break a request
        return None


def _finish(record: dict[str, Any], access_key: Optional[str]) -> None:
    """Completes the record once the request is over and appends it to the call log."""
    record["ms"] = round((time.time() - record["received"]) * 1000, 3)
    if record["account"] is None:
        record["account"] = _default_account()
    record["principal"] = _principal(record["account"], record["region"], access_key)
    params, cut = _cap(record["params"])
    if len(json.dumps(params, default=str)) > MAX_PARAMS_JSON:
        # Still too big: shorter strings and lists, the structure (what names resources) kept.
        params, cut = _cap(record["params"], string=64, items=10)
    if len(json.dumps(params, default=str)) > MAX_PARAMS_JSON and isinstance(params, dict):
        params, cut = {k: v for k, v in params.items() if not isinstance(v, (dict, list))}, True
    if cut:
        record["params_truncated"] = True
    record["params"] = params
    if record["app"]:
        append_call(record)


def append_call(record: dict[str, Any]) -> None:
    """One JSON line in the file CMK_GUARD_CALL_LOG names (nothing without it)."""
    path = os.environ.get(CALL_LOG_ENV)
    if not path:
        return
    line = json.dumps(record, default=str, sort_keys=True) + "\n"
    try:
        with _call_log_lock, open(path, "a", encoding="utf-8") as f:
            f.write(line)
    except OSError as e:  # a broken log must be seen, but never break the request
        import sys

        print(f"[emulator] cannot append to {CALL_LOG_ENV}={path}: {e}", file=sys.stderr, flush=True)


class RequestLogMiddleware:
    """WSGI middleware around moto's DomainDispatcherApplication."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if path.rstrip("/") == "/_cmk_guard/requests":
            if method == "DELETE":
                clear()
                return _json_answer(start_response, 200, {})
            return _json_answer(start_response, 200, {"requests": snapshot()})
        if path.rstrip("/") == "/_cmk_guard/options":
            return _json_answer(start_response, *options.handle(environ))
        if path.startswith("/moto-api") or path.startswith("/_cmk_guard") or path == "/favicon.ico":
            result = self.app(environ, start_response)
            if path.rstrip("/") == "/moto-api/reset" and method == "POST":
                clear()
                options.clear()
            return result

        record = _initial_record(environ)
        with _lock:
            _log.append(record)
        _current.record = record
        _current.fault_checked = False
        try:
            return self.app(environ, start_response)
        except faults.FaultInjected as fault:
            body = fault.body.encode()
            headers = [*fault.headers.items(), ("Content-Length", str(len(body)))]
            start_response(f"{fault.status} {_reason(fault.status)}", headers)
            return [body]
        finally:
            _current.record = None
            _finish(record, getattr(_current, "access_key", None))


def request_content_type(resp: BaseResponse) -> str:
    try:
        return str(resp.headers.get("Content-Type") or "")
    except Exception:  # noqa: BLE001
        return ""


def _default_account() -> str:
    import os

    from moto.core import DEFAULT_ACCOUNT_ID

    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


def apply() -> None:
    """Let moto's responses fill in service, operation and account of the current record."""
    if getattr(BaseResponse, "_cmk_guard_log", False):
        return
    BaseResponse._cmk_guard_log = True  # type: ignore[attr-defined]
    orig_setup = BaseResponse.setup_class

    def setup_class(self: BaseResponse, *args: Any, **kwargs: Any) -> None:
        orig_setup(self, *args, **kwargs)
        record = getattr(_current, "record", None)
        if record is None:
            return
        try:
            if self.service_name:
                record["service"] = self.service_name
            record["account"] = self.current_account
            record["params"] = request_params(self, record)
            action = self._get_action()
            if action:
                record["operation"] = action
            if self.service_name == "sns" and action == "Publish":
                # Tests check every rendering of a MessageStructure=json message, which an
                # SQS subscriber alone cannot show (it only ever gets the "sqs" key).
                record["publish"] = {
                    name: self._get_param(name)
                    for name in ("TopicArn", "Subject", "MessageStructure", "Message")
                }
        except Exception:  # noqa: BLE001 - logging must never break a request
            pass
        # once per request (some handlers call setup_class again), after the record is complete
        if not getattr(_current, "fault_checked", True):
            _current.fault_checked = True
            faults.check(record, request_content_type(self))

    BaseResponse.setup_class = setup_class  # type: ignore[method-assign]
