"""Request log: GET /_cmk_guard/requests lists every AWS API request served since start
or since the last POST /moto-api/reset (which clears it).

The middleware also serves /_cmk_guard/options (options.py) and answers injected faults
(faults.py): both need the account/service/operation this module resolves.
"""

import json
import threading
from http import HTTPStatus
from typing import Any, Callable, Optional
from urllib.parse import parse_qs

from moto.core.responses import BaseResponse

from . import faults, options

_lock = threading.Lock()
_log: list[dict[str, Any]] = []
_current = threading.local()


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


def _initial_record(environ: dict[str, Any]) -> dict[str, Any]:
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get("PATH_INFO", "")
    service: Optional[str] = None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:  # "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/kms/aws4_request, ..."
        service = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")[3]
    except IndexError:
        pass
    operation: Optional[str] = None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        operation = target.split(".")[-1]
    else:
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        if action:
            operation = action[0]
    return {
        "service": service,
        "operation": operation or f"{method} {path}",
        "method": method,
        "path": path,
        "account": None,
    }


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
            if record["account"] is None:
                record["account"] = _default_account()


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
