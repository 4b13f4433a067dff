"""Bedrock guardrails for moto's bedrock backend (moto 5.2.5 has none).

Added to moto's own BedrockBackend / BedrockResponse classes, so guardrails live
per account and region in moto's BackendDict and are cleared by /moto-api/reset.

Shapes follow botocore's bedrock 2023-04-20 model: the *Config input members are
converted to the output members by walking the model (xxxConfig -> xxx), so every
member the model has round-trips.

Per-account options (options.py) add status transitions (guardrailTransitionSeconds),
failed updates (guardrailUpdateFailure) and unknown future members in GetGuardrail
answers (getGuardrailExtraMembers).
"""

import base64
import copy
import json
import time
from datetime import datetime
from typing import Any, Optional

from moto.bedrock.models import BedrockBackend
from moto.bedrock.responses import BedrockResponse
from moto.core.common_models import BaseModel
from moto.moto_api._internal import mock_random
from moto.utilities.utils import get_partition

from . import options
from .util import (
    ConflictException,
    ResourceNotFoundException,
    ValidationException,
    iso,
    resolve_kms_key_arn,
    service_model,
    utcnow,
)

# Members of CreateGuardrailRequest that hold a policy; the output member is the name minus "Config".
POLICY_MEMBERS = (
    "topicPolicyConfig",
    "contentPolicyConfig",
    "wordPolicyConfig",
    "sensitiveInformationPolicyConfig",
    "contextualGroundingPolicyConfig",
    "automatedReasoningPolicyConfig",
)

DEFAULT_MAX_RESULTS = 100

# While the DRAFT is in one of these, UpdateGuardrail / CreateGuardrailVersion / DeleteGuardrail conflict.
TRANSITIONS = ("CREATING", "UPDATING", "VERSIONING", "DELETING")
FAILURE_RECOMMENDATION = "Correct the cause given in statusReasons, then update the guardrail again."


# --------------------------------------------------------------------------- model helpers


def _shape(name: str) -> Any:
    return service_model("bedrock").shape_for(name)


def _op_input(op: str) -> Any:
    return service_model("bedrock").operation_model(op).input_shape


def _op_output(op: str) -> Any:
    return service_model("bedrock").operation_model(op).output_shape


def validate(value: Any, shape: Any, path: str, errors: list[str]) -> None:
    """Light server-side validation against the model: required members, types, enums, min/max."""
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a structure")
            return
        for req in shape.required_members:
            if value.get(req) is None:
                p = f"{path}.{req}" if path else req
                errors.append(f"Value null at '{p}' failed to satisfy constraint: Member must not be null")
        for name, member in shape.members.items():
            if name in value and value[name] is not None and member.serialization.get("location") is None:
                validate(value[name], member, f"{path}.{name}" if path else name, errors)
    elif t == "list":
        if not isinstance(value, list):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a list")
            return
        mn, mx = shape.metadata.get("min"), shape.metadata.get("max")
        if mn is not None and len(value) < mn:
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {mn}")
        if mx is not None and len(value) > mx:
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {mx}")
        for i, item in enumerate(value):
            validate(item, shape.member, f"{path}.{i + 1}.member", errors)
    elif t == "string":
        if not isinstance(value, str):
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must be a string")
            return
        if shape.enum and value not in shape.enum:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            )
        mn, mx = shape.metadata.get("min"), shape.metadata.get("max")
        if mn is not None and len(value) < mn:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {mn}")
        if mx is not None and len(value) > mx:
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {mx}")
    elif t == "boolean":
        if not isinstance(value, bool):
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must be a boolean")
    elif t in ("integer", "long", "double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must be a number")
            return
        mn, mx = shape.metadata.get("min"), shape.metadata.get("max")
        if mn is not None and value < mn:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {mn}")
        if mx is not None and value > mx:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {mx}")


def raise_if_invalid(params: dict[str, Any], op: str) -> None:
    errors: list[str] = []
    validate(params, _op_input(op), "", errors)
    if errors:
        n = len(errors)
        raise ValidationException(
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors)
        )


