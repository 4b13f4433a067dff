"""Load (issue 9): a burst of deliveries through the four release binaries against the
emulator, several processes per function at once, all sharing one ledger (STATE_TABLE),
one settings parameter and one alert topic.

What it builds, in an account of its own (the functions' home) and four member accounts
reached through MEMBER_ROLE_NAME, two in `remediate` (one with `resubmitJobs`) and two in
`alert`: guardrails on a CMK, without one, on a disabled CMK, with a published version
without one, one deleted; each account's invocation logging configuration (destinations
on the CMK or not) and buckets that are no destination; customization jobs, custom
models, evaluation and batch inference jobs with and without a CMK (one alert account's
jobs complete at once, the emulator's `jobCompletionSeconds` 0; elsewhere they keep
running, so `remediate` can stop them; a stopped job reads `Stopping` for the emulator's
default `jobStopSeconds`, 60).

What it sends: distinct events (distinct eventIDs; several about the same resource, half
of those back to back) and duplicates of them (the same event two or three times: the
copy right behind the original, so that another process of the same function takes it
while the first still runs, or much later in the queue). Each function's processes
(default 3 each) take deliveries from one queue per function, each process behind a
Runtime API of its own. Deliveries that end in a Lambda error are then delivered again,
up to twice, as Lambda retries an asynchronous invocation (at once here, not after 1 and
2 minutes).

The functions reach SNS through a relay that only watches (to tell a Publish the SDK sent
again). The emulator makes each DynamoDB request atomic, as DynamoDB does (see
tests/emulator/README.md, "DynamoDB"), so the ledger is reached directly.

What it checks (any violation: exit status 1): every delivery ends in exactly one
response (a Finding about its event) or one error, none missing, none doubled, no
process dies; every event ends in a Finding after the retries; per event at most one
finding that acted (`remediated` / `failed`); per resource at most one write by the guard
(UpdateGuardrail, AssociateKmsKey, PutBucketEncryption, Stop*Job, the resubmitted job's
Create*Job, counted in the emulator's request log), exactly one where a fix is due and
none elsewhere, and the resources end as fixed; no event published twice; SNS deliveries
(an SQS subscriber, raw delivery) equal the guard's publishes; every finding's status is
one the resource allows; no problem alerted twice by runs that overlapped (distinct events
about one resource judged at the same time). It reports what duplicates answered, problems
alerted again by a later run (the state changed between), throughput and
latency p50/p90/p99 per function, as a table and as one JSON line (LOAD-SUMMARY).

Run by tests/load/load.sh [options]. To see the checks fail: `--break no-ledger` (no
STATE_TABLE: fixes and publishes doubled), `--publish-delay 5` (a slow SNS answer, sent again by the SDK).
"""

import argparse
import collections
import http.client
import http.server
import json
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))
sys.dont_write_bytecode = True
import runtime_api  # noqa: E402  (the fake Lambda Runtime API the benchmarks use too)

ENDPOINT = os.environ["AWS_ENDPOINT_URL"].rstrip("/")
REGION = "us-east-1"
FIXTURES = ROOT / "tests" / "fixtures" / "events"
FUNCTIONS = ["guardrails", "invocation-logging", "model-jobs", "data-jobs"]
SCHEMA = "bedrock-cmk-guard/finding@2"
BASE_MODEL = "amazon.titan-text-express-v1:0:8k"
DEADLINE_S = 30  # the invocation's time limit the Runtime API announces (infra/: Timeout 30)
C, NC, IG = "COMPLIANT", "NON_COMPLIANT", "IGNORED"


def function_role(function):
    """The role a function runs as in the home account (its credentials are this role's)."""
    return f"load-{function}"


def member_role(function):
    """MEMBER_ROLE_NAME of a function: one per function, as infra/ deploys them."""
    return f"load-{function}-member"


def caller(record):
    """Which function made a request: its SDK app name (`app/cmk-guard-<function>` in the user
    agent), else the role behind its credentials; None for the harness's own requests."""
    app = record.get("app") or ""
    if app.startswith("cmk-guard-"):
        return app.removeprefix("cmk-guard-")
    role = (record.get("principal") or "").rsplit("/", 1)[-1]
    for f in FUNCTIONS:
        if role in (function_role(f), member_role(f)):
            return f
    return None


# The member accounts: (label, mode, logging destinations, jobs complete at once, resubmitJobs).
# logging: "none" = log group and both buckets without a CMK, "buckets" = only the log group
# on the CMK, "all" = all three on the CMK.
PROFILES = [
    ("R1", "remediate", "none", False, False),
    ("R2", "remediate", "buckets", False, True),
    ("A1", "alert", "none", False, False),
    ("A2", "alert", "all", True, False),
]


def key_policy(account):
    """Lets CloudWatch Logs and Bedrock use the key: one remediation key for every kind."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Logs", "Effect": "Allow", "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
         "Resource": "*"},
        {"Sid": "Bedrock", "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
         "Action": "kms:GenerateDataKey", "Resource": "*"},
    ]})


def http_json(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{ENDPOINT}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def new_account_id():
    return "9" + "".join(random.SystemRandom().choice("0123456789") for _ in range(11))


class Account:
    """An emulated account (moto maps the credentials sts:AssumeRole hands out to the role's
    account) with clients acting in it; clients are per thread (boto3 clients are built
    per thread here, never shared while being built)."""

    def __init__(self, label, account_id=None):
        self.label = label
        self.id = account_id or new_account_id()
        self.creds = self.credentials("cmk-guard-load")
        self._local = threading.local()

    def credentials(self, role):
        """Credentials of `role` in this account: the request log then names the role as the
        request's principal."""
        root = boto3.client("sts", endpoint_url=ENDPOINT, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
        c = root.assume_role(RoleArn=f"arn:aws:iam::{self.id}:role/{role}", RoleSessionName="load")["Credentials"]
        return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                "aws_session_token": c["SessionToken"]}

    def client(self, name):
        cache = self._local.__dict__.setdefault("clients", {})
        if name not in cache:
            cache[name] = boto3.session.Session(**self.creds).client(
                name, endpoint_url=ENDPOINT, region_name=REGION,
                config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}))
        return cache[name]

    def emulate(self, **options):
        return http_json("POST", "/_cmk_guard/options", dict(options, account=self.id))


def short():
    return uuid.uuid4().hex[:10]


# ------------------------------------------------------------------------------ the world

class Event:
    """One distinct event: which function gets it, what it is about, what it may answer."""

    def __init__(self, function, body, resource, expect, note):
        self.function = function
        self.body = body
        self.id = body["detail"]["eventID"]
        self.name = body["detail"]["eventName"]
        self.resource = resource  # (function, account, resource id)
        self.expect = expect  # statuses its findings may have
        self.note = note


def fixture(name, account):
    text = (FIXTURES / name).read_text()
    for other in ("111122223333", "123123123123"):
        text = text.replace(other, account)
    e = json.loads(text.replace("us-west-2", REGION))
    e["account"], e["region"] = account, REGION
    d = e["detail"]
    d.update(awsRegion=REGION, recipientAccountId=account, eventID=str(uuid.uuid4()))
    return e


