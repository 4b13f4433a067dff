"""Helpers for tests/demo.sh: set up misconfigured resources in the emulator, and show what a
person would see (the chat notification, the finding, the guardrail, the invocation logs'
destinations). Uses the emulator's own virtualenv (boto3)."""

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
LEDGER = "bedrock-cmk-guard-state"
# The names the invocation-logging fixtures use, and the account they were written in.
LOG_GROUP, BUCKET, LARGE_DATA = "/bedrock/invocations", "bedrock-invocation-logs", "bedrock-large-data"
FIXTURE_ACCOUNT = "111122223333"
GUARD = "arn:aws:sts::{account}:assumed-role/bedrock-cmk-guard-{function}/{function}"

BOLD, DIM, RED, GREEN, YELLOW, RESET = "\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[33m", "\033[0m"


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name=REGION)


def state():
    return json.loads((OUT / "state.json").read_text())


def event(fixture, arn, event_id, actor=None, version=None):
    e = json.loads((FIXTURES / fixture).read_text())
    account, gid = arn.split(":")[4], arn.rsplit("/", 1)[1]
    e["account"], e["region"] = account, REGION
    d = e["detail"]
    d["awsRegion"], d["recipientAccountId"], d["eventID"] = REGION, account, event_id
    d["userIdentity"]["accountId"] = account
    # The fixtures' callers live in example accounts; here they work in the emulator's.
    d["userIdentity"]["arn"] = actor or ":".join(
        part if i != 4 else account for i, part in enumerate(d["userIdentity"]["arn"].split(":")))
    request, response = d.get("requestParameters") or {}, d.get("responseElements") or {}
    if "guardrailIdentifier" in request:
        request["guardrailIdentifier"] = gid
    if "guardrailArn" in response:
        response["guardrailArn"] = arn
    if "guardrailId" in response:
        response["guardrailId"] = gid
    if version is not None:
        (response if "version" in response else request)[
            "version" if "version" in response else "guardrailVersion"] = version
    return e


def logging_event(fixture, event_id, actor=None, key=None):
    """An invocation-logging fixture, moved into the emulator's account and Region."""
    account = state()["account"]
    e = json.loads((FIXTURES / fixture).read_text().replace(FIXTURE_ACCOUNT, account))
    e["region"] = REGION
    d = e["detail"]
    d["awsRegion"], d["eventID"] = REGION, event_id
    if actor:
        d["userIdentity"]["arn"] = actor
    if key and "kmsKeyId" in d.get("requestParameters", {}):
        d["requestParameters"]["kmsKeyId"] = key
    return e


def setup_logging(key):
    """Bedrock's invocation logs going to a log group CloudWatch Logs encrypts itself and two
    buckets on SSE-S3, as the services leave them."""
    account = key.split(":")[4]
    client("logs").create_log_group(logGroupName=LOG_GROUP)
    s3 = client("s3")
    for bucket in (BUCKET, LARGE_DATA):
        s3.create_bucket(Bucket=bucket)
    client("bedrock").put_model_invocation_logging_configuration(loggingConfig={
        "cloudWatchConfig": {"logGroupName": LOG_GROUP, "roleArn": f"arn:aws:iam::{account}:role/bedrock-logging",
                             "largeDataDeliveryS3Config": {"bucketName": LARGE_DATA}},
        "s3Config": {"bucketName": BUCKET, "keyPrefix": "bedrock"},
        "textDataDeliveryEnabled": True})
    print(f"  invocation logs  -> log group {LOG_GROUP}  {RED}(no KMS key){RESET}")
    print(f"                   -> bucket {BUCKET}, large data -> bucket {LARGE_DATA}  {RED}(SSE-S3){RESET}")
    print(f"  the CMK's key policy lets this account use it; {RED}not CloudWatch Logs, not Bedrock{RESET}")


def job_event(arn, event_id):
    """The CreateModelCustomizationJob fixture, moved into the emulator's account and Region."""
    account = arn.split(":")[4]
    e = json.loads((FIXTURES / "CreateModelCustomizationJob.json").read_text().replace(FIXTURE_ACCOUNT, account))
    e["region"] = REGION
    e["detail"].update(awsRegion=REGION, eventID=event_id)
    e["detail"]["responseElements"]["jobArn"] = arn
    return e


