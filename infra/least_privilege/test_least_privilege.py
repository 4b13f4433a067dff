"""Least privilege, proven from behaviour.

The emulator's call log (CMK_GUARD_CALL_LOG, written while the Rust integration tests ran:
tests/tools.sh start_emulator) holds every AWS request each function made, with its app
name, account, Region, credentials and parameters. A call made with credentials of a role the
function itself assumed (its own sts:AssumeRole) is judged against the function's member role
in member-account.yaml, every other call against its central role in template.yaml. Each call
is turned into the IAM authorizations it needs (iam_model.Deployment.requests: the action, the
resource ARNs as the Service Authorization Reference defines them, the condition context), plus
those a service makes with the caller's credentials during it (Bedrock using a key it was
given, a job's role passed to Bedrock, SNS and DynamoDB using the stack's key), and judged
against the role's policy resolved for a full deployment (OrganizationId set,
AllowJobResubmission true, GuardedRegions and RemediationKeyArns empty):

(a) every call is allowed: some statement matches action, resource and every condition;
(b) nothing is granted that no call used: every action of every statement, every Resource
    pattern of a statement a call used, and every action on each pattern of one of its
    resource types; except NOT_SEEN_BY_THE_TESTS, what the emulator cannot show, each with
    its reason;
(c) no Resource is wider than needed: "*" only for actions IAM gives no resource type, every
    other pattern fixes the service and the resource type and the account (ANY_ACCOUNT:
    unless calls reached other accounts), and a statement keeps the conditions that stand in
    for what its Resource leaves open (Region, account, the service a key or role is used
    through) unless the calls needed that width;
(d) the checker sees every widening: each real policy is widened one way at a time (Resource
    "*", the account "*", a condition removed, an action added, a used action removed) and
    each must be reported.

Run by infra/least-privilege.sh CALL_LOG (tests/run-all.sh does, after the Rust tests); plain
infra/check.sh does not collect this directory, because without a call log there is nothing
to judge. Without CMK_GUARD_CALL_LOG, or with an empty one, these tests fail.
"""

from __future__ import annotations

import collections
import copy
import os
import re
from pathlib import Path

import pytest

from iam_model import (
    BY_APP,
    FUNCTIONS,
    ORGANIZATION_ID,
    STACK_REGION,
    Call,
    CheckError,
    Deployment,
    Request,
    Statement,
    Verdict,
    collect,
    judge,
    load,
    mutated,
    read_calls,
    role_statements,
)

# Accounts the policies are resolved in for (b) and (c): any two distinct accounts do.
CENTRAL = "111122223333"
MEMBER = "444455556666"

# (c) Actions for which the Service Authorization Reference lists no resource type: a policy
# can only grant them on "*". Source: https://docs.aws.amazon.com/service-authorization/latest/
# reference/list_amazonbedrock.html (GetModelInvocationLoggingConfiguration), list_amazoncloudwatchlogs.html
# (DescribeLogGroups), list_awssecuritytokenservice.html (GetCallerIdentity).
NO_RESOURCE_TYPE = {
    "bedrock:GetModelInvocationLoggingConfiguration",
    "logs:DescribeLogGroups",
    "sts:GetCallerIdentity",
}