def convert_config(value: Any, in_shape: Any, out_shape: Any) -> Any:
    """Map an input *Config value onto the output shape (topicsConfig -> topics, tierConfig -> tier ...)."""
    if in_shape.type_name == "structure" and out_shape.type_name == "structure":
        out: dict[str, Any] = {}
        for in_name, in_member in in_shape.members.items():
            if in_name not in value or value[in_name] is None:
                continue
            out_name = in_name
            if out_name not in out_shape.members and in_name.endswith("Config"):
                out_name = in_name[: -len("Config")]
            if out_name not in out_shape.members:
                continue  # no place for it in the output (none in the 2023-04-20 model)
            out[out_name] = convert_config(value[in_name], in_member, out_shape.members[out_name])
        return out
    if in_shape.type_name == "list" and out_shape.type_name == "list":
        return [convert_config(v, in_shape.member, out_shape.member) for v in value]
    return copy.deepcopy(value)


def _fill(items: list[dict[str, Any]], defaults: dict[str, Any]) -> None:
    for item in items:
        for k, v in defaults.items():
            item.setdefault(k, v(item) if callable(v) else v)


def apply_defaults(policies: dict[str, Any]) -> None:
    """Fill in what the real service reports when a member was not sent (see README)."""
    io_block = {"inputAction": "BLOCK", "outputAction": "BLOCK", "inputEnabled": True, "outputEnabled": True}
    if "topicPolicy" in policies:
        _fill(policies["topicPolicy"].get("topics", []), {"type": "DENY", **io_block})
        policies["topicPolicy"].setdefault("tier", {"tierName": "CLASSIC"})
    if "contentPolicy" in policies:
        # content filters get no action/enabled defaults: recorded real answers leave out
        # what was not sent
        policies["contentPolicy"].setdefault("tier", {"tierName": "CLASSIC"})
    if "wordPolicy" in policies:
        _fill(policies["wordPolicy"].get("words", []), io_block)
        _fill(policies["wordPolicy"].get("managedWordLists", []), io_block)
    if "sensitiveInformationPolicy" in policies:
        pii_defaults = {
            "inputAction": lambda i: i.get("action"),
            "outputAction": lambda i: i.get("action"),
            "inputEnabled": True,
            "outputEnabled": True,
        }
        _fill(policies["sensitiveInformationPolicy"].get("piiEntities", []), pii_defaults)
        _fill(policies["sensitiveInformationPolicy"].get("regexes", []), pii_defaults)
    if "contextualGroundingPolicy" in policies:
        _fill(policies["contextualGroundingPolicy"].get("filters", []), {"action": "BLOCK", "enabled": True})


# --------------------------------------------------------------------------- model


