"""The pieces test_least_privilege.py judges with: the templates resolved for one deployment,
the emulator's call log turned into the IAM requests each call makes, and a small IAM
evaluator (actions, ArnLike resources, the condition operators the templates use).

Nothing here is true of IAM in general: it is exactly as much of IAM as the two templates
use, and anything else (an operator, a condition key, an intrinsic function, an operation)
is an error, never silently allowed or ignored.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional
from urllib.parse import unquote

from cfnlint.decode import cfn_yaml  # understands !Ref, !Sub, !GetAtt, ... (short forms)

import render

INFRA = Path(__file__).resolve().parents[1]

PARTITION = "aws"
# The Region of the stacks the tests stand for: the Rust tests' REGION (tests/support/lib.rs).
STACK_REGION = "us-east-1"
STACK_NAME = "bedrock-cmk-guard"
ORGANIZATION_ID = "o-cmkguardtest1"


class CheckError(Exception):
    """Something the checker does not understand: never a silent pass."""


# --------------------------------------------------------------------------- the functions


@dataclass(frozen=True)
class Function:
    """One reactor Lambda: its app name (the SDK user agent) and its logical ids."""

    name: str  # functions/<name>, app name cmk-guard-<name>
    role: str  # central role in template.yaml
    member_role: str  # member role in member-account.yaml
    function: str  # the AWS::Serverless::Function in template.yaml

    @property
    def app(self) -> str:
        return f"cmk-guard-{self.name}"


FUNCTIONS = [
    Function("guardrails", "GuardrailsFunctionRole", "MemberRole", "GuardrailsFunction"),
    Function(
        "invocation-logging",
        "InvocationLoggingFunctionRole",
        "InvocationLoggingMemberRole",
        "InvocationLoggingFunction",
    ),
    Function("model-jobs", "ModelJobsFunctionRole", "ModelJobsMemberRole", "ModelJobsFunction"),
    Function("data-jobs", "DataJobsFunctionRole", "DataJobsMemberRole", "DataJobsFunction"),
]
BY_APP = {f.app: f for f in FUNCTIONS}


# --------------------------------------------------------------------------- templates


def load(name: str) -> dict:
    return cfn_yaml.load(str(INFRA / name))


def _physical(logical: str) -> str:
    """A stand-in physical name for a resource CloudFormation names itself."""
    return f"{STACK_NAME}-{logical}"


class Stack(render.Stack):
    """One template resolved with the parameter values of a full deployment, in one account
    (infra/render.py renders it; whatever it cannot is a CheckError).

    Resources resolve to the ARNs and names CloudFormation would give them (a stand-in name
    where CloudFormation makes one up); only the resource types the templates' policies refer
    to are known, any other Ref/GetAtt is an error.
    """

    error = CheckError

    def __init__(self, template: dict, parameters: dict[str, Any], account: str):
        super().__init__(template, parameters, account=account, region=STACK_REGION,
                         stack_name=STACK_NAME, partition=PARTITION)

    # ---- resources

    def prop(self, logical: str, name: str, default: Any = None) -> Any:
        resource = self.template["Resources"][logical]
        value = resource.get("Properties", {}).get(name)
        if value is None:
            return default
        resolved = self.resolve(value)
        return default if resolved is render.NO_VALUE else resolved

    def resource_attribute(self, logical: str, attribute: Optional[str]) -> Any:
        """Ref (attribute None) or Fn::GetAtt of a resource."""
        kind = self.template["Resources"][logical]["Type"]
        p, r, a = PARTITION, self.region, self.account
        if kind == "AWS::SNS::Topic":
            name = self.prop(logical, "TopicName", _physical(logical))
            arn = f"arn:{p}:sns:{r}:{a}:{name}"
            values = {None: arn, "TopicArn": arn, "TopicName": name}
        elif kind == "AWS::DynamoDB::Table":
            name = self.prop(logical, "TableName", _physical(logical))
            values = {None: name, "Arn": f"arn:{p}:dynamodb:{r}:{a}:table/{name}"}
        elif kind == "AWS::KMS::Key":
            key_id = f"{logical.lower()}-0000-0000-0000-000000000000"
            values = {None: key_id, "KeyId": key_id, "Arn": f"arn:{p}:kms:{r}:{a}:key/{key_id}"}
        elif kind == "AWS::SQS::Queue":
            name = self.prop(logical, "QueueName", _physical(logical))
            values = {
                None: f"https://sqs.{r}.amazonaws.com/{a}/{name}",
                "QueueName": name,
                "Arn": f"arn:{p}:sqs:{r}:{a}:{name}",
            }
        elif kind == "AWS::Logs::LogGroup":
            name = self.prop(logical, "LogGroupName", _physical(logical))
            values = {None: name, "Arn": f"arn:{p}:logs:{r}:{a}:log-group:{name}:*"}
        elif kind == "AWS::SSM::Parameter":
            name = self.prop(logical, "Name", _physical(logical))
            values = {None: name}
        elif kind == "AWS::IAM::Role":
            name = self.prop(logical, "RoleName", _physical(logical))
            values = {None: name, "Arn": f"arn:{p}:iam::{a}:role/{name}"}
        elif kind == "AWS::Events::Rule":
            name = self.prop(logical, "Name", _physical(logical))
            values = {None: name, "Arn": f"arn:{p}:events:{r}:{a}:rule/{name}"}
        elif kind == "AWS::Events::EventBus":
            name = self.prop(logical, "Name", _physical(logical))
            values = {None: name, "Name": name, "Arn": f"arn:{p}:events:{r}:{a}:event-bus/{name}"}
        elif kind == "AWS::Serverless::Function":
            name = self.prop(logical, "FunctionName", _physical(logical))
            values = {None: name, "Arn": f"arn:{p}:lambda:{r}:{a}:function:{name}"}
        else:
            raise CheckError(f"the checker does not know the names of {kind} ({logical})")
        if attribute not in values:
            raise CheckError(f"{logical} ({kind}) has no attribute {attribute} the checker knows")
        return values[attribute]


# --------------------------------------------------------------------------- policies


@dataclass
class Statement:
    """One statement of a role's identity policy, resolved for one account."""

    role: str  # logical id
    template: str  # template.yaml / member-account.yaml
    sid: str
    index: int  # position in the role's resolved statements (the Sid of statements without one)
    actions: list[str]
    resources: list[str]
    conditions: dict[str, dict[str, list[str]]]  # operator -> key -> values

    @property
    def key(self) -> tuple[str, str, str]:
        """Same statement in every account: template, role, Sid."""
        return (self.template, self.role, self.sid)

    def describe(self) -> str:
        return f"{self.role}/{self.sid}"


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def role_statements(stack: Stack, template_name: str, role: str) -> list[Statement]:
    resource = stack.template["Resources"][role]
    if not stack.exists(role):
        raise CheckError(f"{role} does not exist in this deployment (condition {resource['Condition']})")
    out: list[Statement] = []
    for policy in resource["Properties"].get("Policies", []):
        document = stack.resolve(policy["PolicyDocument"])
        for i, s in enumerate(document["Statement"]):
            if set(s) - {"Sid", "Effect", "Action", "Resource", "Condition"}:
                raise CheckError(
                    f"{role} statement {s.get('Sid', i)}: elements the checker does not judge: "
                    f"{sorted(set(s) - {'Sid', 'Effect', 'Action', 'Resource', 'Condition'})}"
                )
            if s["Effect"] != "Allow":
                raise CheckError(f"{role} statement {s.get('Sid', i)}: only Allow statements are judged")
            conditions = {
                op: {k: [str(v) for v in _list(vals)] for k, vals in block.items()}
                for op, block in (s.get("Condition") or {}).items()
            }
            out.append(
                Statement(
                    role=role,
                    template=template_name,
                    sid=s.get("Sid") or f"#{len(out)}",
                    index=len(out),
                    actions=[str(a) for a in _list(s["Action"])],
                    resources=[str(r) for r in _list(s["Resource"])],
                    conditions=conditions,
                )
            )
    return out


