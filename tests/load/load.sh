#!/usr/bin/env bash
# Load (issue 9): a burst of 1,000+ deliveries (four functions, compliant and not, duplicates,
# several events about the same resources) through the release binaries, 3 processes per
# function at once under fake Lambda Runtime APIs, all sharing one ledger, against the
# emulator. Exits non-zero on any violation: a delivery unanswered or answered twice, an
# event acted on or published twice, a resource fixed twice (or not at all), SNS deliveries
# that differ from the publishes. Prints throughput, latency p50/p90/p99 per function and a
# JSON summary (the LOAD-SUMMARY line).
# Usage: tests/load/load.sh [tests/load/load.py options, e.g. --processes 2, --break no-ledger]
# Uses the emulator AWS_ENDPOINT_URL names, else starts its own. Needs the release functions
# (target/release/{guardrails,invocation-logging,model-jobs,data-jobs}); it does not build them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source tests/tools.sh

for f in guardrails invocation-logging model-jobs data-jobs; do
  if [ ! -x "target/release/$f" ]; then
    echo "target/release/$f is missing: cargo build --release --locked --workspace --bins --exclude cmk-guard" >&2
    exit 2
  fi
done
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  start_emulator
fi
PY="$(python3 tests/emulator/bootstrap.py)"
step "load: a burst through the release functions"
"$PY" tests/load/load.py "$@"
