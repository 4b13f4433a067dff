"""Both tools in one run (issue 9): the guard's release functions and Cloud Custodian's
event-mode Lambda (tests/bench/peer.py) on the same emulator, the same resources and the same
events (CreateGuardrail and CreateModelCustomizationJob, each on a customer-managed key and
without one), then one table with both, the ratios, and the Lambda cost per million events at
128 MB on arm64.

The guard runs as deployed: ledger on (STATE_TABLE), settings in SSM (mode alert), an alert
topic. Each function's release binary runs behind a local Lambda Runtime API (bench.py):
- cold: RUNS fresh processes, one event each; exec until the Finding is answered (median,
  p90); peak RSS (VmHWM); the AWS calls the emulator logged for the event;
- warm: one process, one event (cold, not counted), then EVENTS more about the same resource;
  per-event p50 / p99 / mean and the calls of a warm event.
The peer gets the same: peer.py measures it (c7n with its notify action, so that both alert),
on resources made the same way, from the same fixtures, in the same emulator.

Cost per million events: $0.20 of requests plus 0.125 GB x the mean warm duration (rounded up
to whole milliseconds, as Lambda bills) x $0.0000133334 per GB-second (arm64, us-east-1, first
tier, at the time of writing). Durations are measured here on a full core; at 128 MB Lambda
gives a function a fraction of one, which lengthens CPU-bound work (the peer's more).

Run by tests/bench/compare.sh [--runs 20] [--events 300]. Prints the table (stderr has the
peer's own progress) and writes the figures as JSON to target/bench/compare.json.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True

import bench  # noqa: E402  (the guard's benchmark: Runtime API, fixtures, resources)
import peer  # noqa: E402  (the peer's benchmark: its scenarios, made the same way)

GB_SECOND_ARM64 = 0.0000133334
REQUESTS_PER_MILLION = 0.20
MEMORY_GB = 128 / 1024
TARGETS = {"cold_ratio": 40, "rss_share": 1 / 5, "warm_p99_ms": 10, "zip_mb": 4, "cost": 0.30}


def cost_per_million(mean_ms):
    return REQUESTS_PER_MILLION + 1e6 * MEMORY_GB * math.ceil(mean_ms) / 1000 * GB_SECOND_ARM64


def guard_calls_since(mark):
    log = bench.requests_so_far()
    return [f"{r['service']}:{r['operation']}" for r in log[mark:] if (r.get("app") or "").startswith("cmk-guard-")]


def cpu_ms(pid):
    """User plus system CPU time of a process so far (clock ticks of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def emulator_ms(log, windows):
    """Per window (epoch seconds from, to): how long the emulator was busy answering the
    guard's requests that arrived in it (the union of their answer times)."""
    spans = sorted((r["received"], r["received"] + r["ms"] / 1000) for r in log
                   if (r.get("app") or "").startswith("cmk-guard-") and r.get("ms") is not None)
    out = []
    for start, end in windows:
        busy, reach = 0.0, start
        for a, b in spans:
            if a < start or a > end:
                continue
            a = max(a, reach)
            if b > a:
                busy, reach = busy + (b - a), b
        out.append(busy * 1000)
    return out


def guard_process(binary, env, events, counted=2):
    """One function process behind a Runtime API of its own, handed `events` one after another.
    Returns per-event (milliseconds, finding), the calls of the first `counted` events, the
    peak RSS in KiB, and the CPU time of the events after the first per event."""
    api = bench.RuntimeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.address)
    results, calls, windows = [], [], []
    proc = None
    try:
        for i, e in enumerate(events):
            mark = len(bench.requests_so_far()) if i < counted else None
            api.events.put(e)
            start, began = time.perf_counter(), time.time()
            if proc is None:
                proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            done, kind, body = api.results.get(timeout=30)
            if kind != "response":
                raise SystemExit(f"{binary} answered with an error: {body.decode()}")
            results.append(((done - start) * 1000, json.loads(body)))
            windows.append((began, time.time()))
            if mark is not None:
                calls.append(guard_calls_since(mark))
            if i == 0:
                cpu_after_first = cpu_ms(proc.pid)
        warm_cpu = (cpu_ms(proc.pid) - cpu_after_first) / max(1, len(events) - 1)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
        api.shutdown()
    busy = emulator_ms(bench.requests_so_far(), windows)
    return [(ms, finding, waited) for (ms, finding), waited in zip(results, busy)], calls, peak, warm_cpu


def check(finding, non_compliant, what):
    want = "NON_COMPLIANT" if non_compliant else "COMPLIANT"
    if finding.get("status") != want:
        raise SystemExit(f"{what}: the guard answered {finding.get('status')} ({finding.get('reason')}), "
                         f"expected {want}")


