#Requires -Version 7.4
<#
.SYNOPSIS
    10,000 distinct calls kept alive once: the cmdlet's pipeline (`$ids | Invoke-MgKeepCommunicationCallAlive`)
    vs an Invoke-RestMethod loop vs ForEach-Object -Parallel -ThrottleLimit 8 with Invoke-RestMethod,
    each on fresh calls, each repeated (median). When the cmdlet has -ThrottleLimit, the pipeline is
    also measured at every level of -Levels (for bench/plot.py).
.PARAMETER EmulatorUrl
    Base URL of a running graph-emulator (bench/pwsh-bench.sh starts one).
.PARAMETER Json
    Optional file for the figures as JSON.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $EmulatorUrl,
    [int] $Count = 10000,
    [int] $Rounds = 3,
    [int] $SlowRounds = 3,
    [int[]] $Levels = @(1, 2, 4, 8, 16, 32, 64),
    [string] $Json
)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '..' 'pwsh' 'MgKeepAlive') -Force
$null = Add-MgEnvironment -Name Bench -AzureADEndpoint $EmulatorUrl -GraphEndpoint $EmulatorUrl
Connect-MgGraph -AccessToken (ConvertTo-SecureString 'bench-token' -AsPlainText -Force) -Environment Bench -NoWelcome
$headers = @{ Authorization = 'Bearer bench-token' }
$hasThrottleLimit = (Get-Command Invoke-MgKeepCommunicationCallAlive).Parameters.ContainsKey('ThrottleLimit')

function New-Calls([int] $n) {
    $null = Invoke-RestMethod -Method Delete "$EmulatorUrl/_emulator/calls"
    [string[]](Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls" -ContentType application/json -Body "{`"count`":$n}").ids
}
# Every call of the run got exactly one keep-alive (a sample of them is checked).
function Assert-KeptOnce([string[]] $ids) {
    foreach ($id in $ids[0, [int]($ids.Length / 2), -1]) {
        $state = Invoke-RestMethod "$EmulatorUrl/_emulator/calls/$([uri]::EscapeDataString($id))"
        if ($state.keepAliveCount -ne 1) { throw "call $id has $($state.keepAliveCount) keep-alives, expected 1" }
    }
}
# Median keep-alives/s of $rounds runs of $body on fresh ids ($args[0] inside the block).
function Measure-Rate([string] $name, [int] $rounds, [scriptblock] $body) {
    $rates = foreach ($r in 1..$rounds) {
        $ids = New-Calls $Count
        [GC]::Collect()
        $sw = [Diagnostics.Stopwatch]::StartNew()
        & $body $ids
        $sw.Stop()
        Assert-KeptOnce $ids
        $Count / $sw.Elapsed.TotalSeconds
    }
    $sorted = [double[]]@($rates | Sort-Object)
    $median = if ($sorted.Length % 2) { $sorted[($sorted.Length - 1) / 2] } else { ($sorted[$sorted.Length / 2 - 1] + $sorted[$sorted.Length / 2]) / 2 }
    '  {0,-44} {1,8:N0} keep-alives/s  ({2:N1} s per {3:N0}; runs: {4})' -f $name, $median, ($Count / $median), $Count, (($rates | ForEach-Object { '{0:N0}' -f $_ }) -join ', ') | Write-Host
    $median
}

# Warm every path (JIT, connection pools, runspace pool).
# The pipeline's warm-up: four full-size runs with a pause after each. .NET's tiered JIT (tier 0,
# then instrumented, then optimised code, each step ~100 ms after the last burst of new code)
# makes the pipeline about 3x faster over its first three runs of 10,000 in a process (43,000/s,
# 70,000/s, 68,000/s, then 130,000-155,000/s). The first, cold run is printed too: a script that
# starts pwsh and pipes its ids once sees that one; a bot process that keeps calls alive all day
# sees the warm figure.
$cold = $null
foreach ($round in 1..4) {
    $warmIds = New-Calls $Count
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $null = $warmIds | Invoke-MgKeepCommunicationCallAlive
    if ($round -eq 1) { $cold = $Count / $sw.Elapsed.TotalSeconds }
    Start-Sleep -Milliseconds 500
}
Write-Host ('  {0,-44} {1,8:N0} keep-alives/s  (the first run in this process, not warm)' -f 'cmdlet pipeline (default), cold', $cold)
$warm = New-Calls 200
foreach ($id in $warm[100..149]) { $null = Invoke-RestMethod -Method Post -Uri "$EmulatorUrl/v1.0/communications/calls/$id/keepAlive" -Headers $headers }
$warm[150..199] | ForEach-Object -ThrottleLimit 8 -Parallel { $null = Invoke-RestMethod -Method Post -Uri "$($using:EmulatorUrl)/v1.0/communications/calls/$_/keepAlive" -Headers $using:headers }

Write-Host ("{0:N0} distinct calls kept alive once, median of {1} runs ({2} for the Invoke-RestMethod ways); -ThrottleLimit {3}" -f $Count, $Rounds, $SlowRounds, $(if ($hasThrottleLimit) { 'present' } else { 'not present: the pipeline runs without it' }))
$pipeline = Measure-Rate 'cmdlet pipeline (default)' $Rounds { param($ids) $null = $ids | Invoke-MgKeepCommunicationCallAlive }
$loop = Measure-Rate 'Invoke-RestMethod loop' $SlowRounds {
    param($ids)
    foreach ($id in $ids) {
        $null = Invoke-RestMethod -Method Post -Uri "$EmulatorUrl/v1.0/communications/calls/$([uri]::EscapeDataString($id))/keepAlive" -Headers $headers
    }
}
$parallel = Measure-Rate 'ForEach-Object -Parallel -ThrottleLimit 8 + IRM' $SlowRounds {
    param($ids)
    $ids | ForEach-Object -ThrottleLimit 8 -Parallel {
        $null = Invoke-RestMethod -Method Post -Uri "$($using:EmulatorUrl)/v1.0/communications/calls/$([uri]::EscapeDataString($_))/keepAlive" -Headers $using:headers
    }
}
$levelRates = @()
if ($hasThrottleLimit) {
    foreach ($level in $Levels) {
        $rate = Measure-Rate "cmdlet pipeline -ThrottleLimit $level" $Rounds ([scriptblock]::Create("param(`$ids) `$null = `$ids | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit $level"))
        $levelRates += [ordered]@{ throttleLimit = $level; perSecond = $rate }
    }
}
Write-Host ('pipeline / loop = {0:N1}x (goal >= 20x); pipeline / ForEach-Object -Parallel = {1:N1}x; pipeline {2:N0}/s vs goal 10,000/s = {3:N2}' -f ($pipeline / $loop), ($pipeline / $parallel), $pipeline, ($pipeline / 10000))
if ($Json) {
    [ordered]@{
        count = $Count; hasThrottleLimit = $hasThrottleLimit; pipelineCold = $cold; pipelineDefault = $pipeline; loop = $loop; parallel8 = $parallel
        levels = $levelRates
    } | ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $Json
}
Disconnect-MgGraph | Out-Null
