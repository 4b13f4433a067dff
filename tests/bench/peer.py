"""The peer's figures: Cloud Custodian's event-mode Lambda (`mode: cloudtrail`, PyPI c7n) on the
events the guard functions get, against the emulator (issue 9). For each scenario (a guardrail
and a model customization job, each on a customer-managed key and without one):

- cold: RUNS fresh processes, each importing the deployed handler module (custodian_policy.run,
  i.e. c7n.handler.dispatch_event, with a config.json as `custodian run` deploys it) and handling
  one event; time from spawn to the handler's return (median, p90), peak RSS (VmHWM), and the
  AWS requests the emulator logged for the event;
- warm: one process handling one event (cold, not counted) and then EVENTS more, one after
  another; per-event time p50/p99 and the requests of a warm event.

Every event is checked: the policy must have fetched the resource (c7n's "Filtered resources
N of 1" log record) and matched it exactly when it is not on a customer-managed key (the
resources.json c7n writes for matched resources names it); anything else stops the run.

Usage (system python3; the first run creates target/tools/peer-venv from
tests/bench/peer/requirements.txt, then the script runs itself again in that virtualenv):

    python3 tests/bench/peer.py [--runs 20] [--events 300] [--notify] [--lambda-archive]

Starts an emulator of its own on a free port unless AWS_ENDPOINT_URL is set. JSON on stdout, a
table on stderr. Everything c7n writes goes to a temporary directory, removed at the end.
"""

import argparse
import fcntl
import hashlib
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEER = HERE / "peer"
REQ = PEER / "requirements.txt"
POLICIES = PEER / "policies.yml"
CHILD = PEER / "child.py"
VENV = ROOT / "target" / "tools" / "peer-venv"
VENV_PY = VENV / "bin" / "python"
STAMP = VENV / ".requirements.sha256"
APP = "cmk-guard-peer-c7n"  # user agent app id of the function processes, as the request log records it


# ------------------------------------------------------------------------------ virtualenv

def wanted_hash():
    return hashlib.sha256(REQ.read_bytes() + sys.version.encode()).hexdigest()


def venv_current(want):
    try:
        return STAMP.read_text().strip() == want and VENV_PY.exists()
    except OSError:
        return False