# --------------------------------------------------------------------------- matching


@lru_cache(maxsize=None)
def _glob(pattern: str, ignore_case: bool = False) -> re.Pattern:
    """IAM wildcards: * any run of characters, ? one character, nothing else special."""
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(parts) + r"\Z", re.S | (re.I if ignore_case else 0))


def action_matches(pattern: str, action: str) -> bool:
    return bool(_glob(pattern, True).match(action))


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike: the six colon-separated parts are matched one by one (the resource part
    may hold colons), each with * and ?. The Resource "*" matches everything."""
    if pattern == "*":
        return True
    p = pattern.split(":", 5)
    a = arn.split(":", 5)
    if len(p) != 6 or len(a) != 6:
        return bool(_glob(pattern).match(arn))
    return all(_glob(pp).match(aa) for pp, aa in zip(p, a))


def string_like(pattern: str, value: str) -> bool:
    return bool(_glob(pattern).match(value))


# The condition operators the templates use; any other is an error.
OPERATORS = {
    "StringEquals": lambda policy, value: value == policy,
    "StringLike": lambda policy, value: string_like(policy, value),
    "ArnEquals": lambda policy, value: value == policy,
    "ArnLike": lambda policy, value: arn_like(policy, value),
}

# The condition keys the checker can know for a call, each with where its value comes from.
KNOWN_KEYS = {
    "aws:RequestedRegion": "the Region of the call's SigV4 credential scope",
    "aws:ResourceOrgID": "the organization of the resource's account: every account of the tests is one of OrganizationId's",
    "kms:ViaService": "the service that used the key on the caller's behalf (implied calls only)",
    "kms:CallerAccount": "the account of the role making the call",
    "iam:PassedToService": "the service the role is passed to (implied calls only)",
    "s3:ResourceAccount": "the account owning the bucket: the account of the call (the emulator keeps buckets per account)",
    "kms:RequestAlias": "the alias a KMS request named the key by",
}


def condition_failures(statement: Statement, context: dict[str, str]) -> list[str]:
    """Why the statement's conditions do not hold for the context ([] when they all hold)."""
    failures = []
    for op, block in statement.conditions.items():
        if op not in OPERATORS:
            raise CheckError(f"{statement.describe()}: condition operator {op} is not known to the checker")
        for key, values in block.items():
            if key not in KNOWN_KEYS:
                raise CheckError(f"{statement.describe()}: condition key {key} is not known to the checker")
            if key not in context:
                failures.append(f"{key} is not in the request ({op} {values})")
            elif not any(OPERATORS[op](v, context[key]) for v in values):
                failures.append(f"{key}={context[key]} is not {op} {values}")
    return failures


