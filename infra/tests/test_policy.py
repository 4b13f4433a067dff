"""The deployed permissions must match what the Rust code calls, and nothing more.

Each function is built from functions/<name>/src/*.rs and shared/src/*.rs. Every SDK operation
they call shows up as a fluent call `.<snake_case_operation>()`; the candidate operations come
from botocore's service models, so a new call in the code (or a call removed) fails this test
until the function's role in template.yaml (and its member role) says the same. Each rule must
name exactly the events its reactor declares.
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


class Function:
    """One reactor Lambda and the resources that belong to it in the two templates."""

    def __init__(self, crate, role, member_role, rule, forward_rule, function, extra_grants):
        self.crate = crate
        self.role = role
        self.member_role = member_role
        self.rule = rule
        self.forward_rule = forward_rule
        self.function = function
        # Actions granted though the code never calls them (GRANTED_FOR_ANOTHER_REASON).
        self.extra_grants = extra_grants

    def sources(self) -> list[Path]:
        return sorted(
            [*(ROOT / "functions" / self.crate / "src").glob("*.rs"),
             *(ROOT / "shared/src").glob("*.rs")]
        )

    def __repr__(self) -> str:
        return self.crate

# botocore service name -> IAM service prefix (the IAM action name is the operation name,
# except for the calls in GOVERNED_BY).
SERVICES = {
    "bedrock": "bedrock",
    "kms": "kms",
    "ssm": "ssm",
    "sns": "sns",
    "dynamodb": "dynamodb",
    "sts": "sts",
    "logs": "logs",
    "s3": "s3",
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
# it holds (the ledger's transactions hold only Updates); S3 names the bucket-encryption
# actions after the subresource, not the operation.
GOVERNED_BY = {
    "dynamodb:TransactWriteItems": {"dynamodb:UpdateItem"},
    "s3:GetBucketEncryption": {"s3:GetEncryptionConfiguration"},
    "s3:PutBucketEncryption": {"s3:PutEncryptionConfiguration"},
}

# Actions granted to every function though the code never calls them, each for a stated reason.
GRANTED_FOR_ANOTHER_REASON = {
    # SNS uses a CMK-encrypted topic's key with the publisher's credentials.
    "kms:Decrypt",
    "kms:GenerateDataKey",
    # Lambda's on-failure destination (the DLQ) is written with the function's role.
    "sqs:SendMessage",
    # The Lambda runtime writes the function's logs with its role.
    "logs:CreateLogStream",
    "logs:PutLogEvents",
}

FUNCTIONS = [
    Function(
        crate="guardrails",
        role="GuardrailsFunctionRole",
        member_role="MemberRole",
        rule="GuardrailChangeRule",
        forward_rule="ForwardGuardrailChangesRule",
        function="GuardrailsFunction",
        # Bedrock's UpdateGuardrail with a CMK uses the key with the caller's credentials
        # (kms:ViaService bedrock.<region>).
        extra_grants={"kms:CreateGrant"},
    ),
    Function(
        crate="invocation-logging",
        role="InvocationLoggingFunctionRole",
        member_role="InvocationLoggingMemberRole",
        rule="InvocationLoggingChangeRule",
        forward_rule="ForwardInvocationLoggingChangesRule",
        function="InvocationLoggingFunction",
        extra_grants=set(),
    ),
    Function(
        crate="model-jobs",
        role="ModelJobsFunctionRole",
        member_role="ModelJobsMemberRole",
        rule="ModelJobsChangeRule",
        forward_rule="ForwardModelJobsRule",
        function="ModelJobsFunction",
        # Submitting a stopped job again (AllowJobResubmission): Bedrock uses the key with the
        # caller's credentials, and the job's own role is passed to Bedrock.
        extra_grants={"kms:CreateGrant", "iam:PassRole"},
    ),
    Function(
        crate="data-jobs",
        role="DataJobsFunctionRole",
        member_role="DataJobsMemberRole",
        rule="DataJobsChangeRule",
        forward_rule="ForwardDataJobsRule",
        function="DataJobsFunction",
        # As model-jobs.
        extra_grants={"kms:CreateGrant", "iam:PassRole"},
    ),
]


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


# SDK crate -> IAM service prefix, to tell apart operations of the same name in several
# services (bedrock and logs both have ListTagsForResource).
SDK_CRATES = {
    "aws-sdk-bedrock": "bedrock",
    "aws-sdk-kms": "kms",
    "aws-sdk-ssm": "ssm",
    "aws-sdk-sns": "sns",
    "aws-sdk-dynamodb": "dynamodb",
    "aws-sdk-sts": "sts",
    "aws-sdk-cloudwatchlogs": "logs",
    "aws-sdk-s3": "s3",
}


def linked_services(manifest: Path) -> set[str]:
    """The services whose SDK a crate is built with."""
    dependencies = manifest.read_text().split("[dependencies]", 1)[1].split("\n[", 1)[0]
    return {prefix for crate, prefix in SDK_CRATES.items()
            if re.search(rf"^{re.escape(crate)}\b", dependencies, re.MULTILINE)}


def called_actions(function: Function) -> set[str]:
    index = operation_index()
    own = linked_services(ROOT / "functions" / function.crate / "Cargo.toml")
    shared = linked_services(ROOT / "shared/Cargo.toml")
    actions: set[str] = set()
    for path in function.sources():
        # A call is made with the SDK of the crate whose source makes it.
        services = shared if path.is_relative_to(ROOT / "shared") else own
        text = strip_comments(path.read_text())
        for snake in set(re.findall(r"\.([a-z][a-z0-9_]*)\(\)", text)):
            actions |= {a for a in index.get(snake, set()) if a.split(":")[0] in services}
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
    for function in FUNCTIONS:
        names = {p.name for p in function.sources()}
        assert {"lib.rs", "main.rs", "clients.rs", "ledger.rs", "settings.rs", "notify.rs"} <= names


def test_scanner_sees_the_known_calls():
    # Guards the scanner itself: if it stopped finding these, the equality below would be
    # comparing two empty-ish sets.
    guardrails, logging, model_jobs, data_jobs = FUNCTIONS
    assert {
        "bedrock:GetModelCustomizationJob",
        "bedrock:GetCustomModel",
        "bedrock:GetModelImportJob",
        "bedrock:GetImportedModel",
        "bedrock:GetModelCopyJob",
    } <= called_actions(model_jobs)
    assert {"bedrock:GetEvaluationJob", "bedrock:GetModelInvocationJob"} <= called_actions(data_jobs)
    # An operation name several services share is the one of the SDK the calling crate uses.
    assert "bedrock:ListTagsForResource" in called_actions(data_jobs)
    assert not {"logs:ListTagsForResource", "sns:ListTagsForResource"} & called_actions(data_jobs)
    assert {
        "bedrock:GetGuardrail",
        "bedrock:ListGuardrails",
        "bedrock:UpdateGuardrail",
        "kms:DescribeKey",
        "sns:Publish",
        "ssm:GetParameter",
        "dynamodb:PutItem",
        "sts:AssumeRole",
    } <= called_actions(guardrails)
    assert {
        "bedrock:GetModelInvocationLoggingConfiguration",
        "logs:DescribeLogGroups",
        "logs:AssociateKmsKey",
        "s3:GetBucketEncryption",
        "s3:PutBucketEncryption",
        "kms:GetKeyPolicy",
        "kms:DescribeKey",
        "sns:Publish",
    } <= called_actions(logging)


def needed(function: Function) -> set[str]:
    """The IAM actions the function's code needs."""
    code = called_actions(function) - NEEDS_NO_PERMISSION
    for call, governing in GOVERNED_BY.items():
        if call in code:
            code = (code - {call}) | governing
    return code


