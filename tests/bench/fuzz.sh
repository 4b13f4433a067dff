#!/usr/bin/env bash
# Coverage-guided fuzzing of the event parser (intake) with AFL++ through afl.rs, on the stable
# toolchain: installs cargo-afl and builds AFL++ if they are missing (under target/tools), builds
# the target (fuzz/, into target/fuzz), replays the seed corpus (fuzz/corpus), fuzzes for a
# bounded time and prints AFL++'s figures. Exits non-zero if any input crashed the target.
# Usage: tests/bench/fuzz.sh [SECONDS]   (default 60)
# Output: target/fuzz-out/<UTC time>/ (target/fuzz-out/latest links the last run); a crash is
# replayed with its panic printed, and can be replayed again with
#   target/fuzz/release/intake < FILE      or      target/fuzz/release/replay FILE...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source tests/tools.sh

SECONDS_TO_FUZZ="${1:-60}"
if ! [[ "$SECONDS_TO_FUZZ" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]  (a whole number of seconds, default 60)" >&2
  exit 2
fi

# cargo-afl and the afl crate (fuzz/Cargo.toml) at one version: the AFL++ runtime cargo-afl
# builds is linked into the target.
AFL_RS_VERSION=0.18.2
# cargo-afl builds AFL++ under $XDG_DATA_HOME/afl.rs (by default ~/.local/share): keep it with
# the project's other tools.
export XDG_DATA_HOME="$TOOLS_DIR/xdg"
export PATH="$TOOLS_DIR/cargo/bin:$PATH"
export CARGO_TARGET_DIR="$ROOT/target/fuzz"

elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

step "cargo-afl $AFL_RS_VERSION"
t0=$(date +%s)
if ! cargo-afl afl --version 2>/dev/null | grep -q "^cargo-afl $AFL_RS_VERSION\b"; then
  # Installing also builds AFL++ from the copy the crate ships (needs make and a C compiler).
  # (its own temporary target directory, removed afterwards)
  env -u CARGO_TARGET_DIR CARGO_INSTALL_ROOT="$TOOLS_DIR/cargo" \
    cargo install cargo-afl --version "$AFL_RS_VERSION" --locked
fi
# Builds AFL++ if the install did not (it only warns when that fails); says so if it is there.
if ! cargo afl --version | grep -q 'AFL++ version'; then
  cargo afl config --build
fi
cargo afl --version
echo "cargo-afl ready in $(elapsed "$t0")"

step "build the fuzz target (fuzz/, instrumented, into target/fuzz)"
t0=$(date +%s)
cargo afl build --release --locked --manifest-path fuzz/Cargo.toml --bins
TARGET="$CARGO_TARGET_DIR/release/intake"
echo "built in $(elapsed "$t0"): $TARGET"

# Replays one input outside AFL++; prints the panic and returns non-zero if it crashes.
replay_crashes() {
  local input="$1"
  # (in a shell of its own whose stderr is dropped: it says "Aborted")
  if ! bash -c '"$0" <"$1" >/dev/null 2>"$2"; exit $?' "$TARGET" "$input" "$OUT/replay.err" \
      2>/dev/null; then
    echo "CRASH: $input" >&2
    sed 's/^/    /' "$OUT/replay.err" | head -40 >&2
    return 1
  fi
}

OUT="$ROOT/target/fuzz-out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
ln -sfn "$OUT" "$ROOT/target/fuzz-out/latest"

step "replay the seed corpus (fuzz/corpus)"
seed_crashes=0
for seed in fuzz/corpus/*; do
  replay_crashes "$seed" || seed_crashes=$((seed_crashes + 1))
done
echo "$(ls fuzz/corpus | wc -l) seeds, $seed_crashes crashed"

step "fuzz for $SECONDS_TO_FUZZ s (output: $OUT)"
# In a container: no CPU frequency governor, core dumps piped elsewhere (crashes are still
# seen: the target aborts), no terminal UI. No CPU binding: others share the cores. A seed that
# crashes was reported above and must not stop the run.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
  AFL_NO_AFFINITY=1 AFL_IGNORE_SEED_PROBLEMS=1
# -V: stop after that many seconds; -t: 2 s per input before it counts as a hang (the cores
# are shared); -x: JSON and CloudTrail tokens. cargo afl fuzz adds -c0: CMPLOG from the
# comparisons the stable compiler's sanitizer coverage traces.
cargo afl fuzz -V "$SECONDS_TO_FUZZ" -t 2000 -x fuzz/intake.dict \
  -i fuzz/corpus -o "$OUT" "$TARGET" >"$OUT/afl-fuzz.log" 2>&1 || {
  tail -40 "$OUT/afl-fuzz.log" >&2
  echo "afl-fuzz failed (log: $OUT/afl-fuzz.log)" >&2
  exit 1
}

STATS="$OUT/default/fuzzer_stats"
field() { sed -n "s/^$1 *: //p" "$STATS"; }
step "results"
printf '%-20s %s\n' \
  "afl-fuzz" "$(field afl_version), $(field target_mode)" \
  "run time" "$(field run_time) s" \
  "executions" "$(field execs_done)" \
  "execs/s" "$(field execs_per_sec) (last minute: $(field execs_ps_last_min))" \
  "corpus (paths)" "$(field corpus_count): $(field corpus_found) found, $(field corpus_favored) favoured" \
  "edges covered" "$(field edges_found) of $(field total_edges) ($(field bitmap_cvg))" \
  "stability" "$(field stability)" \
  "cycles done" "$(field cycles_done)" \
  "crashes" "$(field saved_crashes)" \
  "hangs" "$(field saved_hangs) ($(field total_tmout) timeouts in all)" \
  "seeds that crashed" "$seed_crashes"

crashes=0
for input in "$OUT"/default/crashes/id:*; do
  [ -e "$input" ] || continue
  crashes=$((crashes + 1))
  replay_crashes "$input" || true
done
for input in "$OUT"/default/hangs/id:*; do
  [ -e "$input" ] && echo "HANG: $input" >&2
done
if [ "$crashes" -gt 0 ] || [ "$seed_crashes" -gt 0 ]; then
  echo "the parser crashed on $((crashes + seed_crashes)) input(s): see above" >&2
  exit 1
fi
echo "no crash"