# --------------------------------------------------------------------------- calls


@dataclass
class Call:
    """One AWS request a function made (a line of the emulator's call log)."""

    raw: dict
    function: Function
    member: bool  # made with the member role's credentials
    account: str  # where the call was made (the member's account for member calls)
    central_account: str  # the function's own account
    region: str

    @property
    def service(self) -> str:
        return str(self.raw["service"])

    @property
    def operation(self) -> str:
        return str(self.raw["operation"])

    @property
    def role(self) -> str:
        return self.function.member_role if self.member else self.function.role

    def describe(self) -> str:
        where = "member role" if self.member else "central role"
        return f"{self.function.name} ({self.role}, {where}, account {self.account}, {self.region})"


@dataclass
class Request:
    """One IAM authorization a call needs: an action on resources, with a context."""

    call: Call
    action: str
    resources: list[str]
    context: dict[str, str]
    implied: Optional[str] = None  # why a call implies it (a service acting on the caller's behalf)

    def describe(self) -> str:
        what = f"{self.action} on {', '.join(self.resources)}"
        origin = f"{self.call.service}:{self.call.operation}"
        if self.implied:
            return f"{what} ({self.implied}, during {origin})"
        return what if origin == self.action else f"{what} (the call {origin})"


def read_calls(path: Path) -> tuple[list[Call], dict[str, int]]:
    """The functions' calls in the log, and the number of lines of every other app."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    # Member credentials are those of a role the function itself assumed: the RoleArn of its
    # own sts:AssumeRole calls. Anything else it ran with are its own (central) credentials.
    assumed: dict[str, dict[str, str]] = {}
    for r in lines:
        if r.get("service") == "sts" and r.get("operation") == "AssumeRole" and r.get("app") in BY_APP:
            arn = (r.get("params") or {}).get("RoleArn")
            if arn:
                assumed.setdefault(r["app"], {})[arn] = r["account"]
    calls, others = [], {}
    for r in lines:
        function = BY_APP.get(r.get("app"))
        if function is None:
            others[str(r.get("app"))] = others.get(str(r.get("app")), 0) + 1
            continue
        central = assumed.get(r["app"], {}).get(r.get("principal") or "")
        calls.append(
            Call(
                raw=r,
                function=function,
                member=central is not None,
                account=r["account"],
                central_account=central or r["account"],
                region=r.get("region") or STACK_REGION,
            )
        )
    return calls, others


# --------------------------------------------------------------------------- call -> requests

# Calls IAM governs with other actions than their own name (test_policy.py GOVERNED_BY); a
# TransactWriteItems is governed item by item (below).
GOVERNED_BY = {
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "s3:PutEncryptionConfiguration",
}

# Calls no policy governs (IAM authorizes them for every principal).
NEEDS_NO_PERMISSION = {("sts", "GetCallerIdentity")}

# What a function reaches only through its environment: test_policy.py
# (test_function_environment, test_role_names_pair_each_function_with_its_member_role) pins
# ALERT_TOPIC_ARN, CONFIG_PARAMETER, STATE_TABLE and MEMBER_ROLE_NAME to the stack's
# resources, and the code calls sns:Publish, ssm:GetParameter, the ledger's DynamoDB
# operations and sts:AssumeRole only on them. So the name a test gave its stand-in
# (cmk-guard-alerts, /cmk-guard/settings, cmk-guard-state, bedrock-cmk-guard-member) is
# replaced with the stack's (Deployment.environment); the account and Region of the call stay
# as observed.

# Services that act with the caller's credentials on a call (forward access sessions), each
# with its source: the implied requests carry kms:ViaService / iam:PassedToService.
BEDROCK_KEY_USE = ["kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"]
# https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions-kms.html:
#   the guardrail's creator needs kms:Decrypt, kms:GenerateDataKey, kms:DescribeKey,
#   kms:CreateGrant on the key (DescribeKey the function also calls itself).
# https://docs.aws.amazon.com/bedrock/latest/userguide/encryption-custom-job.html and
# https://docs.aws.amazon.com/bedrock/latest/userguide/model-evaluation-security-data.html:
#   likewise for the key of a customization, evaluation or batch inference job.
BEDROCK_KEY_PARAMS = {
    "UpdateGuardrail": ["kmsKeyId"],
    "CreateModelCustomizationJob": ["customModelKmsKeyId"],
    "CreateEvaluationJob": ["customerEncryptionKeyId"],
    "CreateModelInvocationJob": ["outputDataConfig.s3OutputDataConfig.s3EncryptionKeyId"],
}
# The jobs' own service role, passed to Bedrock (iam:PassRole; roleArn of each create).
BEDROCK_PASSES_ROLE = {"CreateModelCustomizationJob", "CreateEvaluationJob", "CreateModelInvocationJob"}


def _dig(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


@lru_cache(maxsize=None)
def _service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def rest_input(call: Call) -> dict[str, Any]:
    """A REST call's input members: URI labels, query string and JSON body members, by the
    botocore model's locations."""
    params = call.raw.get("params") or {}
    model = _service_model(call.service)
    op = model.operation_model(call.operation)
    uri = op.http["requestUri"].split("?", 1)[0]
    regex = "^" + re.sub(r"\\\{([A-Za-z0-9_]+)(?:\\\+)?\\\}", lambda m: f"(?P<{m.group(1)}>.+?)", re.escape(uri)) + "/?$"
    match = re.match(regex, unquote(params.get("path", call.raw.get("path", ""))))
    if not match:
        raise CheckError(f"{call.service}:{call.operation}: path {params.get('path')!r} does not fit {uri}")
    labels = match.groupdict()
    query = params.get("query") or {}
    body = params.get("body") if isinstance(params.get("body"), dict) else {}
    out: dict[str, Any] = {}
    for name, shape in (op.input_shape.members.items() if op.input_shape else []):
        location = shape.serialization.get("location")
        wire = shape.serialization.get("name", name)
        if location == "uri":
            out[name] = labels.get(wire)
        elif location == "querystring":
            if wire in query:
                out[name] = query[wire]
        elif location is None and name in body:
            out[name] = body[name]
    if call.raw.get("params_truncated"):
        out["_truncated"] = True
    return out


