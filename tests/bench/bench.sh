#!/usr/bin/env bash
# Benchmark of a release function: cold start (exec -> first Finding), warm event, peak RSS,
# AWS calls per event, binary size. Beside the peer: tests/bench/compare.sh.
# Usage: tests/bench/bench.sh [RUNS] [--ledger] [--function guardrails|invocation-logging|model-jobs|data-jobs]
#   --ledger: with STATE_TABLE, as deployed; --function: default guardrails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source tests/tools.sh
bench_setup
step "benchmark"
RUNS="${1:-20}"
shift || true
"$PY" tests/bench/bench.py --runs "$RUNS" "$@"
