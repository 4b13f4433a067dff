# Shared by tests/run-all.sh, tests/demo.sh and tests/bench/bench.sh: installs the tools the
# project needs on a fresh machine and starts the emulator. Source it; do not run it.

TOOLS_DIR="$ROOT/target/tools"

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

# cargo-lambda from PyPI, in a virtualenv of its own (ziglang comes with it for arm64 builds).
ensure_cargo_lambda() {
  if [ ! -x "$TOOLS_DIR/venv/bin/cargo-lambda" ]; then
    python3 -m venv "$TOOLS_DIR/venv" >&2
    "$TOOLS_DIR/venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-lambda==1.9.2' >&2
  fi
  export PATH="$TOOLS_DIR/venv/bin:$PATH"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts the emulator in the background on a free port, waits until it answers, exports the
# SDK's standard variables so every client (tests, CLI, functions) talks to it, and stops it
# when the calling script exits. Every AWS call a guard function (or the CLI) makes is also
# appended to the call log CMK_GUARD_CALL_LOG (exported; emptied here), which resets of the
# emulator never clear: infra/least-privilege.sh judges it against the IAM policies.
start_emulator() {
  python3 tests/emulator/bootstrap.py >/dev/null
  EMULATOR_PORT="$(free_port)"
  EMULATOR_LOG="$ROOT/target/emulator-$EMULATOR_PORT.log"
  mkdir -p "$ROOT/target"
  export CMK_GUARD_CALL_LOG="$ROOT/target/calls-$EMULATOR_PORT.jsonl"
  : >"$CMK_GUARD_CALL_LOG"
  tests/emulator/run.sh "$EMULATOR_PORT" >"$EMULATOR_LOG" 2>&1 &
  EMULATOR_PID=$!
  trap 'kill $EMULATOR_PID 2>/dev/null || true' EXIT
  export AWS_ENDPOINT_URL="http://127.0.0.1:$EMULATOR_PORT"
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  unset AWS_SESSION_TOKEN AWS_PROFILE
  for _ in $(seq 1 100); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "$AWS_ENDPOINT_URL/_cmk_guard/requests" 2>/dev/null; then
      echo "emulator up at $AWS_ENDPOINT_URL (log: $EMULATOR_LOG, calls: $CMK_GUARD_CALL_LOG)" >&2
      return 0
    fi
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
      cat "$EMULATOR_LOG" >&2
      echo "the emulator did not start" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "the emulator did not answer within 20 s" >&2
  return 1
}

# For the benchmarks: the release functions (the same command as tests/run-all.sh: one
# dependency graph, its artifacts reused), an emulator of their own, and its Python as $PY.
bench_setup() {
  step "release build of the functions"
  cargo build --release --locked --workspace --bins --exclude cmk-guard
  start_emulator
  PY="$(python3 tests/emulator/bootstrap.py)"
}
