#!/usr/bin/env bash
# Runs every test of MgKeepAlive on a fresh machine (Rust and the .NET SDK or PowerShell 7.4+):
# provisions what is missing, builds, then runs
#   1. cargo test   — the Rust core, the emulator, and the cdylib loaded as a host loads it;
#   2. the C host   — tests/c/abi_smoke.c compiled against include/mgkeepalive.h (-Wall -Werror);
#   3. Pester       — what PowerShell users see (tests/pwsh).
# Exits non-zero when any of them fails. Running each step has a time limit (generous: several
# times what it takes on a loaded 2-core runner), so a hang fails the run instead of stalling it;
# override with CARGO_TEST_LIMIT, C_HOST_LIMIT, PESTER_LIMIT (timeout(1) durations).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

eval "$(bash .ci/provision)"

step() { printf '\n=== %s ===\n' "$*"; }
failures=()
# Runs "$@" under a time limit; a step that exceeds it is killed and reported as timed out.
limited() {
  local limit=$1 name=$2 status=0
  shift 2
  timeout --kill-after=30s "$limit" "$@" || status=$?
  if ((status == 124 || status == 137)); then
    echo "$name: timed out after $limit" >&2
    failures+=("$name (timed out after $limit)")
  elif ((status != 0)); then
    failures+=("$name")
  fi
}

step "cargo build --release (library and emulator)"
cargo build --release --workspace

step "cargo test (core, emulator, ABI via dlopen)"
# Built first, outside the time limit: only running the tests can hang.
cargo test --workspace --features mgkeepalive/test-hooks --no-run || failures+=("cargo test (build)")
limited "${CARGO_TEST_LIMIT:-15m}" "cargo test" cargo test --workspace --features mgkeepalive/test-hooks

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
# The C host's sign-in meets a token endpoint that announces an absurd lifetime (it must end).
curl -fsS -X POST "$url/_emulator/apps" -H 'Content-Type: application/json' \
  -d '{"tenantId":"c-tenant","clientId":"c-app","clientSecret":"c-secret"}' >/dev/null
curl -fsS -X POST "$url/_emulator/faults" -H 'Content-Type: application/json' \
  -d '{"path":"/oauth2/v2.0/token","responses":[{"status":200,"json":{"token_type":"Bearer","expires_in":1e300,"access_token":"c-lifetime-token"}}]}' >/dev/null
limited "${C_HOST_LIMIT:-2m}" "C host" "$work/abi_smoke" "$url" c-active c-ended
kill "$emulator_pid"; emulator_pid=

step "Pester (tests/pwsh)"
limited "${PESTER_LIMIT:-15m}" "Pester" pwsh -NoProfile -NonInteractive -File tests/pwsh/run.ps1

if ((${#failures[@]})); then
  printf '\nFAILED: %s\n' "${failures[*]}" >&2
  exit 1
fi
