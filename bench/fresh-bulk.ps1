#Requires -Version 7.4
<#
.SYNOPSIS
    Piped ids in a fresh process (issue 11's target): import, connect, 1,000 warm-up items, then
    10,000 distinct ids piped once (`$ids | Invoke-MgKeepCommunicationCallAlive`), timed. Run it
    several times (each run is a new pwsh): bash bench/pwsh-bench.sh fresh-bulk.ps1 [-Count 10000]
.PARAMETER EmulatorUrl
    Base URL of a running graph-emulator (bench/pwsh-bench.sh starts one).
#>
[CmdletBinding()]
param([Parameter(Mandatory)][string] $EmulatorUrl, [int] $Count = 10000, [int] $Warmup = 1000)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '..' 'pwsh' 'MgKeepAlive') -Force
$null = Add-MgEnvironment -Name Bench -AzureADEndpoint $EmulatorUrl -GraphEndpoint $EmulatorUrl
Connect-MgGraph -AccessToken (ConvertTo-SecureString 'bench-token' -AsPlainText -Force) -Environment Bench -NoWelcome
$all = [string[]](Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls" -ContentType application/json -Body "{`"count`":$($Count + $Warmup)}").ids
$warm = $all[0..($Warmup - 1)]
$ids = $all[$Warmup..($all.Length - 1)]
$null = $warm | Invoke-MgKeepCommunicationCallAlive
$sw = [Diagnostics.Stopwatch]::StartNew()
$null = $ids | Invoke-MgKeepCommunicationCallAlive
$sw.Stop()
foreach ($id in $ids[0, [int]($ids.Length / 2), -1]) {
    $state = Invoke-RestMethod "$EmulatorUrl/_emulator/calls/$([uri]::EscapeDataString($id))"
    if ($state.keepAliveCount -ne 1) { throw "call $id has $($state.keepAliveCount) keep-alives, expected 1" }
}
'fresh process, {0:N0} piped ids after {1:N0} warm-up items: {2:N0} keep-alives/s ({3:N0} ms)' -f $Count, $Warmup, ($Count / $sw.Elapsed.TotalSeconds), $sw.Elapsed.TotalMilliseconds
Disconnect-MgGraph | Out-Null
