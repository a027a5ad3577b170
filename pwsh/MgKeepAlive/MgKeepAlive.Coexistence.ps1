# MgKeepAlive next to Microsoft's Graph modules: one sign-in for both.
# Dot-sourced into the module's script scope by Import-MgkaCoexistence (MgKeepAlive.psm1) the first
# time MgKeepAlive meets Microsoft.Graph.Authentication: a Connect-MgGraph, Disconnect-MgGraph or
# environment command while it is loaded, or the command-lookup hook seeing one of Microsoft's
# commands. Scripts that never load Microsoft's modules never load this file.
#
# MgKeepAlive's Connect-MgGraph, Get-MgContext and Disconnect-MgGraph are functions, so they win
# over Microsoft's compiled cmdlets of the same names whatever the import order: they run for
# both. When Microsoft.Graph.Authentication is loaded, Connect-MgGraph signs it in too, with the
# same parameters. When it is not (yet), the parameters are kept ($script:MicrosoftReplay, with
# the SecureString, PSCredential or certificate object as given) until the hook sees the first of
# Microsoft's commands, which then finds the connection; they are dropped once handed over, and
# on Disconnect-MgGraph.

# The parameters of MgKeepAlive's Connect-MgGraph that Microsoft's takes as they are.
$script:MicrosoftConnectParameters = @(
    'ClientId', 'TenantId', 'CertificateSubjectName', 'CertificateThumbprint', 'SendCertificateChain', 'Certificate',
    'ClientSecretCredential', 'AccessToken', 'ContextScope', 'EnvironmentVariable', 'Identity', 'Environment', 'ClientTimeout'
)

function script:Test-MgkaMicrosoftLoaded {
    # Microsoft.Graph.Authentication is imported in this session (Get-Module: microseconds, no
    # command discovery).
    $null -ne (Get-Module -Name Microsoft.Graph.Authentication)
}

function script:Get-MgkaMicrosoftContext {
    # Microsoft's AuthContext, or $null; read from its session object, not through its
    # Get-MgContext, so no command lookup (and no replay) happens.
    [Microsoft.Graph.PowerShell.Authentication.GraphSession]::Instance.AuthContext
}

function script:New-MgkaMicrosoftConnectParameters {
    # The parameters for Microsoft.Graph.Authentication\Connect-MgGraph from MgKeepAlive's bound
    # ones. -CertificatePath (MgKeepAlive's extension) becomes -Certificate with the certificate
    # read from the file ($Certificate, kept until Disconnect-MgGraph); -ClientId with
    # -ClientSecretCredential becomes the credential's user name. The welcome is MgKeepAlive's, so
    # Microsoft's is always -NoWelcome.
    param([System.Collections.Generic.IDictionary[string, object]] $Bound, [AllowNull()] $Certificate)
    $parameters = [ordered]@{}
    foreach ($name in $script:MicrosoftConnectParameters) {
        if ($Bound.ContainsKey($name)) { $parameters[$name] = $Bound[$name] }
    }
    if ($Bound.ContainsKey('CertificatePath')) { $parameters['Certificate'] = $Certificate }
    if ($Bound.ContainsKey('ClientSecretCredential') -and $parameters.Contains('ClientId')) {
        # Microsoft's secret sign-in takes the client id only as the credential's user name.
        $parameters['ClientSecretCredential'] = [pscredential]::new($parameters['ClientId'], $Bound['ClientSecretCredential'].Password)
        $parameters.Remove('ClientId')
    }
    $parameters['NoWelcome'] = $true
    $parameters
}

function script:Sync-MgkaMicrosoftEnvironment {
    # Makes every user-defined environment of MgKeepAlive exist, with the same endpoints, in
    # Microsoft.Graph.Authentication (which keeps them in ~/.mg/mg.context.json, as its own
    # Add-MgEnvironment does), so Connect-MgGraph -Environment works for both.
    $result = Invoke-MgkaNative EnvironmentList
    if ($result.Status -ne $script:MGKA_OK) { return }
    foreach ($entry in (ConvertFrom-MgkaJson $result.Json)) {
        $environment = ConvertTo-MgkaEnvironment $entry
        if ($environment.Type -ne 'User-defined') { continue }
        Set-MgkaMicrosoftEnvironment -Name $environment.Name -AzureADEndpoint $environment.AzureADEndpoint -GraphEndpoint $environment.GraphEndpoint
    }
}

