"""Bedrock model invocation logging configuration, faithful to the bedrock model.

moto 5.2.5 stores whatever PutModelInvocationLoggingConfiguration sends, and Get answers
`{"loggingConfig": {}}` when logging is off. Here:

- Put validates `loggingConfig` against the model (required members, types, enums, lengths,
  and the `roleArn` pattern) -> ValidationException, and checks that the destinations exist
  in the caller's account and Region (CloudWatch log group, S3 buckets), as Bedrock validates
  them when the configuration is put (see README).
- Get answers `{}` (no `loggingConfig` member) when logging is off: never configured, or after
  DeleteModelInvocationLoggingConfiguration; with logging on, exactly what was put.
"""

import copy
import json
import re
from typing import Any

from moto.bedrock.models import BedrockBackend
from moto.bedrock.responses import BedrockResponse

from .util import ValidationException, service_model

OPERATION = "PutModelInvocationLoggingConfiguration"


def _pattern_errors(value: Any, shape: Any, path: str, errors: list[str]) -> None:
    """Model `pattern` constraints (regex search, as Smithy patterns are not anchored)."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _pattern_errors(value[name], member, f"{path}.{name}" if path else name, errors)
    elif t == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _pattern_errors(item, shape.member, f"{path}.{i + 1}.member", errors)
    elif t == "string" and isinstance(value, str):
        pattern = shape.metadata.get("pattern")
        if pattern and not re.search(pattern, value):
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy "
                f"regular expression pattern: {pattern}"
            )


def validate_put(params: dict[str, Any]) -> None:
    from .guardrails import validate

    shape = service_model("bedrock").operation_model(OPERATION).input_shape
    errors: list[str] = []
    validate(params, shape, "", errors)
    _pattern_errors(params, shape, "", errors)
    if errors:
        n = len(errors)
        raise ValidationException(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))


def check_destinations(account_id: str, region: str, config: dict[str, Any]) -> None:
    """The log group and buckets must exist in this account and Region (permissions are not evaluated)."""
    from moto.logs.models import logs_backends
    from moto.s3.models import s3_backends

    cw = config.get("cloudWatchConfig")
    if cw:
        if cw["logGroupName"] not in logs_backends[account_id][region].groups:
            raise ValidationException(
                f"Failed to validate permissions for log group: {cw['logGroupName']}, with role: "
                f"{cw['roleArn']}. Verify the IAM role permissions are correct."
            )
    buckets = [
        (config.get("s3Config") or {}).get("bucketName"),
        ((cw or {}).get("largeDataDeliveryS3Config") or {}).get("bucketName"),
    ]
    for bucket in buckets:
        if bucket and not _own_bucket_in_region(s3_backends, bucket, account_id, region):
            raise ValidationException(
                f"Failed to validate permissions for bucket: {bucket}. Verify the bucket exists in this "
                "account and Region and its bucket policy allows bedrock.amazonaws.com to write to it."
            )


def _own_bucket_in_region(s3_backends: Any, name: str, account_id: str, region: str) -> bool:
    """Bedrock supports "only destinations from the same account and Region" (user guide)."""
    partition, owner = s3_backends.bucket_accounts.get(name, (None, None))
    if owner != account_id:
        return False
    bucket = s3_backends[owner][partition].buckets.get(name)
    return bucket is not None and bucket.region_name == region


def apply() -> None:
    """Call before bedrock_fixes.apply(), so the model conformance step wraps these handlers."""
    if getattr(BedrockBackend, "_cmk_guard_logging", False):
        return
    BedrockBackend._cmk_guard_logging = True  # type: ignore[attr-defined]

    def put(self: BedrockResponse) -> str:
        try:
            params = json.loads(self.body or "{}")
        except ValueError:
            raise ValidationException("Request body is not valid JSON")
        if not isinstance(params, dict):
            raise ValidationException("Request body must be a JSON object")
        validate_put(params)
        config = params["loggingConfig"]
        check_destinations(self.current_account, self.region, config)
        self.bedrock_backend.put_model_invocation_logging_configuration(logging_config=copy.deepcopy(config))
        return "{}"

    def get(self: BedrockResponse) -> str:
        config = self.bedrock_backend.get_model_invocation_logging_configuration()
        return json.dumps({"loggingConfig": config} if config else {})

    def delete(self: BedrockResponse) -> str:
        self.bedrock_backend.model_invocation_logging_configuration = None
        return "{}"

    BedrockResponse.put_model_invocation_logging_configuration = put  # type: ignore[method-assign]
    BedrockResponse.get_model_invocation_logging_configuration = get  # type: ignore[method-assign]
    BedrockResponse.delete_model_invocation_logging_configuration = delete  # type: ignore[method-assign]
