"""Cold and warm starts of a function binary, driven through a local Lambda Runtime API
against the emulator. Prints time from exec to first Finding, warm event time, peak RSS,
AWS calls per event and the binary's size. Run by tests/bench/bench.sh [RUNS] [--ledger]
[--function guardrails|invocation-logging|model-jobs|data-jobs] (or with --binary to measure
another build)."""

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import boto3

import runtime_api

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
REGION = os.environ.get("AWS_REGION", "us-east-1")
ACCOUNT = "123456789012"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"


class RuntimeApi(runtime_api.RuntimeApi):
    """A Runtime API for one function process at a time: events in, results out, in order."""

    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()  # (perf_counter time, "response" | "error", body)
        self.polls = queue.Queue()  # when the function asked for its next event
        super().__init__(self._next, self._result, self._init_error,
                         f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench")

    def _next(self):
        self.polls.put(time.perf_counter())
        try:
            event = self.events.get(timeout=60)
        except queue.Empty:
            return None
        return runtime_api.Invocation(str(uuid.uuid4()), json.dumps(event).encode(),
                                      int(time.time() * 1000) + 30_000)

    def _result(self, _request_id, kind, body, at):
        self.results.put((at, kind, body))

    def _init_error(self, _path, body):
        self.results.put((time.perf_counter(), "error", body))


def aws(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name=REGION)


def requests_so_far():
    with urllib.request.urlopen(f"{ENDPOINT}/_cmk_guard/requests") as r:
        return json.load(r)["requests"]


def event(guardrail_arn, key=None):
    e = json.loads((FIXTURES / "UpdateGuardrail.json").read_text())
    gid = guardrail_arn.rsplit("/", 1)[1]
    e["account"], e["region"] = ACCOUNT, REGION
    d = e["detail"]
    d.update(awsRegion=REGION, recipientAccountId=ACCOUNT, eventID=str(uuid.uuid4()))
    d["requestParameters"]["guardrailIdentifier"] = gid
    d["responseElements"].update(guardrailArn=guardrail_arn, guardrailId=gid)
    if key:  # what CloudTrail records for an UpdateGuardrail that names a key
        d["requestParameters"]["kmsKeyId"] = key
    return e


def guardrail(name, key=None):
    # Unique names: the benchmark may run again against the same emulator.
    args = dict(name=f"{name}-{uuid.uuid4().hex[:8]}", blockedInputMessaging="no", blockedOutputsMessaging="no",
                contentPolicyConfig={"filtersConfig": [{"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH"}]})
    if key:
        args["kmsKeyId"] = key
    return aws("bedrock").create_guardrail(**args)["guardrailArn"]


# ------------------------------------------------------------------ invocation logging

LOG_KEY_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "Logs", "Effect": "Allow", "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
     "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
     "Resource": "*"},
    {"Sid": "Bedrock", "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
     "Action": "kms:GenerateDataKey", "Resource": "*"},
]}


def logging_event():
    text = (FIXTURES / "PutModelInvocationLoggingConfiguration.json").read_text()
    e = json.loads(text.replace("111122223333", ACCOUNT))
    e["region"] = REGION
    e["detail"].update(awsRegion=REGION, eventID=str(uuid.uuid4()))
    return e


def logging_destinations(key=None):
    """A log group and two buckets (on `key`, else as the services leave them), and the
    Region's logging configuration pointing at them."""
    suffix = uuid.uuid4().hex[:8]
    group, bucket, large = f"/bench/{suffix}", f"bench-logs-{suffix}", f"bench-large-{suffix}"
    logs, s3 = aws("logs"), aws("s3")
    logs.create_log_group(logGroupName=group, **({"kmsKeyId": key} if key else {}))
    for b in (bucket, large):
        s3.create_bucket(Bucket=b)
        if key:
            s3.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
                "BucketKeyEnabled": True}]})
    aws("bedrock").put_model_invocation_logging_configuration(loggingConfig={
        "cloudWatchConfig": {"logGroupName": group, "roleArn": f"arn:aws:iam::{ACCOUNT}:role/bench",
                             "largeDataDeliveryS3Config": {"bucketName": large}},
        "s3Config": {"bucketName": bucket}})


def logging_scenarios(kms):
    """(name, settings parameter, set-up before each cold start, events) per scenario."""
    good = kms.create_key(Policy=json.dumps(LOG_KEY_POLICY))["KeyMetadata"]["Arn"]
    # (CloudWatch Logs refuses a disabled key, so the alert case is the common one: no CMK.)
    return good, [
        ("compliant (3 on a CMK)", "/bench/alert", lambda: logging_destinations(good)),
        ("alert (3 without CMK)", "/bench/alert", lambda: logging_destinations()),
        ("remediate (3 -> CMK)", "/bench/remediate", lambda: logging_destinations()),
    ]


# ------------------------------------------------------------------------------ jobs

ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"