# (c) The resource types of every action the templates grant, and the ARN format of each type
# (Service Authorization Reference, "Actions" and "Resource types" tables of the pages
# list_amazonbedrock, list_awskeymanagementservice, list_awssystemsmanager, list_amazonsns,
# list_amazondynamodb, list_awssecuritytokenservice, list_amazoncloudwatchlogs,
# list_amazons3, list_awsidentityandaccessmanagementiam, list_amazonsqs).
RESOURCE_TYPES: dict[str, set[str]] = {
    "bedrock:GetGuardrail": {"guardrail"},
    "bedrock:UpdateGuardrail": {"guardrail", "automated-reasoning-policy", "automated-reasoning-policy-version", "guardrail-profile"},
    # optional resource type: a request naming a guardrail is authorized on it
    "bedrock:ListGuardrails": {"guardrail"},
    "bedrock:GetModelCustomizationJob": {"model-customization-job"},
    "bedrock:GetModelImportJob": {"model-import-job"},
    "bedrock:GetModelCopyJob": {"model-copy-job"},
    "bedrock:GetCustomModel": {"custom-model"},
    "bedrock:GetImportedModel": {"imported-model"},
    "bedrock:StopModelCustomizationJob": {"model-customization-job"},
    "bedrock:CreateModelCustomizationJob": {"custom-model", "foundation-model"},
    "bedrock:ListTagsForResource": {
        "custom-model", "evaluation-job", "guardrail", "imported-model", "model-copy-job",
        "model-customization-job", "model-evaluation-job", "model-import-job", "model-invocation-job",
    },
    "bedrock:GetEvaluationJob": {"evaluation-job"},
    "bedrock:GetModelInvocationJob": {"model-invocation-job"},
    "bedrock:StopEvaluationJob": {"evaluation-job"},
    "bedrock:StopModelInvocationJob": {"model-invocation-job"},
    "bedrock:CreateEvaluationJob": {"custom-model", "foundation-model", "prompt-router", "default-prompt-router"},
    "bedrock:CreateModelInvocationJob": {"custom-model", "foundation-model", "model-invocation-job"},
    "kms:DescribeKey": {"key"},
    "kms:GetKeyPolicy": {"key"},
    "kms:CreateGrant": {"key"},
    "kms:Decrypt": {"key"},
    "kms:GenerateDataKey": {"key"},
    "ssm:GetParameter": {"parameter"},
    "sns:Publish": {"topic"},
    "dynamodb:PutItem": {"table"},
    "dynamodb:GetItem": {"table"},
    "dynamodb:UpdateItem": {"table"},
    "dynamodb:DeleteItem": {"table"},
    "sts:AssumeRole": {"role"},
    "iam:PassRole": {"role"},
    "logs:AssociateKmsKey": {"log-group"},
    "logs:CreateLogStream": {"log-stream"},
    "logs:PutLogEvents": {"log-stream"},
    "s3:GetEncryptionConfiguration": {"bucket"},
    "s3:PutEncryptionConfiguration": {"bucket"},
    "sqs:SendMessage": {"queue"},
}

# type -> (service of the ARN, whether the ARN has a Region, whether it has an account,
# the literal start of the resource part that names the type, or "" where the ARN's resource
# part is the bare name).
ARN_FORMATS: dict[str, tuple[str, bool, bool, str]] = {
    "guardrail": ("bedrock", True, True, "guardrail/"),
    "guardrail-profile": ("bedrock", True, True, "guardrail-profile/"),
    "automated-reasoning-policy": ("bedrock", True, True, "automated-reasoning-policy/"),
    "automated-reasoning-policy-version": ("bedrock", True, True, "automated-reasoning-policy/"),
    "model-customization-job": ("bedrock", True, True, "model-customization-job/"),
    "model-import-job": ("bedrock", True, True, "model-import-job/"),
    "model-copy-job": ("bedrock", True, True, "model-copy-job/"),
    "custom-model": ("bedrock", True, True, "custom-model/"),
    "imported-model": ("bedrock", True, True, "imported-model/"),
    "foundation-model": ("bedrock", True, False, "foundation-model/"),
    "evaluation-job": ("bedrock", True, True, "evaluation-job/"),
    "model-evaluation-job": ("bedrock", True, True, "model-evaluation-job/"),
    "model-invocation-job": ("bedrock", True, True, "model-invocation-job/"),
    "prompt-router": ("bedrock", True, True, "prompt-router/"),
    "default-prompt-router": ("bedrock", True, True, "default-prompt-router/"),
    "key": ("kms", True, True, "key/"),
    "parameter": ("ssm", True, True, "parameter/"),
    "topic": ("sns", True, True, ""),
    "queue": ("sqs", True, True, ""),
    "table": ("dynamodb", True, True, "table/"),
    "role": ("iam", False, True, "role/"),
    "log-group": ("logs", True, True, "log-group:"),
    "log-stream": ("logs", True, True, "log-group:"),
    "bucket": ("s3", False, False, ""),
}