def call_input(call: Call) -> dict[str, Any]:
    protocol = _service_model(call.service).metadata["protocol"]
    if protocol in ("rest-json", "rest-xml"):
        return rest_input(call)
    return dict(call.raw.get("params") or {})


def key_arn(key: str, call: Call) -> tuple[str, dict[str, str]]:
    """The key ARN IAM authorizes a KMS request on, and what the request adds to the context.
    Aliases resolve to a key the log does not name: a stand-in key id "(alias/...)" in the
    alias's account and Region, which matches key/* patterns and no literal key ARN."""
    if key.startswith("arn:"):
        parts = key.split(":", 5)
        if parts[5].startswith("key/"):
            return key, {}
        alias = parts[5]
        return f"arn:{parts[1]}:kms:{parts[3]}:{parts[4]}:key/({alias})", {"kms:RequestAlias": alias}
    if key.startswith("alias/"):
        return f"arn:{PARTITION}:kms:{call.region}:{call.account}:key/({key})", {"kms:RequestAlias": key}
    return f"arn:{PARTITION}:kms:{call.region}:{call.account}:key/{key}", {}


def bedrock_arn(kind: str, identifier: str, call: Call, account: bool = True) -> str:
    if identifier.startswith("arn:"):
        return identifier
    owner = call.account if account else ""
    return f"arn:{PARTITION}:bedrock:{call.region}:{owner}:{kind}/{identifier}"


