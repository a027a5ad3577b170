#!/usr/bin/env bash
# Starts the emulator (request log off) and runs bench/sequential.ps1 against it.
#   bash bench/sequential.sh [count] [rounds]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
eval "$(bash .ci/provision)"
cargo build --release --workspace --quiet
out=$(mktemp)
target/release/graph-emulator --port 0 --log-capacity 0 >"$out" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$out" && break; sleep 0.05; done
url=$(sed -n 's/^graph-emulator listening on //p' "$out")
pwsh -NoProfile -NonInteractive -File bench/sequential.ps1 -EmulatorUrl "$url" -Count "${1:-1000}" -Rounds "${2:-3}"