function script:Set-MgkaMicrosoftEnvironment {
    # Adds or changes one environment in Microsoft.Graph.Authentication; throws its error.
    param([string] $Name, [string] $AzureADEndpoint, [string] $GraphEndpoint)
    $existing = Microsoft.Graph.Authentication\Get-MgEnvironment -ErrorAction Ignore | Where-Object Name -EQ $Name
    if (-not $existing) {
        $null = Microsoft.Graph.Authentication\Add-MgEnvironment -Name $Name -AzureADEndpoint $AzureADEndpoint -GraphEndpoint $GraphEndpoint -ErrorAction Stop
    } elseif ($existing.AzureADEndpoint -ne $AzureADEndpoint -or $existing.GraphEndpoint -ne $GraphEndpoint) {
        $null = Microsoft.Graph.Authentication\Set-MgEnvironment -Name $Name -AzureADEndpoint $AzureADEndpoint -GraphEndpoint $GraphEndpoint -ErrorAction Stop
    }
}

function script:Remove-MgkaMicrosoftEnvironment {
    # Removes one environment from Microsoft.Graph.Authentication, if it has it; throws its error.
    param([string] $Name)
    if (Microsoft.Graph.Authentication\Get-MgEnvironment -ErrorAction Ignore | Where-Object Name -EQ $Name) {
        $null = Microsoft.Graph.Authentication\Remove-MgEnvironment -Name $Name -ErrorAction Stop
    }
}

function script:Invoke-MgkaMicrosoftForward {
    # Runs $Action (a call of Microsoft's command) when Microsoft.Graph.Authentication is loaded;
    # its failure becomes a non-terminating error that says MgKeepAlive's part was done.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string] $Command, [scriptblock] $Action)
    if (-not (Test-MgkaMicrosoftLoaded)) { return }
    try {
        & $Action
    } catch {
        $Cmdlet.WriteError([System.Management.Automation.ErrorRecord]::new(
                [System.InvalidOperationException]::new("MgKeepAlive's $Command succeeded, Microsoft.Graph.Authentication's failed: $($_.Exception.Message)", $_.Exception),
                'MicrosoftGraphAuthenticationFailed', $_.CategoryInfo.Category, $_.TargetObject))
    }
}

function script:Connect-MgkaMicrosoft {
    # Signs Microsoft.Graph.Authentication in with $Parameters (after giving it MgKeepAlive's
    # user-defined environments). Throws Microsoft's error.
    param([System.Collections.IDictionary] $Parameters)
    Sync-MgkaMicrosoftEnvironment
    if ($script:MicrosoftRequestContext.Count -gt 0) {
        $settings = $script:MicrosoftRequestContext
        $null = Microsoft.Graph.Authentication\Set-MgRequestContext @settings -ErrorAction Stop
    }
    Microsoft.Graph.Authentication\Connect-MgGraph @Parameters -ErrorAction Stop
}

function script:Disconnect-MgkaMicrosoft {
    # Signs Microsoft.Graph.Authentication out if it is connected; returns its closed context.
    if (-not (Test-MgkaMicrosoftLoaded) -or $null -eq (Get-MgkaMicrosoftContext)) { return }
    Microsoft.Graph.Authentication\Disconnect-MgGraph -ErrorAction Stop
}

function script:Clear-MgkaMicrosoftReplay {
    # Forgets the kept sign-in parameters and disposes a certificate MgKeepAlive read from a file
    # for Microsoft's module.
    $script:MicrosoftReplay = $null
    if ($script:MicrosoftCertificate) { $script:MicrosoftCertificate.Dispose(); $script:MicrosoftCertificate = $null }
}

function script:Complete-MgkaMicrosoftConnect {
    # The part of Connect-MgGraph after MgKeepAlive's own sign-in succeeded, when Microsoft's
    # module is loaded (else Connect-MgGraph keeps the parameters in $script:MicrosoftReplay for
    # when it loads): signs it in now. If Microsoft's sign-in fails, MgKeepAlive signs out again
    # and the error says which sign-in failed.
    param(
        [System.Management.Automation.PSCmdlet] $Cmdlet,
        [System.Collections.Generic.IDictionary[string, object]] $Bound,
        [AllowNull()] [System.Security.Cryptography.X509Certificates.X509Certificate2] $FileCertificate
    )
    Clear-MgkaMicrosoftReplay
    $script:MicrosoftCertificate = $FileCertificate
    try {
        Connect-MgkaMicrosoft -Parameters (New-MgkaMicrosoftConnectParameters -Bound $Bound -Certificate $FileCertificate)
    } catch {
        $failure = $_
        $null = Invoke-MgkaNative Disconnect
        Clear-MgkaMicrosoftReplay
        $Cmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                [System.Security.Authentication.AuthenticationException]::new(
                    ("Microsoft.Graph.Authentication's sign-in failed: $($failure.Exception.Message) " +
                    "MgKeepAlive's sign-in had succeeded and was undone: neither module is connected."), $failure.Exception),
                "MicrosoftGraphAuthenticationSignInFailed,$($failure.FullyQualifiedErrorId)", $failure.CategoryInfo.Category, $failure.TargetObject))
    }
}