def model_arn(identifier: str, call: Call) -> str:
    """A model named by id or ARN: foundation model ids are account-less ARNs."""
    if identifier.startswith("arn:"):
        return identifier
    return bedrock_arn("foundation-model", identifier, call, account=False)


class Deployment:
    """Both templates resolved for a full deployment: per account, the central stack (the
    function's account) and the member stack (a member account trusting the central one)."""

    CENTRAL_PARAMETERS = {
        "OrganizationId": ORGANIZATION_ID,
        "AllowJobResubmission": "true",
    }

    def __init__(self, central: dict, member: dict, central_parameters: Optional[dict] = None):
        self.central_template = central
        self.member_template = member
        self.central_parameters = dict(self.CENTRAL_PARAMETERS if central_parameters is None else central_parameters)
        self._stacks: dict[tuple, Stack] = {}
        self._statements: dict[tuple, list[Statement]] = {}

    def central(self, account: str) -> Stack:
        key = ("central", account)
        if key not in self._stacks:
            self._stacks[key] = Stack(self.central_template, self.central_parameters, account)
        return self._stacks[key]

    def member(self, account: str, central_account: str) -> Stack:
        key = ("member", account, central_account)
        if key not in self._stacks:
            c = self.central(central_account)
            parameters = {"CentralAccountId": central_account}
            # The member stack takes the central stack's choices (member-account.yaml says so).
            for name in ("RoleNamePrefix", "AllowJobResubmission", "GuardedRegions", "RemediationKeyArns"):
                if name in self.member_template.get("Parameters", {}) and name in c.parameters:
                    parameters[name] = c.parameters[name]
            if "RoleNamePrefix" in parameters and parameters["RoleNamePrefix"] == "":
                # A central stack without a prefix names its roles after the stack.
                member_spec = self.member_template["Parameters"]["RoleNamePrefix"]
                if not re.fullmatch(member_spec.get("AllowedPattern", ".*"), ""):
                    parameters["RoleNamePrefix"] = STACK_NAME
            self._stacks[key] = Stack(self.member_template, parameters, account)
        return self._stacks[key]

    def statements(self, call: Call) -> list[Statement]:
        if call.member:
            key = ("member", call.function.member_role, call.account, call.central_account)
            if key not in self._statements:
                stack = self.member(call.account, call.central_account)
                self._statements[key] = role_statements(stack, "member-account.yaml", call.function.member_role)
        else:
            key = ("central", call.function.role, call.account)
            if key not in self._statements:
                stack = self.central(call.account)
                self._statements[key] = role_statements(stack, "template.yaml", call.function.role)
        return self._statements[key]

    def environment(self, call: Call) -> dict[str, Any]:
        stack = self.central(call.central_account)
        env = stack.template["Resources"][call.function.function]["Properties"]["Environment"]["Variables"]
        return stack.resolve(env)

    # ---- what a call asks IAM for

    def requests(self, call: Call) -> list[Request]:
        service, op = call.service, call.operation
        if (service, op) in NEEDS_NO_PERMISSION:
            return []
        inp = call_input(call)
        base = {
            "aws:RequestedRegion": call.region,
            "aws:ResourceOrgID": ORGANIZATION_ID,
            "kms:CallerAccount": call.account,
        }
        out: list[Request] = []

        def req(action: str, resources: list[str], implied: Optional[str] = None, **context: str) -> Request:
            r = Request(call, action, resources, {**base, **context}, implied)
            out.append(r)
            return r

        def need(name: str) -> Any:
            value = inp.get(name)
            if value in (None, ""):
                raise CheckError(f"{call.describe()}: {service}:{op} without {name} in the call log: {call.raw}")
            return value

        p, r, a = PARTITION, call.region, call.account
        if service == "bedrock":
            if op == "GetGuardrail":
                req(f"bedrock:{op}", [bedrock_arn("guardrail", need("guardrailIdentifier"), call)])
            elif op == "UpdateGuardrail":
                # The guardrail, and what the new draft names of the optional resource types
                # (Service Authorization Reference; the Bedrock guide's "Permissions for using
                # cross-Region inference with Amazon Bedrock Guardrails" grants UpdateGuardrail
                # on the guardrail-profile ARN for that reason).
                resources = [bedrock_arn("guardrail", need("guardrailIdentifier"), call)]
                profile = _dig(inp, "crossRegionConfig.guardrailProfileIdentifier")
                if profile:
                    resources.append(bedrock_arn("guardrail-profile", profile, call))
                for policy in _dig(inp, "automatedReasoningPolicyConfig.policies") or []:
                    resources.append(bedrock_arn("automated-reasoning-policy", policy, call))
                req(f"bedrock:{op}", resources)
            elif op == "ListGuardrails":
                ident = inp.get("guardrailIdentifier")
                req("bedrock:ListGuardrails", [bedrock_arn("guardrail", ident, call)] if ident else ["*"])
            elif op == "GetModelInvocationLoggingConfiguration":
                req(f"bedrock:{op}", ["*"])
            elif op in ("GetModelCustomizationJob", "StopModelCustomizationJob"):
                req(f"bedrock:{op}", [bedrock_arn("model-customization-job", need("jobIdentifier"), call)])
            elif op == "GetModelImportJob":
                req(f"bedrock:{op}", [bedrock_arn("model-import-job", need("jobIdentifier"), call)])
            elif op == "GetModelCopyJob":
                req(f"bedrock:{op}", [bedrock_arn("model-copy-job", need("jobArn"), call)])
            elif op == "GetCustomModel":
                req(f"bedrock:{op}", [bedrock_arn("custom-model", need("modelIdentifier"), call)])
            elif op == "GetImportedModel":
                req(f"bedrock:{op}", [bedrock_arn("imported-model", need("modelIdentifier"), call)])
            elif op in ("GetEvaluationJob", "StopEvaluationJob"):
                req(f"bedrock:{op}", [bedrock_arn("evaluation-job", need("jobIdentifier"), call)])
            elif op in ("GetModelInvocationJob", "StopModelInvocationJob"):
                req(f"bedrock:{op}", [bedrock_arn("model-invocation-job", need("jobIdentifier"), call)])
            elif op == "ListTagsForResource":
                req(f"bedrock:{op}", [need("resourceARN")])
            elif op == "CreateModelCustomizationJob":
                # The custom model it makes (named by customModelName) and the base model.
                req(f"bedrock:{op}", [
                    bedrock_arn("custom-model", need("customModelName"), call),
                    model_arn(need("baseModelIdentifier"), call),
                ])
            elif op == "CreateEvaluationJob":
                models = [
                    _dig(m, "bedrockModel.modelIdentifier")
                    for m in (_dig(inp, "inferenceConfig.models") or [])
                ]
                models = [m for m in models if m]
                if not models:
                    raise CheckError(f"{call.describe()}: CreateEvaluationJob names no model: {call.raw}")
                req(f"bedrock:{op}", [model_arn(m, call) for m in models])
            elif op == "CreateModelInvocationJob":
                req(f"bedrock:{op}", [
                    model_arn(need("modelId"), call),
                    bedrock_arn("model-invocation-job", need("jobName"), call),
                ])
            else:
                raise CheckError(f"{call.describe()}: no IAM mapping for bedrock:{op}")
            for param in BEDROCK_KEY_PARAMS.get(op, []):
                key = _dig(inp, param)
                if key:
                    arn, extra = key_arn(key, call)
                    for action in BEDROCK_KEY_USE:
                        req(action, [arn], f"Bedrock uses {param} with the caller's credentials",
                            **{"kms:ViaService": f"bedrock.{r}.amazonaws.com", **extra})
            if op in BEDROCK_PASSES_ROLE:
                req("iam:PassRole", [need("roleArn")], "the job's service role is passed to Bedrock",
                    **{"iam:PassedToService": "bedrock.amazonaws.com"})
        elif service == "kms":
            if op not in ("DescribeKey", "GetKeyPolicy"):
                raise CheckError(f"{call.describe()}: no IAM mapping for kms:{op}")
            arn, extra = key_arn(need("KeyId"), call)
            req(f"kms:{op}", [arn], **extra)
        elif service == "ssm":
            if op != "GetParameter":
                raise CheckError(f"{call.describe()}: no IAM mapping for ssm:{op}")
            name = self.environment(call)["CONFIG_PARAMETER"]
            req("ssm:GetParameter", [f"arn:{p}:ssm:{r}:{a}:parameter/{name.lstrip('/')}"])
        elif service == "sns":
            if op != "Publish":
                raise CheckError(f"{call.describe()}: no IAM mapping for sns:{op}")
            topic = need("TopicArn").split(":")
            stack_topic = self.environment(call)["ALERT_TOPIC_ARN"]
            req("sns:Publish", [":".join(topic[:5] + [stack_topic.split(":")[5]])])
            self._topic_key_use(call, stack_topic, req)
        elif service == "dynamodb":
            table = self.environment(call)["STATE_TABLE"]
            arn = f"arn:{p}:dynamodb:{r}:{a}:table/{table}"
            if op in ("PutItem", "GetItem", "UpdateItem", "DeleteItem"):
                req(f"dynamodb:{op}", [arn])
            elif op == "TransactWriteItems":
                # A transaction needs the permission of each write it holds.
                items = need("TransactItems")
                if call.raw.get("params_truncated") and len(items) >= 10:
                    # the emulator keeps 10 or 50 items of a list it had to cut
                    raise CheckError(f"{call.describe()}: TransactWriteItems may be cut in the log: {len(items)} items")
                kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
                for item in items:
                    (kind,) = item.keys()
                    req(f"dynamodb:{kinds[kind]}", [arn])
            else:
                raise CheckError(f"{call.describe()}: no IAM mapping for dynamodb:{op}")
            self._table_key_use(call, req)
        elif service == "sts":
            if op != "AssumeRole":
                raise CheckError(f"{call.describe()}: no IAM mapping for sts:{op}")
            role = need("RoleArn").split(":")
            name = self.environment(call)["MEMBER_ROLE_NAME"]
            req("sts:AssumeRole", [":".join(role[:5] + [f"role/{name}"])])
        elif service == "logs":
            if op == "DescribeLogGroups":
                # The Service Authorization Reference gives it no resource type, yet CloudWatch
                # Logs authorizes it on the account's "log-group::log-stream:" resource (the
                # AccessDenied message names it: hashicorp/terraform-provider-aws#8804), so a
                # log-group:* pattern of the account grants it.
                req("logs:DescribeLogGroups", [f"arn:{p}:logs:{r}:{a}:log-group::log-stream:"])
            elif op == "AssociateKmsKey":
                name = inp.get("logGroupName")
                arn = inp.get("resourceIdentifier") or f"arn:{p}:logs:{r}:{a}:log-group:{name}"
                req("logs:AssociateKmsKey", [arn])
            else:
                raise CheckError(f"{call.describe()}: no IAM mapping for logs:{op}")
        elif service == "s3":
            action = GOVERNED_BY.get((service, op))
            if action is None:
                raise CheckError(f"{call.describe()}: no IAM mapping for s3:{op}")
            req(action, [f"arn:{p}:s3:::{need('Bucket')}"], **{"s3:ResourceAccount": a})
        else:
            raise CheckError(f"{call.describe()}: no IAM mapping for {service}:{op}")
        return out

    def _topic_key_use(self, call: Call, topic_arn: str, req: Any) -> None:
        """SNS encrypts a message with the topic's key with the publisher's credentials:
        kms:GenerateDataKey and kms:Decrypt through SNS
        (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html)."""
        stack = self.central(call.central_account)
        for logical, resource in stack.template["Resources"].items():
            if resource["Type"] != "AWS::SNS::Topic" or stack.resource_attribute(logical, None) != topic_arn:
                continue
            key = stack.prop(logical, "KmsMasterKeyId")
            if key and ":key/" in str(key):  # alias/aws/sns needs no permission of the caller
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    req(action, [key], "SNS encrypts the message with the topic's key",
                        **{"kms:ViaService": f"sns.{call.region}.amazonaws.com"})

    def _table_key_use(self, call: Call, req: Any) -> None:
        """DynamoDB decrypts the table key of a table on a customer-managed key with the
        caller's credentials: kms:Decrypt through DynamoDB
        (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html)."""
        stack = self.central(call.central_account)
        table = self.environment(call)["STATE_TABLE"]
        for logical, resource in stack.template["Resources"].items():
            if resource["Type"] != "AWS::DynamoDB::Table" or stack.resource_attribute(logical, None) != table:
                continue
            sse = stack.prop(logical, "SSESpecification") or {}
            if sse.get("SSEType") == "KMS" and sse.get("KMSMasterKeyId"):
                req("kms:Decrypt", [sse["KMSMasterKeyId"]], "DynamoDB decrypts the table key",
                    **{"kms:ViaService": f"dynamodb.{call.region}.amazonaws.com"})