def ensure_venv():
    """Creates or refreshes the virtualenv (under an exclusive lock, stamp written last, as
    tests/emulator/bootstrap.py does)."""
    want = wanted_hash()
    if venv_current(want):
        return
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "peer-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if venv_current(want):
            return
        STAMP.unlink(missing_ok=True)
        print(f"[peer] creating {VENV} from {REQ}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        subprocess.check_call([str(VENV_PY), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                               "-r", str(REQ)], stdout=sys.stderr)
        tmp = STAMP.with_suffix(".tmp")
        tmp.write_text(want + "\n")
        os.replace(tmp, STAMP)


# ------------------------------------------------------------------------------ emulator

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(tmp):
    """tests/emulator/run.sh on a free port, as tests/tools.sh start_emulator does; returns the
    process (stopped by the caller)."""
    port = free_port()
    log = ROOT / "target" / f"peer-emulator-{port}.log"
    proc = subprocess.Popen(["bash", str(ROOT / "tests" / "emulator" / "run.sh"), str(port)], cwd=ROOT,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{endpoint}/_cmk_guard/requests", timeout=1).read()
            print(f"[peer] emulator up at {endpoint} (log: {log})", file=sys.stderr)
            return proc, endpoint
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the emulator did not start:\n{log.read_text()}")
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the emulator did not answer within 60 s")


def requests_log(endpoint):
    with urllib.request.urlopen(f"{endpoint}/_cmk_guard/requests") as r:
        return json.load(r)["requests"]


class Calls:
    """The requests the function processes made (their user agent carries app/APP), so that
    other users of a shared emulator do not count. On an emulator of its own nothing else
    talks to it while a function process runs, so there every request must carry the app id
    (else c7n made a call this count would miss)."""

    def __init__(self, endpoint, own):
        self.endpoint, self.own = endpoint, own
        self.mark = len(requests_log(endpoint))

    def since_mark(self):
        log = requests_log(self.endpoint)
        new, self.mark = log[self.mark:], len(log)
        others = [r for r in new if r.get("app") != APP]
        if self.own and others:
            raise SystemExit(f"requests without the app id {APP}: {others}")
        return [f"{r['service']}:{r['operation']}" for r in new if r.get("app") == APP]


# ------------------------------------------------------------------------------ scenarios

def create_guardrail_event(bench, arn, key=None):
    """What EventBridge delivers for a CreateGuardrail (tests/fixtures/events/CreateGuardrail.json,
    rewritten to the emulator's guardrail as bench.py rewrites its events)."""
    e = json.loads((bench.FIXTURES / "CreateGuardrail.json").read_text().replace("111122223333", bench.ACCOUNT))
    gid = arn.rsplit("/", 1)[1]
    e["region"] = bench.REGION
    d = e["detail"]
    d.update(awsRegion=bench.REGION, eventID=str(uuid.uuid4()))
    d["responseElements"].update(guardrailArn=arn, guardrailId=gid)
    if key:  # what CloudTrail records for a CreateGuardrail that names a key
        d["requestParameters"]["kmsKeyId"] = key
    return e


def scenarios(bench):
    """(name, policy name, expected match, resource id, make an event)."""
    key = bench.aws("kms").create_key(Description="peer bench CMK")["KeyMetadata"]["Arn"]
    out = []
    for cmk in (True, False):
        arn = bench.guardrail("peer-cmk" if cmk else "peer-nokey", key if cmk else None)
        out.append((f"CreateGuardrail, {'CMK' if cmk else 'no key'}", "bedrock-guardrail-no-cmk", not cmk,
                    arn.rsplit("/", 1)[1],
                    lambda arn=arn, cmk=cmk: create_guardrail_event(bench, arn, key if cmk else None)))
    for cmk in (True, False):
        arn = bench.customization_job(key if cmk else None)
        out.append((f"CreateModelCustomizationJob, {'CMK' if cmk else 'no key'}", "bedrock-customization-job-no-cmk",
                    not cmk, arn,
                    lambda arn=arn: bench.job_event("CreateModelCustomizationJob.json", arn)))
    return key, out


# ------------------------------------------------------------------------------ function processes

def notify_action(topic):
    """c7n's notify action publishing to SNS for c7n-mailer (it also calls iam:ListAccountAliases)."""
    return {"type": "notify", "to": ["security@example.com"], "subject": "Bedrock without a CMK",
            "template": "default", "transport": {"type": "sns", "topic": topic}}


def task_dir(tmp, policy, run_id):
    """The function's code as c7n/mu.py PolicyLambda.get_archive writes it (config.json with
    the one policy and empty execution options - `custodian run` keeps no local output dir -,
    custodian_policy.py = mu.PolicyHandlerTemplate), with one change: the policy's own
    execution-options send c7n's output (by default /tmp/<policy>) to this run's temporary
    directory. Imported from the virtualenv, so c7n itself is not copied (see --lambda-archive)."""
    from c7n import mu

    task = tmp / f"task-{run_id}"
    out = tmp / f"out-{run_id}"
    task.mkdir()
    out.mkdir()
    policy = json.loads(json.dumps(policy))
    policy["mode"]["execution-options"] = {"output_dir": str(out)}
    (task / "config.json").write_text(json.dumps({"execution-options": {}, "policies": [policy]}, indent=2))
    (task / "custodian_policy.py").write_text(mu.PolicyHandlerTemplate)
    return task, out / policy["name"]


def child_env(base, tmp, policy, archive):
    env = dict(base, HOME=str(tmp / "home"), TMPDIR=str(tmp), AWS_SDK_UA_APP_ID=APP,
               AWS_LAMBDA_FUNCTION_NAME=f"custodian-{policy}", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_EXECUTION_ENV="AWS_Lambda_python3.11",
               PYTHONDONTWRITEBYTECODE="1")
    if archive:
        env["PYTHONPATH"] = str(archive)
    return env


def check(outcome, expect_match, resource_id, what):
    """Stops the run unless the handler returned, fetched the resource and matched it exactly
    when it should."""
    problems = []
    if outcome["error"]:
        problems.append(f"the handler raised:\n{outcome['error']}")
    if outcome["returned"] is not True:
        problems.append(f"the handler returned {outcome['returned']!r}")
    if outcome["filtered"] is None or outcome["filtered"][1] != 1:
        problems.append(f"the policy did not fetch the resource (filtered: {outcome['filtered']})")
    want = [resource_id] if expect_match else None
    if outcome["matched_ids"] != want:
        problems.append(f"matched {outcome['matched_ids']}, expected {want}")
    if problems:
        raise SystemExit(f"{what}: " + "; ".join(problems) + f"\nc7n warnings: {outcome['warnings']}")


def cold_run(env, task, event, tmp):
    event_file = task / "event.json"
    event_file.write_text(json.dumps(event))
    with open(tmp / "child-cold.log", "a") as log:
        spawn = time.monotonic_ns()
        proc = subprocess.run([str(VENV_PY), str(CHILD), "cold", str(event_file)], cwd=task, env=env,
                              stdout=subprocess.PIPE, stderr=log, text=True, timeout=120)
    if proc.returncode or not proc.stdout.strip():
        raise SystemExit(f"the function process failed (exit {proc.returncode}); see its log in {tmp}")
    r = json.loads(proc.stdout.splitlines()[-1])
    r["cold_ms"] = (r["t_done"] - spawn) / 1e6
    r["init_ms"] = (r["t_imported"] - spawn) / 1e6
    return r


def warm_runs(env, task, events, calls, expect_match, resource_id, tmp, name):
    """One process: the first event is its cold start (not counted), then the others."""
    log = open(tmp / "child-warm.log", "a")
    proc = subprocess.Popen([str(VENV_PY), str(CHILD), "warm"], cwd=task, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    seconds, cpu, ops, peak = [], [], None, 0
    try:
        for i, event in enumerate(events):
            calls.since_mark()
            proc.stdin.write(json.dumps(event) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"{name}: the warm function process died; see its log in {tmp}")
            r = json.loads(line)
            check(r, expect_match, resource_id, f"{name}, warm event {i}")
            made = calls.since_mark()
            if i:
                seconds.append(r["seconds"] * 1000)
                cpu.append(r["handler_cpu_seconds"] * 1000)
                if ops is None:
                    ops = made
                elif len(made) != len(ops):
                    raise SystemExit(f"{name}: warm event {i} made {made}, the first warm one {ops}")
            peak = r["vm_hwm_kib"]
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
        log.close()
    return seconds, cpu, ops, peak


def percentile(values, q):
    """Nearest-rank percentile."""
    values = sorted(values)
    return values[max(0, math.ceil(q * len(values)) - 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per scenario (cold)")
    parser.add_argument("--events", type=int, default=300, help="warm events per scenario")
    parser.add_argument("--notify", action="store_true",
                        help="add an SNS notify action to both policies (alerting, as c7n-mailer users do)")
    parser.add_argument("--lambda-archive", action="store_true",
                        help="import c7n from a copy of its .py files only, without writing bytecode, as the "
                             "zip c7n/mu.py deploys (no .pyc) runs from Lambda's read-only /var/task")
    args = parser.parse_args()

    ensure_venv()
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])

    import c7n.version
    import yaml

    tmp = Path(tempfile.mkdtemp(prefix="peer-bench-"))
    (tmp / "home").mkdir()
    emulator, done = None, False
    try:
        if "AWS_ENDPOINT_URL" not in os.environ:
            emulator, endpoint = start_emulator(tmp)
            os.environ["AWS_ENDPOINT_URL"] = endpoint
        os.environ.setdefault("AWS_REGION", "us-east-1")
        os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(k, None)
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        sys.path.insert(0, str(HERE))
        sys.dont_write_bytecode = True  # nothing of ours in the source tree
        import bench  # the guard's own benchmark: its fixtures, resources and event rewriting

        policies = {p["name"]: p for p in yaml.safe_load(POLICIES.read_text())["policies"]}
        topic = None
        if args.notify:
            topic = bench.aws("sns").create_topic(Name="cmk-guard-peer-bench")["TopicArn"]
            for p in policies.values():
                p["actions"] = [notify_action(topic)]
        # The policies as a deployment would validate them (schema, filters, modes).
        validated = tmp / "policies.yml"
        validated.write_text(yaml.safe_dump({"policies": list(policies.values())}))
        checked = subprocess.run([str(VENV / "bin" / "custodian"), "validate", str(validated)],
                                 env=dict(os.environ, HOME=str(tmp / "home")), capture_output=True, text=True)
        if checked.returncode:
            raise SystemExit(f"custodian validate refused the policies:\n{checked.stdout}{checked.stderr}")
        archive = None
        if args.lambda_archive:
            import c7n
            archive = tmp / "archive"
            shutil.copytree(Path(c7n.__file__).parent, archive / "c7n",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

        base = {k: v for k, v in os.environ.items()
                if k.startswith("AWS_") or k in ("PATH", "LANG", "SSL_CERT_FILE")}
        key, cases = scenarios(bench)
        # What one emulator call costs from Python (as bench.py measures it), to read the figures by.
        kms = bench.aws("kms")
        kms.describe_key(KeyId=key)
        t = time.perf_counter()
        for _ in range(50):
            kms.describe_key(KeyId=key)
        round_trip = (time.perf_counter() - t) / 50 * 1000
        calls = Calls(endpoint, own=emulator is not None)
        load_before = os.getloadavg()
        results = []
        print(f"c7n {c7n.version.version}; {args.runs} cold processes and {args.events} warm events per scenario"
              f"{'; notify action on' if args.notify else ''}{'; c7n as deployed (.py only)' if archive else ''}",
              file=sys.stderr)
        for name, policy_name, expect_match, resource_id, make_event in cases:
            env = child_env(base, tmp, policy_name, archive)
            cold, init, cold_cpu, rss, cold_ops = [], [], [], [], None
            for i in range(args.runs):
                task, _ = task_dir(tmp, policies[policy_name], uuid.uuid4().hex[:8])
                calls.since_mark()
                r = cold_run(env, task, make_event(), tmp)
                made = calls.since_mark()
                check(r, expect_match, resource_id, f"{name}, cold run {i}")
                if cold_ops is None:
                    cold_ops = made
                elif made != cold_ops:
                    raise SystemExit(f"{name}: cold run {i} made {made}, the first one {cold_ops}")
                cold.append(r["cold_ms"])
                init.append(r["init_ms"])
                cold_cpu.append(r["cpu_seconds"] * 1000)
                rss.append(r["vm_hwm_kib"])
            task, _ = task_dir(tmp, policies[policy_name], "warm-" + uuid.uuid4().hex[:8])
            warm, warm_cpu, warm_ops, warm_peak = warm_runs(env, task, [make_event() for _ in range(args.events + 1)],
                                                  calls, expect_match, resource_id, tmp, name)
            results.append({
                "scenario": name, "policy": policy_name, "resource": resource_id,
                "non_compliant": expect_match, "matched": expect_match,
                "cold_runs": args.runs, "cold_median_ms": round(statistics.median(cold), 1),
                "cold_p90_ms": round(percentile(cold, 0.9), 1), "cold_max_ms": round(max(cold), 1),
                "cold_min_ms": round(min(cold), 1),
                "init_median_ms": round(statistics.median(init), 1),
                "cold_cpu_median_ms": round(statistics.median(cold_cpu), 1),
                "warm_events": len(warm), "warm_p50_ms": round(percentile(warm, 0.5), 2),
                "warm_p99_ms": round(percentile(warm, 0.99), 2), "warm_mean_ms": round(statistics.mean(warm), 2),
                "warm_cpu_p50_ms": round(percentile(warm_cpu, 0.5), 2),
                "peak_rss_mib": round(max(rss) / 1024, 1), "warm_peak_rss_mib": round(warm_peak / 1024, 1),
                "calls_per_event": len(cold_ops), "calls_per_warm_event": len(warm_ops),
                "operations_cold": cold_ops, "operations_warm": warm_ops,
                "c7n_version": c7n.version.version,
            })
            r = results[-1]
            print(f"  {name}: cold {r['cold_median_ms']} ms median, warm {r['warm_p50_ms']} ms p50", file=sys.stderr)

        load_after = os.getloadavg()
        print(json.dumps({"c7n_version": c7n.version.version, "python": sys.version.split()[0],
                          "notify": args.notify, "lambda_archive": args.lambda_archive,
                          "cpus": os.cpu_count(), "load_average_1m": [load_before[0], load_after[0]],
                          "emulator_call_ms": round(round_trip, 2),
                          "scenarios": results}, indent=2))
        print(f"\n{'scenario':36} {'cold ms':>15} {'init ms':>8} {'CPU ms':>7} {'warm ms':>15} {'CPU ms':>7} "
              f"{'RSS MiB':>8}  calls", file=sys.stderr)
        print(f"{'':36} {'median    p90':>15} {'median':>8} {'median':>7} {'p50     p99':>15} {'p50':>7} {'peak':>8}  "
              f"cold|warm  match", file=sys.stderr)
        for r in results:
            print(f"{r['scenario']:36} {r['cold_median_ms']:7.1f} {r['cold_p90_ms']:7.1f} {r['init_median_ms']:8.1f} "
                  f"{r['cold_cpu_median_ms']:7.1f} {r['warm_p50_ms']:7.1f} {r['warm_p99_ms']:7.1f} "
                  f"{r['warm_cpu_p50_ms']:7.1f} {r['peak_rss_mib']:8.1f}  "
                  f"{r['calls_per_event']:4}|{r['calls_per_warm_event']:<4}  {'yes' if r['matched'] else 'no'}",
                  file=sys.stderr)
            print(f"{'':36} cold: {', '.join(r['operations_cold'])}", file=sys.stderr)
            print(f"{'':36} warm: {', '.join(r['operations_warm'])}", file=sys.stderr)
        print("cold = spawn -> handler returned; init = spawn -> handler module imported; CPU = user+system "
              "time of the process (cold) or of the handler call (warm); "
              "match = the policy matched the resource (checked on every event); "
              f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs; "
              f"one emulator call (boto3 DescribeKey, mean of 50): {round_trip:.1f} ms", file=sys.stderr)
        done = True
    finally:
        if emulator:
            emulator.terminate()
            emulator.wait(timeout=30)
        if done:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"[peer] kept {tmp} (function logs: child-*.log)", file=sys.stderr)


if __name__ == "__main__":
    main()
