#!/usr/bin/env bash
# Both tools in one run (issue 9): the guard's release functions and Cloud Custodian's
# event-mode Lambda on the same emulator and the same events; one table with the ratios and
# the cost per million events. Not part of the test suite (about 10 minutes; the peer's
# virtualenv is made on first use). The arm64 zip sizes are infra/package.sh's: run it first.
# Usage: tests/bench/compare.sh [--runs 20] [--events 300]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source tests/tools.sh
bench_setup
step "benchmark: the guard and the peer"
"$PY" tests/bench/compare.py "$@"