# (b) Statements whose use the emulator cannot show: what uses them is AWS itself, outside
# the calls the functions make. Each entry: the actions that may stay unused, the condition
# keys the statement must keep, and why. Only central roles (template.yaml) have such grants.
NOT_SEEN_BY_THE_TESTS = {
    "FailedEventsToDeadLetterQueue": (
        {"sqs:SendMessage"},
        set(),
        "Lambda's on-failure destination sends the record of an event that failed every retry "
        "with the function's role; the tests run the handlers in-process and through the "
        "runtime emulator (cargo lambda watch), never through Lambda's asynchronous invocation",
    ),
    "EncryptDeadLetters": (
        {"kms:GenerateDataKey", "kms:Decrypt"},
        {"kms:ViaService"},
        "SQS uses the dead-letter queue's key (the stack's CMK) with the function's credentials "
        "for that same on-failure send: only through SQS (kms:ViaService)",
    ),
    "WriteOwnLogs": (
        {"logs:CreateLogStream", "logs:PutLogEvents"},
        set(),
        "the Lambda runtime writes the function's stdout to its log group with the function's "
        "role; under test the functions' stdout reaches no log group",
    ),
}

# (c) Statements whose Resource may name any account, and why. The calls must show the need:
# a statement listed here whose calls all stayed in the caller's own account is reported.
ANY_ACCOUNT = {
    "ClassifyKeys": "a guardrail, a job or the settings may name a key of any account "
    "(allowedKeyAccounts); DescribeKey is answered only if that key's own policy allows it too",
    "ReachMemberAccounts": "the member role of whatever account an event came from; "
    "aws:ResourceOrgID keeps it inside the organization",
}

# Actions that use a key's material: never granted without the service that uses the key
# on the function's behalf (kms:ViaService), since the functions never call them themselves.
KEY_USE = re.compile(r"^kms:(Decrypt|Encrypt|GenerateDataKey.*|ReEncrypt.*|CreateGrant)$")

# (d) An action of the same service the functions never need, to widen a statement with.
EXTRA_ACTION = {
    "bedrock": "bedrock:DeleteGuardrail",
    "kms": "kms:ScheduleKeyDeletion",
    "ssm": "ssm:PutParameter",
    "sns": "sns:Subscribe",
    "dynamodb": "dynamodb:Scan",
    "sts": "sts:TagSession",
    "iam": "iam:CreateRole",
    "logs": "logs:DeleteLogGroup",
    "s3": "s3:DeleteBucket",
    "sqs": "sqs:DeleteQueue",
}


# --------------------------------------------------------------------------- fixtures


def call_log() -> Path:
    value = os.environ.get("CMK_GUARD_CALL_LOG")
    if not value:
        pytest.fail(
            "CMK_GUARD_CALL_LOG is not set: run infra/least-privilege.sh CALL_LOG with the call "
            "log of an emulator the Rust tests ran against (tests/run-all.sh does)"
        )
    path = Path(value)
    if not path.is_file() or path.stat().st_size == 0:
        pytest.fail(f"the call log {path} is missing or empty: nothing was proven")
    return path


@pytest.fixture(scope="module")
def observed() -> tuple[list[Call], dict[str, int]]:
    return read_calls(call_log())


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment(load("template.yaml"), load("member-account.yaml"))


@pytest.fixture(scope="module")
def requests(observed, deployment) -> list[Request]:
    calls, _ = observed
    return collect(deployment, calls)


@pytest.fixture(scope="module")
def baseline(deployment, requests) -> dict[str, list[str]]:
    return findings(deployment, requests)


# --------------------------------------------------------------------------- the checks


def policies(deployment: Deployment, role: str | None = None):
    """(function, template, role, statements) of every role, resolved in CENTRAL / MEMBER."""
    for f in FUNCTIONS:
        for template, name, stack in (
            ("template.yaml", f.role, deployment.central(CENTRAL)),
            ("member-account.yaml", f.member_role, deployment.member(MEMBER, CENTRAL)),
        ):
            if role is None or role == name:
                yield f, template, name, role_statements(stack, template, name)


