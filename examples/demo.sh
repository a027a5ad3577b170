#!/usr/bin/env bash
# The README's first command: sets up what is missing, builds, starts the Graph emulator, and runs
# examples/demo.ps1 against it: a whole call's life. With Microsoft's Graph modules in
# ../shared/peers (the project's shared folder), the call is created, read and ended with them,
# next to MgKeepAlive; without them, with plain Graph requests.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
eval "$(bash .ci/provision)"
cargo build --release --workspace --quiet

out=$(mktemp)
peers=""
target/release/graph-emulator --port 0 >"$out" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null; rm -f "$out"; [[ -z $peers ]] || rm -rf "$peers"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$out" && break; sleep 0.05; done
url=$(sed -n 's/^graph-emulator listening on //p' "$out")
[[ -n $url ]] || { cat "$out" >&2; exit 1; }
echo "Graph emulator at $url"
archive=../shared/peers/microsoft-graph-powershell-2.38.1.tar.gz
if [[ -f $archive ]]; then
  peers=$(mktemp -d)
  tar -xzf "$archive" -C "$peers"
  # Microsoft's module saves environments in ~/.mg: the demo's stay in its own temporary HOME.
  HOME="$peers" pwsh -NoProfile -NonInteractive -File examples/demo.ps1 -EmulatorUrl "$url" -MicrosoftModules "$peers"
else
  echo "(Microsoft's Graph modules are not in ../shared/peers: plain Graph requests stand in for them.)"
  pwsh -NoProfile -NonInteractive -File examples/demo.ps1 -EmulatorUrl "$url"
fi