@pytest.mark.parametrize("function", FUNCTIONS, ids=repr)
def test_function_policy_matches_the_code(central, function):
    code = needed(function)
    policy = (
        granted(central["Resources"][function.role])
        - GRANTED_FOR_ANOTHER_REASON
        - function.extra_grants
    )
    assert code - policy == set(), "called in the code but not granted"
    assert policy - code == set(), "granted but not called in the code"


@pytest.mark.parametrize("function", FUNCTIONS, ids=repr)
def test_other_reasons_are_really_granted(central, function):
    # A stale entry in GRANTED_FOR_ANOTHER_REASON would hide drift.
    granted_ = granted(central["Resources"][function.role])
    assert (GRANTED_FOR_ANOTHER_REASON | function.extra_grants) <= granted_


# What stays in the central account: settings, the ledger, findings, reaching members, the
# function's own logs and dead letters.
CENTRAL_ONLY_SERVICES = {"ssm", "dynamodb", "sns", "sts", "sqs"}


@pytest.mark.parametrize("function", FUNCTIONS, ids=repr)
def test_member_role_grants_what_the_function_does_in_a_member_account(central, member, function):
    member_actions = granted(member["Resources"][function.member_role])
    in_member = {
        a for a in needed(function) if a.split(":")[0] not in CENTRAL_ONLY_SERVICES
    } | function.extra_grants
    if "kms:CreateGrant" in function.extra_grants:
        # Bedrock's use of the key happens in the member account too.
        in_member |= {"kms:Decrypt", "kms:GenerateDataKey"}
    assert member_actions == in_member
    assert member_actions <= granted(central["Resources"][function.role])