def where(f, template: str, role: str) -> str:
    kind = "central role" if template == "template.yaml" else "member role, member-account.yaml"
    return f"{f.name} ({role}, {kind})"


def unused_grants(deployment: Deployment, verdict: Verdict, role: str | None = None) -> list[str]:
    """(b) Grants no call used."""
    out = []
    for f, template, name, statements in policies(deployment, role):
        if (template, name) not in verdict.roles_called:
            out.append(f"{where(f, template, name)}: no call in the tests was made with this role, so none of its grants is proven")
        for s in statements:
            allowed_unused, _, _ = NOT_SEEN_BY_THE_TESTS.get(s.sid, (set(), set(), ""))
            if template != "template.yaml":
                allowed_unused = set()
            used = verdict.used.get(s.key, set())
            for action in s.actions:
                if action in used:
                    if action in allowed_unused:
                        out.append(f"{where(f, template, name)}: statement {s.sid} is in NOT_SEEN_BY_THE_TESTS for {action}, yet a call used it: take it out of the list")
                    continue
                if action not in allowed_unused:
                    out.append(
                        f"{where(f, template, name)}: statement {s.sid} grants {action} on "
                        f"{', '.join(s.resources)}, but no call in the tests used it"
                    )
            if used:
                for i, pattern in enumerate(s.resources):
                    if i not in verdict.used_patterns.get(s.key, set()):
                        out.append(
                            f"{where(f, template, name)}: statement {s.sid} grants "
                            f"{', '.join(s.actions)} on {pattern}, but no call in the tests used that resource"
                        )
                        continue
                    # An action on a pattern of one of its resource types is a grant of its
                    # own: a statement listing actions and patterns grants every pair.
                    for action in s.actions:
                        if action in used and (action, i) not in verdict.used_pairs.get(s.key, set()) and any(
                            fits(pattern, kind) for kind in RESOURCE_TYPES.get(action, ())
                        ):
                            out.append(
                                f"{where(f, template, name)}: statement {s.sid} grants {action} on "
                                f"{pattern}, but no call in the tests used {action} on that resource"
                            )
    return out


def _arn(pattern: str) -> list[str] | None:
    parts = pattern.split(":", 5)
    return parts if len(parts) == 6 and parts[0] == "arn" else None


def fits(pattern: str, kind: str) -> bool:
    """The pattern fixes the service and the resource type of `kind`."""
    parts = _arn(pattern)
    if parts is None:
        return False
    service, _, _, prefix = ARN_FORMATS[kind]
    resource = parts[5]
    if parts[2] != service:
        return False
    if prefix:
        return resource.startswith(prefix) and "*" not in prefix and "?" not in resource[: len(prefix)]
    # a bare name (topic, queue, bucket): the type has no marker, the name must not
    # reach into another type's form
    return "/" not in resource


def condition_keys(s: Statement) -> set[str]:
    return {k for block in s.conditions.values() for k in block}


def _pooled(verdict: Verdict) -> dict[str, list[Request]]:
    """The requests every statement of a Sid allowed, in any role. A Sid is the same grant
    for the same shared code (shared/src: keys.rs, clients.rs, ledger.rs, notify.rs) in every
    function, so whether the calls needed a Region or an account beyond the caller's own is
    judged over all of them; whether a grant was used at all is judged per role ((b))."""
    out: dict[str, list[Request]] = collections.defaultdict(list)
    for key, requests in verdict.through.items():
        out[key[2]].extend(requests)
    return out


def _pins_region(s: Statement) -> bool:
    """A condition keeps the statement to named Regions: aws:RequestedRegion, or
    kms:ViaService naming Regional endpoints (<service>.<region>.amazonaws.com)."""
    for block in s.conditions.values():
        if "aws:RequestedRegion" in block:
            return True
        via = block.get("kms:ViaService")
        if via and all(re.fullmatch(r"[a-z0-9-]+\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com", v) for v in via):
            return True
    return False