# --------------------------------------------------------------------------- judging


@dataclass
class Verdict:
    """What the calls prove about the policies."""

    denied: list[str] = field(default_factory=list)  # (a) calls no statement allows
    used: dict[tuple, set[str]] = field(default_factory=dict)  # statement key -> actions used
    used_patterns: dict[tuple, set[int]] = field(default_factory=dict)  # statement key -> Resource indexes used
    used_pairs: dict[tuple, set[tuple[str, int]]] = field(default_factory=dict)  # statement key -> (action, Resource index) used
    through: dict[tuple, list[Request]] = field(default_factory=dict)  # statement key -> requests it allowed
    statements: dict[tuple, Statement] = field(default_factory=dict)  # one resolved instance each
    roles_called: set[tuple[str, str]] = field(default_factory=set)  # (template, role)
    requests: int = 0


def allowed_by(statement: Statement, request: Request, resource: str) -> Optional[list[str]]:
    """Why the statement does not allow the request on the resource; None when it does."""
    if not any(action_matches(a, request.action) for a in statement.actions):
        return ["action not granted"]
    if not any(arn_like(p, resource) for p in statement.resources):
        return [f"resource not in {statement.resources}"]
    failures = condition_failures(statement, request.context)
    return failures or None


def collect(deployment: Deployment, calls: Iterable[Call]) -> list[Request]:
    """The distinct IAM requests the calls make (retries and repeats counted once)."""
    out, seen = [], set()
    for call in calls:
        for request in deployment.requests(call):
            identity = (call.function.name, call.member, call.account, call.central_account, request.action,
                        tuple(request.resources), tuple(sorted(request.context.items())), request.implied)
            if identity not in seen:
                seen.add(identity)
                out.append(request)
    return out


