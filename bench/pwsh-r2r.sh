#!/usr/bin/env bash
# Builds (when missing) a ReadyToRun-compiled pwsh 7.6.9 from NuGet packages and prints the path of
# its executable on stdout (all else goes to stderr), for:
#   PWSH=$(bash bench/pwsh-r2r.sh) bash bench/import.sh 15
#
# Why: the only pwsh here is the .NET global tool, whose System.Management.Automation.dll and the
# other PowerShell assemblies are IL only, so every code path pwsh runs at start-up (parsing and
# loading a module included) is JIT-compiled first. The pwsh of Microsoft's tar.gz/deb/msi packages
# is ReadyToRun-compiled (precompiled native code inside the assemblies), so start-up figures taken
# on the global tool overstate what users see. This pwsh is the project bench/pwsh-r2r (pwsh's own
# entry point over the Microsoft.PowerShell.SDK 7.6.9 package), published framework-dependent with
# PublishReadyToRun=true: the SDK fetches its crossgen2 package from NuGet and precompiles every
# assembly of the app, PowerShell's included.
#
# Output (nothing lands in the repository):
#   ${XDG_CACHE_HOME:-~/.cache}/mgkeepalive-bench/pwsh-r2r/   (or $PWSH_R2R_DIR)
#     out/pwsh     the executable; out/ is its $PSHOME, with $PSHOME/Modules
#     obj/ bin/    MSBuild's intermediate and build output, kept for a quicker rebuild
# The build is redone only when bench/pwsh-r2r/* or this script changed (hash in out/.stamp), or
# with --rebuild. It takes ~1-2 minutes on 2 cores and needs NuGet; it exits non-zero (with the
# reason on stderr) when it cannot build.
#
# $PSHOME/Modules: the SDK package brings pwsh's own modules (Microsoft.PowerShell.Utility,
# .Management, .Security, .Host; the project copies them into place). The modules a full pwsh ships
# besides those (PSReadLine, PowerShellGet, PackageManagement, Microsoft.PowerShell.PSResourceGet,
# .ThreadJob, .Archive) come from the PowerShell Gallery, not NuGet; they are copied from the
# global tool's install of the same version when it is there, so both pwsh builds see the same
# module set. Without them the benchmark still works (it imports modules by path).
#
# Checks after a build (the build fails when one fails):
#   - ReadyToRun: the main PowerShell assemblies in out/ carry a ReadyToRun header, i.e. their CLI
#     header has a non-empty ManagedNativeHeader directory (read with
#     System.Reflection.PortableExecutable.PEReader, run by the new pwsh itself); the IL-only
#     assemblies of the NuGet package have none. The sizes are printed too (System.Management
#     .Automation.dll is ~7 MB as IL, ~18 MB with native code).
#   - it starts, reports 7.6.9, and ConvertTo-Json and Get-Module -ListAvailable work.
#   bash bench/pwsh-r2r.sh [--rebuild] [--check]     (--check: run the checks on an existing build)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$here/pwsh-r2r
version=7.6.9
dir=${PWSH_R2R_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mgkeepalive-bench/pwsh-r2r}
out=$dir/out
rebuild=0 check=0
for a in "$@"; do
  case $a in
    --rebuild) rebuild=1 ;;
    --check) check=1 ;;
    *) echo "usage: bash bench/pwsh-r2r.sh [--rebuild] [--check]" >&2; exit 2 ;;
  esac
