#Requires -Version 7.4
<#
Run by Surface.Tests.ps1 in a fresh pwsh, once with Microsoft's modules and once with MgKeepAlive:
imports -Module, records what a script can observe of the commands both define, and writes it as
JSON to -OutFile. Against the emulator at -Url: the not-connected error, the welcome of
Connect-MgGraph -AccessToken, Get-MgContext, and the 404 error records of the keep-alive.
#>
param(
    [Parameter(Mandatory)][string] $Module,
    [Parameter(Mandatory)][string] $Url,
    [Parameter(Mandatory)][string] $OutFile,
    [Parameter(Mandatory)][string] $Token
)
$ErrorActionPreference = 'Stop'
Import-Module $Module

$shared = 'Connect-MgGraph', 'Disconnect-MgGraph', 'Get-MgContext', 'Get-MgEnvironment', 'Add-MgEnvironment',
'Set-MgEnvironment', 'Remove-MgEnvironment', 'Get-MgRequestContext', 'Set-MgRequestContext',
'Invoke-MgKeepCommunicationCallAlive', 'Invoke-MgBetaKeepCommunicationCallAlive'
$common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters

$commands = [ordered]@{}
foreach ($name in $shared) {
    $command = Get-Command -Name $name -CommandType Cmdlet, Function -ErrorAction Ignore | Select-Object -First 1
    if (-not $command) { continue }
    $parameters = [ordered]@{}
    foreach ($parameter in $command.Parameters.Values) {
        if ($parameter.Name -in $common) { continue }
        $sets = [ordered]@{}
        foreach ($attribute in $parameter.Attributes) {
            if ($attribute -isnot [System.Management.Automation.ParameterAttribute]) { continue }
            $sets[$attribute.ParameterSetName] = [ordered]@{
                Mandatory                       = $attribute.Mandatory
                Position                        = $attribute.Position
                ValueFromPipeline               = $attribute.ValueFromPipeline
                ValueFromPipelineByPropertyName = $attribute.ValueFromPipelineByPropertyName
                ValueFromRemainingArguments     = $attribute.ValueFromRemainingArguments
                DontShow                        = $attribute.DontShow
            }
        }
        $parameters[$parameter.Name] = [ordered]@{
            Type    = $parameter.ParameterType.FullName
            Aliases = @($parameter.Aliases | Sort-Object)
            Sets    = $sets
        }
    }
    $commands[$name] = [ordered]@{
        DefaultParameterSet = $command.DefaultParameterSet
        ParameterSets       = @($command.ParameterSets.Name | Sort-Object)
        WhatIf              = $command.Parameters.ContainsKey('WhatIf')
        Parameters          = $parameters
    }
}

function ConvertTo-ProbeRecord {
    param($Record)
    if (-not $Record) { return $null }
    [ordered]@{
        FullyQualifiedErrorId = $Record.FullyQualifiedErrorId
        Category              = [string]$Record.CategoryInfo.Category
        Activity              = $Record.CategoryInfo.Activity
        Reason                = $Record.CategoryInfo.Reason
        TargetName            = $Record.CategoryInfo.TargetName
        TargetType            = $Record.CategoryInfo.TargetType
        Message               = $Record.Exception.Message
        IsException           = $Record.Exception -is [System.Exception]
        Details               = if ($Record.ErrorDetails) { $Record.ErrorDetails.Message }
        RecommendedAction     = if ($Record.ErrorDetails) { $Record.ErrorDetails.RecommendedAction }
        # What a script sees with -ErrorAction Stop: a catchable record with the same id.
        Caught                = $null
    }
}

$result = [ordered]@{ Commands = $commands }

Invoke-MgKeepCommunicationCallAlive -CallId probe-call -ErrorVariable notConnected -ErrorAction SilentlyContinue
$result.NotConnected = ConvertTo-ProbeRecord $notConnected[0]

$null = Add-MgEnvironment -Name ProbeCloud -AzureADEndpoint $Url -GraphEndpoint $Url
$secureToken = ConvertTo-SecureString $Token -AsPlainText -Force
$information = $null
$output = @(Connect-MgGraph -AccessToken $secureToken -Environment ProbeCloud -InformationVariable information)
$result.WelcomeOutput = @($output | ForEach-Object { [ordered]@{ Type = $_.GetType().FullName; Text = [string]$_ } })
$result.WelcomeInformation = @($information | ForEach-Object { [string]$_ })
$null = Connect-MgGraph -AccessToken $secureToken -Environment ProbeCloud -NoWelcome

$context = Get-MgContext
$result.ContextProperties = @($context.PSObject.Properties.Name)
$result.ContextText = $context | Out-String -Width 250
$result.ContextTable = $context | Format-Table | Out-String -Width 250

Invoke-MgKeepCommunicationCallAlive -CallId probe-gone -ErrorVariable byId -ErrorAction SilentlyContinue
$result.NotFoundById = ConvertTo-ProbeRecord $byId[0]
try { Invoke-MgKeepCommunicationCallAlive -CallId probe-gone -ErrorAction Stop } catch { $result.NotFoundById.Caught = $_.FullyQualifiedErrorId }
@{ CallId = 'probe-gone' } | Invoke-MgKeepCommunicationCallAlive -ErrorVariable byIdentity -ErrorAction SilentlyContinue
$result.NotFoundByIdentity = ConvertTo-ProbeRecord $byIdentity[0]

$null = Disconnect-MgGraph
Disconnect-MgGraph -ErrorVariable disconnected -ErrorAction SilentlyContinue
$result.DisconnectNotConnected = ConvertTo-ProbeRecord $disconnected[0]

Set-Content -LiteralPath $OutFile -Value (ConvertTo-Json -InputObject $result -Depth 8) -Encoding utf8