def job_event(fixture, arn):
    e = json.loads((FIXTURES / fixture).read_text().replace("111122223333", ACCOUNT))
    e["region"] = REGION
    e["detail"].update(awsRegion=REGION, eventID=str(uuid.uuid4()))
    e["detail"]["responseElements"]["jobArn"] = arn
    return e


def customization_job(key=None):
    name = f"bench-{uuid.uuid4().hex[:8]}"
    args = dict(jobName=name, customModelName=f"{name}-model", roleArn=ROLE,
                baseModelIdentifier="amazon.titan-text-express-v1:0:8k", customizationType="FINE_TUNING",
                trainingDataConfig={"s3Uri": "s3://bench/train.jsonl"}, outputDataConfig={"s3Uri": "s3://bench/out/"},
                hyperParameters={"epochCount": "1"})
    if key:
        args["customModelKmsKeyId"] = key
    return aws("bedrock").create_model_customization_job(**args)["jobArn"]


def evaluation_job(key=None):
    args = dict(
        jobName=f"bench-{uuid.uuid4().hex[:8]}", roleArn=ROLE,
        evaluationConfig={"automated": {"datasetMetricConfigs": [{
            "taskType": "QuestionAndAnswer", "metricNames": ["Builtin.Accuracy"],
            "dataset": {"name": "qa", "datasetLocation": {"s3Uri": "s3://bench/qa.jsonl"}}}]}},
        inferenceConfig={"models": [{"bedrockModel": {"modelIdentifier": "amazon.titan-text-express-v1",
                                                       "inferenceParams": "{}"}}]},
        outputDataConfig={"s3Uri": "s3://bench/eval/"})
    if key:
        args["customerEncryptionKeyId"] = key
    return aws("bedrock").create_evaluation_job(**args)["jobArn"]


def job_scenarios(function, good):
    """(name, settings parameter, set-up before each cold start, events) per scenario: a job
    on a CMK, one without (alerted), one without that is stopped, and one that is stopped and
    submitted again (resubmitJobs). Every cold start gets a
    job of its own: a stopped job is not stopped again."""
    make, fixture = ((customization_job, "CreateModelCustomizationJob.json") if function == "model-jobs"
                     else (evaluation_job, "CreateEvaluationJob.json"))
    fresh = {}

    def setup(key):
        return lambda: fresh.update(arn=make(key))

    events = lambda: [job_event(fixture, fresh["arn"]), job_event(fixture, fresh["arn"])]  # noqa: E731
    return [
        ("compliant (CMK)", "/bench/alert", setup(good), events),
        ("alert (no key)", "/bench/alert", setup(None), events),
        ("remediate (stop)", "/bench/remediate", setup(None), events),
        ("resubmit (stop, again)", "/bench/resubmit", setup(None), events),
    ]


# ------------------------------------------------------------------------------ driving

def run_once(binary, env, events):
    """Starts the binary behind a Runtime API of its own, hands it `events` one after
    another; returns per-event (seconds, calls, finding) and the process's peak RSS in KiB."""
    # A server per process: a killed process's pending /next must not swallow the next
    # process's event.
    api = RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.address)
    out = []
    mark = len(requests_so_far())
    api.events.put(events[0])
    start = start_exec = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for i, e in enumerate(events):
        if i:
            mark = len(requests_so_far())
            start = time.perf_counter()
            api.events.put(e)
        done, kind, body = api.results.get(timeout=30)
        if kind != "response":
            proc.kill()
            raise SystemExit(f"the function answered with an error: {body.decode()}")
        calls = [f"{r['service']}:{r['operation']}" for r in requests_so_far()[mark:]]
        out.append((done - start, calls, json.loads(body)))
    # VmHWM, not wait4's ru_maxrss: the latter also counts the forked Python image before exec.
    status = Path(f"/proc/{proc.pid}/status").read_text()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    ready = api.polls.get(timeout=1) - start_exec
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    api.shutdown()
    return out, peak_kib, ready


