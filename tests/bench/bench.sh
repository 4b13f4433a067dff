#!/usr/bin/env bash
# Benchmark of the release guardrails function: cold start (exec -> first Finding), warm
# event, peak RSS, AWS calls per event, binary size.
# Usage: tests/bench/bench.sh [RUNS] [--ledger]   (--ledger: with STATE_TABLE, as deployed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source tests/tools.sh

step "release build of the guardrails function"
# A release build has its own artifacts; building only this package is what deploys.
cargo build --release --locked --package guardrails
start_emulator
PY="$(python3 tests/emulator/bootstrap.py)"
step "benchmark"
RUNS="${1:-20}"
shift || true
"$PY" tests/bench/bench.py --binary target/release/guardrails --runs "$RUNS" "$@"
