"""The deployed permissions must match what the Rust code calls, and nothing more.

The guardrails function is built from functions/guardrails/src/*.rs and shared/src/*.rs. Every
SDK operation they call shows up as a fluent call `.<snake_case_operation>()`; the candidate
operations come from botocore's service models, so a new call in the code (or a call removed)
fails this test until template.yaml's GuardrailsFunctionRole says the same.
"""

from __future__ import annotations

import re
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name
from cfnlint.decode import cfn_yaml  # understands !Ref, !Sub, !GetAtt, ... (short forms)

INFRA = Path(__file__).resolve().parents[1]
ROOT = INFRA.parent
SOURCES = sorted(
    [*(ROOT / "functions/guardrails/src").glob("*.rs"), *(ROOT / "shared/src").glob("*.rs")]
)

# botocore service name -> IAM service prefix (the IAM action name is the operation name for
# all of these).
SERVICES = {
    "bedrock": "bedrock",
    "kms": "kms",
    "ssm": "ssm",
    "sns": "sns",
    "dynamodb": "dynamodb",
    "sts": "sts",
}

# Calls the SDK makes that do not appear as `.<operation>()` in our code.
INDIRECT_CALLS = {
    # aws_config::sts::AssumeRoleProvider calls sts:AssumeRole for member accounts.
    "AssumeRoleProvider": "sts:AssumeRole",
}

# Actions the code calls that IAM does not govern: no policy can allow or deny them.
NEEDS_NO_PERMISSION = {
    "sts:GetCallerIdentity",
}

# Calls IAM governs through other actions: a transaction needs the permissions of the writes
# it holds (the ledger's transactions hold only Updates).
GOVERNED_BY = {
    "dynamodb:TransactWriteItems": {"dynamodb:UpdateItem"},
}

# Actions granted though the code never calls them, each for a stated reason.
GRANTED_FOR_ANOTHER_REASON = {
    # Bedrock's UpdateGuardrail with a CMK uses the key with the caller's credentials
    # (kms:ViaService bedrock.<region>); and SNS does the same for a CMK-encrypted topic.
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    # Lambda's on-failure destination (the DLQ) is written with the function's role.
    "sqs:SendMessage",
    # The Lambda runtime writes the function's logs with its role.
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}


def load(name: str) -> dict:
    return cfn_yaml.load(str(INFRA / name))


def strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def operation_index() -> dict[str, set[str]]:
    """snake_case operation name -> IAM actions (a name may exist in several services)."""
    session = botocore.session.get_session()
    index: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        model = session.get_service_model(service)
        for op in model.operation_names:
            index.setdefault(xform_name(op), set()).add(f"{prefix}:{op}")
    return index


def called_actions() -> set[str]:
    index = operation_index()
    actions: set[str] = set()
    for path in SOURCES:
        text = strip_comments(path.read_text())
        for snake in set(re.findall(r"\.([a-z][a-z0-9_]*)\(\)", text)):
            actions |= index.get(snake, set())
        for marker, action in INDIRECT_CALLS.items():
            if marker in text:
                actions.add(action)
    return actions


def unwrap(value):
    """Statements may be wrapped in Fn::If (a conditional grant): take every real branch."""
    if isinstance(value, dict) and "Fn::If" in value:
        out = []
        for branch in value["Fn::If"][1:]:
            out.extend(unwrap(branch))
        return out
    if isinstance(value, dict) and value.get("Ref") == "AWS::NoValue":
        return []
    return [value]


def statements(role: dict) -> list[dict]:
    out = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            out.extend(unwrap(statement))
    return out


def actions_of(statement: dict) -> set[str]:
    action = statement["Action"]
    return {str(a) for a in (action if isinstance(action, list) else [action])}


def granted(role: dict) -> set[str]:
    return {a for s in statements(role) if s["Effect"] == "Allow" for a in actions_of(s)}


@pytest.fixture(scope="module")
def central() -> dict:
    return load("template.yaml")


@pytest.fixture(scope="module")
def member() -> dict:
    return load("member-account.yaml")


def test_sources_exist():
    names = {p.name for p in SOURCES}
    assert {"lib.rs", "clients.rs", "ledger.rs", "settings.rs", "notify.rs", "keys.rs"} <= names


def test_scanner_sees_the_known_calls():
    # Guards the scanner itself: if it stopped finding these, the equality below would be
    # comparing two empty-ish sets.
    assert {
        "bedrock:GetGuardrail",
        "bedrock:ListGuardrails",
        "bedrock:UpdateGuardrail",
        "kms:DescribeKey",
        "sns:Publish",
        "ssm:GetParameter",
        "dynamodb:PutItem",
        "sts:AssumeRole",
    } <= called_actions()


