"""S3 default encryption as real S3 has it since 2023 (moto 5.2.5 answers 404
ServerSideEncryptionConfigurationNotFoundError for a bucket without a configuration).

- Every bucket starts with SSE-S3 (`AES256`, `BucketKeyEnabled` false) and SSE-C blocked
  (`BlockedEncryptionTypes` SSE-C, S3's default for new buckets since April 2026).
- PutBucketEncryption is checked as S3 checks it (exactly one rule, SSEAlgorithm from the model's
  enum, KMSMasterKeyID only with aws:kms / aws:kms:dsse) and round-trips every member of the
  model's ServerSideEncryptionRule; a Put without BlockedEncryptionTypes keeps the bucket's.
- DeleteBucketEncryption resets the bucket to SSE-S3 (keeping its BlockedEncryptionTypes).

The configuration lives in moto's own `FakeBucket.encryption` ({"Rule": {...}}, xmltodict form),
so PutObject keeps inheriting it the way moto implements.
"""

import copy
from typing import Any

import xmltodict
from moto.s3.exceptions import MalformedXML, S3ClientError
from moto.s3.models import FakeBucket, S3Backend
from moto.s3.responses import S3Response

from .util import service_model

DEFAULT_SSE = {"SSEAlgorithm": "AES256"}
DEFAULT_BLOCKED = ["SSE-C"]
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
RULE_MEMBERS = {"ApplyServerSideEncryptionByDefault", "BucketKeyEnabled", "BlockedEncryptionTypes"}
SSE_MEMBERS = {"SSEAlgorithm", "KMSMasterKeyID"}


class InvalidArgument(S3ClientError):
    """S3's InvalidArgument with the ArgumentName element (and, as S3 sends it here, no ArgumentValue)."""

    def __init__(self, message: str, argument_name: str):
        super().__init__("InvalidArgument", message)
        self.argument_name = argument_name


def _enum(shape_name: str) -> list[str]:
    return list(service_model("s3").shape_for(shape_name).enum)


def default_rule(blocked: "list[str] | None" = None) -> dict[str, Any]:
    """The rule of a bucket nobody configured (and after DeleteBucketEncryption)."""
    return {
        "ApplyServerSideEncryptionByDefault": dict(DEFAULT_SSE),
        "BucketKeyEnabled": "false",
        "BlockedEncryptionTypes": {"EncryptionType": list(DEFAULT_BLOCKED if blocked is None else blocked)},
    }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _members(node: Any) -> dict[str, Any]:
    """xmltodict element children without attributes (xmlns ...); MalformedXML if not an element."""
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise MalformedXML()
    return {k: v for k, v in node.items() if not k.startswith("@")}


def parse_rule(body: Any) -> dict[str, Any]:
    """The one rule of a PutBucketEncryption body, validated like S3 does (see README)."""
    try:
        doc = xmltodict.parse(body)
    except Exception:  # noqa: BLE001 - any XML parse error
        raise MalformedXML()
    root = _members(doc.get("ServerSideEncryptionConfiguration"))
    if set(root) - {"Rule"}:
        raise MalformedXML()
    rules = _as_list(root.get("Rule"))
    if len(rules) != 1:  # S3 answers MalformedXML for no rule and for two rules
        raise MalformedXML()
    rule = _members(rules[0])
    if set(rule) - RULE_MEMBERS or not rule:
        raise MalformedXML()

    out: dict[str, Any] = {}
    sse = _members(rule.get("ApplyServerSideEncryptionByDefault")) if "ApplyServerSideEncryptionByDefault" in rule else None
    if sse is not None:
        if set(sse) - SSE_MEMBERS:
            raise MalformedXML()
        algorithm = sse.get("SSEAlgorithm")
        if algorithm not in _enum("ServerSideEncryption"):
            raise MalformedXML()
        if sse.get("KMSMasterKeyID") is not None and algorithm not in KMS_ALGORITHMS:
            raise InvalidArgument(
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
                "ApplyServerSideEncryptionByDefault",
            )
        out["ApplyServerSideEncryptionByDefault"] = {
            k: sse[k] for k in ("SSEAlgorithm", "KMSMasterKeyID") if sse.get(k) is not None
        }
    bucket_key = rule.get("BucketKeyEnabled")
    if bucket_key is not None:
        if str(bucket_key).lower() not in ("true", "false"):
            raise MalformedXML()
        out["BucketKeyEnabled"] = str(bucket_key).lower()
    if "BlockedEncryptionTypes" in rule:
        blocked = _members(rule["BlockedEncryptionTypes"])
        if set(blocked) - {"EncryptionType"}:
            raise MalformedXML()
        types = [str(t) for t in _as_list(blocked.get("EncryptionType"))]
        if not types or any(t not in _enum("EncryptionType") for t in types):
            raise MalformedXML()
        out["BlockedEncryptionTypes"] = {"EncryptionType": types}
    if "ApplyServerSideEncryptionByDefault" not in out and "BlockedEncryptionTypes" not in out:
        raise MalformedXML()
    return out


