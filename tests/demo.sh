#!/usr/bin/env bash
# The product's main job, locally, end to end: the emulator up, a guardrail (and a published
# version) encrypted with a key AWS owns, CloudTrail events through the real guardrails function
# (under cargo-lambda's local Lambda runtime, with the ledger), the alert a chat user reads, the
# same problem not told twice, the fix of the DRAFT with the version left for a person, the
# fix's own event staying silent, and "resolved" once the person has done the rest. Then
# Bedrock's invocation logs going to a log group and buckets without a CMK: the
# invocation-logging function refuses to put a key there that the services may not use and
# says which statement to add; once a person has added it, the fix the alert suggests (the
# CLI) puts the key on every destination, and the fix's own events stay silent; a log group
# that loses its key later gets it back at once. Last, a fine-tuning job started without a
# CMK: the model-jobs function stops it and submits it again with the CMK, in one message.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source tests/tools.sh

step "build (debug)"
cargo build --workspace --locked --quiet
ensure_cargo_lambda
start_emulator
PY="$(python3 tests/emulator/bootstrap.py)"
export DEMO_DIR="$ROOT/target/demo"
rm -rf "$DEMO_DIR"
demo() { "$PY" tests/demo/demo.py "$@"; }

step "1. misconfigured resources in the emulator"
demo setup
TOPIC="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["topic"])' "$DEMO_DIR/state.json")"

PORT="$(free_port)"
cargo-lambda lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$PORT" >"$DEMO_DIR/runtime.log" 2>&1 &
RUNTIME_PID=$!
FUNCTION_PID=
trap 'kill $RUNTIME_PID $FUNCTION_PID $EMULATOR_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

# A fresh Lambda instance of function $1 (default guardrails): the real function binary, fed
# by the local runtime.
start_function() {
  [ -n "$FUNCTION_PID" ] && kill "$FUNCTION_PID" 2>/dev/null && wait "$FUNCTION_PID" 2>/dev/null || true
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$PORT/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
  AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 \
  ALERT_TOPIC_ARN="$TOPIC" CONFIG_PARAMETER=/bedrock-cmk-guard/settings STATE_TABLE=bedrock-cmk-guard-state \
    "target/debug/${1:-guardrails}" >>"$DEMO_DIR/function.log" 2>&1 &
  FUNCTION_PID=$!
}
invoke() {
  cargo-lambda lambda invoke --invoke-address 127.0.0.1 --invoke-port "$PORT" --data-file "$DEMO_DIR/$1" >"$DEMO_DIR/$2"
  demo finding "$DEMO_DIR/$2"
}

step "2. someone creates the guardrail: CreateGuardrail -> guardrails function (mode alert)"
start_function
invoke create.json finding-1.json
demo inbox
demo guardrail

step "3. someone edits it again, still without a key: the same problem is not told twice"
invoke repeat.json finding-2.json
demo inbox

step "4. before letting it fix things: the CLI in dry-run says exactly what it would do"
CONFIG_PARAMETER=/bedrock-cmk-guard/settings \
  target/debug/cmk-guard check --event "$DEMO_DIR/create.json" --mode dry-run >"$DEMO_DIR/dry-run.json"
demo finding "$DEMO_DIR/dry-run.json"
python3 -c 'import json,sys; print("  would do:", json.load(open(sys.argv[1]))["action"]["detail"])' "$DEMO_DIR/dry-run.json"

step "5. the account goes to mode remediate; the next change is fixed: the DRAFT, not version 1"
demo settings remediate
# Settings are cached for 60 s per warm instance; a new instance reads them at once.
start_function
invoke update.json finding-3.json
demo inbox
demo guardrail

step "6. the fix's own UpdateGuardrail event comes back: the state it proved, so silent"
invoke own-update.json finding-4.json
demo inbox

step "7. a person follows the steps: version 2 from the fixed DRAFT, version 1 deleted"
demo follow-steps
invoke new-version.json finding-5.json
invoke delete-version.json finding-6.json
demo inbox
demo guardrail

step "8. Bedrock's invocation logs go to a log group and buckets without a CMK: PutModelInvocationLoggingConfiguration -> invocation-logging function (mode remediate)"
start_function invocation-logging
invoke logging.json finding-7.json
demo inbox
demo logging

step "9. a person adds the statements the alert quoted, then runs the fix it suggests (the CLI, sharing the ledger)"
demo allow-services
ALERT_TOPIC_ARN="$TOPIC" CONFIG_PARAMETER=/bedrock-cmk-guard/settings STATE_TABLE=bedrock-cmk-guard-state \
  target/debug/cmk-guard check --event "$DEMO_DIR/logging.json" --mode remediate --force >"$DEMO_DIR/finding-8.json"
demo finding "$DEMO_DIR/finding-8.json"
demo inbox
demo logging

step "10. the fix's own AssociateKmsKey and PutBucketEncryption events come back: silent"
invoke own-associate.json finding-9.json
invoke own-bucket.json finding-10.json
demo inbox

step "11. someone takes the key off the log group: DisassociateKmsKey -> put back at once, one message"
demo take-key-off
invoke disassociate.json finding-11.json
demo inbox
demo logging

step "12. someone starts a fine-tuning job without a CMK: CreateModelCustomizationJob -> model-jobs function (mode remediate, resubmitJobs)"
demo resubmit-jobs
start_function model-jobs
invoke job.json finding-12.json
demo inbox
demo jobs

step "done"
echo "  findings, events and logs are in $DEMO_DIR"