def too_wide(deployment: Deployment, verdict: Verdict, role: str | None = None) -> list[str]:
    """(c) Resources and conditions wider than the calls need."""
    out = []
    pooled = _pooled(verdict)
    for f, template, name, statements in policies(deployment, role):
        own = CENTRAL if template == "template.yaml" else MEMBER
        for s in statements:
            w = f"{where(f, template, name)}: statement {s.sid}"
            through = verdict.through.get(s.key, [])
            keys = condition_keys(s)
            regions = {r.call.region for r in pooled.get(s.sid, [])}
            foreign = any(
                (_arn(res) or [""] * 6)[4] not in ("", r.call.account)
                for r in pooled.get(s.sid, []) for res in r.resources
            )
            unknown = [a for a in s.actions if a not in RESOURCE_TYPES and a not in NO_RESOURCE_TYPE]
            for action in unknown:
                out.append(f"{w} grants {action}, whose resource types the checker does not know (add them to iam_model.RESOURCE_TYPES from the Service Authorization Reference)")
            any_region = False
            for pattern in s.resources:
                if pattern == "*":
                    for action in s.actions:
                        if action in RESOURCE_TYPES:
                            out.append(
                                f"{w} grants {action} on \"*\", but IAM authorizes it on "
                                f"{' or '.join(sorted(RESOURCE_TYPES[action]))} resources (Service "
                                f"Authorization Reference): name them"
                            )
                    any_region = True
                    continue
                kinds = {k for a in s.actions for k in RESOURCE_TYPES.get(a, ()) if fits(pattern, k)}
                if not kinds:
                    out.append(f"{w}: Resource {pattern} does not fix the service and a resource type of {', '.join(s.actions)}")
                    continue
                parts = _arn(pattern)
                _, has_region, has_account, _ = ARN_FORMATS[sorted(kinds)[0]]
                if has_account and parts[4] != own:
                    if s.sid not in ANY_ACCOUNT:
                        out.append(f"{w}: Resource {pattern} names any account ({parts[4] or 'none'}), not the role's own")
                    elif not foreign:
                        out.append(f"{w}: Resource {pattern} names any account, yet no call through a {s.sid} statement left the caller's own account")
                if has_region and parts[3] != STACK_REGION:
                    any_region = True
            if any_region and s.actions and all(a.split(":")[0] not in ("iam", "sts") for a in s.actions):
                needed_wide = bool(regions - {STACK_REGION})
                bad = [v for block in s.conditions.values() for v in block.get("aws:RequestedRegion", []) if v != STACK_REGION]
                bad += [v for block in s.conditions.values() for v in block.get("kms:ViaService", [])
                        if not v.endswith(f".{STACK_REGION}.amazonaws.com")]
                if bad:
                    out.append(f"{w}: its Region condition allows {bad}, beyond the guarded Region {STACK_REGION}")
                elif not _pins_region(s) and not needed_wide:
                    out.append(f"{w}: its Resource leaves the Region open and no aws:RequestedRegion condition narrows it, yet every call through a {s.sid} statement was in {STACK_REGION}")
            if any(KEY_USE.match(a) for a in s.actions) and "kms:ViaService" not in keys:
                if not through or all(r.implied for r in through):
                    out.append(f"{w} grants key use ({', '.join(a for a in s.actions if KEY_USE.match(a))}) without kms:ViaService, though only services use the key on the function's behalf")
            if "iam:PassRole" in s.actions and "iam:PassedToService" not in keys:
                out.append(f"{w} grants iam:PassRole without iam:PassedToService")
            for pattern in s.resources:
                parts = _arn(pattern)
                if parts and parts[2] == "s3" and parts[4] == "" and "*" in parts[5] and not keys & {"s3:ResourceAccount", "aws:ResourceAccount"}:
                    out.append(f"{w}: Resource {pattern} names buckets of any account and no s3:ResourceAccount condition keeps them to the role's own")
            if "sts:AssumeRole" in s.actions and ORGANIZATION_ID and "aws:ResourceOrgID" not in keys:
                if any((_arn(p) or [""] * 6)[4] != own for p in s.resources):
                    out.append(f"{w} lets the role assume roles of any account, and no aws:ResourceOrgID condition keeps them inside the organization")
            if template == "template.yaml" and s.sid in NOT_SEEN_BY_THE_TESTS:
                for key in sorted(NOT_SEEN_BY_THE_TESTS[s.sid][1] - keys):
                    out.append(f"{w} lost its {key} condition ({NOT_SEEN_BY_THE_TESTS[s.sid][2]})")
    return out