def setup_job():
    """A fine-tuning job started without a CMK: the model it makes would be on a key AWS owns."""
    arn = client("bedrock").create_model_customization_job(
        jobName="support-assistant-ft", customModelName="support-assistant",
        roleArn=f"arn:aws:iam::{state()['account']}:role/bedrock-customization",
        baseModelIdentifier="amazon.titan-text-express-v1:0:8k", customizationType="FINE_TUNING",
        trainingDataConfig={"s3Uri": "s3://support-training/train.jsonl"},
        validationDataConfig={"validators": [{"s3Uri": "s3://support-training/validate.jsonl"}]},
        outputDataConfig={"s3Uri": "s3://support-training/output/"},
        hyperParameters={"epochCount": "2", "batchSize": "8", "learningRate": "0.00001"},
        jobTags=[{"key": "team", "value": "support"}],
    )["jobArn"]  # no customModelKmsKeyId
    (OUT / "job.json").write_text(json.dumps(job_event(arn, "demo-0201")))
    print(f"  customization job {arn}  {RED}(no customModelKmsKeyId: its model would be on a key AWS owns){RESET}")


def jobs():
    """The customization jobs of the account: status and the key their model gets."""
    bedrock = client("bedrock")
    for summary in bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]:
        j = bedrock.get_model_customization_job(jobIdentifier=summary["jobArn"])
        key = j.get("outputModelKmsKeyArn")
        colour = GREEN if key else RED
        print(f"  {j['jobName']:<34} {j['status']:<10} model key={colour}{key or '(none: a key AWS owns)'}{RESET}")
        print(f"  {DIM}{'':<34} {j['baseModelArn'].rsplit('/', 1)[1]}, {len(j.get('hyperParameters', {}))} hyperparameters, "
              f"tags {bedrock.list_tags_for_resource(resourceARN=j['jobArn'])['tags']}{RESET}")


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
    # ... and published as version 1, which applications invoke: an immutable copy of the problem
    bedrock.create_guardrail_version(guardrailIdentifier=guardrail["guardrailId"], description="v1")
    client("dynamodb").create_table(
        TableName=LEDGER, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    topic = sns.create_topic(Name="bedrock-cmk-guard-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:123456789012:alerts-inbox",
                  Attributes={"RawMessageDelivery": "true"})
    settings(mode="alert", key=key["Arn"])
    account = guardrail["guardrailArn"].split(":")[4]
    s = {"key": key["Arn"], "guardrail": guardrail["guardrailArn"], "topic": topic, "queue": queue,
         "account": account}
    (OUT / "state.json").write_text(json.dumps(s))
    (OUT / "create.json").write_text(json.dumps(event("CreateGuardrail.json", guardrail["guardrailArn"], "demo-0001")))
    (OUT / "update.json").write_text(json.dumps(event("UpdateGuardrail.json", guardrail["guardrailArn"], "demo-0002")))
    arn = guardrail["guardrailArn"]
    events = {
        "create.json": event("CreateGuardrail.json", arn, "demo-0001"),
        "repeat.json": event("UpdateGuardrail.json", arn, "demo-0002"),
        "update.json": event("UpdateGuardrail.json", arn, "demo-0003"),
        "own-update.json": event(
            "UpdateGuardrail.json", arn, "demo-0004",
            actor="arn:aws:sts::123456789012:assumed-role/bedrock-cmk-guard-guardrails/guardrails"),
        "new-version.json": event("CreateGuardrailVersion.json", arn, "demo-0005", version="2"),
        "delete-version.json": event("DeleteGuardrail-version.json", arn, "demo-0006", version="1"),
    }
    guard = GUARD.format(account=account, function="invocation-logging")
    events.update({
        "logging.json": logging_event("PutModelInvocationLoggingConfiguration.json", "demo-0101"),
        "own-associate.json": logging_event("AssociateKmsKey.json", "demo-0102", actor=guard, key=key["Arn"]),
        "own-bucket.json": logging_event("PutBucketEncryption.json", "demo-0103", actor=guard),
        "disassociate.json": logging_event("DisassociateKmsKey.json", "demo-0104"),
    })
    for name, e in events.items():
        (OUT / name).write_text(json.dumps(e))
    print(f"  CMK              {key['Arn']}  (alias/bedrock-guardrails)")
    print(f"  guardrail        {arn}  {RED}(no kmsKeyId: a key AWS owns){RESET}")
    print(f"  version 1        published from that DRAFT  {RED}(a key AWS owns, immutable){RESET}")
    print(f"  ledger           DynamoDB table {LEDGER} (STATE_TABLE)")
    print(f"  alert topic      {topic} -> SQS alerts-inbox")
    setup_logging(key["Arn"])
    setup_job()
    print(f"  settings         {SETTINGS}: mode alert, remediation key for {REGION} = the CMK")


def settings(mode, key=None, resubmit=False):
    key = key or state()["key"]
    doc = {"defaults": {"mode": mode, "remediationKeys": {REGION: key}}}
    if resubmit:
        doc["defaults"]["resubmitJobs"] = True
    client("ssm").put_parameter(Name=SETTINGS, Value=json.dumps(doc), Type="String", Overwrite=True)
    print(f"  settings {SETTINGS} -> {json.dumps(doc)}")


def guardrail():
    bedrock = client("bedrock")
    arn = state()["guardrail"]
    versions = [v["version"] for v in bedrock.list_guardrails(guardrailIdentifier=arn)["guardrails"]]
    for version in versions:
        g = bedrock.get_guardrail(guardrailIdentifier=arn, guardrailVersion=version)
        key = g.get("kmsKeyArn")
        colour = GREEN if key else RED
        print(f"  GetGuardrail {version:<9} kmsKeyArn={colour}{key or '(none: a key AWS owns)'}{RESET}")
    g = bedrock.get_guardrail(guardrailIdentifier=arn, guardrailVersion="DRAFT")
    kept = [p for p in ("topicPolicy", "contentPolicy", "sensitiveInformationPolicy") if p in g]
    tags = bedrock.list_tags_for_resource(resourceARN=g["guardrailArn"])["tags"]
    print(f"  DRAFT still has: {', '.join(kept)}; tags {tags}")


def logging():
    """Where Bedrock's invocation logs go now, and what each destination is encrypted with."""
    group = next(g for g in client("logs").describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]
                 if g["logGroupName"] == LOG_GROUP)
    key = group.get("kmsKeyId")
    print(f"  log group {LOG_GROUP:<26} kmsKeyId={(GREEN if key else RED)}{key or '(none)'}{RESET}")
    s3 = client("s3")
    for bucket in (BUCKET, LARGE_DATA):
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        default = rule["ApplyServerSideEncryptionByDefault"]
        key = default.get("KMSMasterKeyID")
        colour = GREEN if key else RED
        print(f"  bucket {bucket:<29} {colour}{default['SSEAlgorithm']} {key or ''}{RESET}"
              f" bucketKey={rule.get('BucketKeyEnabled', False)}")


