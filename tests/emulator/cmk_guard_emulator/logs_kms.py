"""CloudWatch Logs and customer managed keys (moto 5.2.5 has no AssociateKmsKey/DisassociateKmsKey
and accepts any kmsKeyId in CreateLogGroup).

- AssociateKmsKey / DisassociateKmsKey with `logGroupName` or `resourceIdentifier` (a log group
  ARN or the account's `query-result:*` ARN), exactly one of the two.
- The key is checked as CloudWatch Logs does before it accepts it (AssociateKmsKey and
  CreateLogGroup): it must be given as an ARN, exist in the log group's Region, be enabled,
  be a symmetric encryption key, and its key policy must let `logs.<region>.amazonaws.com`
  (or `logs.amazonaws.com`) use it. The log group stores the ARN as given.
- DescribeLogGroups keeps reporting `kmsKeyId` only when one is associated (moto already does).
"""

import json
import re
from typing import Any, Optional

from moto.logs.exceptions import InvalidParameterException, LogsClientError, ResourceNotFoundException
from moto.logs.models import LogsBackend
from moto.logs.responses import LogsResponse
from moto.utilities.utils import get_partition

from . import key_policy
from .conform import wrap_responses
from .util import service_model

# What CloudWatch Logs needs the key policy to grant its service principal (the AWS guide's
# statement grants kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, kms:GenerateDataKey*, kms:Describe*).
LOGS_KEY_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
)
KMS_ARN_RE = re.compile(r"^arn:[a-z0-9-]+:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")
LOG_GROUP_ARN_RE = re.compile(r"^arn:[a-z0-9-]+:logs:([a-z0-9-]+):(\d{12}):log-group:([^:]+)(:\*)?$")
QUERY_RESULT_ARN_RE = re.compile(r"^arn:[a-z0-9-]+:logs:([a-z0-9-]+):(\d{12}):query-result:\*$")


class AccessDeniedException(LogsClientError):
    """What CloudWatch Logs answers (HTTP 400) when the key does not exist or its policy does not
    allow the logs service principal (see README for the sources)."""

    def __init__(self, msg: str):
        self.code = 400
        super().__init__("AccessDeniedException", msg)


def _validate(op: str, params: dict[str, Any]) -> None:
    """Required members, types and lengths from the logs model -> InvalidParameterException."""
    from .guardrails import validate  # generic shape walker

    errors: list[str] = []
    validate(params, service_model("logs").operation_model(op).input_shape, "", errors)
    if errors:
        n = len(errors)
        raise InvalidParameterException(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))


def check_key_for_logs(account_id: str, region: str, key_ref: str, resource_arn: str) -> None:
    """Refuse a key CloudWatch Logs would refuse for `resource_arn` (a log group or query-result ARN)."""
    if not KMS_ARN_RE.match(key_ref or ""):
        # a key id or alias name: CloudWatch Logs wants the key ARN (see README)
        raise InvalidParameterException("The specified KMS Key Id could not be found.")
    denied = AccessDeniedException(
        f"The specified KMS key does not exist or is not allowed to be used with Arn '{resource_arn}'"
    )
    key_region = key_ref.split(":")[3]
    if key_region != region:  # the service principal is Regional: a key of another Region is unusable
        raise denied
    key = key_policy.find_key(account_id, region, key_ref)
    if key is None:
        raise denied
    if key.key_state != "Enabled":
        raise InvalidParameterException(
            f"The specified KMS key {key.arn} is not enabled (KeyState {key.key_state})."
        )
    if (key.key_spec, key.key_usage or "ENCRYPT_DECRYPT") != ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"):
        raise InvalidParameterException(
            f"The specified KMS key {key.arn} is not a symmetric encryption key; "
            "CloudWatch Logs supports only symmetric encryption KMS keys."
        )
    principals = (f"logs.{region}.amazonaws.com", "logs.amazonaws.com")
    if not key_policy.service_may_use(key.policy, principals, LOGS_KEY_ACTIONS):
        raise denied


# --------------------------------------------------------------------------- backend (mixed into LogsBackend)


