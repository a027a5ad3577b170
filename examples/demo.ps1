#Requires -Version 7.4
<#
.SYNOPSIS
    The README's demo: keeps a call alive against the Graph emulator, then shows an ended call's error.
.PARAMETER EmulatorUrl
    Base URL of a running graph-emulator (examples/demo.sh starts one).
#>
[CmdletBinding()]
param([Parameter(Mandatory)][string] $EmulatorUrl)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '..' 'pwsh' 'MgKeepAlive') -Force

# Point the module at the emulator exactly as a script would at a national cloud.
$null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $EmulatorUrl -GraphEndpoint $EmulatorUrl
$token = ConvertTo-SecureString 'demo-access-token' -AsPlainText -Force
Connect-MgGraph -AccessToken $token -Environment Emulator -NoWelcome
Get-MgContext | Format-List ClientId, AuthType, Environment

# A call the bot holds (the emulator's control API stands in for Teams placing the call).
$callId = (Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls" -ContentType application/json -Body '{"count":1}').ids[0]

"Keeping call $callId alive:"
$kept = Invoke-MgKeepCommunicationCallAlive -CallId $callId -PassThru -ResponseHeadersVariable headers -Verbose
"  -> $kept (request-id $($headers['request-id']))"

# The call ends (hang-up, or no keep-alive for 45 minutes): Graph answers 404 and the bot cleans up.
$null = Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls/$callId/end"
"Keeping the ended call alive:"
Invoke-MgKeepCommunicationCallAlive -CallId $callId -ErrorAction SilentlyContinue -ErrorVariable failure
$err = $failure[0]
"  -> ErrorId: $($err.FullyQualifiedErrorId)  Category: $($err.CategoryInfo.Category)  Target: $($err.TargetObject)"
"  -> Status: $($err.Exception.StatusCode)  Message: $($err.Exception.Message)"
""
$err.ErrorDetails.Message

Disconnect-MgGraph | Out-Null
