#!/usr/bin/env bash
# The README's first command: sets up what is missing, builds, starts the Graph emulator, and runs
# examples/demo.ps1 against it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
eval "$(bash .ci/provision)"
cargo build --release --workspace --quiet

out=$(mktemp)
target/release/graph-emulator --port 0 >"$out" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$out" && break; sleep 0.05; done
url=$(sed -n 's/^graph-emulator listening on //p' "$out")
[[ -n $url ]] || { cat "$out" >&2; exit 1; }
echo "Graph emulator at $url"
pwsh -NoProfile -NonInteractive -File examples/demo.ps1 -EmulatorUrl "$url"