def test_function_policy_matches_the_code(central):
    code = called_actions() - NEEDS_NO_PERMISSION
    for call, governing in GOVERNED_BY.items():
        if call in code:
            code = (code - {call}) | governing
    policy = granted(central["Resources"]["GuardrailsFunctionRole"]) - GRANTED_FOR_ANOTHER_REASON
    assert code - policy == set(), "called in the code but not granted"
    assert policy - code == set(), "granted but not called in the code"


def test_other_reasons_are_really_granted(central):
    # A stale entry in GRANTED_FOR_ANOTHER_REASON would hide drift.
    assert GRANTED_FOR_ANOTHER_REASON <= granted(central["Resources"]["GuardrailsFunctionRole"])


def test_member_role_is_a_subset_of_the_function(central, member):
    function = granted(central["Resources"]["GuardrailsFunctionRole"])
    member_actions = granted(member["Resources"]["MemberRole"])
    assert member_actions
    assert member_actions <= function


def test_member_role_is_trusted_by_the_central_role_only(member):
    trust = member["Resources"]["MemberRole"]["Properties"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert "aws:PrincipalArn" in statement["Condition"]["ArnEquals"]


def all_policy_statements(template: dict) -> list[dict]:
    found = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for policy in props.get("Policies", []):
            for s in policy["PolicyDocument"]["Statement"]:
                found.extend(unwrap(s))
        for key in ("AssumeRolePolicyDocument", "PolicyDocument"):
            if key in props:
                for s in props[key]["Statement"]:
                    found.extend(unwrap(s))
        if resource["Type"] == "AWS::Events::EventBusPolicy":
            found.extend(unwrap(props["Statement"]))
    return found


@pytest.mark.parametrize("name", ["template.yaml", "member-account.yaml"])
def test_no_wildcard_actions(name):
    template = load(name)
    statements_ = all_policy_statements(template)
    assert statements_
    for s in statements_:
        assert "NotAction" not in s
        for action in actions_of(s):
            assert "*" not in action, f"wildcard action {action!r} in {name}"
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), action


def reactor_events() -> set[tuple[str, str]]:
    text = (ROOT / "functions/guardrails/src/lib.rs").read_text()
    block = re.search(r"const EVENTS: &'static \[EventSpec\] = &\[(.*?)\n    \];", text, re.S)
    assert block, "EVENTS const not found in functions/guardrails/src/lib.rs"
    pairs = re.findall(
        r'event_source:\s*"([^"]+)",\s*event_name:\s*"([^"]+)"', block.group(1)
    )
    assert pairs
    return set(pairs)


def rule_events(rule: dict) -> set[tuple[str, str]]:
    pattern = rule["Properties"]["EventPattern"]
    assert list(pattern["source"]) == ["aws.bedrock"]
    assert list(pattern["detail-type"]) == ["AWS API Call via CloudTrail"]
    detail = pattern["detail"]
    return {(s, n) for s in detail["eventSource"] for n in detail["eventName"]}


def test_rule_pattern_matches_the_reactor(central, member):
    expected = reactor_events()
    assert expected == {
        ("bedrock.amazonaws.com", "CreateGuardrail"),
        ("bedrock.amazonaws.com", "UpdateGuardrail"),
        ("bedrock.amazonaws.com", "CreateGuardrailVersion"),
        ("bedrock.amazonaws.com", "DeleteGuardrail"),
    }
    assert rule_events(central["Resources"]["GuardrailChangeRule"]) == expected
    assert rule_events(member["Resources"]["ForwardGuardrailChangesRule"]) == expected


def test_function_environment(central):
    props = central["Resources"]["GuardrailsFunction"]["Properties"]
    env = props["Environment"]["Variables"]
    assert set(env) == {
        "ALERT_TOPIC_ARN",
        "CONFIG_PARAMETER",
        "MEMBER_ROLE_NAME",
        "STATE_TABLE",
        "RUST_LOG",
    }
    # Every variable the code reads is set (shared/src/clients.rs Env::from_process).
    clients = (ROOT / "shared/src/clients.rs").read_text()
    read = set(re.findall(r'var\("([A-Z_]+)"\)', clients))
    assert read and read <= set(env)
    assert props["Runtime"] == "provided.al2023"
    assert list(props["Architectures"]) == ["arm64"]
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