def judge(deployment: Deployment, requests: Iterable[Request]) -> Verdict:
    """(a): which requests no statement allows; and which statements, actions and Resource
    patterns the requests used (for (b) and (c))."""
    verdict = Verdict()
    for request in requests:
        call = request.call
        statements = deployment.statements(call)
        template = "member-account.yaml" if call.member else "template.yaml"
        verdict.roles_called.add((template, call.role))
        for s in statements:
            verdict.statements.setdefault(s.key, s)
        verdict.requests += 1
        for resource in request.resources:
            allowing = []
            misses = []
            for s in statements:
                why = allowed_by(s, request, resource)
                if why is None:
                    allowing.append(s)
                elif why != ["action not granted"]:
                    misses.append(f"{s.sid}: {'; '.join(why)}")
            if not allowing:
                near = f" (statements granting the action: {' | '.join(misses)})" if misses else " (no statement grants the action)"
                what = request.describe().replace(", ".join(request.resources), resource)
                verdict.denied.append(f"{call.describe()}: {what} is not allowed{near}")
            for s in allowing:
                verdict.used.setdefault(s.key, set()).add(request.action)
                verdict.through.setdefault(s.key, []).append(request)
                for i, pattern in enumerate(s.resources):
                    if arn_like(pattern, resource):
                        verdict.used_patterns.setdefault(s.key, set()).add(i)
                        verdict.used_pairs.setdefault(s.key, set()).add((request.action, i))
    return verdict


def mutated(template: dict, role: str, sid: str, change: Any) -> dict:
    """A deep copy of the template where the role's statement `sid` (found inside Fn::If
    branches too) is replaced by `change(statement)`, or removed when that returns None."""
    copy_ = copy.deepcopy(template)
    found = []

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("Sid") == sid and "Effect" in node:
                found.append(node)
                result = change(node)
                # AWS::NoValue drops it from its list, also as an Fn::If branch
                return {"Ref": "AWS::NoValue"} if result is None else result
            return {k: visit(v) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v) for v in node]
        return node

    for policy in copy_["Resources"][role]["Properties"].get("Policies", []):
        policy["PolicyDocument"] = visit(policy["PolicyDocument"])
    if not found:
        raise CheckError(f"no statement {sid} in {role}")
    return copy_