function script:Invoke-MgkaMicrosoftReplay {
    # Called by the command-lookup hook when one of Microsoft's commands is about to run while a
    # connection made before Microsoft.Graph.Authentication loaded is pending: signs it in now.
    # The parameters are dropped first, so the hook does not come back here (Microsoft's
    # Connect-MgGraph is itself looked up); a failure is written as a warning, once, and
    # Microsoft's command then fails as not connected.
    $replay = $script:MicrosoftReplay
    $script:MicrosoftReplay = $null
    if ($null -eq $replay -or -not (Test-MgkaMicrosoftLoaded)) { return }
    try {
        Connect-MgkaMicrosoft -Parameters (New-MgkaMicrosoftConnectParameters -Bound $replay.Bound -Certificate $replay.Certificate)
        Write-Verbose 'MgKeepAlive signed Microsoft.Graph.Authentication in with the parameters of Connect-MgGraph.'
    } catch {
        Write-Warning ("MgKeepAlive could not sign Microsoft.Graph.Authentication in with the parameters of the earlier Connect-MgGraph: " +
            "$($_.Exception.Message) Run Connect-MgGraph again to connect both modules.")
    }
}

function script:Get-MgkaMicrosoftConnectHint {
    # When MgKeepAlive is not connected but Microsoft.Graph.Authentication is (its Connect-MgGraph
    # was called module-qualified, or before MgKeepAlive was imported): the Connect-MgGraph line
    # that connects both, built from Microsoft's context. $null otherwise.
    if (-not (Test-MgkaMicrosoftLoaded)) { return $null }
    $context = Get-MgkaMicrosoftContext
    if ($null -eq $context) { return $null }
    $type = [string]$context.TokenCredentialType
    $line = switch ($type) {
        'ClientCertificate' {
            $which = if ($context.CertificateThumbprint) { "-CertificateThumbprint $($context.CertificateThumbprint)" }
            elseif ($context.CertificateSubjectName) { "-CertificateSubjectName '$($context.CertificateSubjectName)'" }
            else { '-Certificate $certificate' }
            "Connect-MgGraph -ClientId $($context.ClientId) -TenantId $($context.TenantId) $which"
        }
        # The client id goes in the credential's user name: -ClientId is not in the secret's set.
        'ClientSecret' { "Connect-MgGraph -TenantId $($context.TenantId) -ClientSecretCredential `$credential   # `$credential: user name $($context.ClientId), password the secret" }
        'UserProvidedAccessToken' { 'Connect-MgGraph -AccessToken $token' }
        'ManagedIdentity' { "Connect-MgGraph -Identity$(if ($context.ManagedIdentityId) { " -ClientId $($context.ManagedIdentityId)" })" }
        'EnvironmentVariable' { 'Connect-MgGraph -EnvironmentVariable' }
        default { $null }
    }
    if ($null -eq $line) {
        return ("Microsoft.Graph.Authentication is connected with a delegated (user) sign-in ($type), which cannot keep calls alive, and MgKeepAlive is not. " +
            'Run Connect-MgGraph with an app-only credential (-ClientSecretCredential, -CertificateThumbprint, -Identity, -AccessToken): it connects both modules.')
    }
    if ($context.Environment -and $context.Environment -ne 'Global') { $line += " -Environment $($context.Environment)" }
    "Only Microsoft.Graph.Authentication is connected (its Connect-MgGraph was called module-qualified, or before MgKeepAlive was imported). Run: $line -- MgKeepAlive's Connect-MgGraph connects both modules."
}

function script:Add-MgkaMicrosoftConnectHint {
    # Adds the hint above to a not-connected error record: the exception message stays Microsoft's
    # ('Authentication needed. ...'); the hint goes into ErrorDetails (shown instead) and
    # RecommendedAction.
    param([System.Management.Automation.ErrorRecord] $Record)
    $hint = Get-MgkaMicrosoftConnectHint
    if (-not $hint) { return }
    $Record.ErrorDetails = [System.Management.Automation.ErrorDetails]::new("$($Record.Exception.Message) $hint")
    $Record.ErrorDetails.RecommendedAction = $hint
}

function script:Select-MgkaKeepAliveCommand {
    # For the command-lookup hook: Microsoft's Invoke-MgKeepCommunicationCallAlive or
    # Invoke-MgBetaKeepCommunicationCallAlive (a script function of CloudCommunications, which
    # replaces MgKeepAlive's in the session when it is imported later) becomes MgKeepAlive's again,
    # unless the name was module-qualified.
    param([string] $Name, [System.Management.Automation.CommandLookupEventArgs] $Lookup)
    if ($Name.Contains('\')) { return }
    $own = $ExecutionContext.SessionState.Module.ExportedFunctions[$Lookup.Command.Name]
    if ($own) { $Lookup.Command = $own }
}