class Guardrail(BaseModel):
    def __init__(self, account_id: str, region_name: str, guardrail_id: str):
        self.account_id = account_id
        self.region_name = region_name
        self.guardrail_id = guardrail_id
        self.arn = f"arn:{get_partition(region_name)}:bedrock:{region_name}:{account_id}:guardrail/{guardrail_id}"
        self.created_at: datetime = utcnow()
        self.updated_at: datetime = self.created_at
        self.draft: dict[str, Any] = {}
        # numbered versions: "1" -> {"content": {...}, "createdAt": dt, "updatedAt": dt, "until": epoch}
        self.versions: dict[str, dict[str, Any]] = {}
        self.next_version = 1
        # the DRAFT's last change: status `transition` until `until` (wall clock), then
        # FAILED with `failure` as the reason if set, else READY
        self.draft_state: dict[str, Any] = {"transition": "CREATING", "until": 0.0, "failure": None}

    def _transition_end(self) -> float:
        return time.time() + float(options.get(self.account_id, "guardrailTransitionSeconds", 0.0) or 0.0)

    def begin_draft_change(self, transition: str, failure: Optional[str] = None) -> None:
        self.draft_state = {"transition": transition, "until": self._transition_end(), "failure": failure}

    def status(self, version: str = "DRAFT") -> str:
        now = time.time()
        if version == "DRAFT":
            st = self.draft_state
            if now < st["until"]:
                return st["transition"]
            return "FAILED" if st["failure"] else "READY"
        return "VERSIONING" if now < self.versions[version]["until"] else "READY"

    def check_not_in_transition(self, operation: str, allow_failed: bool = True) -> None:
        """ConflictException while the DRAFT is changing (or FAILED, unless allow_failed)."""
        status = self.status("DRAFT")
        if status in TRANSITIONS or (status == "FAILED" and not allow_failed):
            raise ConflictException(
                f"Guardrail {self.guardrail_id} is in status {status}; {operation} is possible "
                "when it is READY."
            )

    @property
    def name(self) -> str:
        return self.draft["name"]

    def set_draft(self, backend: "BedrockBackend", params: dict[str, Any]) -> None:
        """Replace the whole DRAFT with what this request carries (members not sent disappear)."""
        in_shape = _op_input("CreateGuardrail")
        out_shape = _op_output("GetGuardrail")
        content: dict[str, Any] = {
            "name": params["name"],
            "blockedInputMessaging": params["blockedInputMessaging"],
            "blockedOutputsMessaging": params["blockedOutputsMessaging"],
        }
        if params.get("description") is not None:
            content["description"] = params["description"]
        policies: dict[str, Any] = {}
        for member in POLICY_MEMBERS:
            if params.get(member) is not None:
                out_name = member[: -len("Config")]
                policies[out_name] = convert_config(
                    params[member], in_shape.members[member], out_shape.members[out_name]
                )
        apply_defaults(policies)
        content.update(policies)
        cross = params.get("crossRegionConfig")
        if cross is not None:
            content["crossRegionDetails"] = self._cross_region_details(cross["guardrailProfileIdentifier"])
        if params.get("kmsKeyId") is not None:
            content["kmsKeyArn"] = resolve_kms_key_arn(
                self.account_id, self.region_name, params["kmsKeyId"], require_symmetric=True
            )
        self.draft = content

    def _cross_region_details(self, identifier: str) -> dict[str, str]:
        if identifier.startswith("arn:"):
            profile_id = identifier.split("/", 1)[-1]
            profile_arn = identifier
        else:
            profile_id = identifier
            profile_arn = (
                f"arn:{get_partition(self.region_name)}:bedrock:{self.region_name}:"
                f"{self.account_id}:guardrail-profile/{identifier}"
            )
        return {"guardrailProfileId": profile_id, "guardrailProfileArn": profile_arn}

    def _version_record(self, version: str) -> tuple[dict[str, Any], datetime, datetime]:
        if version == "DRAFT":
            return self.draft, self.created_at, self.updated_at
        rec = self.versions.get(version)
        if rec is None:
            raise ResourceNotFoundException(
                f"Guardrail {self.guardrail_id} version {version} was not found."
            )
        return rec["content"], rec["createdAt"], rec["updatedAt"]

    def to_get_response(self, version: str) -> dict[str, Any]:
        content, created, updated = self._version_record(version)
        status = self.status(version)
        failed = status == "FAILED"
        out = copy.deepcopy(content)
        out.update(
            {
                "guardrailId": self.guardrail_id,
                "guardrailArn": self.arn,
                "version": version,
                "status": status,
                "createdAt": iso(created),
                "updatedAt": iso(updated),
                "statusReasons": [self.draft_state["failure"]] if failed else [],
                "failureRecommendations": [FAILURE_RECOMMENDATION] if failed else [],
            }
        )
        return out

    def summary(self, version: str) -> dict[str, Any]:
        content, created, updated = self._version_record(version)
        out: dict[str, Any] = {
            "id": self.guardrail_id,
            "arn": self.arn,
            "status": self.status(version),
            "name": content["name"],
            "version": version,
            "createdAt": iso(created),
            "updatedAt": iso(updated),
        }
        if "description" in content:
            out["description"] = content["description"]
        if "crossRegionDetails" in content:
            out["crossRegionDetails"] = copy.deepcopy(content["crossRegionDetails"])
        return out


