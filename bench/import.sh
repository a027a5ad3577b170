#!/usr/bin/env bash
# Import overhead: `pwsh -NoProfile -Command 'Import-Module MgKeepAlive'` against a bare `pwsh`
# start, and against importing an empty module (what any script module costs on this pwsh).
# Prints the median of N runs of each, interleaved so background noise hits all alike.
#   bash bench/import.sh [runs]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
runs=${1:-15}
eval "$(bash .ci/provision)"
cargo build --release -p mgkeepalive --quiet

empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
mkdir -p "$empty/Empty" && echo '' >"$empty/Empty/Empty.psm1"
printf "@{ RootModule = 'Empty.psm1'; ModuleVersion = '1.0.0'; FunctionsToExport = @() }\n" >"$empty/Empty/Empty.psd1"

python3 - "$runs" "$repo/pwsh/MgKeepAlive" "$empty/Empty" <<'PY'
import statistics, subprocess, sys, time
runs, module, empty = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cases = {
    "bare pwsh": "$null",
    "empty module": f"Import-Module '{empty}'",
    "MgKeepAlive": f"Import-Module '{module}'",
}
times = {k: [] for k in cases}
for _ in range(runs):
    for name, command in cases.items():
        t = time.perf_counter()
        subprocess.run(["pwsh", "-NoProfile", "-NonInteractive", "-Command", command], check=True)
        times[name].append((time.perf_counter() - t) * 1000)
med = {k: statistics.median(v) for k, v in times.items()}
for k, v in med.items():
    print(f"{k:14} median {v:7.1f} ms  (min {min(times[k]):.1f}, max {max(times[k]):.1f}, n={runs})")
print(f"added by Import-Module MgKeepAlive: {med['MgKeepAlive'] - med['bare pwsh']:.1f} ms "
      f"(an empty module adds {med['empty module'] - med['bare pwsh']:.1f} ms)")
PY