def summary(values):
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return statistics.median(values), p90, values[-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--function", choices=["guardrails", "invocation-logging", "model-jobs", "data-jobs"],
                        default="guardrails")
    parser.add_argument("--binary", help="default: target/release/<function>")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ledger", action="store_true",
                        help="give the function a ledger (STATE_TABLE), as infra/ deploys it")
    args = parser.parse_args()
    args.binary = args.binary or f"target/release/{args.function}"

    kms, sns, ssm = aws("kms"), aws("sns"), aws("ssm")
    if args.function == "guardrails":
        good = kms.create_key()["KeyMetadata"]["Arn"]
        disabled = kms.create_key()["KeyMetadata"]["Arn"]
        kms.disable_key(KeyId=disabled)
        compliant = guardrail("bench-compliant", good)
        alerting = guardrail("bench-alert", disabled)
        # Each scenario: what is set up before each cold start, and the event pair it gets.
        fresh = {}

        def fix_target():
            fresh["arn"] = guardrail("bench-fix")

        scenarios = [
            ("compliant (CMK)", "/bench/alert", lambda: None, lambda: [event(compliant, good), event(compliant, good)]),
            ("alert (disabled CMK)", "/bench/alert", lambda: None, lambda: [event(alerting, disabled), event(alerting, disabled)]),
            ("remediate (no key)", "/bench/remediate", fix_target, lambda: [event(fresh["arn"]), event(fresh["arn"])]),
        ]
    elif args.function in ("model-jobs", "data-jobs"):
        good = kms.create_key()["KeyMetadata"]["Arn"]
        scenarios = job_scenarios(args.function, good)
    else:
        good, logging = logging_scenarios(kms)
        scenarios = [(name, parameter, setup, lambda: [logging_event(), logging_event()])
                     for name, parameter, setup in logging]
    topic = sns.create_topic(Name="bench")["TopicArn"]
    ssm.put_parameter(Name="/bench/alert", Type="String", Overwrite=True, Value=json.dumps({"defaults": {"mode": "alert"}}))
    ssm.put_parameter(Name="/bench/remediate", Type="String", Overwrite=True,
                      Value=json.dumps({"defaults": {"mode": "remediate", "remediationKeys": {REGION: good}}}))
    ssm.put_parameter(Name="/bench/resubmit", Type="String", Overwrite=True,
                      Value=json.dumps({"defaults": {"mode": "remediate", "remediationKeys": {REGION: good},
                                                     "resubmitJobs": True}}))
    # A Lambda-like environment. TLS roots come from one bundle file: this machine also sets
    # SSL_CERT_DIR to Debian's directory of ~290 entries, which the function would stat and
    # read one by one at start-up (about 3 ms here); Lambda's image sets neither.
    base_env = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k in ("PATH", "HOME", "SSL_CERT_FILE")}

    env = dict(base_env, AWS_LAMBDA_FUNCTION_NAME=args.function, AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", ALERT_TOPIC_ARN=topic, RUST_LOG="warn")
    if args.ledger:
        table = f"bench-ledger-{uuid.uuid4().hex[:8]}"
        aws("dynamodb").create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
        env["STATE_TABLE"] = table

    # What one emulator call costs, so the figures below can be read: the function's own
    # share is the cold time minus (sequential rounds x this).
    kms.describe_key(KeyId=good)
    t = time.perf_counter()
    for _ in range(50):
        kms.describe_key(KeyId=good)
    round_trip = (time.perf_counter() - t) / 50 * 1000
    print(f"one emulator call (boto3 DescribeKey, mean of 50): {round_trip:.1f} ms")
    size = os.path.getsize(args.binary)
    print(f"binary {args.binary}: {size / 1_048_576:.1f} MiB ({size:,} bytes)")
    print(f"{args.runs} cold starts per scenario; each process then gets a second event (warm); "
          f"ledger {'on (STATE_TABLE)' if args.ledger else 'off'}.")
    print("init = exec until the function first asks the Runtime API for an event.\n")
    print(f"{'scenario':24} {'cold: exec->Finding ms':>24} {'init ms':>8} {'warm ms':>8} {'peak RSS MiB':>13}  calls cold | warm")
    print(f"{'':24} {'median   p90    max':>24} {'median':>8} {'median':>8} {'max':>13}")
    worst_cold, worst_rss, worst_median = 0.0, 0, 0.0
    for name, parameter, setup, events in scenarios:
        cold, warm, rss, init, calls = [], [], [], [], None
        for _ in range(args.runs):
            setup()
            results, peak, ready = run_once(args.binary, dict(env, CONFIG_PARAMETER=parameter), events())
            (c, c_calls, c_finding), (w, w_calls, _) = results
            cold.append(c * 1000)
            warm.append(w * 1000)
            rss.append(peak)
            init.append(ready * 1000)
            calls = calls or (c_calls, w_calls, c_finding["status"], c_finding["action"]["kind"])
        m, p90, mx = summary(cold)
        worst_cold, worst_rss = max(worst_cold, mx), max(worst_rss, max(rss))
        worst_median = max(worst_median, m)
        print(f"{name:24} {m:8.1f} {p90:6.1f} {mx:6.1f} {statistics.median(init):8.1f} {statistics.median(warm):8.1f} {max(rss) / 1024:13.1f}  "
              f"{len(calls[0])} | {len(calls[1])}   ({calls[2]}, {calls[3]})")
        print(f"{'':24} cold: {', '.join(calls[0])}")
        print(f"{'':24} warm: {', '.join(calls[1])}")
    print(f"\nslowest median cold start {worst_median:.1f} ms, slowest cold start {worst_cold:.1f} ms, "
          f"peak RSS {worst_rss / 1024:.1f} MiB. The guard and the peer side by side, in one run: "
          f"tests/bench/compare.sh")


if __name__ == "__main__":
    main()
