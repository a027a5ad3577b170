#Requires -Version 7.4
<#
.SYNOPSIS
    Piped ids in a fresh process (issue 11's target): import, connect, 1,000 warm-up items, then
    10,000 distinct ids piped once (`$ids | Invoke-MgKeepCommunicationCallAlive`), timed. Run it
    several times (each run is a new pwsh): bash bench/pwsh-bench.sh fresh-bulk.ps1 [-Count 10000]
    [-ModulePath dir] (another module, e.g. an older checkout, against the same library). Also
    prints the pwsh process's CPU time for the timed run: on a loaded machine the engine's and
    the emulator's share of two cores caps the rate, and the CPU per item shows the module's cost.
.PARAMETER EmulatorUrl
    Base URL of a running graph-emulator (bench/pwsh-bench.sh starts one).
#>
[CmdletBinding()]
param([Parameter(Mandatory)][string] $EmulatorUrl, [int] $Count = 10000, [int] $Warmup = 1000, [string] $ModulePath = (Join-Path $PSScriptRoot '..' 'pwsh' 'MgKeepAlive'))

$ErrorActionPreference = 'Stop'
Import-Module $ModulePath -Force
$null = Add-MgEnvironment -Name Bench -AzureADEndpoint $EmulatorUrl -GraphEndpoint $EmulatorUrl
Connect-MgGraph -AccessToken (ConvertTo-SecureString 'bench-token' -AsPlainText -Force) -Environment Bench -NoWelcome
$all = [string[]](Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls" -ContentType application/json -Body "{`"count`":$($Count + $Warmup)}").ids
$warm = $all[0..($Warmup - 1)]
$ids = $all[$Warmup..($all.Length - 1)]
$null = $warm | Invoke-MgKeepCommunicationCallAlive
$process = [Diagnostics.Process]::GetCurrentProcess()
$cpu = $process.TotalProcessorTime
# The pipeline thread's own CPU time (Linux: /proc/thread-self/schedstat, nanoseconds on CPU):
# PowerShell's share, without the engine's and the HTTP client's threads.
$threadStat = '/proc/thread-self/schedstat'
$threadCpu = if ([IO.File]::Exists($threadStat)) { [long]([IO.File]::ReadAllText($threadStat).Split(' ')[0]) } else { $null }
$sw = [Diagnostics.Stopwatch]::StartNew()
$null = $ids | Invoke-MgKeepCommunicationCallAlive
$sw.Stop()
$process.Refresh()
$cpuMs = ($process.TotalProcessorTime - $cpu).TotalMilliseconds
$threadUs = if ($null -ne $threadCpu) { ([long]([IO.File]::ReadAllText($threadStat).Split(' ')[0]) - $threadCpu) / 1000.0 / $Count } else { [double]::NaN }
foreach ($id in $ids[0, [int]($ids.Length / 2), -1]) {
    $state = Invoke-RestMethod "$EmulatorUrl/_emulator/calls/$([uri]::EscapeDataString($id))"
    if ($state.keepAliveCount -ne 1) { throw "call $id has $($state.keepAliveCount) keep-alives, expected 1" }
}
'fresh process, {0:N0} piped ids after {1:N0} warm-up items: {2:N0} keep-alives/s ({3:N0} ms; pwsh process CPU {4:N0} ms = {5:N1} us per item, PowerShell and engine; pipeline thread {6:N1} us per item)' -f $Count, $Warmup, ($Count / $sw.Elapsed.TotalSeconds), $sw.Elapsed.TotalMilliseconds, $cpuMs, ($cpuMs * 1000 / $Count), $threadUs
Disconnect-MgGraph | Out-Null
