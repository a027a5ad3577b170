#!/usr/bin/env bash
# Starts a graph-emulator (request log off) and runs a bench/*.ps1 script against it:
#   bash bench/pwsh-bench.sh warm.ps1 [-Count 2000]
#   bash bench/pwsh-bench.sh bulk.ps1 [-Count 10000] [-Rounds 3] [-Json out.json]
# Expects a release build (bench/run-all.sh builds one) and pwsh on PATH (.ci/provision).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
script=$1; shift
out=$(mktemp)
"$repo/target/release/graph-emulator" --port 0 --log-capacity 0 >"$out" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$out" && break; sleep 0.05; done
url=$(sed -n 's/^graph-emulator listening on //p' "$out")
pwsh -NoProfile -NonInteractive -File "$repo/bench/$script" -EmulatorUrl "$url" "$@"
