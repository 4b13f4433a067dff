"""What keeps a deployment safe beyond least privilege (test_policy.py):

- the guard's own failures reach somebody: every alarm publishes to the alert topic, and the
  topic is, by default, encrypted with a CMK whose key policy lets CloudWatch alarms use it
  (they cannot publish to a topic on the AWS-managed alias/aws/sns, whose policy is fixed);
- what the guard keeps (dead letters, ledger, logs) is on that CMK too;
- the stack deploys into a second Region, under a second name, onto a bus of its own, with
  chat and e-mail subscriptions only when asked for: checked by rendering the templates for
  real parameter values (Stack below), not only by reading them.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

import render

INFRA = Path(__file__).resolve().parents[1]
ROOT = INFRA.parent
CENTRAL_ACCOUNT = "111122223333"
MEMBER_ACCOUNT = "444455556666"
FUNCTIONS = ["guardrails", "invocation-logging", "model-jobs", "data-jobs"]


class Stack(render.Stack):
    """A template rendered for given parameter values, the way CloudFormation would
    (infra/render.py), by default in the central account. What only a deployment knows
    (another resource's Ref or GetAtt) stays a placeholder such as "<GetAtt EventBus.Arn>"; a
    reference to a resource that is left out is an error, as it would be in CloudFormation."""

    def __init__(self, template: dict, parameters: dict | None = None, *, account=CENTRAL_ACCOUNT, **where):
        super().__init__(template, parameters, account=account, **where)

    def resource_attribute(self, logical: str, attribute: str | None) -> str:
        if attribute is None:
            assert self.exists(logical), f"Ref to {logical}, which these parameters leave out"
            return f"<Ref {logical}>"
        assert self.exists(logical), f"GetAtt of {logical}, which these parameters leave out"
        return f"<GetAtt {logical}.{attribute}>"


def load(name: str) -> dict:
    return cfn_yaml.load(str(INFRA / name))


def by_type(resources: dict, kind: str) -> dict:
    return {n: r["Properties"] for n, r in resources.items() if r["Type"] == kind}


@pytest.fixture(scope="module")
def central() -> dict:
    return cfn_yaml.load(str(INFRA / "template.yaml"))


def created_key_arn() -> dict:
    return {"Fn::GetAtt": ["AlertTopicKey", "Arn"]}


def topic_key(central: dict):
    return central["Resources"]["AlertTopic"]["Properties"]["KmsMasterKeyId"]


def test_by_default_the_topic_is_on_a_cmk_the_stack_creates(central):
    parameter = central["Parameters"]["AlertTopicKmsKeyId"]
    assert parameter["Default"] == "", "the default must not be alias/aws/sns"
    assert central["Conditions"]["CreateTopicKey"] == {"Fn::Equals": [{"Ref": "AlertTopicKmsKeyId"}, ""]}
    condition, created, given = topic_key(central)["Fn::If"]
    assert (condition, created, given) == ("CreateTopicKey", created_key_arn(), {"Ref": "AlertTopicKmsKeyId"})
    key = central["Resources"]["AlertTopicKey"]
    assert key["Condition"] == "CreateTopicKey"
    assert key["Properties"]["EnableKeyRotation"] is True


def test_the_created_key_lets_cloudwatch_alarms_publish(central):
    statements = central["Resources"]["AlertTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    alarms = [s for s in statements if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert alarms, "no key policy statement for cloudwatch.amazonaws.com"
    [statement] = alarms
    assert statement["Effect"] == "Allow"
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(statement["Action"])
    # Only this account's alarms.
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_every_function_may_use_the_topic_key_it_publishes_with(central):
    """Each role's EncryptFindings names the very key the topic is on (created or given)."""
    roles = [r for r in central["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    found = 0
    for role in roles:
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if isinstance(statement, dict) and "Fn::If" in statement:
                    condition, grant, _ = statement["Fn::If"]
                    if isinstance(grant, dict) and grant.get("Sid") == "EncryptFindings":
                        assert condition == "UseTopicCmk"
                        assert grant["Resource"] == topic_key(central)
                        found += 1
    assert found == 4, f"{found} functions may encrypt findings"


def test_every_alarm_reaches_the_topic(central):
    alarms = {n: r for n, r in central["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(alarms) >= 5, alarms.keys()
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}], name


def test_every_function_has_an_errors_alarm_and_its_throttles_are_watched(central):
    functions = {n for n, r in central["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
                 or r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) == 4, functions
    alarms = [r["Properties"] for r in central["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    errors = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms if a.get("MetricName") == "Errors"}
    assert errors == functions, "every function has an Errors alarm"
    throttled = {
        q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for a in alarms
        for q in a.get("Metrics", [])
        if q.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "Throttles"
    }
    assert throttled == functions, "every function's throttles are watched"


def readme_stack_set_parameters() -> dict:
    """The parameters infra/README.md's create-stack-set command gives the member stacks."""
    readme = (INFRA / "README.md").read_text()
    command = readme.split("aws cloudformation create-stack-set", 1)[1].split("```", 1)[0]
    return dict(re.findall(r"ParameterKey=(\w+),ParameterValue=([\w.-]+)", command))


def test_the_documented_scp_protects_every_member_role():
    """infra/README.md's SCP must keep naming every member role as the template names it for
    the README's own StackSet command: renaming a role without the SCP would leave it
    unprotected."""
    readme = (INFRA / "README.md").read_text()
    block = readme.split("## Keep member admins", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    scp = json.loads(block)
    [roles] = [s for s in scp["Statement"] if s["Sid"] == "KeepBedrockCmkGuardRoles"]
    documented = readme_stack_set_parameters()
    assert {"CentralAccountId", "RoleNamePrefix", "CentralRegion"} <= set(documented)
    # The instance that creates the (global) member roles.
    region = documented.get("RoleRegion") or documented["CentralRegion"]
    member = Stack(load("member-account.yaml"), documented, region=region, account=MEMBER_ACCOUNT)
    names = [r["RoleName"] for r in by_type(member.resources(), "AWS::IAM::Role").values() if "RoleName" in r]
    assert len(names) == 4, names
    for name in names:
        arn = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{name}"
        assert any(fnmatch.fnmatch(arn, pattern) for pattern in roles["Resource"]), name
    assert all(s["Effect"] == "Deny" for s in scp["Statement"])


def conditional_grants(template: dict, sid: str) -> list[tuple[str, dict]]:
    """(condition, statement) of every role's conditional statement with this Sid."""
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if isinstance(statement, dict) and "Fn::If" in statement:
                    condition, grant, _ = statement["Fn::If"]
                    if isinstance(grant, dict) and grant.get("Sid") == sid:
                        found.append((condition, grant))
    return found


def test_the_dead_letter_queue_is_on_the_stacks_cmk_and_every_writer_may_use_it(central):
    queue = central["Resources"]["DeadLetterQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::If": ["CreateTopicKey", created_key_arn(), {"Ref": "AWS::NoValue"}]}
    # Without the stack's key: SSE-SQS, never the AWS-managed alias/aws/sqs EventBridge cannot use.
    assert queue["SqsManagedSseEnabled"] == {"Fn::If": ["CreateTopicKey", {"Ref": "AWS::NoValue"}, True]}
    statements = central["Resources"]["AlertTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    events = [s for s in statements if s.get("Principal", {}).get("Service") == "events.amazonaws.com"]
    assert events and {"kms:GenerateDataKey", "kms:Decrypt"} <= set(events[0]["Action"])
    # Lambda's on-failure destination writes with the function's role.
    grants = conditional_grants(central, "EncryptDeadLetters")
    for condition, grant in grants:
        assert condition == "CreateTopicKey"
        assert grant["Resource"] == created_key_arn()
    assert len(grants) == 4


# ---------------------------------------------------------------- the ledger on the CMK


def test_the_ledger_is_on_the_stacks_cmk_and_every_function_may_use_it_through_dynamodb(central):
    sse = central["Resources"]["StateTable"]["Properties"]["SSESpecification"]
    assert sse["KMSMasterKeyId"] == {"Fn::If": ["CreateTopicKey", created_key_arn(), {"Ref": "AWS::NoValue"}]}
    rendered = Stack(central).resources()["StateTable"]["Properties"]["SSESpecification"]
    assert rendered == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": "<GetAtt AlertTopicKey.Arn>"}
    # With a key of one's own for the topic: as before, DynamoDB's AWS-managed key.
    own = Stack(central, {"AlertTopicKmsKeyId": f"arn:aws:kms:us-east-1:{CENTRAL_ACCOUNT}:key/abc"})
    assert own.resources()["StateTable"]["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    grants = conditional_grants(central, "LedgerKey")
    assert len(grants) == 4, "every function reads and writes the ledger"
    for condition, grant in grants:
        assert condition == "CreateTopicKey"
        # DynamoDB decrypts the table key with the caller's credentials; nothing else is asked
        # of the caller, and only through DynamoDB in this Region, for this account.
        assert grant["Action"] == "kms:Decrypt"
        assert grant["Resource"] == created_key_arn()
        assert grant["Condition"] == {"StringEquals": {
            "kms:ViaService": {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"},
            "kms:CallerAccount": {"Ref": "AWS::AccountId"},
        }}


# ---------------------------------------------------------------- role names

# IAM role names are global and at most 64 characters.
ROLE_NAME_LIMIT = 64


def longest_region() -> str:
    """The longest Region name cfn-lint knows (one schema file per Region)."""
    import cfnlint

    providers = Path(cfnlint.__file__).parent / "data/schemas/providers"
    regions = [p.stem for p in providers.glob("*.json") if re.fullmatch(r"[a-z]+(-[a-z]+)+-\d", p.stem)]
    assert "us-east-1" in regions and len(regions) > 30
    return max(regions, key=len)


def central_names(stack: Stack) -> dict[str, dict]:
    """Per function: its role's name, the member role name it is told (MEMBER_ROLE_NAME) and
    the role ARN pattern it may assume."""
    resources = stack.resources()
    out = {}
    for fn in FUNCTIONS:
        [role] = [r for r in by_type(resources, "AWS::IAM::Role").values()
                  if r.get("RoleName", "").endswith(f"-{fn}")]
        [function] = [f for f in by_type(resources, "AWS::Serverless::Function").values()
                      if f["FunctionName"].endswith(f"-{fn}")]
        [reach] = [s["Resource"] for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]
                   if s["Action"] == "sts:AssumeRole"]
        out[fn] = {
            "role": role["RoleName"],
            "member_role": function["Environment"]["Variables"]["MEMBER_ROLE_NAME"],
            "reach": reach,
        }
    return out


def member_names(stack: Stack) -> dict[str, dict]:
    """Per function: the member role's name and the one principal its trust policy admits."""
    out = {}
    for role in by_type(stack.resources(), "AWS::IAM::Role").values():
        if "RoleName" not in role:
            continue
        [fn] = [f for f in FUNCTIONS if role["RoleName"].endswith(f"-{f}-member")]
        [statement] = role["AssumeRolePolicyDocument"]["Statement"]
        out[fn] = {
            "role": role["RoleName"],
            "principal": statement["Principal"]["AWS"],
            "trusts": statement["Condition"]["ArnEquals"]["aws:PrincipalArn"],
        }
    return out


def deploy(stack_name: str, region: str, member_region: str, **central_parameters):
    """A central stack and a member stack instance set up from its outputs, as the README says."""
    central = Stack(load("template.yaml"), central_parameters, region=region, stack_name=stack_name)
    outputs = central.outputs()
    member = Stack(
        load("member-account.yaml"),
        {"CentralAccountId": CENTRAL_ACCOUNT, "RoleNamePrefix": outputs["RoleNamePrefix"],
         "CentralRegion": region, "CentralEventBusName": outputs["CentralEventBusName"]},
        region=member_region, stack_name="StackSet-bedrock-cmk-guard-member-1234", account=MEMBER_ACCOUNT,
    )
    return central_names(central), member_names(member)


# Two Regions of one stack name, and a second copy under another name in one of them.
DEPLOYMENTS = [
    ("bedrock-cmk-guard", "us-east-1"),
    ("bedrock-cmk-guard", "eu-west-1"),
    ("cmk-guard-staging", "us-east-1"),
]


def test_role_names_never_collide_across_regions_and_stacks():
    rendered = [deploy(name, region, member_region="ap-southeast-2") for name, region in DEPLOYMENTS]
    central_roles = [n["role"] for central, _ in rendered for n in central.values()]
    member_roles = [n["role"] for _, member in rendered for n in member.values()]
    # IAM is global: one name twice would fail the second stack (or StackSet instance).
    assert len(set(central_roles)) == len(central_roles) == 12, central_roles
    assert len(set(member_roles)) == len(member_roles) == 12, member_roles
    assert "bedrock-cmk-guard-us-east-1-invocation-logging" in central_roles
    assert "bedrock-cmk-guard-eu-west-1-invocation-logging-member" in member_roles


@pytest.mark.parametrize("stack_name,region", DEPLOYMENTS)
def test_each_member_role_trusts_exactly_its_central_role(stack_name, region):
    everyone = [deploy(name, r, member_region="ap-southeast-2") for name, r in DEPLOYMENTS]
    central, member = deploy(stack_name, region, member_region="ap-southeast-2")
    all_central_arns = {
        f"arn:aws:iam::{CENTRAL_ACCOUNT}:role/{n['role']}" for c, _ in everyone for n in c.values()
    }
    all_member_roles = {n["role"] for _, m in everyone for n in m.values()}
    assert set(member) == set(FUNCTIONS)
    for fn in FUNCTIONS:
        own = f"arn:aws:iam::{CENTRAL_ACCOUNT}:role/{central[fn]['role']}"
        assert member[fn]["principal"] == f"arn:aws:iam::{CENTRAL_ACCOUNT}:root"
        assert member[fn]["trusts"] == own
        assert {a for a in all_central_arns if a == member[fn]["trusts"]} == {own}
        # The function is told the member role's name, and may assume that role and no other
        # (no other function's, no other Region's or stack's).
        assert central[fn]["member_role"] == member[fn]["role"]
        reachable = {r for r in all_member_roles
                     if fnmatch.fnmatchcase(f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{r}", central[fn]["reach"])}
        assert reachable == {member[fn]["role"]}


def test_an_empty_central_region_means_the_instances_own_region():
    member = Stack(load("member-account.yaml"),
                   {"CentralAccountId": CENTRAL_ACCOUNT, "RoleNamePrefix": "bedrock-cmk-guard"},
                   region="eu-west-1", account=MEMBER_ACCOUNT)
    names = member_names(member)
    assert names["guardrails"]["role"] == "bedrock-cmk-guard-eu-west-1-guardrails-member"
    assert names["guardrails"]["trusts"] == \
        f"arn:aws:iam::{CENTRAL_ACCOUNT}:role/bedrock-cmk-guard-eu-west-1-guardrails"


def longest_prefix(template: dict) -> int:
    pattern = template["Parameters"]["RoleNamePrefix"]["AllowedPattern"]
    [longest] = re.findall(r"\{\d+,(\d+)\}\$$", pattern)
    return int(longest)


def test_the_longest_allowed_prefix_fits_iam_and_one_more_character_would_not():
    longest = longest_prefix(load("template.yaml"))
    assert longest == longest_prefix(load("member-account.yaml"))
    region = longest_region()

    def longest_name(prefix: str) -> int:
        central, member = deploy("s", region, member_region="us-east-1", RoleNamePrefix=prefix)
        return max(len(n["role"]) for n in [*central.values(), *member.values()])

    assert longest_name("p" * longest) <= ROLE_NAME_LIMIT
    assert longest_name("p" * (longest + 1)) > ROLE_NAME_LIMIT, "the limit could be higher"
    # The README says the same number.
    assert f"at most {longest} characters" in (INFRA / "README.md").read_text()


@pytest.mark.parametrize("prefix,expected", [("", "my-guard"), ("acme", "acme")])
def test_an_empty_prefix_means_the_stack_name(prefix, expected):
    central, member = deploy("my-guard", "eu-central-1", member_region="eu-west-1", RoleNamePrefix=prefix)
    for fn in FUNCTIONS:
        assert central[fn]["role"] == f"{expected}-eu-central-1-{fn}"
        assert central[fn]["member_role"] == member[fn]["role"] == f"{expected}-eu-central-1-{fn}-member"
        assert member[fn]["trusts"].endswith(f":role/{expected}-eu-central-1-{fn}")


# ---------------------------------------------------------------- the event bus


def reactor_rules(resources: dict) -> dict:
    return {n: r for n, r in by_type(resources, "AWS::Events::Rule").items()
            if any("Function" in t["Arn"] for t in r["Targets"])}


def test_by_default_everything_is_on_the_default_bus(central):
    resources = Stack(central, {"OrganizationId": "o-abcdefghij"}).resources()
    assert not by_type(resources, "AWS::Events::EventBus")
    rules = by_type(resources, "AWS::Events::Rule")
    assert set(rules) == set(reactor_rules(resources)) and len(rules) == 4
    for name, rule in rules.items():
        assert "EventBusName" not in rule, name
    policy = resources["OrganizationEventBusPolicy"]["Properties"]
    assert policy["EventBusName"] == "default"
    assert policy["Statement"]["Resource"] == f"arn:aws:events:us-east-1:{CENTRAL_ACCOUNT}:event-bus/default"


def test_a_bus_of_its_own_gets_the_rules_the_organisation_and_this_accounts_own_events(central):
    from test_policy import rule_events

    stack = Stack(central, {"OrganizationId": "o-abcdefghij", "EventBusName": "cmk-guard"})
    resources = stack.resources()
    assert by_type(resources, "AWS::Events::EventBus") == {"EventBus": {
        "Name": "cmk-guard", "Description": resources["EventBus"]["Properties"]["Description"]}}
    reactors = reactor_rules(resources)
    assert len(reactors) == 4
    for name, rule in reactors.items():
        assert rule["EventBusName"] == "<Ref EventBus>", name
    policy = resources["OrganizationEventBusPolicy"]["Properties"]
    assert policy["EventBusName"] == "<Ref EventBus>"
    assert policy["Statement"]["Resource"] == "<GetAtt EventBus.Arn>"
    # The account's own CloudTrail events arrive on the default bus only: one rule there
    # forwards exactly what the four rules take, never a failed call.
    forward = resources["ForwardOwnEventsRule"]["Properties"]
    assert "EventBusName" not in forward
    union = set()
    for name in reactors:
        union |= rule_events(central["Resources"][name])
    assert rule_events(central["Resources"]["ForwardOwnEventsRule"]) == union
    assert forward["EventPattern"]["detail"]["errorCode"] == [{"exists": False}]
    [target] = forward["Targets"]
    assert target["Arn"] == "<GetAtt EventBus.Arn>"
    assert target["RoleArn"] == "<GetAtt ForwardOwnEventsRole.Arn>"
    assert target["DeadLetterConfig"] == {"Arn": "<GetAtt DeadLetterQueue.Arn>"}
    dlq = resources["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert "<GetAtt ForwardOwnEventsRule.Arn>" in dlq["Condition"]["ArnEquals"]["aws:SourceArn"]
    # Its role may put events on that bus and do nothing else.
    role = resources["ForwardOwnEventsRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": CENTRAL_ACCOUNT}}
    [statement] = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert (statement["Action"], statement["Resource"]) == ("events:PutEvents", "<GetAtt EventBus.Arn>")
    assert stack.outputs()["CentralEventBusArn"] == "<GetAtt EventBus.Arn>"


def test_member_accounts_forward_to_the_central_bus_they_are_given():
    member = Stack(load("member-account.yaml"),
                   {"CentralAccountId": CENTRAL_ACCOUNT, "RoleNamePrefix": "bedrock-cmk-guard",
                    "CentralRegion": "us-east-1", "CentralEventBusName": "cmk-guard"},
                   region="eu-west-1", account=MEMBER_ACCOUNT)
    resources = member.resources()
    bus = f"arn:aws:events:us-east-1:{CENTRAL_ACCOUNT}:event-bus/cmk-guard"
    rules = by_type(resources, "AWS::Events::Rule")
    assert len(rules) == 4
    for name, rule in rules.items():
        assert [t["Arn"] for t in rule["Targets"]] == [bus], name
    [statement] = resources["ForwarderRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == bus


# ---------------------------------------------------------------- subscriptions

SLACK = {"SlackWorkspaceId": "T0123ABCD", "SlackChannelId": "C0123ABCD"}
TEAMS = {
    "TeamsTenantId": "a1b2c3d4-0000-1111-2222-333344445555",
    "TeamsTeamId": "b1b2c3d4-0000-1111-2222-333344445555",
    "TeamsChannelId": "19%3a0123456789abcdef%40thread.tacv2",
}
EMAIL = {"AlertEmail": "security@example.com"}
SUBSCRIPTIONS = {"AlertEmailSubscription", "ChatChannelRole", "SlackChannel", "TeamsChannel"}


@pytest.mark.parametrize("parameters,expected", [
    ({}, set()),
    (EMAIL, {"AlertEmailSubscription"}),
    (SLACK, {"ChatChannelRole", "SlackChannel"}),
    (TEAMS, {"ChatChannelRole", "TeamsChannel"}),
    ({**EMAIL, **SLACK, **TEAMS}, SUBSCRIPTIONS),
], ids=["none", "email", "slack", "teams", "all"])
def test_each_subscription_is_made_only_when_its_parameters_are_set(central, parameters, expected):
    stack = Stack(central, parameters)
    assert stack.failed_rules() == []
    resources = stack.resources()
    assert SUBSCRIPTIONS & set(resources) == expected
    if "AlertEmailSubscription" in expected:
        assert resources["AlertEmailSubscription"]["Properties"] == {
            "TopicArn": "<Ref AlertTopic>", "Protocol": "email", "Endpoint": "security@example.com"}
    for channel in {"SlackChannel", "TeamsChannel"} & expected:
        props = resources[channel]["Properties"]
        assert props["SnsTopicArns"] == ["<Ref AlertTopic>"]
        assert props["IamRoleArn"] == "<GetAtt ChatChannelRole.Arn>"
        # Without guardrails AWS applies AdministratorAccess; AWSDenyAll leaves reading only.
        assert props["GuardrailPolicies"] == ["arn:aws:iam::aws:policy/AWSDenyAll"]
        assert props["UserRoleRequired"] is False
        assert "bedrock-cmk-guard-us-east-1" in props["ConfigurationName"]
    if "ChatChannelRole" in expected:
        role = resources["ChatChannelRole"]["Properties"]
        [trust] = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "chatbot.amazonaws.com"}
        # Notifications need no permission: the channel's role has none.
        assert not role.get("Policies") and not role.get("ManagedPolicyArns")


@pytest.mark.parametrize("parameters", [
    {"SlackWorkspaceId": "T0123ABCD"},
    {"SlackChannelId": "C0123ABCD"},
    {"TeamsTenantId": TEAMS["TeamsTenantId"], "TeamsTeamId": TEAMS["TeamsTeamId"]},
    {"TeamsChannelId": TEAMS["TeamsChannelId"]},
], ids=["slack-workspace-only", "slack-channel-only", "teams-without-channel", "teams-channel-only"])
def test_half_a_chat_channel_is_refused_not_silently_dropped(central, parameters):
    assert Stack(central, parameters).failed_rules()


# ---------------------------------------------------------------- logs


LOG_GROUPS = {
    "GuardrailsFunction": "GuardrailsLogGroup",
    "InvocationLoggingFunction": "InvocationLoggingLogGroup",
    "ModelJobsFunction": "ModelJobsLogGroup",
    "DataJobsFunction": "DataJobsLogGroup",
}


def test_every_function_logs_json_to_its_own_retained_log_group_on_the_cmk(central):
    functions = {n for n, r in central["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == set(LOG_GROUPS)
    resources = Stack(central).resources()
    [logs_statement] = [
        s for s in resources["AlertTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"].get("Service") == "logs.us-east-1.amazonaws.com"
    ]
    encrypted = logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    for function, log_group in LOG_GROUPS.items():
        config = central["Resources"][function]["Properties"]["LoggingConfig"]
        # One filter, RUST_LOG; Lambda passes every application line and keeps its REPORTs.
        assert config == {"LogFormat": "JSON", "LogGroup": {"Ref": log_group},
                          "ApplicationLogLevel": "TRACE", "SystemLogLevel": "INFO"}, function
        group = central["Resources"][log_group]["Properties"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
        assert group["KmsKeyId"] == {"Fn::If": ["CreateTopicKey", created_key_arn(), {"Ref": "AWS::NoValue"}]}
        name = resources[log_group]["Properties"]["LogGroupName"]
        assert f"arn:aws:logs:us-east-1:{CENTRAL_ACCOUNT}:log-group:{name}" in encrypted, name
    # The key admits CloudWatch Logs for these four log groups and no other.
    assert len(encrypted) == len(LOG_GROUPS)


# ---------------------------------------------------------------- the README's settings


def settings_fields() -> set[str]:
    """The fields a settings document may use (shared/src/settings.rs Overrides, camelCase)."""
    source = (ROOT / "shared/src/settings.rs").read_text()
    body = source.split("struct Overrides {", 1)[1].split("\n}", 1)[0]
    snake = re.findall(r"^\s+(\w+):", body, re.MULTILINE)
    assert "remediation_keys" in snake
    return {re.sub(r"_(\w)", lambda m: m.group(1).upper(), name) for name in snake}


def test_the_readmes_settings_examples_use_only_real_fields():
    readme = (INFRA / "README.md").read_text()
    section = readme.split("## Settings document", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```json\n(.*?)```", section, re.S)
    assert len(blocks) >= 2, "the format and the one-account remediation example"
    fields = settings_fields()
    for block in blocks:
        document = json.loads(block)
        assert set(document) <= {"defaults", "accounts"}
        for scope in [document.get("defaults", {}), *document.get("accounts", {}).values()]:
            assert set(scope) <= fields, set(scope) - fields
        assert all(re.fullmatch(r"\d{12}", a) for a in document.get("accounts", {}))


# ---------------------------------------------------------------- a remediation key on request

REMEDIATION_GRANTS = {
    "BedrockUsesRemediationKey",
    "BedrockUsesRemediationKeyForResubmittedJobs",
    "ReadRemediationKeyPolicies",
}


def remediation_grants(stack: Stack) -> list[dict]:
    """Every rendered role statement that names the keys remediation may use."""
    found = []
    for resource in by_type(stack.resources(), "AWS::IAM::Role").values():
        for policy in resource.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if isinstance(statement, dict) and statement.get("Sid") in REMEDIATION_GRANTS:
                    found.append(statement)
    return found


def test_a_remediation_key_is_created_only_when_asked_and_the_functions_may_use_it(central):
    assert not Stack(central).exists("RemediationKey"), "no key nobody asked for"
    stack = Stack(central, {"CreateRemediationKey": "true", "AllowJobResubmission": "true"})
    key = stack.resources()["RemediationKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert central["Resources"]["RemediationKey"]["DeletionPolicy"] == "Retain"
    created = "<GetAtt RemediationKey.Arn>"
    grants = remediation_grants(stack)
    # guardrails and the two job functions (Bedrock uses it) and invocation logging (reads its policy)
    assert len(grants) == 4, grants
    for grant in grants:
        assert grant["Resource"] == [created], grant
    # With keys of one's own as well, both.
    given = f"arn:aws:kms:us-east-1:{CENTRAL_ACCOUNT}:key/given"
    both = Stack(central, {"CreateRemediationKey": "true", "RemediationKeyArns": given})
    for grant in remediation_grants(both):
        assert grant["Resource"] == [created, given], grant
    assert Stack(central, {"CreateRemediationKey": "true"}).outputs()["RemediationKeyArn"] == created


def test_the_created_remediation_key_admits_the_services_that_write_with_it(central):
    stack = Stack(central, {"CreateRemediationKey": "true"}, region="eu-west-1")
    statements = stack.resources()["RemediationKey"]["Properties"]["KeyPolicy"]["Statement"]
    by_principal = {json.dumps(s["Principal"], sort_keys=True): s for s in statements}
    logs = by_principal[json.dumps({"Service": "logs.eu-west-1.amazonaws.com"})]
    assert "kms:GenerateDataKey*" in logs["Action"] and "kms:Decrypt*" in logs["Action"]
    # This account's log groups in this Region, nothing else.
    assert logs["Condition"] == {"ArnLike": {
        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:eu-west-1:{CENTRAL_ACCOUNT}:log-group:*"}}
    bedrock = by_principal[json.dumps({"Service": "bedrock.amazonaws.com"})]
    assert bedrock["Action"] == "kms:GenerateDataKey"
    assert bedrock["Condition"]["StringEquals"] == {"aws:SourceAccount": CENTRAL_ACCOUNT}
    assert bedrock["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:bedrock:eu-west-1:{CENTRAL_ACCOUNT}:*"}
    others = [s for s in statements if s not in (logs, bedrock)]
    assert [s["Principal"] for s in others] == [{"AWS": f"arn:aws:iam::{CENTRAL_ACCOUNT}:root"}]


def test_the_default_settings_name_the_created_key_and_a_written_document_is_kept(central):
    stack = Stack(central, {"CreateRemediationKey": "true"}, region="eu-west-1")
    document = json.loads(stack.resources()["SettingsParameter"]["Properties"]["Value"])
    assert document == {"defaults": {"mode": "alert",
                                     "remediationKeys": {"eu-west-1": "<GetAtt RemediationKey.Arn>"}}}
    assert set(document["defaults"]) <= settings_fields()
    written = '{"defaults":{"mode":"remediate"}}'
    kept = Stack(central, {"CreateRemediationKey": "true", "SettingsDocument": written})
    assert kept.resources()["SettingsParameter"]["Properties"]["Value"] == written
    plain = Stack(central).resources()["SettingsParameter"]["Properties"]["Value"]
    assert json.loads(plain) == {"defaults": {"mode": "alert"}}, "the safe default: alert"


# ---------------------------------------------------------------- the topic policy


def test_the_topic_policy_admits_only_this_accounts_alarms_and_rules_and_only_over_tls(central):
    policy = Stack(central).resources()["AlertTopicPolicy"]["Properties"]
    assert policy["Topics"] == ["<Ref AlertTopic>"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    alarms, rules = statements["AlarmsPublish"], statements["RulesPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == "sns:Publish"
    assert alarms["Condition"] == {"ArnLike": {
        "aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{CENTRAL_ACCOUNT}:alarm:*"}}
    assert rules["Principal"] == {"Service": "events.amazonaws.com"}
    assert rules["Condition"] == {"ArnLike": {
        "aws:SourceArn": f"arn:aws:events:us-east-1:{CENTRAL_ACCOUNT}:rule/*"}}
    assert statements["AccountUsesTheTopic"]["Principal"] == {"AWS": f"arn:aws:iam::{CENTRAL_ACCOUNT}:root"}
    tls = statements["OnlyOverTls"]
    assert tls["Effect"] == "Deny" and tls["Principal"] == "*"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for s in statements.values():
        assert s["Effect"] == "Deny" or s["Principal"] != "*", f"{s['Sid']} admits anyone"
    # EventBridge may also use the topic's key, as the alarms may.
    key = Stack(central).resources()["AlertTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "events.amazonaws.com"}
               and {"kms:GenerateDataKey", "kms:Decrypt"} <= set(s["Action"]) for s in key)


def test_a_second_copy_in_a_region_has_its_own_settings_and_bus_statement(central):
    first, second = (
        Stack(central, {"OrganizationId": "o-abcdefghij"}, stack_name=name).resources()
        for name in ("guard-a", "guard-b")
    )
    assert first["SettingsParameter"]["Properties"]["Name"] == "/guard-a/settings"
    assert second["SettingsParameter"]["Properties"]["Name"] == "/guard-b/settings"
    statement = "OrganizationEventBusPolicy"
    assert first[statement]["Properties"]["StatementId"] != second[statement]["Properties"]["StatementId"]
    named = Stack(central, {"ConfigParameterName": "/team/guard"}).resources()
    assert named["SettingsParameter"]["Properties"]["Name"] == "/team/guard"