def findings(deployment: Deployment, requests: list[Request], role: str | None = None) -> dict[str, list[str]]:
    mine = [r for r in requests if role is None or r.call.role == role]
    verdict = judge(deployment, mine)
    return {
        "a": _grouped(verdict.denied),
        "b": sorted(set(unused_grants(deployment, verdict, role))),
        "c": sorted(set(too_wide(deployment, verdict, role))),
    }


def _grouped(lines: list[str]) -> list[str]:
    """The same finding in many test accounts, once, with how often and one example."""
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for line in lines:
        groups[re.sub(r"\b\d{12}\b", "<account>", line)].append(line)
    out = []
    for general, examples in groups.items():
        out.append(examples[0] if len(examples) == 1 else f"{general} [in {len(examples)} test accounts]")
    return sorted(out)


def _fail(title: str, lines: list[str]) -> None:
    if lines:
        pytest.fail(f"{title} ({len(lines)}):\n- " + "\n- ".join(lines), pytrace=False)


# --------------------------------------------------------------------------- tests


def test_the_call_log_covers_every_function(observed, requests):
    calls, others = observed
    per_function = collections.Counter(c.function.name for c in calls)
    member = collections.Counter(c.function.name for c in calls if c.member)
    actions = collections.defaultdict(set)
    for r in requests:
        actions[r.call.function.name].add(r.action)
    print(f"\n{len(calls)} calls of the functions in {call_log()}; not judged (no function's app): {dict(others)}")
    for f in FUNCTIONS:
        print(
            f"  {f.name}: {per_function[f.name]} calls ({member[f.name]} with the member role), "
            f"{len(actions[f.name])} distinct IAM actions: {', '.join(sorted(actions[f.name]))}"
        )
    missing = [f.name for f in FUNCTIONS if per_function[f.name] == 0]
    assert not missing, f"no call of {missing} in the log: were the Rust tests run against this emulator?"


def test_every_call_is_allowed_by_its_role(baseline):
    _fail("calls the policies do not allow", baseline["a"])


def test_nothing_is_granted_that_no_call_used(baseline):
    _fail("grants no call used", baseline["b"])


def test_no_resource_or_condition_is_wider_than_the_calls_need(baseline):
    _fail("grants wider than needed", baseline["c"])


def test_the_allow_lists_name_real_statements(deployment):
    sids = {s.sid for _, template, _, statements in policies(deployment) for s in statements if template == "template.yaml"}
    all_sids = {s.sid for _, _, _, statements in policies(deployment) for s in statements}
    assert set(NOT_SEEN_BY_THE_TESTS) <= sids, set(NOT_SEEN_BY_THE_TESTS) - sids
    assert set(ANY_ACCOUNT) <= all_sids, set(ANY_ACCOUNT) - all_sids
    for _, template, _, statements in policies(deployment):
        for s in statements:
            if template == "template.yaml" and s.sid in NOT_SEEN_BY_THE_TESTS:
                assert NOT_SEEN_BY_THE_TESTS[s.sid][0] <= set(s.actions), s.sid


# --------------------------------------------------------------------------- (d) the checker itself


