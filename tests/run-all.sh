#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs (the emulator's virtualenv,
# cargo-lambda), checks formatting and lints, builds the release functions, starts the emulator
# on a free port, runs every test (the load test on the release functions among them), judges
# the functions' IAM policies against the calls they made, and stops the emulator again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source tests/tools.sh

step "infrastructure: cfn-lint, IAM policy against the calls the code makes"
infra/check.sh

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "release build of every function (what deploys; some errors show only here)"
# One command for every function: one dependency graph, built once. The CLI is not deployed
# and its fat-LTO link would cost minutes.
cargo build --release --locked --workspace --bins --exclude cmk-guard

step "emulator"
start_emulator

step "emulator extension tests (Python)"
tests/emulator/test.sh -q

step "Rust tests"
ensure_cargo_lambda
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "load: 1,000+ deliveries through the release functions, nothing lost, doubled or told twice"
tests/load/load.sh

# The emulator's call log now holds every AWS call the functions made in the tests above.
step "least privilege: every call the functions made is allowed, nothing more"
infra/least-privilege.sh "$CMK_GUARD_CALL_LOG"
