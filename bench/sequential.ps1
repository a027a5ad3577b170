#Requires -Version 7.4
<#
.SYNOPSIS
    1,000 sequential keep-alives against the emulator: Invoke-MgKeepCommunicationCallAlive vs the
    same request with Invoke-RestMethod, in one process, measured side by side.
.PARAMETER EmulatorUrl
    Base URL of a running graph-emulator (bench/sequential.sh starts one).
#>
[CmdletBinding()]
param([Parameter(Mandatory)][string] $EmulatorUrl, [int] $Count = 1000, [int] $Rounds = 3)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '..' 'pwsh' 'MgKeepAlive') -Force
$null = Add-MgEnvironment -Name Bench -AzureADEndpoint $EmulatorUrl -GraphEndpoint $EmulatorUrl
Connect-MgGraph -AccessToken (ConvertTo-SecureString 'bench-token' -AsPlainText -Force) -Environment Bench -NoWelcome
$ids = (Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls" -ContentType application/json -Body (@{ count = $Count } | ConvertTo-Json)).ids
$headers = @{ Authorization = 'Bearer bench-token' }

# Warm both paths (JIT, connection pool).
foreach ($id in $ids[0..9]) {
    Invoke-MgKeepCommunicationCallAlive -CallId $id
    $null = Invoke-RestMethod -Method Post -Uri "$EmulatorUrl/v1.0/communications/calls/$id/keepAlive" -Headers $headers
}

$results = foreach ($round in 1..$Rounds) {
    $cmdlet = Measure-Command { foreach ($id in $ids) { Invoke-MgKeepCommunicationCallAlive -CallId $id } }
    $irm = Measure-Command {
        foreach ($id in $ids) {
            $null = Invoke-RestMethod -Method Post -Uri "$EmulatorUrl/v1.0/communications/calls/$([uri]::EscapeDataString($id))/keepAlive" -Headers $headers
        }
    }
    [pscustomobject]@{ Round = $round; CmdletMs = $cmdlet.TotalMilliseconds; IrmMs = $irm.TotalMilliseconds }
}
$cmdletBest = ($results | Measure-Object CmdletMs -Minimum).Minimum
$irmBest = ($results | Measure-Object IrmMs -Minimum).Minimum
$results | Format-Table -AutoSize | Out-String | Write-Output
'{0:N0} sequential keep-alives, best of {1}: cmdlet {2:N0} ms ({3:N3} ms/call), Invoke-RestMethod {4:N0} ms ({5:N3} ms/call); cmdlet/irm = {6:N2}' -f `
    $Count, $Rounds, $cmdletBest, ($cmdletBest / $Count), $irmBest, ($irmBest / $Count), ($cmdletBest / $irmBest)
Disconnect-MgGraph | Out-Null
