#Requires -Version 7.4
<#
.SYNOPSIS
    One keep-alive, warm: Invoke-MgKeepCommunicationCallAlive vs the same request with
    Invoke-RestMethod, timed one call at a time, interleaved (the order alternates every
    iteration), after a warm-up. Reports the median and the 10th/90th percentiles of each.
.PARAMETER EmulatorUrl
    Base URL of a running graph-emulator (bench/pwsh-bench.sh starts one).
#>
[CmdletBinding()]
param([Parameter(Mandatory)][string] $EmulatorUrl, [int] $Count = 2000, [int] $Warmup = 50)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '..' 'pwsh' 'MgKeepAlive') -Force
$null = Add-MgEnvironment -Name Bench -AzureADEndpoint $EmulatorUrl -GraphEndpoint $EmulatorUrl
Connect-MgGraph -AccessToken (ConvertTo-SecureString 'bench-token' -AsPlainText -Force) -Environment Bench -NoWelcome
$headers = @{ Authorization = 'Bearer bench-token' }
$n = $Count + $Warmup
$ids = (Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls" -ContentType application/json -Body "{`"count`":$n}").ids

$cmdlet = [double[]]::new($Count)
$irm = [double[]]::new($Count)
$tick = 1000.0 / [Diagnostics.Stopwatch]::Frequency
for ($i = 0; $i -lt $n; $i++) {
    $id = $ids[$i]
    $uri = "$EmulatorUrl/v1.0/communications/calls/$([uri]::EscapeDataString($id))/keepAlive"
    foreach ($which in $(if ($i % 2) { 'cmdlet', 'irm' } else { 'irm', 'cmdlet' })) {
        $t = [Diagnostics.Stopwatch]::GetTimestamp()
        if ($which -eq 'cmdlet') {
            $null = Invoke-MgKeepCommunicationCallAlive -CallId $id
        } else {
            $null = Invoke-RestMethod -Method Post -Uri $uri -Headers $headers
        }
        $ms = ([Diagnostics.Stopwatch]::GetTimestamp() - $t) * $tick
        if ($i -ge $Warmup) {
            if ($which -eq 'cmdlet') { $cmdlet[$i - $Warmup] = $ms } else { $irm[$i - $Warmup] = $ms }
        }
    }
}

function Get-Percentile([double[]] $values, [double] $p) {
    $sorted = [double[]]$values.Clone(); [array]::Sort($sorted)
    $sorted[[math]::Min($sorted.Length - 1, [math]::Floor($p * ($sorted.Length - 1) + 0.5))]
}
$cm = Get-Percentile $cmdlet 0.5; $im = Get-Percentile $irm 0.5
'one warm keep-alive, {0:N0} interleaved pairs after {1} warm-up pairs:' -f $Count, $Warmup
'  cmdlet            median {0:N3} ms  (p10 {1:N3}, p90 {2:N3})' -f $cm, (Get-Percentile $cmdlet 0.1), (Get-Percentile $cmdlet 0.9)
'  Invoke-RestMethod median {0:N3} ms  (p10 {1:N3}, p90 {2:N3})' -f $im, (Get-Percentile $irm 0.1), (Get-Percentile $irm 0.9)
'  cmdlet / Invoke-RestMethod = {0:N2} (goal: <= 1, the cmdlet is not slower); Invoke-RestMethod / cmdlet = {1:N2}' -f ($cm / $im), ($im / $cm)
Disconnect-MgGraph | Out-Null
