"""Per-account emulator options, set over HTTP.

Tests share one server and each runs in its own 12-digit account, so every option is
kept per account: `POST /_cmk_guard/options` merges `{"account": ..., name: value}` into
that account's options (null removes a name), `GET /_cmk_guard/options?account=...`
reads them, `POST /moto-api/reset` clears them all. Unknown names and ill-typed values are
refused with HTTP 400, so a misspelt option never silently does nothing.
"""

import copy
import json
import re
import threading
from typing import Any, Callable, Optional
from urllib.parse import parse_qs

ACCOUNT_RE = re.compile(r"^\d{12}$")
FAULT_KEYS = {"operation", "code", "status", "message", "count", "delaySeconds"}

_lock = threading.Lock()
_options: dict[str, dict[str, Any]] = {}


class OptionError(ValueError):
    """A request to the options endpoint that must be refused (HTTP 400)."""


# --------------------------------------------------------------------------- validators


def _number(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise OptionError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _string(name: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise OptionError(f"{name} must be a non-empty string or null, got {value!r}")
    return value


def _extra_members(name: str, value: Any) -> Any:
    if not isinstance(value, dict):
        raise OptionError(f"{name} must be an object mapping a dotted path to a JSON value")
    for path in value:
        if not path or any(seg == "" for seg in path.split(".")):
            raise OptionError(f"{name}: bad path {path!r} (dotted, no empty segments)")
    return copy.deepcopy(value)


def _faults(name: str, value: Any) -> Any:
    if not isinstance(value, list):
        raise OptionError(f"{name} must be a list of fault objects")
    out = []
    for i, fault in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(fault, dict):
            raise OptionError(f"{where} must be an object")
        unknown = set(fault) - FAULT_KEYS
        if unknown:
            raise OptionError(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(FAULT_KEYS)})")
        op = fault.get("operation")
        if not isinstance(op, str) or op.count(":") != 1:
            raise OptionError(f"{where}.operation must be '<service>:<Operation>', got {op!r}")
        service, operation = op.split(":")
        from .faults import check_operation  # late: pulls in botocore models

        problem = check_operation(service, operation)
        if problem:
            raise OptionError(f"{where}.operation: {problem}")
        code = fault.get("code")
        delay = fault.get("delaySeconds")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 60):
            raise OptionError(f"{where}.delaySeconds must be a number of seconds from 0 to 60")
        if code is None and delay is None:
            raise OptionError(f"{where} needs a code (answer an error) or delaySeconds (answer late), or both")
        if code is not None and (not isinstance(code, str) or not code):
            raise OptionError(f"{where}.code must be a non-empty string")
        status = fault.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599):
            raise OptionError(f"{where}.status must be an integer 400-599, got {status!r}")
        message = fault.get("message")
        if message is not None and not isinstance(message, str):
            raise OptionError(f"{where}.message must be a string")
        count = fault.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise OptionError(f"{where}.count must be an integer >= 0 (absent = forever)")
        out.append({k: v for k, v in fault.items() if v is not None})
    return out


# name -> validator returning the value to store
KNOWN: dict[str, Callable[[str, Any], Any]] = {
    "guardrailTransitionSeconds": _number,
    "guardrailUpdateFailure": _string,
    "getGuardrailExtraMembers": _extra_members,
    "jobCompletionSeconds": _number,  # unset (null) = bedrock jobs never complete by themselves
    "jobStopSeconds": _number,
    "faults": _faults,
}


# --------------------------------------------------------------------------- store


def clear() -> None:
    with _lock:
        _options.clear()


def get_all(account: str) -> dict[str, Any]:
    with _lock:
        return copy.deepcopy(_options.get(account, {}))


def get(account: Optional[str], name: str, default: Any = None) -> Any:
    """One option of an account (a copy), or default."""
    assert name in KNOWN, name
    with _lock:
        value = _options.get(account or "", {}).get(name, default)
        return copy.deepcopy(value)


def merge(account: str, updates: dict[str, Any]) -> dict[str, Any]:
    """Validate everything first, then apply: a refused request changes nothing."""
    unknown = sorted(set(updates) - set(KNOWN))
    if unknown:
        raise OptionError(f"unknown option(s) {unknown}; known: {sorted(KNOWN)}")
    checked = {k: (None if v is None else KNOWN[k](k, v)) for k, v in updates.items()}
    with _lock:
        current = _options.setdefault(account, {})
        for k, v in checked.items():
            if v is None:
                current.pop(k, None)
            else:
                current[k] = v
        if not current:
            del _options[account]
        return copy.deepcopy(current)


def take_fault(account: Optional[str], service: Optional[str], operation: Optional[str]) -> Optional[dict[str, Any]]:
    """The first fault of `account` matching service:operation with count left; consumes one."""
    if not account or not service or not operation:
        return None
    from .faults import service_key

    wanted = (service_key(service), operation)
    with _lock:
        for fault in _options.get(account, {}).get("faults", []):
            f_service, f_operation = fault["operation"].split(":")
            if (service_key(f_service), f_operation) != wanted:
                continue
            if "count" in fault:
                if fault["count"] <= 0:
                    continue
                fault["count"] -= 1
            return dict(fault)
    return None


# --------------------------------------------------------------------------- HTTP


def handle(environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Serve /_cmk_guard/options: (HTTP status, JSON body)."""
    method = environ.get("REQUEST_METHOD", "")
    try:
        if method == "GET":
            account = (parse_qs(environ.get("QUERY_STRING", "")).get("account") or [""])[0]
            _check_account(account)
            return 200, get_all(account)
        if method == "POST":
            body = _read_body(environ)
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                raise OptionError("body must be a JSON object")
            if not isinstance(data, dict):
                raise OptionError("body must be a JSON object")
            account = data.pop("account", None)
            _check_account(account)
            return 200, merge(account, data)
        return 405, {"message": f"{method} not allowed; use GET or POST"}
    except OptionError as e:
        return 400, {"message": str(e)}


def _check_account(account: Any) -> None:
    if not isinstance(account, str) or not ACCOUNT_RE.match(account):
        raise OptionError(f"'account' must be a 12-digit account id, got {account!r}")


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length <= 0:
        # chunked request bodies have no Content-Length; the server marks the stream terminated
        return stream.read() if environ.get("wsgi.input_terminated") else b""
    return stream.read(length)
