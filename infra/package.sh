#!/usr/bin/env bash
# Builds every function for Lambda on arm64 (provided.al2023) with cargo-lambda into the zips
# template.yaml deploys (CodeUri ../target/lambda/<function>/bootstrap.zip) and prints each
# zip's size. Installs what it needs on a fresh machine: cargo-lambda and zig (PyPI `ziglang`,
# as cargo-lambda documents) into target/tools/venv, and Rust's aarch64 target.
# Usage: infra/package.sh            (from any directory; ~10 min cold on 2 cores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source tests/tools.sh

step "tools: cargo-lambda and zig, Rust's aarch64-unknown-linux-gnu target"
ensure_cargo_lambda
if command -v rustup >/dev/null 2>&1; then
  rustup target add aarch64-unknown-linux-gnu >&2
fi

# Every crate under functions/ is a Lambda function.
functions=()
for dir in functions/*/; do
  functions+=("$(basename "$dir")")
done
packages=()
for f in "${functions[@]}"; do
  packages+=(--package "$f")
done

step "build: ${functions[*]} (release, arm64, zip)"
# The zips must land where CodeUri points, whatever the caller's CARGO_TARGET_DIR says.
export CARGO_TARGET_DIR="$ROOT/target"
cargo lambda build --release --arm64 --locked --output-format zip "${packages[@]}" >&2

step "zips"
# Each zip must hold an aarch64 ELF named bootstrap: what provided.al2023 on arm64 runs.
python3 - "${functions[@]}" <<'PY'
import os, sys, zipfile

total = 0
print(f"{'function':<22} {'bytes':>12} {'MiB':>8}  zip")
for f in sys.argv[1:]:
    path = f"target/lambda/{f}/bootstrap.zip"
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        sys.exit(f"package.sh: {path} was not produced")
    with zipfile.ZipFile(path) as z:
        head = z.open("bootstrap").read(20)
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != 0xB7:
        sys.exit(f"package.sh: {path} does not hold an aarch64 executable named bootstrap")
    size = os.path.getsize(path)
    total += size
    print(f"{f:<22} {size:>12} {size / 2**20:>8.2f}  {path}")
print(f"{'total':<22} {total:>12} {total / 2**20:>8.2f}")
PY