class World:
    def __init__(self, args):
        self.args = args
        self.home = Account("home")
        self.members = [Account(p[0]) for p in PROFILES]
        self.profile = {a.id: p for a, p in zip(self.members, PROFILES)}
        self.events = []
        # Write targets a fix may touch -> how many writes the guard must make there.
        self.expected_writes = {}
        # What the resources must look like afterwards: (description, check function).
        self.final_checks = []
        self.resubmit_names = {}  # (account, job name) -> the job ARN
        self.keys = {}
        self._lock = threading.Lock()

    # -------------------------------------------------------------- central resources
    def setup_home(self):
        h = self.home
        suffix = short()
        self.table = f"load-ledger-{suffix}"
        h.client("dynamodb").create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        self.topic = h.client("sns").create_topic(Name=f"load-alerts-{suffix}")["TopicArn"]
        sqs = h.client("sqs")
        self.queue_url = sqs.create_queue(QueueName=f"load-alerts-{suffix}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        h.client("sns").subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn,
                                  Attributes={"RawMessageDelivery": "true"})
        self.parameter = f"/load/{suffix}/settings"
        accounts = {}
        for a in self.members:
            _, mode, _, _, resubmit = self.profile[a.id]
            entry = {"mode": mode}
            if mode == "remediate":
                entry["remediationKeys"] = {REGION: self.keys[a.id]}
                if resubmit:
                    entry["resubmitJobs"] = True
            accounts[a.id] = entry
        h.client("ssm").put_parameter(Name=self.parameter, Type="String", Overwrite=True,
                                      Value=json.dumps({"defaults": {"mode": "alert"}, "accounts": accounts}))

    # -------------------------------------------------------------- member resources
    def setup_member(self, a):
        _, mode, logging_state, complete, resubmit = self.profile[a.id]
        remediate = mode == "remediate"
        kms = a.client("kms")
        good = kms.create_key(Policy=key_policy(a.id))["KeyMetadata"]["Arn"]
        disabled = kms.create_key()["KeyMetadata"]["Arn"]
        kms.disable_key(KeyId=disabled)
        with self._lock:
            self.keys[a.id] = good
        # Jobs: at once Completed (A2), else running until stopped (the default: no completion).
        a.emulate(jobCompletionSeconds=0 if complete else None)
        out = []
        self._guardrails(a, good, disabled, remediate, out)
        self._logging(a, good, logging_state, remediate, out)
        self._model_jobs(a, good, remediate, resubmit, complete, out)
        self._data_jobs(a, good, remediate, resubmit, complete, out)
        return out

    def _expect_write(self, target, n):
        with self._lock:
            self.expected_writes[target] = n

    def _final(self, what, check):
        with self._lock:
            self.final_checks.append((what, check))

    def _guardrails(self, a, good, disabled, remediate, out):
        b = a.client("bedrock")

        def make(key=None):
            args = dict(name=f"load-{short()}", blockedInputMessaging="no", blockedOutputsMessaging="no",
                        contentPolicyConfig={"filtersConfig": [
                            {"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH"}]})
            if key:
                args["kmsKeyId"] = key
            r = b.create_guardrail(**args)
            return r["guardrailId"], r["guardrailArn"]

        def ev(name, gid, arn, resource, expect, note):
            e = fixture(name, a.id)
            d = e["detail"]
            if "guardrailIdentifier" in (d.get("requestParameters") or {}):
                d["requestParameters"]["guardrailIdentifier"] = gid
            r = d.get("responseElements") or {}
            if "guardrailArn" in r:
                r["guardrailArn"] = arn
            if "guardrailId" in r:
                r["guardrailId"] = gid
            out.append(Event("guardrails", e, resource, expect, note))

        fixed = {NC, C} if remediate else {NC}

        def on_key(gid, expected_key):
            def check():
                got = b.get_guardrail(guardrailIdentifier=gid).get("kmsKeyArn")
                return got == expected_key, f"kmsKeyArn {got}, expected {expected_key}"
            return check

        for _ in range(self.args.guardrails):
            # on the CMK: compliant, two events
            gid, arn = make(good)
            res = ("guardrails", a.id, gid)
            self._expect_write(("guardrail", a.id, gid), 0)
            for name in ("CreateGuardrail.json", "UpdateGuardrail.json"):
                ev(name, gid, arn, res, {C}, "guardrail on a CMK")
            # without a key: three events about the same non-compliant guardrail
            gid, arn = make()
            res = ("guardrails", a.id, gid)
            self._expect_write(("guardrail", a.id, gid), 1 if remediate else 0)
            self._final(f"guardrail {gid} ({a.label})", on_key(gid, good if remediate else None))
            for name in ("CreateGuardrail.json", "UpdateGuardrail.json", "UpdateGuardrail.json"):
                ev(name, gid, arn, res, fixed, "guardrail without a key")
        # on a disabled CMK
        gid, arn = make(disabled)
        self._expect_write(("guardrail", a.id, gid), 1 if remediate else 0)
        self._final(f"guardrail {gid} ({a.label})", on_key(gid, good if remediate else disabled))
        for name in ("CreateGuardrail.json", "UpdateGuardrail.json", "UpdateGuardrail.json"):
            ev(name, gid, arn, ("guardrails", a.id, gid), fixed, "guardrail on a disabled CMK")
        # a published version without a key: the DRAFT is fixed, the version stays open
        for _ in range(2):
            gid, arn = make()
            b.create_guardrail_version(guardrailIdentifier=gid)
            self._expect_write(("guardrail", a.id, gid), 1 if remediate else 0)
            self._final(f"guardrail {gid} ({a.label})", on_key(gid, good if remediate else None))
            for name in ("CreateGuardrail.json", "CreateGuardrailVersion.json", "UpdateGuardrail.json"):
                ev(name, gid, arn, ("guardrails", a.id, gid), {NC}, "guardrail with a version without a key")
        # deleted before its event is handled
        gid, arn = make()
        b.delete_guardrail(guardrailIdentifier=gid)
        ev("UpdateGuardrail.json", gid, arn, ("guardrails", a.id, gid), {IG}, "guardrail deleted")
        # a failed call (errorCode): ignored at intake
        e = fixture("UpdateGuardrail-failed.json", a.id)
        out.append(Event("guardrails", e, ("guardrails", a.id, "failed-call"), {IG}, "failed call"))

    def _logging(self, a, good, state, remediate, out):
        logs, s3 = a.client("logs"), a.client("s3")
        sfx = short()
        group, bucket, large = f"/load/{sfx}", f"load-logs-{sfx}", f"load-large-{sfx}"
        group_on_key = state in ("buckets", "all")
        buckets_on_key = state == "all"
        logs.create_log_group(logGroupName=group, **({"kmsKeyId": good} if group_on_key else {}))
        for name in (bucket, large):
            s3.create_bucket(Bucket=name)
            if buckets_on_key:
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": good},
                    "BucketKeyEnabled": True}]})
        a.client("bedrock").put_model_invocation_logging_configuration(loggingConfig={
            "cloudWatchConfig": {"logGroupName": group, "roleArn": f"arn:aws:iam::{a.id}:role/load",
                                 "largeDataDeliveryS3Config": {"bucketName": large}},
            "s3Config": {"bucketName": bucket}})
        others = [f"load-other-{short()}" for _ in range(3)]
        for name in others:
            s3.create_bucket(Bucket=name)
        res = ("invocation-logging", a.id, "configuration")
        self._expect_write(("loggroup", a.id, group), 1 if remediate and not group_on_key else 0)
        for name in (bucket, large):
            self._expect_write(("bucket", a.id, name), 1 if remediate and not buckets_on_key else 0)

        def group_key():
            want = good if (remediate or group_on_key) else None
            got = next((g.get("kmsKeyId") for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
                        if g["logGroupName"] == group), "missing")
            return got == want, f"kmsKeyId {got}, expected {want}"

        def bucket_key(name):
            def check():
                want = good if (remediate or buckets_on_key) else None
                rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
                got = rule["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
                return got == want, f"KMSMasterKeyID {got}, expected {want}"
            return check

        self._final(f"log group {group} ({a.label})", group_key)
        for name in (bucket, large):
            self._final(f"bucket {name} ({a.label})", bucket_key(name))
        compliant = state == "all"
        expect = {C} if compliant else ({NC, C} if remediate else {NC})
        note = "logging on CMKs" if compliant else "logging without CMKs"
        n = self.args.logging
        for _ in range(n):
            out.append(Event("invocation-logging", fixture("PutModelInvocationLoggingConfiguration.json", a.id),
                             res, expect, note))
        for _ in range(max(1, n // 2)):
            e = fixture("AssociateKmsKey.json", a.id)
            e["detail"]["requestParameters"].update(logGroupName=group, kmsKeyId=good)
            out.append(Event("invocation-logging", e, res, expect, note))
            for name in (bucket, large):
                e = fixture("PutBucketEncryption.json", a.id)
                e["detail"]["requestParameters"]["bucketName"] = name
                out.append(Event("invocation-logging", e, res, expect, note))
        # buckets that are no destination: IGNORED after one read
        for name in others:
            for fx in ("PutBucketEncryption.json", "DeleteBucketEncryption.json"):
                e = fixture(fx, a.id)
                e["detail"]["requestParameters"]["bucketName"] = name
                out.append(Event("invocation-logging", e, ("invocation-logging", a.id, name), {IG},
                                 "bucket that is no destination"))

    def _job_events(self, a, function, fx, member, arn, count, expect, note, out):
        for _ in range(count):
            e = fixture(fx, a.id)
            e["detail"]["responseElements"][member] = arn
            out.append(Event(function, e, (function, a.id, arn), expect, note))

    def _stoppable(self, a, arn, remediate, resubmit, complete, get, name):
        """A job without a key: stopped once (and submitted again once) in remediate."""
        running = not complete
        self._expect_write(("stop", a.id, arn), 1 if remediate and running else 0)
        self._expect_write(("resubmit", a.id, arn), 1 if remediate and running and resubmit else 0)
        with self._lock:
            self.resubmit_names[(a.id, name)] = arn

        def check():
            status = get(arn)
            want = {"Stopping", "Stopped"} if remediate and running else (
                {"Completed"} if complete else {"InProgress", "Submitted"})
            return status in want, f"status {status}, expected {sorted(want)}"
        self._final(f"job {arn.rsplit('/', 1)[1]} ({a.label})", check)

    def _model_jobs(self, a, good, remediate, resubmit, complete, out):
        b = a.client("bedrock")
        role = f"arn:aws:iam::{a.id}:role/load-jobs"
        get = lambda arn: b.get_model_customization_job(jobIdentifier=arn)["status"]  # noqa: E731

        def job(key=None):
            name = f"load-{short()}"
            args = dict(jobName=name, customModelName=f"{name}-model", roleArn=role,
                        baseModelIdentifier=BASE_MODEL, customizationType="FINE_TUNING",
                        trainingDataConfig={"s3Uri": "s3://load/train.jsonl"},
                        outputDataConfig={"s3Uri": "s3://load/out/"}, hyperParameters={"epochCount": "1"})
            if key:
                args["customModelKmsKeyId"] = key
            return name, b.create_model_customization_job(**args)["jobArn"]

        fx = "CreateModelCustomizationJob.json"
        for _ in range(self.args.jobs):
            _, arn = job(good)
            self._expect_write(("stop", a.id, arn), 0)
            self._job_events(a, "model-jobs", fx, "jobArn", arn, 1, {C}, "customization job on a CMK", out)
            name, arn = job()
            self._stoppable(a, arn, remediate, resubmit, complete, get, name)
            # after the stop the job holds nothing: IGNORED
            expect = {NC, IG} if remediate and not complete else {NC}
            self._job_events(a, "model-jobs", fx, "jobArn", arn, 2, expect, "customization job without a key", out)
        for key in (None, None, good):
            arn = b.create_custom_model(modelName=f"load-{short()}", roleArn=role,
                                        modelSourceConfig={"s3DataSource": {"s3Uri": "s3://load/model/"}},
                                        **({"modelKmsKeyArn": key} if key else {}))["modelArn"]
            self._job_events(a, "model-jobs", "CreateCustomModel.json", "modelArn", arn, 2 if not key else 1,
                             {C} if key else {NC}, "custom model" + (" on a CMK" if key else " without a key"), out)

    def _data_jobs(self, a, good, remediate, resubmit, complete, out):
        b = a.client("bedrock")
        role = f"arn:aws:iam::{a.id}:role/load-jobs"

        def evaluation(key=None):
            name = f"load-{short()}"
            args = dict(
                jobName=name, roleArn=role,
                evaluationConfig={"automated": {"datasetMetricConfigs": [{
                    "taskType": "QuestionAndAnswer", "metricNames": ["Builtin.Accuracy"],
                    "dataset": {"name": "qa", "datasetLocation": {"s3Uri": "s3://load/qa.jsonl"}}}]}},
                inferenceConfig={"models": [{"bedrockModel": {"modelIdentifier": "amazon.titan-text-express-v1",
                                                              "inferenceParams": "{}"}}]},
                outputDataConfig={"s3Uri": "s3://load/eval/"})
            if key:
                args["customerEncryptionKeyId"] = key
            return name, b.create_evaluation_job(**args)["jobArn"]

        def batch(key=None):
            name = f"load-{short()}"
            output = {"s3Uri": "s3://load/batch/out/"}
            if key:
                output["s3EncryptionKeyId"] = key
            return name, b.create_model_invocation_job(
                jobName=name, roleArn=role, modelId="amazon.titan-text-express-v1",
                inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://load/batch/in.jsonl"}},
                outputDataConfig={"s3OutputDataConfig": output})["jobArn"]

        kinds = [(evaluation, "CreateEvaluationJob.json", lambda arn: b.get_evaluation_job(jobIdentifier=arn)["status"]),
                 (batch, "CreateModelInvocationJob.json",
                  lambda arn: b.get_model_invocation_job(jobIdentifier=arn)["status"])]
        for make, fx, get in kinds:
            for _ in range(self.args.jobs // 2):
                _, arn = make(good)
                self._expect_write(("stop", a.id, arn), 0)
                self._job_events(a, "data-jobs", fx, "jobArn", arn, 1, {C}, "data job on a CMK", out)
                name, arn = make()
                self._stoppable(a, arn, remediate, resubmit, complete, get, name)
                # a stopped evaluation or batch job keeps what it holds: still NON_COMPLIANT
                self._job_events(a, "data-jobs", fx, "jobArn", arn, 2, {NC}, "data job without a key", out)

    def build(self):
        with ThreadPoolExecutor(len(self.members)) as pool:
            for out in pool.map(self.setup_member, self.members):
                self.events.extend(out)
        self.setup_home()


# ------------------------------------------------------------------------------ deliveries

class Delivery:
    __slots__ = ("seq", "event", "kind", "round", "request_id", "process", "start", "results")

    def __init__(self, seq, event, kind, rnd=0):
        self.seq, self.event, self.kind, self.round = seq, event, kind, rnd
        self.request_id = None
        self.process = None
        self.start = None
        self.results = []  # (time, "response" | "error", body)


def schedule(events, args, rng):
    """Per function, the order its queue hands deliveries out: distinct events shuffled
    (half of the resources with several events get them back to back), duplicates right
    behind their original (to another process while the first runs) or much later."""
    by_function = collections.defaultdict(list)
    seq = iter(range(10**9))
    for function in FUNCTIONS:
        evs = [e for e in events if e.function == function]
        by_resource = collections.defaultdict(list)
        for e in evs:
            by_resource[e.resource].append(e)
        units = []
        for group in by_resource.values():
            if len(group) > 1 and rng.random() < 0.5:
                units.append(group)
            else:
                units.extend([e] for e in group)
        rng.shuffle(units)
        order = [e for u in units for e in u]
        keyed = []
        picked = list(range(len(order)))
        rng.shuffle(picked)
        twice = set(picked[:round(len(order) * args.duplicates)])
        thrice = set(picked[:round(len(order) * args.duplicates * args.triples)])
        for i, e in enumerate(order):
            keyed.append((float(i), Delivery(next(seq), e, "original")))
            copies = 2 if i in thrice else (1 if i in twice else 0)
            for c in range(copies):
                if c == 0 and rng.random() < 0.6:
                    keyed.append((i + 0.5, Delivery(next(seq), e, "duplicate (right behind)")))
                else:
                    keyed.append((i + rng.randint(25, 90) + 0.25, Delivery(next(seq), e, "duplicate (later)")))
        keyed.sort(key=lambda kd: kd[0])
        by_function[function] = [d for _, d in keyed]
    return by_function


# ------------------------------------------------------------------------------ runtime

class Board:
    """Every handed-out delivery by request id, and the results as they come."""

    def __init__(self):
        self.lock = threading.Condition()
        self.by_request = {}
        self.stray = []  # results for request ids never handed out
        self.init_errors = []
        self.pending = 0

    def handed(self, d):
        with self.lock:
            self.by_request[d.request_id] = d

    def result(self, request_id, kind, body, now):
        with self.lock:
            d = self.by_request.get(request_id)
            if d is None:
                self.stray.append((request_id, kind, body))
            else:
                d.results.append((now, kind, body))
                if len(d.results) == 1:
                    self.pending -= 1
                    self.lock.notify_all()


class RuntimeApi(runtime_api.RuntimeApi):
    """The Runtime API of one function process: deliveries from its function's feed."""

    def __init__(self, function, index, feed, board, function_arn):
        self.function, self.index, self.feed, self.board = function, index, feed, board
        self.stopping = False
        super().__init__(self._next, self._result, self._init_error, function_arn)

    def _next(self):
        while not self.stopping:
            try:
                d = self.feed.get(timeout=0.2)
            except queue.Empty:
                continue
            d.request_id = str(uuid.uuid4())
            d.process = f"{self.function}#{self.index}"
            self.board.handed(d)
            d.start = time.perf_counter()
            return runtime_api.Invocation(d.request_id, json.dumps(d.event.body).encode(),
                                          int(time.time() * 1000) + DEADLINE_S * 1000)
        return None

    def _result(self, request_id, kind, body, at):
        self.board.result(request_id, kind, body, at)

    def _init_error(self, path, body):
        with self.board.lock:
            self.board.init_errors.append((self.function, path, body))


class Relay(http.server.ThreadingHTTPServer):
    """An endpoint of one service for the functions (AWS_ENDPOINT_URL_<SERVICE>, which the SDK
    prefers to AWS_ENDPOINT_URL) that forwards every request to the emulator and notes when
    it began and ended and a digest of its body: a Publish the SDK sent again is told from a
    publish of its own."""

    daemon_threads = True

    def __init__(self, upstream):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname, u.port)
        self.records_lock = threading.Lock()
        self.records = []  # (operation, began, ended, HTTP status, body digest)

    def send(self, method, path, body, headers):
        """One request upstream, on a connection of its own and never sent twice: a write
        whose answer was lost must not be repeated here (the repeat would find the first
        one's item)."""
        conn = http.client.HTTPConnection(*self.upstream, timeout=2 * DEADLINE_S)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp, resp.read()
        finally:
            conn.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(runtime_api.QuietHandler):
    protocol_version = "HTTP/1.1"
    HOP = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "server", "date")

    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP}
        s = self.server
        op = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
        if not op:  # query protocol (SNS): the action is a form field
            op = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
        began = time.perf_counter()
        resp, data = s.send(self.command, self.path, body, headers)
        ended = time.perf_counter()
        with s.records_lock:
            s.records.append((op, began, ended, resp.status, hash(body)))
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in self.HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward


class Fleet:
    """N processes per function, each behind its own Runtime API, fed from one queue per
    function."""

    def __init__(self, world, args, board, logdir, endpoints):
        self.board, self.logdir = board, logdir
        self.feeds = {f: queue.Queue() for f in FUNCTIONS}
        self.servers, self.procs = [], []
        self.crashes = []
        h = world.home
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "SSL_CERT_FILE")}
        self.env = {}
        for f in FUNCTIONS:
            # Each function its own role in the home account and its own member role (as
            # infra/ deploys them): the request log's principal says which function called.
            c = h.credentials(function_role(f))
            env = dict(base, AWS_ENDPOINT_URL=ENDPOINT, AWS_REGION=REGION,
                       AWS_ACCESS_KEY_ID=c["aws_access_key_id"], AWS_SECRET_ACCESS_KEY=c["aws_secret_access_key"],
                       AWS_SESSION_TOKEN=c["aws_session_token"], AWS_LAMBDA_FUNCTION_NAME=f,
                       AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
                       ALERT_TOPIC_ARN=world.topic, CONFIG_PARAMETER=world.parameter,
                       MEMBER_ROLE_NAME=member_role(f), RUST_LOG="warn")
            env.update(endpoints)
            if args.break_ != "no-ledger":
                env["STATE_TABLE"] = world.table
            self.env[f] = env
        self.home_id = h.id
        self.args = args

    def start(self):
        for f in FUNCTIONS:
            for i in range(self.args.processes):
                arn = f"arn:aws:lambda:{REGION}:{self.home_id}:function:{f}"
                api = RuntimeApi(f, i, self.feeds[f], self.board, arn)
                threading.Thread(target=api.serve_forever, daemon=True).start()
                self.servers.append(api)
                self.procs.append(self._spawn(api))

    def _spawn(self, api):
        env = dict(self.env[api.function],
                   AWS_LAMBDA_RUNTIME_API=api.address)
        log = open(self.logdir / f"{api.function}-{api.index}.log", "ab")
        p = subprocess.Popen([str(ROOT / "target" / "release" / api.function)], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return [api, p, 0]

    def watch(self):
        """A process that exited is a crash: noted, and replaced (as Lambda would), up to
        three times per process."""
        for slot in self.procs:
            api, p, _ = slot
            if p.poll() is not None and slot[2] < 3:
                self.crashes.append((api.function, api.index, p.returncode))
                slot[1] = self._spawn(api)[1]
                slot[2] += 1

    def feed(self, deliveries):
        with self.board.lock:
            self.board.pending += len(deliveries)
        for d in deliveries:
            self.feeds[d.event.function].put(d)

    def wait(self, timeout, stall=30):
        """Until every delivery fed so far is answered (True), or `timeout` seconds pass, or
        none is answered for `stall` seconds (False)."""
        end = time.monotonic() + timeout
        last, moved = None, time.monotonic()
        while True:
            with self.board.lock:
                if self.board.pending <= 0:
                    return True
                self.board.lock.wait(0.25)
                pending = self.board.pending
            if pending != last:
                last, moved = pending, time.monotonic()
            self.watch()
            now = time.monotonic()
            if now > end or now - moved > stall:
                return False

    def stop(self):
        for api, p, _ in self.procs:
            api.stopping = True
            p.send_signal(signal.SIGTERM)
        for api, p, _ in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        # The servers' threads are daemons: they end with this process.


# ------------------------------------------------------------------------------ checks

def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def parse_result(d):
    """(category, finding or None, error type or None) of a delivery's first result."""
    _, kind, body = d.results[0]
    try:
        doc = json.loads(body)
    except ValueError:
        return "unreadable", None, None
    if kind == "error":
        return "error " + str(doc.get("errorType")), None, doc.get("errorType")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return "not a finding", None, None
    detail = (doc.get("action") or {}).get("detail") or ""
    if "already handled" in detail:
        return "finding: already handled", doc, None
    if doc.get("status") == IG:
        return "finding: IGNORED", doc, None
    return f"finding: {doc.get('status')} / {(doc.get('action') or {}).get('kind')}", doc, None


def write_target(r):
    """The resource a write by the guard touched: (kind, account, id), else None for reads,
    the ledger, publishes and role assumption. Unknown writes: ("other", account, op)."""
    op, svc, acct = r.get("operation") or "", r.get("service"), r.get("account")
    params = r.get("params") or {}
    path = r.get("path") or ""
    if svc in ("dynamodb", "sts", "ssm") or (svc == "sns" and op == "Publish"):
        return None
    if op.startswith(("Get", "List", "Describe", "BatchGet")):
        return None
    if svc == "bedrock" and op == "UpdateGuardrail":
        ident = path.split("/guardrails/", 1)[1].strip("/")
        return ("guardrail", acct, ident.rsplit("/", 1)[-1])
    if svc == "logs" and op in ("AssociateKmsKey", "DisassociateKmsKey"):
        name = params.get("logGroupName") or (params.get("resourceIdentifier") or "").split(":log-group:")[-1]
        return ("loggroup", acct, name.removesuffix(":*"))
    if svc == "s3" and op in ("PutBucketEncryption", "DeleteBucketEncryption"):
        return ("bucket", acct, path.strip("/").split("/")[0])
    if svc == "bedrock" and op.startswith("Stop") and path.endswith("/stop"):
        ident = path[:-len("/stop")].split("/", 2)[2]
        return ("stop", acct, ident)
    if svc == "bedrock" and op in ("CreateModelCustomizationJob", "CreateEvaluationJob", "CreateModelInvocationJob"):
        name = ((params.get("body") or {}) if isinstance(params.get("body"), dict) else {}).get("jobName", "")
        return ("resubmit-name", acct, name)
    if svc == "bedrock" and op == "TagResource":
        return None  # the resubmitted job's tags
    return ("other", acct, f"{svc}:{op}")


def drain(sqs, url):
    bodies, empty = [], 0
    while empty < 2:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                  VisibilityTimeout=300).get("Messages", [])
        if not got:
            empty += 1
            continue
        empty = 0
        bodies.extend(m["Body"] for m in got)
        # Counted: out of the queue (moto's receive scans every message it holds).
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    return bodies


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=3, help="processes per function (default 3)")
    parser.add_argument("--guardrails", type=int, default=6,
                        help="per account: guardrails on a CMK, and as many without a key (default 6)")
    parser.add_argument("--logging", type=int, default=6,
                        help="per account: PutModelInvocationLoggingConfiguration events (default 6)")
    parser.add_argument("--jobs", type=int, default=8,
                        help="per account: customization jobs with and without a CMK; half as many of "
                             "each data job kind (default 8)")
    parser.add_argument("--duplicates", type=float, default=0.9,
                        help="share of events delivered more than once (default 0.9)")
    parser.add_argument("--triples", type=float, default=0.45,
                        help="share of those delivered three times (default 0.45)")
    parser.add_argument("--min-deliveries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=9, help="the mix and the order (default 9)")
    parser.add_argument("--timeout", type=float, default=150, help="seconds to wait for the burst")
    parser.add_argument("--break", dest="break_", choices=["no-ledger"],
                        help="break the deployment on purpose: the checks must then fail")
    parser.add_argument("--publish-delay", type=float, metavar="SECONDS",
                        help="answer the functions' first SNS publish this late (an emulator fault): what a "
                             "slow SNS does to the one-message-per-finding promise")
    parser.add_argument("--keep-logs", action="store_true", help="keep the function processes' logs")
    parser.add_argument("--json", help="also write the JSON summary to this file")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    t_start = time.perf_counter()
    for f in FUNCTIONS:
        if not os.access(ROOT / "target" / "release" / f, os.X_OK):
            sys.exit(f"target/release/{f} is missing: build the release functions first")

    # ------------------------------------------------------------ setup
    world = World(args)
    world.build()
    events = world.events
    plan = schedule(events, args, rng)
    deliveries = [d for f in FUNCTIONS for d in plan[f]]
    t_setup = time.perf_counter() - t_start
    print(f"emulator {ENDPOINT}; home account {world.home.id}; members "
          + ", ".join(f"{a.label} {a.id} ({world.profile[a.id][1]})" for a in world.members))
    print(f"set-up {t_setup:.1f} s: {len(events)} distinct events, {len(deliveries)} deliveries "
          f"({len(deliveries) - len(events)} duplicates), {args.processes} processes per function, "
          f"ledger {'OFF (--break no-ledger)' if args.break_ == 'no-ledger' else 'on'}")
    violations = []
    if len(deliveries) < args.min_deliveries:
        violations.append(f"harness: only {len(deliveries)} deliveries (< {args.min_deliveries})")

    # ------------------------------------------------------------ burst
    logdir = Path(tempfile.mkdtemp(prefix="cmk-guard-load-"))
    board = Board()
    relays = {"SNS": Relay(ENDPOINT)}
    for relay in relays.values():
        threading.Thread(target=relay.serve_forever, daemon=True).start()
    fleet = Fleet(world, args, board, logdir, {f"AWS_ENDPOINT_URL_{k}": r.url for k, r in relays.items()})
    if args.publish_delay:
        world.home.emulate(faults=[{"operation": "sns:Publish", "delaySeconds": args.publish_delay, "count": 1}])
    mark = len(http_json("GET", "/_cmk_guard/requests")["requests"])
    fleet.feed(deliveries)
    t0 = time.perf_counter()
    fleet.start()
    finished = fleet.wait(args.timeout)
    t_burst = time.perf_counter() - t0
    burst_end = time.perf_counter()
    # ------------------------------------------------------------ Lambda's retries
    retries = []
    for rnd in (1, 2):
        if not finished:
            break
        ended_in_error = {}
        for d in deliveries + retries:
            if d.results and d.results[0][1] == "error" and d.round == rnd - 1:
                ended_in_error[id(d)] = d
        again = [Delivery(10**6 + len(retries) + i, d.event, f"retry {rnd}", rnd)
                 for i, d in enumerate(ended_in_error.values())]
        if not again:
            break
        retries.extend(again)
        fleet.feed(again)
        finished = fleet.wait(60)
    t_retries = time.perf_counter() - burst_end
    time.sleep(0.3)  # a result doubled right after the last one would arrive now
    fleet.watch()
    t_stop = time.perf_counter()
    fleet.stop()
    t_stop = time.perf_counter() - t_stop
    t_all = time.perf_counter() - t0
    everything = deliveries + retries

    # ------------------------------------------------------------ results per delivery
    lost = [d for d in everything if not d.results]
    doubled = [d for d in everything if len(d.results) > 1]
    for d in lost[:5]:
        violations.append(f"lost: delivery {d.seq} of event {d.event.id} ({d.event.function}, {d.kind}) "
                          f"never answered{' (never handed out)' if d.request_id is None else ''}")
    if len(lost) > 5:
        violations.append(f"lost: {len(lost) - 5} more deliveries never answered")
    for d in doubled[:5]:
        violations.append(f"doubled: delivery {d.seq} of event {d.event.id} answered {len(d.results)} times: "
                          + ", ".join(k for _, k, _ in d.results))
    for rid, kind, body in board.stray[:5]:
        violations.append(f"a {kind} for request id {rid}, never handed out: {body[:200]!r}")
    for f, path, body in board.init_errors:
        violations.append(f"{f}: init error at {path}: {body[:300]!r}")
    for f, i, code in fleet.crashes:
        violations.append(f"{f} process {i} exited (status {code}) during the run")

    answered = [d for d in everything if d.results]
    cats = {}
    for d in answered:
        cats[id(d)] = parse_result(d)
        cat, doc, err = cats[id(d)]
        if cat in ("unreadable", "not a finding"):
            violations.append(f"delivery {d.seq} ({d.event.function}) answered {cat}: {d.results[0][2][:200]!r}")
        if doc is not None and (doc.get("trigger") or {}).get("eventId") != d.event.id:
            violations.append(f"delivery {d.seq}: finding about event {(doc.get('trigger') or {}).get('eventId')}, "
                              f"sent {d.event.id}")
        if err is not None and err not in ("EventInProgress", "RetryLater"):
            violations.append(f"delivery {d.seq} of {d.event.function} event {d.event.id} ({d.event.note}): "
                              f"error {err}: {d.results[0][2][:300]!r}")

    # ------------------------------------------------------------ per event
    per_event = collections.defaultdict(list)
    for d in everything:
        per_event[d.event.id].append(d)
    acted_twice, dlq, bad_status = [], [], []
    for eid, ds in per_event.items():
        e = ds[0].event
        docs = [cats[id(d)][1] for d in ds if d.results and cats[id(d)][1] is not None]
        acting = [doc for doc in docs if (doc.get("action") or {}).get("kind") in ("remediated", "failed")]
        if len(acting) > 1:
            acted_twice.append((e, len(acting)))
        if not docs:
            dlq.append(e)
        for doc in docs:
            if doc.get("status") not in e.expect:
                bad_status.append((e, doc))
    for e, n in acted_twice[:10]:
        violations.append(f"acted twice: event {e.id} ({e.function} {e.name}, {e.note}) has {n} findings that acted")
    for e in dlq[:10]:
        errs = [cats[id(d)][0] for d in per_event[e.id] if d.results]
        violations.append(f"no finding after the retries (to the DLQ): event {e.id} ({e.function} {e.name}, "
                          f"{e.note}): {errs}")
    for e, doc in bad_status[:10]:
        violations.append(f"unexpected status {doc.get('status')} (expected {sorted(e.expect)}) for event {e.id} "
                          f"({e.function} {e.name}, {e.note}): {doc.get('reason', '')[:300]}")
    if len(bad_status) > 10:
        violations.append(f"unexpected status: {len(bad_status) - 10} more findings")

    # ------------------------------------------------------------ the request log
    phase = {"answers": time.perf_counter()}
    log = http_json("GET", "/_cmk_guard/requests")["requests"][mark:]
    phase["request log"] = time.perf_counter()
    accounts = {world.home.id} | {a.id for a in world.members}
    guard = [r for r in log if r.get("account") in accounts and caller(r)]
    calls_by_app = collections.Counter(caller(r) for r in guard)
    ops_by_app = collections.defaultdict(collections.Counter)
    for r in guard:
        ops_by_app[caller(r)][f"{r['service']}:{r['operation']}"] += 1
    writes = collections.Counter()
    for r in guard:
        if r.get("fault"):
            continue
        t = write_target(r)
        if t is None:
            continue
        if t[0] == "resubmit-name":
            original = world.resubmit_names.get((t[1], t[2].rsplit("-cmk-", 1)[0]))
            t = ("resubmit", t[1], original or f"unknown job name {t[2]}")
        writes[t] += 1
    for t, n in sorted(writes.items()):
        want = world.expected_writes.get(t)
        if want is None:
            violations.append(f"unexpected write by the guard: {t[0]} {t[2]} in account {t[1]} ({n}x)")
        elif n > 1:
            violations.append(f"fixed {n} times: {t[0]} {t[2]} in account {t[1]} (expected {want})")
        elif n != want:
            violations.append(f"written {n} times, expected {want}: {t[0]} {t[2]} in account {t[1]}")
    for t, want in sorted(world.expected_writes.items()):
        if want and not writes.get(t):
            violations.append(f"never fixed: {t[0]} {t[2]} in account {t[1]} (expected {want} write)")
    ddb_calls = sum(1 for r in guard if r["service"] == "dynamodb")
    publishes = [r for r in guard if r["service"] == "sns" and r["operation"] == "Publish"
                 and not r.get("fault") and (r.get("params") or {}).get("TopicArn") == world.topic]

    # ------------------------------------------------------------ SNS -> SQS
    phase["writes"] = time.perf_counter()
    bodies = drain(world.home.client("sqs"), world.queue_url)
    phase["sqs"] = time.perf_counter()
    published_events = collections.Counter()
    alerts_per_resource = collections.Counter()
    by_id = {e.id: e for e in events}
    for body in bodies:
        try:
            f = json.loads(body)
        except ValueError:
            violations.append(f"SQS message is not a Finding: {body[:200]!r}")
            continue
        eid = (f.get("trigger") or {}).get("eventId")
        published_events[eid] += 1
        if eid in by_id:
            alerts_per_resource[(by_id[eid].resource, f.get("status"), (f.get("action") or {}).get("kind"),
                                 f.get("reason"))] += 1
        else:
            violations.append(f"published a finding about an event never sent: {eid}")
    if len(bodies) != len(publishes):
        violations.append(f"SNS: {len(publishes)} publishes by the guard, {len(bodies)} messages reached the "
                          f"SQS subscriber")
    for eid, n in published_events.items():
        if n > 1 and eid in by_id:
            e = by_id[eid]
            violations.append(f"published {n} times: event {eid} ({e.function} {e.name}, {e.note})")

    # The same Publish body twice: the SDK sent it again (a new publish would differ in its
    # finding). The first one's duration says why: an answer slower than the SDK's attempt
    # timeout is retried, and the first publish had reached SNS all the same.
    sns_publishes = [r for r in relays["SNS"].records if r[0] == "Publish"]
    sns_took = [(r[2] - r[1]) * 1000 for r in sns_publishes]
    by_body = collections.defaultdict(list)
    for r in sorted(sns_publishes, key=lambda r: r[1]):
        by_body[r[4]].append(r)
    resent = [(rs[0], r) for rs in by_body.values() for r in rs[1:]]
    if len(sns_publishes) != len(publishes):
        violations.append(f"harness: {len(publishes)} publishes, {len(sns_publishes)} through the SNS relay")

    # ------------------------------------------------------------ the resources afterwards
    phase["publishes"] = time.perf_counter()
    final_bad = []
    for what, check in world.final_checks:
        try:
            ok, why = check()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            final_bad.append(f"{what}: {why}")
    for line in final_bad[:10]:
        violations.append(f"end state: {line}")

    phase["end state"] = time.perf_counter()
    print("checks: " + ", ".join(f"{k} {v - prev:.1f} s" for (k, v), prev in
                                 zip(phase.items(), [t0 + t_all] + list(phase.values()))))
    # ------------------------------------------------------------ duplicates
    # Per event, the delivery that judged it (the first to start among those whose finding
    # is not "already handled"); what every other delivery of it answered.
    dup_answers = collections.Counter()
    judged_again = []
    ignored_later = []  # IGNORED answers to later deliveries of an event judged otherwise
    concurrent_pairs, concurrent_events = 0, set()
    for eid, ds in per_event.items():
        ds = sorted((d for d in ds if d.results and d.start is not None), key=lambda d: d.start)
        judged = [d for d in ds if cats[id(d)][1] is not None and cats[id(d)][0] != "finding: already handled"]
        main_delivery = judged[0] if judged else None
        for d in ds:
            if d is not main_delivery:
                dup_answers[cats[id(d)][0] + (" (a Lambda retry)" if d.round else "")] += 1
                if (main_delivery is not None and cats[id(d)][0] == "finding: IGNORED"
                        and cats[id(main_delivery)][0] != "finding: IGNORED"):
                    ignored_later.append((d, cats[id(d)][1].get("reason", "")))
        if len([d for d in judged if cats[id(d)][0] != "finding: IGNORED"]) > 1:
            judged_again.append(ds)
        burst = [d for d in ds if d.round == 0]
        for i, a in enumerate(burst):
            for b in burst[i + 1:]:
                if b.start < a.results[0][0] and a.process != b.process:
                    concurrent_pairs += 1
                    concurrent_events.add(eid)
    if concurrent_pairs == 0 and len(deliveries) > len(events):
        violations.append("harness: no duplicate ran concurrently with its original")
    retry_answers = collections.Counter(cats[id(d)][0] for d in retries if d.results)
    repeated_alerts = {k: n for k, n in alerts_per_resource.items() if n > 1 and k[2] == "alerted"}
    # Were the runs that told the same problem twice at the same time (both read the ledger
    # before either recorded what it told), or one after the other?
    told_by = {}
    for d in everything:
        doc = cats[id(d)][1] if d.results else None
        if doc and d.event.id in published_events and (doc.get("action") or {}).get("kind") == "alerted":
            told_by.setdefault(d.event.id, d)
    overlapping_repeats, sequential_repeats = 0, []
    for (res, status, kind, reason) in repeated_alerts:
        runs = sorted((told_by[e.id] for e in events if e.resource == res and e.id in told_by
                       and cats[id(told_by[e.id])][1].get("reason") == reason), key=lambda d: d.start)
        for a, b in zip(runs, runs[1:]):
            if b.start < a.results[0][0]:
                overlapping_repeats += 1
                violations.append(f"alerted twice at once: {res[0]} {res[2]} in account {res[1]}, events "
                                  f"{a.event.id} and {b.event.id} ({status}: {reason[:120]})")
            else:
                sequential_repeats.append((res, a, b))

    # ------------------------------------------------------------ figures
    burst_done = [d for d in deliveries if d.results and d.start is not None]
    first = min((d.start for d in burst_done), default=t0)
    last = max((d.results[0][0] for d in burst_done), default=t0)
    span = max(last - first, 1e-9)
    rows = {}
    for f in FUNCTIONS + ["all"]:
        ds = [d for d in burst_done if f == "all" or d.event.function == f]
        lat = [(d.results[0][0] - d.start) * 1000 for d in ds]
        errors = sum(1 for d in ds if d.results[0][1] == "error")
        n_calls = sum(calls_by_app.values()) if f == "all" else calls_by_app.get(f, 0)
        n_all = len([d for d in everything if d.results and (f == "all" or d.event.function == f)])
        rows[f] = {"deliveries": len(ds), "distinct": len({d.event.id for d in ds}), "findings": len(ds) - errors,
                   "errors": errors, "per_s": len(ds) / span,
                   "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90), "p99_ms": percentile(lat, 99),
                   "max_ms": max(lat, default=float("nan")),
                   "aws_calls_per_delivery": n_calls / n_all if n_all else float("nan")}
    print()
    print(f"{'function':20} {'deliv':>6} {'events':>6} {'finds':>6} {'errors':>6} {'per s':>7} "
          f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'calls/dl':>8}")
    for f, r in rows.items():
        print(f"{f:20} {r['deliveries']:6d} {r['distinct']:6d} {r['findings']:6d} {r['errors']:6d} "
              f"{r['per_s']:7.1f} {r['p50_ms']:8.1f} {r['p90_ms']:8.1f} {r['p99_ms']:8.1f} {r['max_ms']:8.1f} "
              f"{r['aws_calls_per_delivery']:8.1f}")
    outcome = collections.Counter(cats[id(d)][0] for d in deliveries if d.results)
    print(f"\nburst: {len(burst_done)} of {len(deliveries)} deliveries answered in {span:.1f} s "
          f"({len(deliveries) / span:.1f} deliveries/s, {len(events)} distinct events); "
          f"retries: {len(retries)}; whole run {time.perf_counter() - t_start:.1f} s "
          f"(set-up {t_setup:.1f} s, burst {t_burst:.1f} s, retries {t_retries:.1f} s, stopping {t_stop:.1f} s)")
    print("answers in the burst: " + "; ".join(f"{k} {n}" for k, n in outcome.most_common()))
    print(f"duplicates: besides the delivery that judged an event, {sum(dup_answers.values())} deliveries "
          f"(Lambda retries included; {concurrent_pairs} pairs in the burst ran at once on different processes, "
          f"for {len(concurrent_events)} events) answered: "
          + "; ".join(f"{k} {n}" for k, n in dup_answers.most_common()))
    if ignored_later:
        d, reason = ignored_later[0]
        print(f"  of those, {len(ignored_later)} IGNORED answers to events first judged otherwise, e.g. "
              f"{d.event.name} ({d.event.note}): {reason[:160]}")
    print(f"events judged more than once (two findings neither 'already handled' nor IGNORED): {len(judged_again)}")
    for ds in judged_again[:5]:
        print(f"  {ds[0].event.function} {ds[0].event.name} {ds[0].event.id} ({ds[0].event.note}): " + "; ".join(
            f"{d.kind} on {d.process} {d.start - t0:.3f}-{d.results[0][0] - t0:.3f} s: {cats[id(d)][0]}" for d in ds))
    if retries:
        print("Lambda retries answered: " + "; ".join(f"{k} {n}" for k, n in retry_answers.most_common()))
    fixes = {t: n for t, n in writes.items() if n}
    expected = sum(1 for n in world.expected_writes.values() if n)
    print(f"fixes: {sum(fixes.values())} writes on {len(fixes)} resources (expected one each on {expected}): "
          + ", ".join(f"{k} {n}" for k, n in sorted(collections.Counter(t[0] for t in fixes).items())))
    print(f"SNS: {len(publishes)} publishes, {len(bodies)} delivered to SQS, "
          f"{sum(1 for n in published_events.values() if n > 1)} events published more than once; "
          f"{len(repeated_alerts)} problems (resource, status, reason) alerted more than once")
    if repeated_alerts:
        print(f"  of the repeats, {overlapping_repeats} told by a run that overlapped the one before it, "
              f"{len(sequential_repeats)} by a run that started after the one before it had finished")
        (res, status, kind, reason), n = next(iter(sorted(repeated_alerts.items(), key=lambda kv: -kv[1])))
        runs = sorted((told_by[e.id] for e in events if e.resource == res and e.id in told_by
                       and cats[id(told_by[e.id])][1].get("reason") == reason), key=lambda d: d.start)
        print(f"  e.g. {res[0]} {res[2]} in account {res[1]} ({runs[0].event.note}), told {n}x: " + "; ".join(
            f"{d.event.name} {d.event.id} on {d.process} {d.start - t0:.3f}-{d.results[0][0] - t0:.3f} s "
            f"(previousStatus {cats[id(d)][1].get('previousStatus')})" for d in runs))
    for res, a, b in sequential_repeats[:5]:
        print(f"  sequential repeat: {res[0]} {res[2]} in {res[1]} ({a.event.note}): event {a.event.id} answered "
              f"at {a.results[0][0] - t0:.3f} s, event {b.event.id} started at {b.start - t0:.3f} s")
        for d in (a, b):
            f = cats[id(d)][1]
            print(f"    {d.event.name} {d.kind}: {f.get('status')} / {f['action'].get('kind')}, previous "
                  f"{f.get('previousStatus')}: {(f['action'].get('detail') or '')[:160]} | {f.get('reason', '')[:200]}")
    print(f"SNS Publish as the functions saw it: {len(sns_publishes)} sent, answered in p50 "
          f"{percentile(sns_took, 50):.0f} ms, p99 {percentile(sns_took, 99):.0f} ms, max {max(sns_took, default=0):.0f} ms; "
          f"{len(resent)} sent again with the same body (the SDK's retry)")
    for first, again in resent[:5]:
        print(f"  sent again {again[1] - first[1]:.2f} s after the first, which was answered (HTTP {first[3]}) after "
              f"{first[2] - first[1]:.2f} s")
    print("AWS calls by the guard: " + "; ".join(
        f"{app} {n} ({', '.join(f'{op} {c}' for op, c in ops_by_app[app].most_common(6))})"
        for app, n in calls_by_app.most_common()))

    summary = {
        "ok": not violations, "violations": violations, "break": args.break_,
        "processes_per_function": args.processes, "distinct_events": len(events),
        "deliveries": len(deliveries), "duplicates": len(deliveries) - len(events), "retries": len(retries),
        "seconds": {"setup": round(t_setup, 2), "burst": round(span, 2), "retries": round(t_retries, 2),
                    "burst_and_retries": round(t_all, 2),
                    "total": round(time.perf_counter() - t_start, 2)},
        "throughput_per_s": round(len(deliveries) / span, 1),
        "functions": {f: {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}
                      for f, r in rows.items()},
        "answers": dict(outcome), "duplicate_answers": dict(dup_answers), "retry_answers": dict(retry_answers),
        "concurrent_duplicate_pairs": concurrent_pairs, "events_judged_more_than_once": len(judged_again),
        "fix_writes": sum(fixes.values()), "resources_fixed": len(fixes), "fixes_expected": expected,
        "publishes": len(publishes), "sqs_deliveries": len(bodies),
        "problems_alerted_repeatedly": len(repeated_alerts), "repeats_overlapping": overlapping_repeats,
        "repeats_sequential": len(sequential_repeats),
        "lost": len(lost), "doubled": len(doubled), "crashes": len(fleet.crashes),
        "dynamodb_calls": ddb_calls,
        "publishes_sent_again": len(resent),
        "publish_ms": {"p50": round(percentile(sns_took, 50), 1), "p99": round(percentile(sns_took, 99), 1),
                       "max": round(max(sns_took, default=0), 1)},
    }
    line = json.dumps(summary, sort_keys=True)
    print("\nLOAD-SUMMARY " + line)
    if args.json:
        Path(args.json).write_text(line + "\n")
    if violations:
        print(f"\nFAILED: {len(violations)} violations", file=sys.stderr)
        for v in violations[:60]:
            print("  " + v, file=sys.stderr)
        if len(violations) > 60:
            print(f"  ... and {len(violations) - 60} more", file=sys.stderr)
        print(f"function logs kept in {logdir}", file=sys.stderr)
        sys.exit(1)
    if args.keep_logs:
        print(f"function logs in {logdir}")
    else:
        shutil.rmtree(logdir, ignore_errors=True)
    print("OK: every delivery answered once, nothing lost, doubled, fixed or published twice")


if __name__ == "__main__":
    main()
