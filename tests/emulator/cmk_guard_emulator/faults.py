"""Fault injection (option `faults`): answer chosen operations with an error instead of moto.

request_log's setup_class hook resolves account, service and operation of a request (as
moto does), then calls `check`; a matching fault raises `FaultInjected`, which is a
BaseException so that no `except Exception` in moto or Flask swallows it, and the
request-log middleware turns it into the HTTP answer. Nothing reaches moto's handler.

The error is encoded the way the service's protocol (botocore model) encodes errors, so
the AWS SDKs parse the code: rest-json, json 1.0/1.1, query, ec2, rest-xml.
"""

import json
import time
from typing import Any, Optional
from xml.sax.saxutils import escape

from moto.core.responses import boto3_service_name
from moto.moto_api._internal import mock_random

from . import options
from .util import service_model

DEFAULT_MESSAGE = "Injected by the cmk-guard emulator (option faults)"
# DynamoDB's SDKs expect the shape id with its namespace in __type
JSON_TYPE_PREFIX = {"dynamodb": "com.amazonaws.dynamodb.v20120810#"}


class FaultInjected(BaseException):
    """Carries the complete HTTP answer of an injected fault."""

    def __init__(self, status: int, headers: dict[str, str], body: str):
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body


def service_key(service: str) -> str:
    """botocore's name of a service given moto's (awslambda -> lambda) or botocore's name."""
    return boto3_service_name.get(service, service)


def check_operation(service: str, operation: str) -> Optional[str]:
    """Why service:operation cannot match anything (None if it is a model operation)."""
    try:
        model = service_model(service_key(service))
    except Exception:  # noqa: BLE001 - botocore raises UnknownServiceError
        return f"unknown service {service!r}"
    if operation not in model.operation_names:
        return f"{service} has no operation {operation!r}"
    return None


def _protocol(model: Any, content_type: str) -> str:
    """The protocol the client used: moto's detection from the Content-Type, else the model's."""
    from moto.core.request import determine_request_protocol

    try:
        return determine_request_protocol(model, content_type)
    except Exception:  # noqa: BLE001 - unsupported combination: fall back to the model
        return str(model.metadata.get("protocol", "json"))


def _default_status(model: Any, code: str) -> int:
    """The model's HTTP status for this error shape if it has one, else 400."""
    try:
        shape = model.shape_for(code)
        return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
    except Exception:  # noqa: BLE001 - not an error shape of this service
        return 400


def encode(service: str, fault: dict[str, Any], content_type: str) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of the error the fault describes, in the service's protocol."""
    name = service_key(service)
    model = service_model(name)
    code = fault["code"]
    message = fault.get("message", DEFAULT_MESSAGE)
    status = fault.get("status") or _default_status(model, code)
    request_id = mock_random.get_random_string(length=52)
    protocol = _protocol(model, content_type)
    headers = {"x-amzn-RequestId": request_id}

    if protocol == "rest-json":
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
        return status, headers, json.dumps({"message": message})
    if protocol == "json":
        version = model.metadata.get("jsonVersion", "1.0")
        headers["Content-Type"] = f"application/x-amz-json-{version}"
        body = {"__type": JSON_TYPE_PREFIX.get(name, "") + code, "message": message}
        return status, headers, json.dumps(body)

    xml_code, xml_message, rid = escape(code), escape(message), escape(request_id)
    headers["Content-Type"] = "text/xml"
    if protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{xml_code}</Code><Message>{xml_message}</Message>"
            f"</Error></Errors><RequestID>{rid}</RequestID></Response>"
        )
        return status, headers, body
    if name == "s3":
        headers.update({"Content-Type": "application/xml", "x-amz-request-id": request_id})  # as S3 sends them
        body = f"<Error><Code>{xml_code}</Code><Message>{xml_message}</Message><RequestId>{rid}</RequestId></Error>"
        return status, headers, body
    # query and the other rest-xml services
    kind = "Receiver" if status >= 500 else "Sender"
    ns = model.metadata.get("xmlNamespace")
    xmlns = f' xmlns="{escape(ns)}"' if isinstance(ns, str) else ""
    body = (
        f"<ErrorResponse{xmlns}><Error><Type>{kind}</Type><Code>{xml_code}</Code>"
        f"<Message>{xml_message}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    )
    return status, headers, body


def check(record: dict[str, Any], content_type: str) -> None:
    """Raise FaultInjected if the request in `record` matches a fault of its account; a fault
    with `delaySeconds` answers that much later (and, without a `code`, then normally)."""
    service, operation = record.get("service"), record.get("operation")
    fault = options.take_fault(record.get("account"), service, operation)
    if fault is None:
        return
    if fault.get("delaySeconds"):
        record["delayed"] = fault["delaySeconds"]
        time.sleep(float(fault["delaySeconds"]))
    if "code" not in fault:
        return
    record["fault"] = fault["code"]
    raise FaultInjected(*encode(service or "", fault, content_type))  # type: ignore[arg-type]