def take_key_off():
    """Someone removes the key from the log group (an old script, a console click)."""
    client("logs").disassociate_kms_key(logGroupName=LOG_GROUP)
    print(f"  aws logs disassociate-kms-key --log-group-name {LOG_GROUP}")


def allow_services():
    """What the alert asked for: the key policy lets CloudWatch Logs and Bedrock use the CMK."""
    s = state()
    account = s["account"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AllowCloudWatchLogsForBedrockInvocationLogs", "Effect": "Allow",
         "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
         "Resource": "*",
         "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn":
                                     f"arn:aws:logs:{REGION}:{account}:log-group:{LOG_GROUP}"}}},
        {"Sid": "AllowBedrockInvocationLogsToBucket", "Effect": "Allow",
         "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "kms:GenerateDataKey", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account}}},
    ]}
    client("kms").put_key_policy(KeyId=s["key"], PolicyName="default", Policy=json.dumps(policy))
    print(f"  aws kms put-key-policy --key-id {s['key']} ...  (+ CloudWatch Logs, + Bedrock)")


def follow_steps():
    """What the alert's steps say: a new version from the fixed DRAFT, then the old one deleted."""
    bedrock = client("bedrock")
    arn = state()["guardrail"]
    v = bedrock.create_guardrail_version(guardrailIdentifier=arn, description="on the CMK")["version"]
    print(f"  aws bedrock create-guardrail-version ...  -> version {v}")
    print("  (applications move from version 1 to version 2)")
    bedrock.delete_guardrail(guardrailIdentifier=arn, guardrailVersion="1")
    print("  aws bedrock delete-guardrail --guardrail-version 1")


def finding(path):
    f = json.loads(Path(path).read_text())
    colour = {"COMPLIANT": GREEN, "NON_COMPLIANT": RED, "ERROR": YELLOW}.get(f["status"], DIM)
    print(f"  Finding: {colour}{f['status']}{RESET} severity={f['severity']} mode={f['mode']} action={BOLD}{f['action']['kind']}{RESET}")
    protections = f.get("protections", [])
    width = max((len(p["name"]) for p in protections), default=0)
    for p in protections:
        print(f"    {p['name']:<{width}} {p['verdict']:<14} action={p['action']}")
    print(f"  reason:  {f['reason']}")
    if f["action"]["kind"] == "none" and f["action"].get("detail"):
        print(f"  {DIM}{f['action']['detail']}{RESET}")


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
    {"setup": setup, "settings": settings, "guardrail": guardrail, "finding": finding, "inbox": inbox,
     "follow-steps": follow_steps, "logging": logging, "allow-services": allow_services,
     "take-key-off": take_key_off, "jobs": jobs,
     "resubmit-jobs": lambda: settings("remediate", resubmit=True)}[command](*args)
