"""Helpers shared by the patches: timestamps, errors, KMS key resolution."""

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from botocore.session import Session
from moto.core.exceptions import JsonRESTError


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: Any) -> Any:
    """ISO-8601 with 'T', microseconds and 'Z' (what the Rust SDK's RFC-3339 parser accepts).

    Accepts datetimes, epoch numbers and moto's "YYYY-mm-dd HH:MM:SS" strings; other values pass through.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, tz=timezone.utc)
    elif isinstance(value, str):
        s = value.strip()
        if not s:
            return value
        try:
            parsed = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            return value
        value = parsed
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


@lru_cache(maxsize=None)
def service_model(name: str) -> Any:
    return Session().get_service_model(name)


class _Error(JsonRESTError):
    error_name = "InternalServerException"

    def __init__(self, message: str):
        super().__init__(self.error_name, message)


class ResourceNotFoundException(_Error):
    code = 404
    error_name = "ResourceNotFoundException"


class ValidationException(_Error):
    code = 400
    error_name = "ValidationException"


class ConflictException(_Error):
    code = 400  # bedrock's model says 400 for ConflictException
    error_name = "ConflictException"


def resolve_kms_key_arn(
    account_id: str,
    region: str,
    key_ref: str,
    what: str = "kmsKeyId",
    require_symmetric: bool = False,
) -> str:
    """Resolve a key id, key ARN, alias name or alias ARN to the KEY's ARN via moto's KMS backend.

    An ARN naming another account is looked up in that account's backend (no key policy check).
    An ARN naming another Region is refused like an unknown key: the service asks KMS in its own
    Region, and KMS answers "Invalid arn REGION" for such ARNs (see README).
    Unknown key -> ValidationException (like Bedrock). With require_symmetric, a key that is not
    SYMMETRIC_DEFAULT + ENCRYPT_DECRYPT is refused too (Bedrock accepts only symmetric encryption keys).
    """
    from moto.kms.models import kms_backends

    ref = (key_ref or "").strip()
    acct, reg = account_id, region
    if ref.startswith("arn:"):
        parts = ref.split(":", 5)
        if len(parts) == 6 and parts[2] == "kms":
            reg = parts[3] or region
            acct = parts[4] or account_id
    key = None
    if reg == region:
        try:
            backend = kms_backends[acct][reg]
            key = backend.keys.get(backend.any_id_to_key_id(ref))
        except Exception:  # noqa: BLE001 - any lookup failure means "no such key"
            key = None
    if key is None:
        raise ValidationException(
            f"1 validation error detected: Value '{key_ref}' at '{what}' failed to satisfy "
            "constraint: the KMS key does not exist or is not accessible"
        )
    if require_symmetric and (key.key_spec, key.key_usage or "ENCRYPT_DECRYPT") != ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"):
        raise ValidationException(
            f"The KMS key {key.arn} is not supported: use a symmetric encryption KMS key "
            f"(KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT); this key has KeySpec "
            f"{key.key_spec}, KeyUsage {key.key_usage}"
        )
    return key.arn
