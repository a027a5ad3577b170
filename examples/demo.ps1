#Requires -Version 7.4
<#
.SYNOPSIS
    The README's demo: a whole call's life against the Graph emulator. One Connect-MgGraph; the call
    is created, kept alive, read, kept alive from the pipeline and ended; the keep-alive of the
    ended call shows the 404 error record; Disconnect-MgGraph.
.PARAMETER EmulatorUrl
    Base URL of a running graph-emulator (examples/demo.sh starts one).
.PARAMETER MicrosoftModules
    A folder holding Microsoft's Microsoft.Graph.Authentication and Microsoft.Graph.CloudCommunications
    (demo.sh extracts them from ../shared/peers when present). The call is then created, read and
    ended with Microsoft's New-, Get- and Remove-MgCommunicationCall next to MgKeepAlive, as in a
    real script; without it, with Invoke-RestMethod on the same Graph requests.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $EmulatorUrl,
    [string] $MicrosoftModules
)

$ErrorActionPreference = 'Stop'
$useMicrosoft = [bool]$MicrosoftModules
if ($useMicrosoft) {
    # As when both are installed: PowerShell auto-loads Microsoft's modules on their first command.
    $env:PSModulePath = $MicrosoftModules + [System.IO.Path]::PathSeparator + $env:PSModulePath
}
Import-Module (Join-Path $PSScriptRoot '..' 'pwsh' 'MgKeepAlive') -Force

# Point the modules at the emulator exactly as a script would at a national cloud.
$null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $EmulatorUrl -GraphEndpoint $EmulatorUrl

# An app-only access token. Microsoft's module reads the tenant (tid) and app (appid) from it, so
# it is shaped as a JWT; the emulator accepts any token until one is registered.
function ConvertTo-Base64Url([string] $Text) {
    [Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($Text)).TrimEnd('=').Replace('+', '-').Replace('/', '_')
}
$jwt = (ConvertTo-Base64Url '{"typ":"JWT","alg":"RS256"}') + '.' +
    (ConvertTo-Base64Url '{"aud":"https://graph.microsoft.com","tid":"6babcaad-604b-40ac-a9d7-9fd97c0b779f","appid":"3f0c2a9e-5d7b-4c1e-9a6f-2b8d4e7c1a05","roles":["Calls.Initiate.All"],"exp":4102444800}') + '.ZGVtbw'
$token = ConvertTo-SecureString $jwt -AsPlainText -Force
Connect-MgGraph -AccessToken $token -Environment Emulator -NoWelcome
Get-MgContext | Format-List ClientId, TenantId, AuthType, Environment

$body = @{
    '@odata.type'       = '#microsoft.graph.call'
    callbackUri         = 'https://bot.contoso.com/api/calls'
    requestedModalities = @('audio')
    mediaConfig         = @{ '@odata.type' = '#microsoft.graph.serviceHostedMediaConfig' }
    targets             = @(@{ '@odata.type' = '#microsoft.graph.invitationParticipantInfo'
            identity = @{ '@odata.type' = '#microsoft.graph.identitySet'; application = @{ '@odata.type' = '#microsoft.graph.identity'; id = 'c6e5f2c8-6b1d-4a8e-9f3a-2d7b1e0c4f59' } } })
}
$calls = "$EmulatorUrl/v1.0/communications/calls"
$authorization = @{ Authorization = "Bearer $jwt" }

"1. Create the call$(if ($useMicrosoft) { " (Microsoft's New-MgCommunicationCall, auto-loaded: it finds the connection)" } else { ' (POST /communications/calls)' })"
$call = if ($useMicrosoft) { New-MgCommunicationCall -BodyParameter $body }
else { Invoke-RestMethod -Method Post $calls -Headers $authorization -ContentType application/json -Body (ConvertTo-Json $body -Depth 10) }
$callId = $call.Id
"   -> call $callId"

"2. Keep it alive (MgKeepAlive's Invoke-MgKeepCommunicationCallAlive)"
$kept = Invoke-MgKeepCommunicationCallAlive -CallId $callId -PassThru -ResponseHeadersVariable headers
"   -> $kept (request-id $($headers['request-id']))"

"3. Read it$(if ($useMicrosoft) { " (Microsoft's Get-MgCommunicationCall)" } else { ' (GET /communications/calls/{id})' }) and pipe it into the keep-alive"
$read = if ($useMicrosoft) { Get-MgCommunicationCall -CallId $callId } else { Invoke-RestMethod $calls/$callId -Headers $authorization }
"   -> state $($read.State), kept alive: $($read | Invoke-MgKeepCommunicationCallAlive -PassThru)"

"4. End it$(if ($useMicrosoft) { " (Microsoft's Remove-MgCommunicationCall)" } else { ' (DELETE /communications/calls/{id})' })"
if ($useMicrosoft) { Remove-MgCommunicationCall -CallId $callId } else { $null = Invoke-RestMethod -Method Delete $calls/$callId -Headers $authorization }

"5. Keep the ended call alive: Graph answers 404, the bot cleans up"
Invoke-MgKeepCommunicationCallAlive -CallId $callId -ErrorAction SilentlyContinue -ErrorVariable failure
$err = $failure[0]
"   -> ErrorId: $($err.FullyQualifiedErrorId)  Category: $($err.CategoryInfo.Category)  Target: $($err.TargetObject)"
"   -> Status: $([int]$err.Exception.StatusCode)  Message: $($err.Exception.Message)"
""
$err.ErrorDetails.Message

"6. Disconnect-MgGraph$(if ($useMicrosoft) { ' (signs both modules out)' })"
$null = Disconnect-MgGraph
"   -> connected: $([bool](Get-MgContext))$(if ($useMicrosoft) { ", Microsoft's module connected: $([bool](Microsoft.Graph.Authentication\Get-MgContext))" })"