# --------------------------------------------------------------------------- backend methods (mixed into BedrockBackend)


class GuardrailBackendMixin:
    account_id: str
    region_name: str
    guardrails: dict[str, Guardrail]

    def _init_guardrails(self) -> None:
        self.guardrails = {}

    def _find_guardrail(self, identifier: Optional[str]) -> Guardrail:
        ident = (identifier or "").strip()
        gid = ident
        if ident.startswith("arn:"):
            for g in self.guardrails.values():
                if g.arn == ident:
                    return g
            gid = ident.rsplit("/", 1)[-1] if ":guardrail/" in ident else ""
            # an ARN of another account/region is not in this backend
            if gid in self.guardrails and self.guardrails[gid].arn != ident:
                gid = ""
        if gid in self.guardrails:
            return self.guardrails[gid]
        raise ResourceNotFoundException(f"Guardrail {identifier} was not found.")

    def _check_name_free(self, name: str, except_id: Optional[str] = None) -> None:
        for g in self.guardrails.values():
            if g.name == name and g.guardrail_id != except_id:
                raise ConflictException(f"A guardrail with the name {name} already exists.")

    def create_guardrail(self, params: dict[str, Any]) -> Guardrail:
        raise_if_invalid(params, "CreateGuardrail")
        self._check_name_free(params["name"])
        gid = mock_random.get_random_string(length=12, lower_case=True)
        while gid in self.guardrails:
            gid = mock_random.get_random_string(length=12, lower_case=True)
        guardrail = Guardrail(self.account_id, self.region_name, gid)
        guardrail.set_draft(self, params)  # may raise (unknown KMS key) before anything is stored
        guardrail.begin_draft_change("CREATING")
        self.guardrails[gid] = guardrail
        if params.get("tags"):
            self.tag_resource(guardrail.arn, params["tags"])  # type: ignore[attr-defined]
        return guardrail

    def get_guardrail(self, identifier: str, version: Optional[str]) -> dict[str, Any]:
        guardrail = self._find_guardrail(identifier)
        return guardrail.to_get_response(version or "DRAFT")

    def update_guardrail(self, identifier: str, params: dict[str, Any]) -> Guardrail:
        raise_if_invalid(params, "UpdateGuardrail")
        guardrail = self._find_guardrail(identifier)
        guardrail.check_not_in_transition("UpdateGuardrail")  # a FAILED guardrail may be updated
        self._check_name_free(params["name"], except_id=guardrail.guardrail_id)
        guardrail.set_draft(self, params)
        guardrail.updated_at = utcnow()
        # the content is stored even when the update is to end FAILED (see README)
        guardrail.begin_draft_change("UPDATING", options.get(self.account_id, "guardrailUpdateFailure"))
        return guardrail

    def delete_guardrail(self, identifier: str, version: Optional[str]) -> None:
        guardrail = self._find_guardrail(identifier)
        guardrail.check_not_in_transition("DeleteGuardrail")
        if version:
            if version == "DRAFT" or not version.isdigit():
                raise ValidationException(
                    f"1 validation error detected: Value '{version}' at 'guardrailVersion' failed to "
                    "satisfy constraint: Member must satisfy regular expression pattern: ^[1-9][0-9]{0,7}$"
                )
            if version not in guardrail.versions:
                raise ResourceNotFoundException(
                    f"Guardrail {guardrail.guardrail_id} version {version} was not found."
                )
            if guardrail.status(version) != "READY":
                raise ConflictException(
                    f"Guardrail {guardrail.guardrail_id} version {version} is in status "
                    f"{guardrail.status(version)}; DeleteGuardrail is possible when it is READY."
                )
            del guardrail.versions[version]
            return
        busy = [v for v in guardrail.versions if guardrail.status(v) != "READY"]
        if busy:
            raise ConflictException(
                f"Guardrail {guardrail.guardrail_id} version {busy[0]} is in status "
                f"{guardrail.status(busy[0])}; DeleteGuardrail is possible when it is READY."
            )
        del self.guardrails[guardrail.guardrail_id]
        self.tagger.delete_all_tags_for_resource(guardrail.arn)  # type: ignore[attr-defined]

    def create_guardrail_version(self, identifier: str, description: Optional[str]) -> tuple[Guardrail, str]:
        guardrail = self._find_guardrail(identifier)
        guardrail.check_not_in_transition("CreateGuardrailVersion", allow_failed=False)
        version = str(guardrail.next_version)
        guardrail.next_version += 1
        content = copy.deepcopy(guardrail.draft)
        if description is not None:
            content["description"] = description
        now = utcnow()
        guardrail.versions[version] = {
            "content": content,
            "createdAt": now,
            "updatedAt": now,
            "until": guardrail._transition_end(),  # VERSIONING until then
        }
        return guardrail, version

    def list_guardrails(
        self, identifier: Optional[str], max_results: Optional[int], next_token: Optional[str]
    ) -> tuple[list[dict[str, Any]], Optional[str]]:
        if identifier:
            g = self._find_guardrail(identifier)
            summaries = [g.summary("DRAFT")] + [
                g.summary(v) for v in sorted(g.versions, key=int)
            ]
        else:
            gs = sorted(self.guardrails.values(), key=lambda g: (g.created_at, g.guardrail_id))
            summaries = [g.summary("DRAFT") for g in gs]
        start = 0
        if next_token:
            try:
                start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
            except Exception:  # noqa: BLE001
                raise ValidationException("Invalid pagination token")
        limit = max_results or DEFAULT_MAX_RESULTS
        if limit < 1 or limit > 1000:
            raise ValidationException(
                f"1 validation error detected: Value '{limit}' at 'maxResults' failed to satisfy "
                "constraint: Member must have value between 1 and 1000"
            )
        page = summaries[start : start + limit]
        token = None
        if start + limit < len(summaries):
            token = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        return page, token


