"""Helpers for tests/demo.sh: set up misconfigured resources in the emulator, and show what a
person would see (the chat notification, the finding, the guardrail). Uses the emulator's own
virtualenv (boto3)."""

import json
import os
import sys
import urllib.request
from pathlib import Path

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
REGION = os.environ.get("AWS_REGION", "us-east-1")
OUT = Path(os.environ.get("DEMO_DIR", "target/demo"))
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"
SETTINGS = "/bedrock-cmk-guard/settings"

BOLD, DIM, RED, GREEN, YELLOW, RESET = "\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[33m", "\033[0m"


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name=REGION)


def state():
    return json.loads((OUT / "state.json").read_text())


def event(fixture, arn, event_id, actor=None):
    e = json.loads((FIXTURES / fixture).read_text())
    account = arn.split(":")[4]
    e["account"], e["region"] = account, REGION
    d = e["detail"]
    d["awsRegion"], d["recipientAccountId"], d["eventID"] = REGION, account, event_id
    d["userIdentity"]["accountId"] = account
    # The fixtures' callers live in example accounts; here they work in the emulator's.
    d["userIdentity"]["arn"] = actor or ":".join(
        part if i != 4 else account for i, part in enumerate(d["userIdentity"]["arn"].split(":")))
    if "guardrailIdentifier" in (d.get("requestParameters") or {}):
        d["requestParameters"]["guardrailIdentifier"] = arn.rsplit("/", 1)[1]
    d["responseElements"]["guardrailArn"] = arn
    d["responseElements"]["guardrailId"] = arn.rsplit("/", 1)[1]
    return e


def setup():
    OUT.mkdir(parents=True, exist_ok=True)
    kms, bedrock, sns, sqs, ssm = (client(n) for n in ("kms", "bedrock", "sns", "sqs", "ssm"))
    key = kms.create_key(Description="guardrails CMK")["KeyMetadata"]
    kms.create_alias(AliasName="alias/bedrock-guardrails", TargetKeyId=key["KeyId"])
    guardrail = bedrock.create_guardrail(
        name="customer-support",
        description="keeps the support assistant on topic",
        blockedInputMessaging="Sorry, I can't help with that.",
        blockedOutputsMessaging="Sorry, I can't answer that.",
        topicPolicyConfig={"topicsConfig": [{"name": "investment-advice", "definition": "Recommending investments.", "type": "DENY"}]},
        contentPolicyConfig={"filtersConfig": [{"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH"}]},
        sensitiveInformationPolicyConfig={"piiEntitiesConfig": [{"type": "EMAIL", "action": "ANONYMIZE"}]},
        tags=[{"key": "team", "value": "support"}],
    )  # no kmsKeyId: encrypted with a key AWS owns
    topic = sns.create_topic(Name="bedrock-cmk-guard-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:123456789012:alerts-inbox",
                  Attributes={"RawMessageDelivery": "true"})
    settings(mode="alert", key=key["Arn"])
    s = {"key": key["Arn"], "guardrail": guardrail["guardrailArn"], "topic": topic, "queue": queue}
    (OUT / "state.json").write_text(json.dumps(s))
    (OUT / "create.json").write_text(json.dumps(event("CreateGuardrail.json", guardrail["guardrailArn"], "demo-0001")))
    (OUT / "update.json").write_text(json.dumps(event("UpdateGuardrail.json", guardrail["guardrailArn"], "demo-0002")))
    (OUT / "own-update.json").write_text(json.dumps(event(
        "UpdateGuardrail.json", guardrail["guardrailArn"], "demo-0003",
        actor="arn:aws:sts::123456789012:assumed-role/bedrock-cmk-guard-guardrails/guardrails")))
    print(f"  CMK              {key['Arn']}  (alias/bedrock-guardrails)")
    print(f"  guardrail        {guardrail['guardrailArn']}  {RED}(no kmsKeyId: a key AWS owns){RESET}")
    print(f"  alert topic      {topic} -> SQS alerts-inbox")
    print(f"  settings         {SETTINGS}: mode alert, remediation key for {REGION} = the CMK")


def settings(mode, key=None):
    key = key or state()["key"]
    doc = {"defaults": {"mode": mode, "remediationKeys": {REGION: key}}}
    client("ssm").put_parameter(Name=SETTINGS, Value=json.dumps(doc), Type="String", Overwrite=True)
    print(f"  settings {SETTINGS} -> {json.dumps(doc)}")


def guardrail():
    g = client("bedrock").get_guardrail(guardrailIdentifier=state()["guardrail"], guardrailVersion="DRAFT")
    key = g.get("kmsKeyArn")
    colour = GREEN if key else RED
    print(f"  GetGuardrail: name={g['name']}  kmsKeyArn={colour}{key or '(none: a key AWS owns)'}{RESET}")
    kept = [p for p in ("topicPolicy", "contentPolicy", "sensitiveInformationPolicy") if p in g]
    tags = client("bedrock").list_tags_for_resource(resourceARN=g["guardrailArn"])["tags"]
    print(f"  still there: {', '.join(kept)}; tags {tags}")


def finding(path):
    f = json.loads(Path(path).read_text())
    colour = {"COMPLIANT": GREEN, "NON_COMPLIANT": RED, "ERROR": YELLOW}.get(f["status"], DIM)
    print(f"  Finding: {colour}{f['status']}{RESET} severity={f['severity']} mode={f['mode']} action={BOLD}{f['action']['kind']}{RESET}")
    print(f"  reason:  {f['reason']}")


def inbox():
    """Messages in the SQS subscriber since the last look, and the chat card SNS was handed."""
    s = state()
    sqs = client("sqs")
    got = sqs.receive_message(QueueUrl=s["queue"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
    for m in got:
        sqs.delete_message(QueueUrl=s["queue"], ReceiptHandle=m["ReceiptHandle"])
    seen_file = OUT / "published-seen"
    seen = int(seen_file.read_text()) if seen_file.exists() else 0
    with urllib.request.urlopen(f"{ENDPOINT}/_cmk_guard/requests") as r:
        published = [q["publish"] for q in json.load(r)["requests"] if q.get("publish")]
    seen_file.write_text(str(len(published)))
    new = published[seen:]
    if not got and not new:
        print(f"  {DIM}(no SNS message: nothing worth telling){RESET}")
        return
    print(f"  {len(got)} message(s) on the SQS subscriber; attributes: "
          + ", ".join(f"{k}={v['StringValue']}" for k, v in sorted(got[0]["MessageAttributes"].items())) if got else "")
    for p in new:
        card = json.loads(json.loads(p["Message"])["https"])
        c = card["content"]
        print(f"\n  {DIM}+-- chat notification (the 'https' rendering) ------------------------{RESET}")
        print(f"  {DIM}|{RESET} {BOLD}{c['title']}{RESET}")
        for line in c["description"].replace("*", "").replace("`", "").split("\n"):
            print(f"  {DIM}|{RESET} {line}")
        for step in c["nextSteps"]:
            print(f"  {DIM}|{RESET} {YELLOW}> {step}{RESET}")
        print(f"  {DIM}+---------------------------------------------------------------------{RESET}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"setup": setup, "settings": settings, "guardrail": guardrail, "finding": finding, "inbox": inbox}[command](*args)