def rule_output(rule: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as the model's ServerSideEncryptionRule (booleans, lists)."""
    out: dict[str, Any] = {
        "ApplyServerSideEncryptionByDefault": dict(rule.get("ApplyServerSideEncryptionByDefault") or DEFAULT_SSE),
        "BucketKeyEnabled": str(rule.get("BucketKeyEnabled", "false")).lower() == "true",
    }
    blocked = rule.get("BlockedEncryptionTypes")
    if blocked and blocked.get("EncryptionType"):
        out["BlockedEncryptionTypes"] = {"EncryptionType": list(_as_list(blocked["EncryptionType"]))}
    return out


def apply() -> None:
    if getattr(S3Backend, "_cmk_guard_s3_encryption", False):
        return
    S3Backend._cmk_guard_s3_encryption = True  # type: ignore[attr-defined]

    # every bucket has default encryption (SSE-S3) from its creation
    orig_init = FakeBucket.__init__

    def bucket_init(self: FakeBucket, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        self.encryption = {"Rule": default_rule()}

    FakeBucket.__init__ = bucket_init  # type: ignore[method-assign]

    def _current_blocked(bucket: FakeBucket) -> "list[str] | None":
        rule = (bucket.encryption or {}).get("Rule") or {}
        blocked = rule.get("BlockedEncryptionTypes")
        return list(_as_list(blocked.get("EncryptionType"))) if blocked else None

    def put_bucket_encryption(self: S3Backend, bucket_name: str, encryption: dict[str, Any]) -> None:
        bucket = self.get_bucket(bucket_name)
        rule = copy.deepcopy(encryption.get("Rule") or {})
        rule.setdefault("ApplyServerSideEncryptionByDefault", dict(DEFAULT_SSE))
        rule.setdefault("BucketKeyEnabled", "false")
        if "BlockedEncryptionTypes" not in rule:
            current = _current_blocked(bucket)  # not sent: the bucket's setting stays
            if current:
                rule["BlockedEncryptionTypes"] = {"EncryptionType": current}
        bucket.encryption = {"Rule": rule}

    def delete_bucket_encryption(self: S3Backend, bucket_name: str) -> None:
        bucket = self.get_bucket(bucket_name)
        bucket.encryption = {"Rule": default_rule(_current_blocked(bucket) or [])}
        if not bucket.encryption["Rule"]["BlockedEncryptionTypes"]["EncryptionType"]:
            del bucket.encryption["Rule"]["BlockedEncryptionTypes"]

    S3Backend.put_bucket_encryption = put_bucket_encryption  # type: ignore[method-assign]
    S3Backend.delete_bucket_encryption = delete_bucket_encryption  # type: ignore[method-assign]

    def _encryption_config_from_body(self: S3Response) -> dict[str, Any]:
        self.backend.get_bucket(self.bucket_name)  # NoSuchBucket before any body check, as S3
        return {"Rule": parse_rule(self.body)}

    S3Response._encryption_config_from_body = _encryption_config_from_body  # type: ignore[method-assign]

    def get_bucket_encryption(self: S3Response) -> Any:
        from moto.core.responses import ActionResult

        self.data["Action"] = "GetBucketEncryption"
        encryption = self.backend.get_bucket_encryption(self.bucket_name) or {"Rule": default_rule()}
        rules = [rule_output(r) for r in _as_list(encryption.get("Rule"))]
        return self.serialized(ActionResult({"ServerSideEncryptionConfiguration": {"Rules": rules}}))

    S3Response.get_bucket_encryption = get_bucket_encryption  # type: ignore[method-assign]