def widenings(deployment: Deployment, requests: list[Request]):
    """Every one-step widening of the real policies: (description, template name, role, Sid,
    changed template, what the report must name)."""
    used = judge(deployment, requests).used
    for f, template_name, role, statements in policies(deployment):
        template = deployment.central_template if template_name == "template.yaml" else deployment.member_template
        for s in statements:
            if s.resources != ["*"]:
                yield ("Resource \"*\"", template_name, role, s.sid,
                       mutated(template, role, s.sid, lambda n: {**n, "Resource": "*"}), s.sid)
            if any("${AWS::AccountId}" in text for text in _strings(_raw(template, role, s.sid).get("Resource"))):
                yield ("account \"*\"", template_name, role, s.sid,
                       mutated(template, role, s.sid, lambda n: {**n, "Resource": _any_account(n["Resource"])}), s.sid)
            if s.conditions:
                yield ("Condition removed", template_name, role, s.sid,
                       mutated(template, role, s.sid, lambda n: {k: v for k, v in n.items() if k != "Condition"}), s.sid)
            extra = EXTRA_ACTION[s.actions[0].split(":")[0]]
            yield (f"{extra} added", template_name, role, s.sid,
                   mutated(template, role, s.sid, lambda n, extra=extra: {**n, "Action": [*_actions(n), extra]}), extra)
            for action in sorted(used.get(s.key, set()) & set(s.actions)):
                def drop(n, action=action):
                    rest = [a for a in _actions(n) if a != action]
                    return {**n, "Action": rest} if rest else None
                yield (f"{action} removed", template_name, role, s.sid, mutated(template, role, s.sid, drop), action)


def _raw(template: dict, role: str, sid: str) -> dict:
    found = []
    mutated(template, role, sid, lambda n: found.append(n) or n)
    return found[0]


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _strings(v)]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return []


def _any_account(value):
    """The Resource with the stack's account replaced by "*" wherever it is substituted."""
    if isinstance(value, str):
        return value.replace("${AWS::AccountId}", "*")
    if isinstance(value, dict):
        return {k: _any_account(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_any_account(v) for v in value]
    return value


def _actions(node: dict) -> list:
    a = node["Action"]
    return list(a) if isinstance(a, list) else [a]


def test_the_checker_reports_every_widening(deployment, requests):
    base: dict[str, dict[str, list[str]]] = {}
    missed, tried = [], collections.Counter()
    for what, template_name, role, sid, changed, name in widenings(deployment, requests):
        if role not in base:
            base[role] = findings(deployment, requests, role)
        if template_name == "template.yaml":
            widened = Deployment(changed, deployment.member_template, deployment.central_parameters)
        else:
            widened = Deployment(deployment.central_template, changed, deployment.central_parameters)
        after = findings(widened, requests, role)
        new = [line for kind in "abc" for line in after[kind] if line not in base[role][kind]]
        tried["action added" if what.endswith("added") else "used action removed" if what.endswith("removed") and ":" in what else what] += 1
        if not any(name in line for line in new):
            missed.append(f"{template_name} {role}/{sid}: {what} was not reported (new findings: {new})")
    print(f"\nwidenings tried: {dict(tried)}")
    _fail("widenings the checker did not report", missed)


def test_a_call_without_permission_fails(deployment, observed):
    calls, _ = observed
    # A new call: data-jobs associating a key with a log group (invocation-logging's call).
    associate = next(c for c in calls if c.operation == "AssociateKmsKey")
    stray = copy.copy(associate)
    stray.function = BY_APP["cmk-guard-data-jobs"]
    verdict = judge(deployment, collect(deployment, [stray]))
    assert verdict.denied and "logs:AssociateKmsKey" in verdict.denied[0], verdict.denied
    # A call the checker cannot map is an error, never a pass.
    unknown = copy.copy(associate)
    unknown.raw = {**associate.raw, "service": "bedrock", "operation": "DeleteGuardrail"}
    with pytest.raises(CheckError):
        collect(deployment, [unknown])


def test_unknown_condition_operators_and_keys_are_errors(deployment, requests):
    template = deployment.central_template
    for condition in ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
                      {"StringEquals": {"aws:PrincipalTag/team": "x"}}):
        changed = mutated(template, "GuardrailsFunctionRole", "ReadSettings", lambda n, c=condition: {**n, "Condition": c})
        widened = Deployment(changed, deployment.member_template, deployment.central_parameters)
        with pytest.raises(CheckError):
            judge(widened, [r for r in requests if r.action == "ssm:GetParameter" and r.call.function.name == "guardrails"])