@pytest.mark.parametrize("function", FUNCTIONS, ids=repr)
def test_member_role_is_trusted_by_its_central_role_only(member, function):
    trust = member["Resources"][function.member_role]["Properties"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    principal = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    assert principal, "narrowed to one role"


# The central stack's prefix (the stack name when RoleNamePrefix is empty), and the member
# stack's prefix and central Region (this Region when CentralRegion is empty).
CENTRAL_NAME_VARIABLES = {
    "Prefix": {"Fn::If": ["HasRoleNamePrefix", {"Ref": "RoleNamePrefix"}, {"Ref": "AWS::StackName"}]}
}
MEMBER_NAME_VARIABLES = {
    "Prefix": {"Ref": "RoleNamePrefix"},
    "Region": {"Fn::If": ["HasCentralRegion", {"Ref": "CentralRegion"}, {"Ref": "AWS::Region"}]},
}


@pytest.mark.parametrize("function", FUNCTIONS, ids=repr)
def test_role_names_pair_each_function_with_its_member_role(central, member, function):
    # <prefix>-<region>-<function> in the central account; <prefix>-<central region>-
    # <function>-member in members, trusting exactly the first. A mismatch would make every
    # cross-account read fail. (test_safety_net.py renders the names for real parameters.)
    own = f"${{Prefix}}-${{AWS::Region}}-{function.crate}"
    role = central["Resources"][function.role]["Properties"]
    assert role["RoleName"] == {"Fn::Sub": [own, CENTRAL_NAME_VARIABLES]}
    env = central["Resources"][function.function]["Properties"]["Environment"]["Variables"]
    assert env["MEMBER_ROLE_NAME"] == {"Fn::Sub": [f"{own}-member", CENTRAL_NAME_VARIABLES]}
    member_role = member["Resources"][function.member_role]["Properties"]
    theirs = f"${{Prefix}}-${{Region}}-{function.crate}"
    assert member_role["RoleName"] == {"Fn::Sub": [f"{theirs}-member", MEMBER_NAME_VARIABLES]}
    trusted = member_role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["ArnEquals"][
        "aws:PrincipalArn"
    ]
    assert trusted == {
        "Fn::Sub": [f"arn:${{AWS::Partition}}:iam::${{CentralAccountId}}:role/{theirs}", MEMBER_NAME_VARIABLES]
    }
    reach = [
        s
        for s in statements(central["Resources"][function.role])
        if s["Action"] == "sts:AssumeRole"
    ]
    assert [s["Resource"] for s in reach] == [
        {"Fn::Sub": [f"arn:${{AWS::Partition}}:iam::*:role/{own}-member", CENTRAL_NAME_VARIABLES]}
    ]


def test_each_function_reaches_its_own_member_role(central):
    # The guardrails function must not be able to assume the role that changes buckets, and
    # the other way round.
    env = {
        f.crate: central["Resources"][f.function]["Properties"]["Environment"]["Variables"][
            "MEMBER_ROLE_NAME"
        ]
        for f in FUNCTIONS
    }
    assert len({str(v) for v in env.values()}) == len(FUNCTIONS), env


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


def reactor_events(function: Function) -> set[tuple[str, str]]:
    path = ROOT / "functions" / function.crate / "src/lib.rs"
    text = path.read_text()
    block = re.search(r"const EVENTS: &'static \[EventSpec\] = &\[(.*?)\n    \];", text, re.S)
    assert block, f"EVENTS const not found in {path}"
    pairs = re.findall(
        r'event_source:\s*"([^"]+)",\s*event_name:\s*"([^"]+)"', block.group(1)
    )
    assert pairs
    return set(pairs)


def rule_events(rule: dict) -> set[tuple[str, str]]:
    """The (eventSource, eventName) pairs a rule matches; each `$or` branch pairs one
    service's source with its own calls, so no branch matches another service's call."""
    pattern = rule["Properties"]["EventPattern"]
    assert list(pattern["detail-type"]) == ["AWS API Call via CloudTrail"]
    detail = {k: v for k, v in pattern["detail"].items() if k != "errorCode"}
    branches = detail["$or"] if "$or" in detail else [detail]
    pairs = set()
    for branch in branches:
        assert set(branch) == {"eventSource", "eventName"}, branch
        pairs |= {(s, n) for s in branch["eventSource"] for n in branch["eventName"]}
    # Every CloudTrail source the rule takes has its events, and no other.
    sources = {"aws." + s.split(".")[0] for s, _ in pairs}
    assert set(pattern["source"]) == sources
    return pairs


def test_guardrails_events():
    assert reactor_events(FUNCTIONS[0]) == {
        ("bedrock.amazonaws.com", "CreateGuardrail"),
        ("bedrock.amazonaws.com", "UpdateGuardrail"),
        ("bedrock.amazonaws.com", "CreateGuardrailVersion"),
        ("bedrock.amazonaws.com", "DeleteGuardrail"),
    }


@pytest.mark.parametrize("function", FUNCTIONS, ids=repr)
def test_rule_pattern_matches_the_reactor(central, member, function):
    expected = reactor_events(function)
    assert rule_events(central["Resources"][function.rule]) == expected
    assert rule_events(member["Resources"][function.forward_rule]) == expected


def test_failed_calls_never_invoke_a_function(central, member):
    # A failed call changed nothing; CloudWatch Logs and S3 see many (AccessDenied from
    # scanners), each of which would cost an invocation. Every rule, central and forwarding
    # (the central stack's ForwardOwnEventsRule, with a bus of its own, included).
    rules = [
        (name, r) for template in (central, member) for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Events::Rule"
    ]
    assert len(rules) == 9, [name for name, _ in rules]
    for name, rule in rules:
        assert rule["Properties"]["EventPattern"]["detail"]["errorCode"] == [{"exists": False}], name


def test_no_two_rules_deliver_the_same_event(central):
    seen = [rule_events(central["Resources"][f.rule]) for f in FUNCTIONS]
    for i, a in enumerate(seen):
        for b in seen[i + 1 :]:
            assert not a & b


def test_the_bus_accepts_every_forwarded_source(central):
    condition = central["Resources"]["OrganizationEventBusPolicy"]["Properties"]["Statement"][
        "Condition"
    ]["StringEquals"]
    accepted = set(condition["events:source"])
    forwarded = set()
    for f in FUNCTIONS:
        forwarded |= set(central["Resources"][f.rule]["Properties"]["EventPattern"]["source"])
    assert accepted == forwarded


@pytest.mark.parametrize("function", FUNCTIONS, ids=repr)
def test_function_environment(central, function):
    props = central["Resources"][function.function]["Properties"]
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
    # infra/package.sh builds this zip (infra/README.md).
    assert props["CodeUri"] == f"../target/lambda/{function.crate}/bootstrap.zip"
    assert props["Role"] == {"Fn::GetAtt": [function.role, "Arn"]}


@pytest.mark.parametrize("function", FUNCTIONS, ids=repr)
def test_rule_targets_its_function_with_retries_and_dead_letters(central, function):
    rule = central["Resources"][function.rule]["Properties"]
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function.function, "Arn"]}
    assert "DeadLetterConfig" in target
    permission = [
        r["Properties"]
        for r in central["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["SourceArn"] == {"Fn::GetAtt": [function.rule, "Arn"]}
    ]
    assert permission and permission[0]["FunctionName"] == {"Ref": function.function}
    dlq_sources = central["Resources"]["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert {"Fn::GetAtt": [function.rule, "Arn"]} in list(dlq_sources)
