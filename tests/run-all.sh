#!/usr/bin/env bash
# Runs every test of MgKeepAlive on a fresh machine (Rust and the .NET SDK or PowerShell 7.4+):
# provisions what is missing, builds, then runs
#   1. cargo test   — the Rust core, the emulator, and the cdylib loaded as a host loads it;
#   2. the C host   — tests/c/abi_smoke.c compiled against include/mgkeepalive.h (-Wall -Werror);
#   3. Pester       — what PowerShell users see (tests/pwsh).
# Exits non-zero when any of them fails.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

eval "$(bash .ci/provision)"

step() { printf '\n=== %s ===\n' "$*"; }
failures=()

step "cargo build --release (library and emulator)"
cargo build --release --workspace

step "cargo test (core, emulator, ABI via dlopen)"
cargo test --workspace --features mgkeepalive/test-hooks || failures+=("cargo test")

step "C host against include/mgkeepalive.h"
version=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="mgkeepalive"))')
work=$(mktemp -d)
emulator_pid=
cleanup() { [[ -n $emulator_pid ]] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
gcc -std=c11 -Wall -Wextra -Werror -pedantic -DMGKA_EXPECTED_VERSION="\"$version\"" -Iinclude \
  tests/c/abi_smoke.c -Ltarget/release -lmgkeepalive -Wl,-rpath,"$repo/target/release" -o "$work/abi_smoke"
target/release/graph-emulator --port 0 >"$work/emulator.out" 2>&1 &
emulator_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/emulator.out" && break; sleep 0.05; done
url=$(sed -n 's/^graph-emulator listening on //p' "$work/emulator.out")
[[ -n $url ]] || { cat "$work/emulator.out" >&2; echo "the emulator did not start" >&2; exit 1; }
curl -fsS -X POST "$url/_emulator/calls" -H 'Content-Type: application/json' -d '{"ids":["c-active","c-ended"]}' >/dev/null
curl -fsS -X POST "$url/_emulator/calls/c-ended/end" >/dev/null
"$work/abi_smoke" "$url" c-active c-ended || failures+=("C host")
kill "$emulator_pid"; emulator_pid=

step "Pester (tests/pwsh)"
pwsh -NoProfile -NonInteractive -File tests/pwsh/run.ps1 || failures+=("Pester")

if ((${#failures[@]})); then
  printf '\nFAILED: %s\n' "${failures[*]}" >&2
  exit 1
fi
