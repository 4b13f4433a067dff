"""The guard's own failures must reach somebody: every alarm publishes to the alert topic, and
the topic is, by default, encrypted with a CMK whose key policy lets CloudWatch alarms use it
(they cannot publish to a topic on the AWS-managed alias/aws/sns, whose policy is fixed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

INFRA = Path(__file__).resolve().parents[1]


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


def test_the_documented_scp_protects_every_member_role():
    """infra/README.md's SCP must keep naming every member role as the template names it (with
    the default prefix): renaming a role without the SCP would leave it unprotected."""
    import fnmatch
    import json

    readme = (INFRA / "README.md").read_text()
    block = readme.split("## Keep member admins", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    scp = json.loads(block)
    [roles] = [s for s in scp["Statement"] if s["Sid"] == "KeepBedrockCmkGuardRoles"]
    member = cfn_yaml.load(str(INFRA / "member-account.yaml"))
    prefix = member["Parameters"]["RoleNamePrefix"]["Default"]
    names = [
        r["Properties"]["RoleName"]["Fn::Sub"].replace("${RoleNamePrefix}", prefix)
        for r in member["Resources"].values()
        if r["Type"] == "AWS::IAM::Role" and "RoleName" in r["Properties"]
    ]
    assert len(names) == 4, names
    for name in names:
        arn = f"arn:aws:iam::111122223333:role/{name}"
        assert any(fnmatch.fnmatch(arn, pattern) for pattern in roles["Resource"]), name
    assert all(s["Effect"] == "Deny" for s in scp["Statement"])


def test_the_dead_letter_queue_is_on_the_stacks_cmk_and_every_writer_may_use_it(central):
    queue = central["Resources"]["DeadLetterQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::If": ["CreateTopicKey", created_key_arn(), {"Ref": "AWS::NoValue"}]}
    # Without the stack's key: SSE-SQS, never the AWS-managed alias/aws/sqs EventBridge cannot use.
    assert queue["SqsManagedSseEnabled"] == {"Fn::If": ["CreateTopicKey", {"Ref": "AWS::NoValue"}, True]}
    statements = central["Resources"]["AlertTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    events = [s for s in statements if s.get("Principal", {}).get("Service") == "events.amazonaws.com"]
    assert events and {"kms:GenerateDataKey", "kms:Decrypt"} <= set(events[0]["Action"])
    # Lambda's on-failure destination writes with the function's role.
    grants = 0
    for resource in central["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if isinstance(statement, dict) and "Fn::If" in statement:
                    condition, grant, _ = statement["Fn::If"]
                    if isinstance(grant, dict) and grant.get("Sid") == "EncryptDeadLetters":
                        assert condition == "CreateTopicKey"
                        assert grant["Resource"] == created_key_arn()
                        grants += 1
    assert grants == 4