def measure_guard(binary, env, make_event, non_compliant, runs, events, name):
    cold, cold_own, rss, cold_calls = [], [], [], None
    for i in range(runs):
        results, calls, peak, _ = guard_process(binary, env, [make_event()], counted=1)
        (ms, finding, waited), = results
        check(finding, non_compliant, f"{name}, cold run {i}")
        cold.append(ms)
        cold_own.append(ms - waited)
        rss.append(peak)
        cold_calls = cold_calls or calls[0]
    results, calls, peak, warm_cpu = guard_process(binary, env, [make_event() for _ in range(events + 1)])
    for i, (_, finding, _) in enumerate(results):
        check(finding, non_compliant, f"{name}, warm event {i}")
    warm = [ms for ms, _, _ in results[1:]]
    warm_own = [ms - waited for ms, _, waited in results[1:]]
    return {
        "cold_median_ms": statistics.median(cold), "cold_p90_ms": peer.percentile(cold, 0.9),
        "warm_p50_ms": peer.percentile(warm, 0.5), "warm_p99_ms": peer.percentile(warm, 0.99),
        "warm_mean_ms": statistics.mean(warm), "warm_events": len(warm), "warm_cpu_ms": warm_cpu,
        # Wall time minus the time the emulator was answering: the function's own share.
        "cold_outside_emulator_median_ms": statistics.median(cold_own),
        "warm_outside_emulator_p50_ms": peer.percentile(warm_own, 0.5),
        "warm_outside_emulator_p99_ms": peer.percentile(warm_own, 0.99),
        "peak_rss_mib": max(rss + [peak]) / 1024,
        "calls_per_event": len(cold_calls), "calls_per_warm_event": len(calls[1]),
        "operations_cold": cold_calls, "operations_warm": calls[1],
    }


def zip_size(function):
    """The arm64 zip infra/package.sh built, and whether it is older than the sources."""
    z = ROOT / "target" / "lambda" / function / "bootstrap.zip"
    if not z.exists():
        return None, "not built: run infra/package.sh"
    newest = max(p.stat().st_mtime for d in ("shared", "functions", "Cargo.lock")
                 for p in ([ROOT / d] if (ROOT / d).is_file() else (ROOT / d).rglob("*.rs")))
    note = "" if z.stat().st_mtime >= newest else " (older than the sources: run infra/package.sh)"
    return z.stat().st_size / 1e6, note


def run_peer(args):
    """peer.py on this emulator (it re-executes itself in its own virtualenv); its JSON."""
    out = subprocess.run([sys.executable, str(HERE / "peer.py"), "--runs", str(args.runs),
                          "--events", str(args.events), "--notify"],
                         stdout=subprocess.PIPE, text=True, env=os.environ)
    if out.returncode:
        raise SystemExit(f"peer.py failed (exit {out.returncode})")
    return {s["scenario"]: s for s in json.loads(out.stdout)["scenarios"]}


