"""One function process for tests/bench/peer.py: what the Lambda Python runtime does with a
Cloud Custodian policy that `custodian run` deployed. Started with the task directory (the
function's code: config.json with one policy, custodian_policy.py as c7n/mu.py writes it) as
its working directory; imports the handler module and invokes custodian_policy.run, which is
c7n.handler.dispatch_event.

    child.py cold EVENT_FILE   one event, then exit
    child.py warm              events as JSON lines on stdin, one after another

Results go out as JSON lines on the stdout this process was started with (c7n's own output is
moved to stderr). Clock: time.monotonic_ns (CLOCK_MONOTONIC, shared with the parent), so the
parent can time from its spawn to the handler's return.
"""

import time

T_START = time.monotonic_ns()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
import uuid  # noqa: E402

# Results on a private copy of stdout; anything c7n prints goes to stderr (the function's log).
RESULTS = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

TASK = os.getcwd()
sys.path.insert(0, TASK)  # Lambda puts /var/task first on sys.path

# The Lambda Python runtime puts a handler on the root logger that writes every record to the
# function's log; c7n.handler sets the root level to DEBUG (botocore and urllib3 to WARNING).
_stream = logging.StreamHandler(sys.stderr)
_stream.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(name)s\t%(message)s"))
logging.getLogger().addHandler(_stream)


class Evidence(logging.Handler):
    """Reads c7n's own log records: how many resources the policy fetched and how many its
    filters kept ("Filtered resources N of M", logged for events marked debug, which
    dispatch_event does by default), and the warnings c7n logs instead of failing (event ids
    not resolved, no ids in the event)."""

    FILTERED = re.compile(r"Filtered resources (\d+) of (\d+)")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.reset()

    def reset(self):
        self.filtered = None
        self.warnings = []

    def emit(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a record that does not format is c7n's problem, not evidence
            return
        m = self.FILTERED.search(message)
        if m:
            self.filtered = (int(m.group(1)), int(m.group(2)))
        elif record.levelno >= logging.WARNING:
            self.warnings.append(message[:300])


EVIDENCE = Evidence()
logging.getLogger().addHandler(EVIDENCE)


class Context:
    """The members of the Lambda context object."""

    def __init__(self):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "custodian-peer")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        self.invoked_function_arn = "arn:aws:lambda:%s:123456789012:function:%s" % (
            os.environ.get("AWS_REGION", "us-east-1"), self.function_name)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/" + self.function_name
        self.log_stream_name = "peer"
        self._deadline = time.monotonic() + 900

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)


def output_dir():
    with open(os.path.join(TASK, "config.json")) as f:
        policy = json.load(f)["policies"][0]
    return os.path.join(policy["mode"]["execution-options"]["output_dir"], policy["name"])


def vm_hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def handle(run, event):
    """Invokes the handler once; returns (start, end, what happened)."""
    EVIDENCE.reset()
    error, returned = None, None
    cpu = time.process_time()
    start = time.monotonic_ns()
    try:
        returned = run(event, Context())
    except Exception:
        error = traceback.format_exc()
    end = time.monotonic_ns()
    cpu = time.process_time() - cpu
    # Outside the timed part: what the policy wrote for the resources it matched
    # (LambdaMode.run_resource_set writes resources.json, then metadata.json on exit).
    matched_ids = None
    path = os.path.join(OUT, "resources.json")
    if os.path.exists(path):
        with open(path) as f:
            matched_ids = [r.get("id") or r.get("jobArn") for r in json.load(f)]
        for name in os.listdir(OUT):
            os.remove(os.path.join(OUT, name))
    return start, end, {
        "returned": returned, "error": error, "filtered": EVIDENCE.filtered,
        "warnings": EVIDENCE.warnings, "matched_ids": matched_ids, "handler_cpu_seconds": cpu}


def main():
    global OUT
    OUT = output_dir()
    import custodian_policy  # the deployed handler module: from c7n import handler

    imported = time.monotonic_ns()
    if sys.argv[1] == "cold":
        with open(sys.argv[2]) as f:
            event = json.load(f)
        start, end, outcome = handle(custodian_policy.run, event)
        # CPU time of the whole process (interpreter start, imports, handler): unlike the wall
        # clock, hardly affected by other load on the machine.
        cpu_seconds = time.process_time()
        RESULTS.write(json.dumps(dict(outcome, t_start=T_START, t_imported=imported, t_handler_start=start,
                                      t_done=end, vm_hwm_kib=vm_hwm_kib(), cpu_seconds=cpu_seconds)) + "\n")
        RESULTS.flush()
        return
    for line in sys.stdin:
        start, end, outcome = handle(custodian_policy.run, json.loads(line))
        RESULTS.write(json.dumps(dict(outcome, seconds=(end - start) / 1e9, vm_hwm_kib=vm_hwm_kib())) + "\n")
        RESULTS.flush()


if __name__ == "__main__":
    main()