class LogsKmsBackendMixin:
    account_id: str
    region_name: str
    groups: dict[str, Any]

    def _log_group_for(self, name: Optional[str], resource_identifier: Optional[str]) -> tuple[Optional[Any], str]:
        """(log group or None for the query-result resource, ARN of the target). Exactly one of
        name / resource_identifier must be given."""
        if (name is None) == (resource_identifier is None):
            raise InvalidParameterException(
                "Exactly one of logGroupName and resourceIdentifier must be specified."
            )
        if resource_identifier is not None:
            partition = get_partition(self.region_name)
            m = QUERY_RESULT_ARN_RE.match(resource_identifier)
            if m:
                if (m.group(1), m.group(2)) != (self.region_name, self.account_id):
                    raise ResourceNotFoundException("The specified resource does not exist.")
                return None, f"arn:{partition}:logs:{self.region_name}:{self.account_id}:query-result:*"
            m = LOG_GROUP_ARN_RE.match(resource_identifier)
            if not m:
                raise InvalidParameterException(
                    f"Invalid resourceIdentifier '{resource_identifier}': expected a log group ARN "
                    "(arn:aws:logs:REGION:ACCOUNT_ID:log-group:NAME) or "
                    "arn:aws:logs:REGION:ACCOUNT_ID:query-result:*"
                )
            if (m.group(1), m.group(2)) != (self.region_name, self.account_id):
                raise ResourceNotFoundException()  # not a log group of this account and Region
            name = m.group(3)
        group = self.groups.get(name or "")
        if group is None:
            raise ResourceNotFoundException()
        return group, group.arn

    def associate_kms_key(self, kms_key_id: str, name: Optional[str], resource_identifier: Optional[str]) -> None:
        group, arn = self._log_group_for(name, resource_identifier)
        check_key_for_logs(self.account_id, self.region_name, kms_key_id, arn)
        if group is None:
            self.query_results_kms_key_id = kms_key_id  # type: ignore[attr-defined]
        else:
            group.kms_key_id = kms_key_id

    def disassociate_kms_key(self, name: Optional[str], resource_identifier: Optional[str]) -> None:
        group, _ = self._log_group_for(name, resource_identifier)
        if group is None:
            self.query_results_kms_key_id = None  # type: ignore[attr-defined]
        else:
            group.kms_key_id = None


# --------------------------------------------------------------------------- responses (mixed into LogsResponse)


class LogsKmsResponseMixin:
    body: Any
    logs_backend: LogsBackend

    def _json_params(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or "{}")
        except ValueError:
            raise InvalidParameterException("Request body is not valid JSON")
        return data if isinstance(data, dict) else {}

    def associate_kms_key(self) -> str:
        params = self._json_params()
        _validate("AssociateKmsKey", params)
        self.logs_backend.associate_kms_key(  # type: ignore[attr-defined]
            params["kmsKeyId"], params.get("logGroupName"), params.get("resourceIdentifier")
        )
        return ""

    def disassociate_kms_key(self) -> str:
        params = self._json_params()
        _validate("DisassociateKmsKey", params)
        self.logs_backend.disassociate_kms_key(  # type: ignore[attr-defined]
            params.get("logGroupName"), params.get("resourceIdentifier")
        )
        return ""


def apply() -> None:
    if getattr(LogsBackend, "_cmk_guard_logs_kms", False):
        return
    LogsBackend._cmk_guard_logs_kms = True  # type: ignore[attr-defined]

    for name in ("_log_group_for", "associate_kms_key", "disassociate_kms_key"):
        setattr(LogsBackend, name, getattr(LogsKmsBackendMixin, name))
    for name in ("_json_params", "associate_kms_key", "disassociate_kms_key"):
        setattr(LogsResponse, name, getattr(LogsKmsResponseMixin, name))

    # CreateLogGroup with kmsKeyId: the same key checks as AssociateKmsKey, before anything is created
    orig_create = LogsResponse.create_log_group

    def create_log_group(self: LogsResponse) -> str:
        name = self._get_param("logGroupName")
        key = self._get_param("kmsKeyId")
        if key is not None and isinstance(name, str) and name not in self.logs_backend.groups:
            arn = f"arn:{get_partition(self.region)}:logs:{self.region}:{self.current_account}:log-group:{name}"
            check_key_for_logs(self.current_account, self.region, key, arn)
        return orig_create(self)

    LogsResponse.create_log_group = create_log_group  # type: ignore[method-assign]

    # DescribeLogGroups through the model's output shape (moto sends "nextToken": null)
    wrap_responses(LogsResponse, "logs", ("DescribeLogGroups",))
