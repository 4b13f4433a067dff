"""Make moto's JSON answers follow the botocore output shape: drop members the model does not
have and JSON nulls, and write timestamps as ISO-8601 strings with 'T' and 'Z'."""

import json
from typing import Any

from moto.core.utils import camelcase_to_underscores

from .util import iso, service_model


def conform(value: Any, shape: Any) -> Any:
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            return value
        return {
            k: conform(v, shape.members[k])
            for k, v in value.items()
            if v is not None and k in shape.members
        }
    if t == "list":
        if not isinstance(value, list):
            return value
        return [conform(v, shape.member) for v in value if v is not None]
    if t == "map":
        if not isinstance(value, dict):
            return value
        return {k: conform(v, shape.value) for k, v in value.items() if v is not None}
    if t == "timestamp":
        return iso(value)
    return value


def wrap_responses(cls: type, service: str, operations: "tuple[str, ...] | None" = None) -> None:
    """Wrap every handler of cls that implements an operation of `service` (or only `operations`)."""
    model = service_model(service)
    for op_name in operations or model.operation_names:
        method = camelcase_to_underscores(op_name)
        orig = cls.__dict__.get(method)
        if orig is None or getattr(orig, "_cmk_conformed", False):
            continue
        out_shape = model.operation_model(op_name).output_shape
        if out_shape is None:
            continue

        def make(orig: Any, out_shape: Any) -> Any:
            def wrapper(self: Any, *a: Any, **kw: Any) -> Any:
                result = orig(self, *a, **kw)
                try:
                    if isinstance(result, str) and result.startswith("{"):
                        return json.dumps(conform(json.loads(result), out_shape))
                    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[2], str) and result[2].startswith("{"):
                        return result[0], result[1], json.dumps(conform(json.loads(result[2]), out_shape))
                except ValueError:
                    pass
                return result

            wrapper._cmk_conformed = True  # type: ignore[attr-defined]
            wrapper.__name__ = orig.__name__
            return wrapper

        setattr(cls, method, make(orig, out_shape))