def guard_setup(key):
    """Topic, settings (alert mode) and ledger, as infra/ deploys them."""
    topic = bench.aws("sns").create_topic(Name="cmk-guard-compare")["TopicArn"]
    parameter = f"/compare/{uuid.uuid4().hex[:8]}"
    bench.aws("ssm").put_parameter(Name=parameter, Type="String", Overwrite=True,
                                   Value=json.dumps({"defaults": {"mode": "alert"}}))
    table = f"compare-ledger-{uuid.uuid4().hex[:8]}"
    bench.aws("dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    base = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k in ("PATH", "HOME", "SSL_CERT_FILE")}
    return dict(base, AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
                ALERT_TOPIC_ARN=topic, CONFIG_PARAMETER=parameter, STATE_TABLE=table, RUST_LOG="warn")


def row(tool, r, zip_mb, cost):
    zip_text = f"{zip_mb:.2f}" if zip_mb is not None else "-"
    return (f"  {tool:7} {r['cold_median_ms']:8.1f} {r['cold_p90_ms']:7.1f} {r['warm_p50_ms']:8.1f} "
            f"{r['warm_p99_ms']:7.1f} {r['peak_rss_mib']:8.1f} {r['calls_per_event']:5d}|{r['calls_per_warm_event']:<3d} "
            f"{zip_text:>7} {cost:8.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="cold processes per scenario and tool")
    parser.add_argument("--events", type=int, default=300, help="warm events per scenario and tool")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()[0]

    # The guard first, then the peer, on the same emulator; the scenarios are peer.py's.
    key, cases = peer.scenarios(bench)
    env = guard_setup(key)
    guard = {}
    for name, _policy, non_compliant, _resource, make_event in cases:
        function = "guardrails" if "Guardrail" in name else "model-jobs"
        print(f"[compare] guard: {name}", file=sys.stderr, flush=True)
        guard[name] = measure_guard(str(ROOT / "target" / "release" / function),
                                    dict(env, AWS_LAMBDA_FUNCTION_NAME=function), make_event, non_compliant,
                                    args.runs, args.events, name)
        guard[name]["function"] = function
    print("[compare] peer: Cloud Custodian (tests/bench/peer.py --notify)", file=sys.stderr, flush=True)
    theirs = run_peer(args)

    zips = {f: zip_size(f) for f in ("guardrails", "model-jobs")}
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    print(f"\n{started}; {os.cpu_count()} CPUs ({cpu}); load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"{args.runs} cold processes and {args.events} warm events per scenario and tool")
    print("cold = exec until the first Finding (guard) / spawn until the handler returned (peer); "
          "warm = one event to a warm process; calls = AWS requests per cold|warm event; "
          "$/M = Lambda cost per million events at 128 MB arm64 from the mean warm duration\n")
    print(f"  {'tool':7} {'cold ms':>16} {'warm ms':>16} {'RSS MiB':>8} {'calls':>9} {'zip MB':>7} {'$/M':>8}")
    print(f"  {'':7} {'median':>8} {'p90':>7} {'p50':>8} {'p99':>7} {'peak':>8} {'':>9} {'arm64':>7}")
    report = {"date": started, "cpus": os.cpu_count(), "cpu": cpu, "runs": args.runs, "events": args.events,
              "scenarios": []}
    misses = []
    for name, *_ in cases:
        ours, peers = guard[name], theirs[name]
        zip_mb, zip_note = zips[ours["function"]]
        ours_cost, peer_cost = cost_per_million(ours["warm_mean_ms"]), cost_per_million(peers["warm_mean_ms"])
        # The target is against the peer's best: its fastest cold start.
        best_peer_cold = peers["cold_min_ms"]
        cold_ratio = best_peer_cold / ours["cold_median_ms"]
        print(f"{name} ({ours['function']}){zip_note if zip_mb is None else ''}")
        print(row("guard", ours, zip_mb, ours_cost))
        print(row("peer", peers, None, peer_cost))
        print(f"  {'ratio':7} {peers['cold_median_ms'] / ours['cold_median_ms']:7.0f}x {peers['cold_p90_ms'] / ours['cold_p90_ms']:6.0f}x "
              f"{peers['warm_p50_ms'] / ours['warm_p50_ms']:7.0f}x {peers['warm_p99_ms'] / ours['warm_p99_ms']:6.0f}x "
              f"{ours['peak_rss_mib'] / peers['peak_rss_mib']:8.2f}  {'':9} {'':7} {peer_cost / ours_cost:7.2f}x")
        print(f"  guard outside the emulator: cold {ours['cold_outside_emulator_median_ms']:.1f} ms (median), warm "
              f"{ours['warm_outside_emulator_p50_ms']:.1f} / {ours['warm_outside_emulator_p99_ms']:.1f} ms (p50 / p99); "
              f"warm CPU per event: guard {ours['warm_cpu_ms']:.2f} ms, peer {peers['warm_cpu_p50_ms']:.2f} ms (p50)")
        print(f"  guard cold: {', '.join(ours['operations_cold'])}")
        print(f"  guard warm: {', '.join(ours['operations_warm'])}")
        print(f"  peer  cold: {', '.join(peers['operations_cold'])}")
        checks = {
            f"cold median {cold_ratio:.0f}x faster than the peer's fastest, {best_peer_cold:.0f} ms "
            f"(target {TARGETS['cold_ratio']}x)": cold_ratio >= TARGETS["cold_ratio"],
            f"RSS {ours['peak_rss_mib'] / peers['peak_rss_mib']:.2f} of the peer's (target {TARGETS['rss_share']:.2f})":
                ours["peak_rss_mib"] <= peers["peak_rss_mib"] * TARGETS["rss_share"],
            f"warm p99 {ours['warm_p99_ms']:.1f} ms (target {TARGETS['warm_p99_ms']} ms)":
                ours["warm_p99_ms"] <= TARGETS["warm_p99_ms"],
            f"zip {zip_mb:.2f} MB (target {TARGETS['zip_mb']} MB){zip_note}" if zip_mb is not None else
                f"zip: {zip_note}": zip_mb is not None and zip_mb <= TARGETS["zip_mb"],
            f"${ours_cost:.3f} per million (target ${TARGETS['cost']:.2f})": ours_cost <= TARGETS["cost"],
        }
        print("  targets: " + "; ".join(f"{text} {'met' if ok else 'MISSED'}" for text, ok in checks.items()))
        misses += [f"{name}: {text}" for text, ok in checks.items() if not ok]
        report["scenarios"].append({"scenario": name, "guard": ours, "peer": peers, "zip_mb": zip_mb,
                                    "guard_cost_per_million": ours_cost, "peer_cost_per_million": peer_cost,
                                    "cold_ratio": cold_ratio, "peer_best_cold_ms": best_peer_cold,
                                    "targets": {t: ok for t, ok in checks.items()}})
    out = ROOT / "target" / "bench" / "compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{len(misses)} targets missed" + (":\n  " + "\n  ".join(misses) if misses else "") + f"\nJSON: {out}")


if __name__ == "__main__":
    main()
