#!/usr/bin/env bash
# Import overhead: `pwsh -NoProfile -Command 'Import-Module MgKeepAlive'` against a bare `pwsh`
# start, against importing an empty module (what any script module costs on this pwsh), and
# against a module holding only MgKeepAlive's exported command definitions (see below); and the
# import followed by a first command, which loads what the import leaves for later.
# Prints the median of N runs of each, interleaved so background noise hits all alike.
#   bash bench/import.sh [runs]
#   PWSH=$(bash bench/pwsh-r2r.sh) bash bench/import.sh [runs]
# PWSH selects the pwsh to measure (default: `pwsh` on PATH, here the .NET global tool, whose
# PowerShell assemblies are not ReadyToRun-compiled: all of pwsh's start-up code is JIT-compiled, so
# its figures overstate what users of Microsoft's tar.gz/deb/msi pwsh see; bench/pwsh-r2r.sh builds a
# ReadyToRun pwsh of the same version to measure that case).
# Each case gets its own XDG_CACHE_HOME: pwsh records a multicore-JIT start-up profile in
# $XDG_CACHE_HOME/powershell/ and replays it at the next start, so cases sharing one cache would each
# run with the previous case's profile. With one cache per case and 2 unmeasured warm-up runs of
# each, every case is measured in its steady state, as a user re-running the same command sees it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
runs=${1:-15}
eval "$(bash .ci/provision)"
cargo build --release -p mgkeepalive --quiet
pwsh=${PWSH:-pwsh}
command -v "$pwsh" >/dev/null || { echo "import.sh: PWSH=$pwsh is not an executable" >&2; exit 1; }
echo "import.sh: measuring $(command -v "$pwsh") ($("$pwsh" --version))" >&2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/Empty" && echo '' >"$tmp/Empty/Empty.psm1"
printf "@{ RootModule = 'Empty.psm1'; ModuleVersion = '1.0.0'; FunctionsToExport = @() }\n" >"$tmp/Empty/Empty.psd1"
# "commands only": MgKeepAlive's manifest and format file with a .psm1 that holds nothing but the
# exported commands' definitions (help, param blocks, bodies), taken from the real .psm1 with the
# PowerShell parser: no private helpers, no import-time code. What the module's public surface
# alone costs to import on this pwsh, a floor for any design that defines the commands in script.
mkdir -p "$tmp/CommandsOnly/MgKeepAlive"
cp pwsh/MgKeepAlive/MgKeepAlive.psd1 pwsh/MgKeepAlive/MgKeepAlive.Format.ps1xml "$tmp/CommandsOnly/MgKeepAlive/"
cat >"$tmp/commands-only.ps1" <<'PS1'
param([string] $Source, [string] $Manifest, [string] $Target)
$ast = [System.Management.Automation.Language.Parser]::ParseFile($Source, [ref]$null, [ref]$null)
$exported = (Import-PowerShellDataFile $Manifest).FunctionsToExport
$commands = $ast.EndBlock.Statements | Where-Object { $_ -is [System.Management.Automation.Language.FunctionDefinitionAst] -and $_.Name -in $exported }
Set-Content -LiteralPath $Target -Value (($commands | ForEach-Object { $_.Extent.Text }) -join "`n`n")
PS1
"$pwsh" -NoProfile -NonInteractive -File "$tmp/commands-only.ps1" pwsh/MgKeepAlive/MgKeepAlive.psm1 pwsh/MgKeepAlive/MgKeepAlive.psd1 "$tmp/CommandsOnly/MgKeepAlive/MgKeepAlive.psm1"

python3 - "$runs" "$repo/pwsh/MgKeepAlive" "$tmp/Empty" "$pwsh" "$tmp/cache" "$tmp/CommandsOnly/MgKeepAlive" <<'PY'
import os, statistics, subprocess, sys, time
runs, module, empty, pwsh, caches, commands = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
cases = {
    "bare pwsh": "$null",
    "empty module": f"Import-Module '{empty}'",
    "commands only": f"Import-Module '{commands}'",
    "MgKeepAlive": f"Import-Module '{module}'",
    # the import plus a first command: the private helpers, the library and its interop type
    "first command": f"Import-Module '{module}'; $null = Get-MgEnvironment",
}
# one XDG_CACHE_HOME (so one multicore-JIT start-up profile) per case; see the top of the script
envs = {}
for i, name in enumerate(cases):
    os.makedirs(f"{caches}/{i}")
    envs[name] = dict(os.environ, XDG_CACHE_HOME=f"{caches}/{i}")
def run(name):
    subprocess.run([pwsh, "-NoProfile", "-NonInteractive", "-Command", cases[name]], env=envs[name], check=True)
for _ in range(2):  # unmeasured warm-up: record each case's profile, then replay it once
    for name in cases:
        run(name)
times = {k: [] for k in cases}
for _ in range(runs):
    for name in cases:
        t = time.perf_counter()
        run(name)
        times[name].append((time.perf_counter() - t) * 1000)
med = {k: statistics.median(v) for k, v in times.items()}
for k, v in med.items():
    print(f"{k:14} median {v:7.1f} ms  (min {min(times[k]):.1f}, max {max(times[k]):.1f}, n={runs})")
print(f"added by Import-Module MgKeepAlive: {med['MgKeepAlive'] - med['bare pwsh']:.1f} ms "
      f"(an empty module adds {med['empty module'] - med['bare pwsh']:.1f} ms; "
      f"the exported commands' definitions alone {med['commands only'] - med['bare pwsh']:.1f} ms)")
print(f"import and a first command (Get-MgEnvironment): {med['first command'] - med['bare pwsh']:.1f} ms")
PY