# --------------------------------------------------------------------------- responses (mixed into BedrockResponse)


class GuardrailResponseMixin:
    body: Any
    querystring: dict[str, Any]
    uri_match: dict[str, Any]
    path: str

    def _json_body(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError:
            raise ValidationException("Request body is not valid JSON")
        if not isinstance(data, dict):
            raise ValidationException("Request body must be a JSON object")
        return data

    def _guardrail_identifier(self) -> str:
        from urllib.parse import unquote

        ident = (self.uri_match or {}).get("guardrailIdentifier")
        if ident is None:
            ident = unquote(self.path.rstrip("/").split("/")[-1])
        return ident

    def _qs(self, name: str) -> Optional[str]:
        v = self.querystring.get(name)
        if isinstance(v, list):
            v = v[0] if v else None
        return v

    def create_guardrail(self) -> Any:
        params = self._json_body()
        g = self.bedrock_backend.create_guardrail(params)  # type: ignore[attr-defined]
        body = {
            "guardrailId": g.guardrail_id,
            "guardrailArn": g.arn,
            "version": "DRAFT",
            "createdAt": iso(g.created_at),
        }
        return 202, {"status": 202, "Content-Type": "application/json"}, json.dumps(body)

    def get_guardrail(self) -> str:
        out = self.bedrock_backend.get_guardrail(  # type: ignore[attr-defined]
            self._guardrail_identifier(), self._qs("guardrailVersion")
        )
        return json.dumps(out)

    def update_guardrail(self) -> Any:
        params = self._json_body()
        params["guardrailIdentifier"] = self._guardrail_identifier()
        g = self.bedrock_backend.update_guardrail(params["guardrailIdentifier"], params)  # type: ignore[attr-defined]
        body = {
            "guardrailId": g.guardrail_id,
            "guardrailArn": g.arn,
            "version": "DRAFT",
            "updatedAt": iso(g.updated_at),
        }
        return 202, {"status": 202, "Content-Type": "application/json"}, json.dumps(body)

    def delete_guardrail(self) -> Any:
        self.bedrock_backend.delete_guardrail(  # type: ignore[attr-defined]
            self._guardrail_identifier(), self._qs("guardrailVersion")
        )
        return 202, {"status": 202, "Content-Type": "application/json"}, "{}"

    def create_guardrail_version(self) -> Any:
        params = self._json_body()
        g, version = self.bedrock_backend.create_guardrail_version(  # type: ignore[attr-defined]
            self._guardrail_identifier(), params.get("description")
        )
        body = {"guardrailId": g.guardrail_id, "version": version}
        return 202, {"status": 202, "Content-Type": "application/json"}, json.dumps(body)

    def list_guardrails(self) -> str:
        max_results = self._qs("maxResults")
        try:
            max_results_int = int(max_results) if max_results else None
        except ValueError:
            raise ValidationException(f"Value '{max_results}' at 'maxResults' is not an integer")
        items, token = self.bedrock_backend.list_guardrails(  # type: ignore[attr-defined]
            self._qs("guardrailIdentifier"), max_results_int, self._qs("nextToken")
        )
        out: dict[str, Any] = {"guardrails": items}
        if token:
            out["nextToken"] = token
        return json.dumps(out)


def set_path(doc: Any, path: str, value: Any) -> None:
    """Set doc[a][b][0][c] = value for path "a.b.0.c" when the parent exists; otherwise do nothing.

    Numeric segments index lists (existing indexes only); the last segment is added or replaced.
    """
    *parents, last = path.split(".")
    node = doc
    for seg in parents:
        if isinstance(node, dict) and seg in node:
            node = node[seg]
        elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return
    if isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = copy.deepcopy(value)


def apply_extra_members() -> None:
    """Option getGuardrailExtraMembers: members added to GetGuardrail answers AFTER the model
    conformance step (call after bedrock_fixes.apply), simulating members the SDK does not know."""
    orig = BedrockResponse.get_guardrail
    if getattr(orig, "_cmk_extras", False):
        return

    def get_guardrail(self: Any) -> Any:
        result = orig(self)
        extras = options.get(self.current_account, "getGuardrailExtraMembers")
        if not extras or not isinstance(result, str):
            return result
        doc = json.loads(result)
        for path, value in extras.items():
            set_path(doc, path, value)
        return json.dumps(doc)

    get_guardrail._cmk_extras = True  # type: ignore[attr-defined]
    get_guardrail._cmk_conformed = True  # type: ignore[attr-defined]  # never conform it again
    BedrockResponse.get_guardrail = get_guardrail  # type: ignore[method-assign]


def apply() -> None:
    if getattr(BedrockBackend, "_cmk_guard_guardrails", False):
        return
    BedrockBackend._cmk_guard_guardrails = True  # type: ignore[attr-defined]

    for name, fn in vars(GuardrailBackendMixin).items():
        if callable(fn) and not name.startswith("__"):
            setattr(BedrockBackend, name, fn)
    for name, fn in vars(GuardrailResponseMixin).items():
        if callable(fn) and not name.startswith("__"):
            setattr(BedrockResponse, name, fn)

    orig_init = BedrockBackend.__init__

    def __init__(self: Any, region_name: str, account_id: str) -> None:
        orig_init(self, region_name, account_id)
        self._init_guardrails()

    BedrockBackend.__init__ = __init__  # type: ignore[method-assign]

    # Tagging: guardrail ARNs are taggable resources too (custom models / jobs keep working).
    orig_list_arns = BedrockBackend._list_arns

    def _list_arns(self: Any) -> list[str]:
        return orig_list_arns(self) + [g.arn for g in getattr(self, "guardrails", {}).values()]

    BedrockBackend._list_arns = _list_arns  # type: ignore[method-assign]
