#!/usr/bin/env bash
# The cold whole job: what a scheduled task or runbook pays that starts, keeps a call alive and
# exits. Each case is a fresh `pwsh -NoProfile -NonInteractive -Command ...` against a local
# graph-emulator; the figure is its median wall time minus a bare pwsh start's, interleaved so
# background noise hits all alike (one XDG_CACHE_HOME per case, 2 unmeasured warm-up rounds, as
# bench/import.sh explains).
#   bash bench/cold-job.sh [runs] [before-module-dir]
#   PWSH=$(bash bench/pwsh-r2r.sh) bash bench/cold-job.sh [runs] [before-module-dir]
# Cases:
#   Invoke-RestMethod   the one-liner a scripter would write instead (token in a header)
#   MgKeepAlive         Import-Module; Add-MgEnvironment (the emulator; a real job has none);
#                       Connect-MgGraph -AccessToken; Invoke-MgKeepCommunicationCallAlive -CallId
#   ... steps           the same job cut after each step: where the time goes
#   before              the same job with another module folder (e.g. an older checkout's
#                       pwsh/MgKeepAlive with MGKEEPALIVE_LIBRARY set to its library), when given
# The goal (issue "Redesign"): MgKeepAlive's cost over bare pwsh <= 2x the one-liner's.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
runs=${1:-9}
before=${2:-}
eval "$(bash .ci/provision)"
cargo build --release --workspace --quiet
pwsh=${PWSH:-pwsh}
echo "cold-job.sh: measuring $(command -v "$pwsh") ($("$pwsh" --version)); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
tmp=$(mktemp -d)
"$repo/target/release/graph-emulator" --port 0 --log-capacity 0 >"$tmp/emulator.out" 2>&1 &
emulator=$!
trap 'kill $emulator 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$tmp/emulator.out" && break; sleep 0.05; done
url=$(sed -n 's/^graph-emulator listening on //p' "$tmp/emulator.out")
id=$(curl -s -X POST "$url/_emulator/calls" -H 'content-type: application/json' -d '{"count":1}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["ids"][0])')

python3 - "$runs" "$repo/pwsh/MgKeepAlive" "$pwsh" "$tmp/cache" "$url" "$id" "$before" <<'PY'
import os, statistics, subprocess, sys, time
runs, module, pwsh, caches, url, call, before = int(sys.argv[1]), *sys.argv[2:8]
token = "(ConvertTo-SecureString 'bench-token' -AsPlainText -Force)"
def job(mod, upto=4):
    steps = [f"Import-Module '{mod}'",
             f"$null = Add-MgEnvironment -Name Bench -AzureADEndpoint '{url}' -GraphEndpoint '{url}'",
             f"Connect-MgGraph -AccessToken {token} -Environment Bench",
             f"Invoke-MgKeepCommunicationCallAlive -CallId '{call}' -ErrorAction Stop"]
    return "; ".join(steps[:upto])
cases = {
    "bare pwsh": ("$null", None),
    "Invoke-RestMethod": (f"$null = Invoke-RestMethod -Method Post -Uri '{url}/v1.0/communications/calls/{call}/keepAlive' -Headers @{{Authorization = 'Bearer bench-token'}}", None),
    "MgKeepAlive": (job(module), None),
    "  import": (job(module, 1), None),
    "  + Add-MgEnvironment": (job(module, 2), None),
    "  + Connect-MgGraph": (job(module, 3), None),
}
if before:
    lib = os.path.join(os.path.dirname(os.path.dirname(before)), "target/release/libmgkeepalive.so")
    cases["MgKeepAlive before"] = (job(before), lib)
envs = {}
for i, (name, (_, lib)) in enumerate(cases.items()):
    os.makedirs(f"{caches}/{i}")
    envs[name] = dict(os.environ, XDG_CACHE_HOME=f"{caches}/{i}")
    if lib: envs[name]["MGKEEPALIVE_LIBRARY"] = lib
    else: envs[name].pop("MGKEEPALIVE_LIBRARY", None)
def run(name):
    r = subprocess.run([pwsh, "-NoProfile", "-NonInteractive", "-Command", cases[name][0]], env=envs[name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or r.stderr.strip():
        sys.exit(f"case '{name}' failed ({r.returncode}): {r.stderr.strip()[:500]}")
for _ in range(2):
    for name in cases: run(name)
times = {k: [] for k in cases}
for _ in range(runs):
    for name in cases:
        t = time.perf_counter(); run(name); times[name].append((time.perf_counter() - t) * 1000)
med = {k: statistics.median(v) for k, v in times.items()}
bare = med["bare pwsh"]
for k, v in med.items():
    print(f"{k:22} median {v:7.1f} ms  over bare {v - bare:6.1f} ms  (min {min(times[k]):.1f}, max {max(times[k]):.1f}, n={runs})")
irm = med["Invoke-RestMethod"] - bare
for k in ("MgKeepAlive", "MgKeepAlive before"):
    if k in med:
        print(f"{k}: {med[k] - bare:.1f} ms over bare pwsh = {(med[k] - bare) / irm:.2f}x the one-liner's {irm:.1f} ms (goal <= 2x)")
PY