done
log() { echo "pwsh-r2r: $*" >&2; }
die() { echo "pwsh-r2r: error: $*" >&2; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export POWERSHELL_TELEMETRY_OPTOUT=1 POWERSHELL_UPDATECHECK=Off

stamp=$(cat "$project/pwsh-r2r.csproj" "$project/Program.cs" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)

verify() {  # verify DIR: the checks described above
  local d=$1 res
  # shellcheck disable=SC2016  # PowerShell code, not bash
  res=$("$d/pwsh" -NoProfile -NonInteractive -Command '
    $ErrorActionPreference = "Stop"
    $bad = 0
    foreach ($n in "System.Management.Automation", "Microsoft.PowerShell.ConsoleHost",
                   "Microsoft.PowerShell.Commands.Utility", "Microsoft.PowerShell.Commands.Management",
                   "Microsoft.PowerShell.Security", "pwsh") {
      $p = Join-Path $PSHOME "$n.dll"
      $s = [IO.File]::OpenRead($p)
      try {
        $h = ([Reflection.PortableExecutable.PEReader]::new($s)).PEHeaders.CorHeader
        $r2r = $h.ManagedNativeHeaderDirectory.Size -gt 0
      } finally { $s.Dispose() }
      if (-not $r2r) { $bad++ }
      "{0,-45} {1,6:N1} MB  ReadyToRun: {2}" -f "$n.dll", ((Get-Item $p).Length / 1MB), $r2r
    }
    "PSVersion {0}; PSHOME {1}" -f $PSVersionTable.PSVersion, $PSHOME
    "ConvertTo-Json: " + (@{ ok = 1 } | ConvertTo-Json -Compress)
    "modules in PSHOME/Modules: " + ((Get-Module -ListAvailable | Where-Object ModuleBase -like "$PSHOME*" |
      Sort-Object Name | ForEach-Object Name) -join ", ")
    if ($bad) { throw "$bad assemblies without a ReadyToRun header" }
    if ($PSVersionTable.PSVersion.ToString() -ne "'"$version"'") { throw "not '"$version"'" }
  ' 2>&1) || { printf '%s\n' "$res" >&2; return 1; }
  printf '%s\n' "$res" | sed 's/^/pwsh-r2r:   /' >&2
}

if [[ $rebuild == 0 && -x $out/pwsh && $(cat "$out/.stamp" 2>/dev/null) == "$stamp" ]]; then
  if [[ $check == 1 ]]; then verify "$out" || die "checks failed for $out"; fi
  printf '%s\n' "$out/pwsh"
  exit 0
fi

command -v dotnet >/dev/null || die "dotnet (the .NET SDK) is not on PATH"
mkdir -p "$dir"
new=$dir/out.new
rm -rf "$new"
log "building a ReadyToRun pwsh $version from NuGet into $out (1-2 minutes) ..."
buildlog=$dir/build.log
if ! dotnet publish "$project/pwsh-r2r.csproj" -c Release -r linux-x64 --self-contained false \
    -p:PublishReadyToRun=true -p:BaseIntermediateOutputPath="$dir/obj/" -p:BaseOutputPath="$dir/bin/" \
    -o "$new" -nologo >"$buildlog" 2>&1; then
  tail -n 25 "$buildlog" >&2
  if grep -qE 'NU1301|NU1101|NU1102|Unable to load the service index|Failed to download' "$buildlog"; then
    die "dotnet publish failed: NuGet packages could not be fetched (is NuGet reachable?); log: $buildlog"
  fi
  die "dotnet publish failed; log: $buildlog"
fi
[[ -f $new/Modules/Microsoft.PowerShell.Utility/Microsoft.PowerShell.Utility.psd1 ]] \
  || die "the publish output has no Modules/Microsoft.PowerShell.Utility"

# The Gallery modules of a full pwsh, from the global tool of the same version when it is installed.
tool_modules=$(compgen -G "${DOTNET_CLI_HOME:-$HOME}/.dotnet/tools/.store/powershell/$version/powershell/$version/tools/*/any/unix/Modules" | head -n1 || true)
if [[ -n $tool_modules ]]; then
  for m in "$tool_modules"/*/; do
    m=${m%/}
    [[ -e $new/Modules/${m##*/} ]] || cp -R "$m" "$new/Modules/"
  done
  log "copied the Gallery modules of a full pwsh from $tool_modules"
else
  log "note: no PowerShell $version global tool found; \$PSHOME/Modules has only pwsh's own modules"
fi

verify "$new" || die "checks failed for the new build in $new (kept for a look)"
echo "$stamp" >"$new/.stamp"
rm -rf "$out"
mv "$new" "$out"
log "done: $out/pwsh"
printf '%s\n' "$out/pwsh"
