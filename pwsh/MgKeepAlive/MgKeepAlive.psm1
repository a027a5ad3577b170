#Requires -Version 7.4
# MgKeepAlive: a thin PowerShell layer over the libmgkeepalive C ABI (include/mgkeepalive.h).
# This file defines the commands: they bind parameters, ask ShouldProcess, and call the private
# helpers of MgKeepAlive.Private.ps1 (loaded by the first command, see Import-MgkaPrivate), which
# build error records and format output; the work happens in the native library.
Set-StrictMode -Version 3.0

# Set by MgKeepAlive.Private.ps1 once its helpers are defined.
$script:PrivateLoaded = $false

function Import-MgkaPrivate {
    # Defines the private helpers (MgKeepAlive.Private.ps1) in the module's script scope, once per
    # session: each command starts with "if (-not $script:PrivateLoaded) { Import-MgkaPrivate }".
    . "$PSScriptRoot/MgKeepAlive.Private.ps1"
}

function Import-MgkaCoexistence {
    # Defines the helpers for Microsoft's Graph modules (MgKeepAlive.Coexistence.ps1), once.
    if (-not $script:PrivateLoaded) { Import-MgkaPrivate }
    if (-not $script:CoexistenceLoaded) {
        . "$PSScriptRoot/MgKeepAlive.Coexistence.ps1"
        $script:CoexistenceLoaded = $true
    }
}

#region Public commands ---------------------------------------------------------------------------

function Invoke-MgKeepCommunicationCallAlive {
    # Help: en-US/MgKeepAlive-help.xml (MAML), shared by the v1.0 and beta commands' texts.
    <# .EXTERNALHELP MgKeepAlive-help.xml #>
    [CmdletBinding(DefaultParameterSetName = 'Keep', SupportsShouldProcess, ConfirmImpact = 'Medium', PositionalBinding = $false)]
    [OutputType([bool])]
    param(
        [Parameter(Mandatory, ParameterSetName = 'Keep')][string] $CallId,
        [Parameter(Mandatory, ParameterSetName = 'KeepViaIdentity', ValueFromPipeline)][object] $InputObject,
        [Parameter()][switch] $PassThru,
        [Parameter()][System.Collections.IDictionary] $Headers,
        [Parameter()][Alias('RHV')][string] $ResponseHeadersVariable,
        [Parameter(DontShow)][switch] $Break,
        [Parameter(DontShow)][object[]] $HttpPipelineAppend,
        [Parameter(DontShow)][object[]] $HttpPipelinePrepend,
        [Parameter(DontShow)][uri] $Proxy,
        [Parameter(DontShow)][pscredential] $ProxyCredential,
        [Parameter(DontShow)][switch] $ProxyUseDefaultCredentials,
        [Parameter()][ValidateRange(1, 256)][int] $ThrottleLimit = 32
    )

    begin {
        if (-not $script:PrivateLoaded) { Import-MgkaPrivate }
        $state = $null; $stream = [uint64]0; $apiVersion = 'v1.0'
        $state, $stream, $kind = Open-MgkaKeepAliveCommand $PSCmdlet $apiVersion $ThrottleLimit
        $native = $script:Native; $out = [IntPtr]::Zero; $outRef = [ref]$out; $none = [UIntPtr]::Zero; $flags = [uint32]0
        if ($kind) { $InputObject = $CallId }
    }
    process {
        # Per item, inline (see Open-MgkaKeepAliveCommand): push, ShouldProcess, settle a lone -CallId.
        foreach ($item in $InputObject) {
            $status = if ($item -is [string]) { $native::mgka_keep_alive_stream_push($stream, $kind, $item, [UIntPtr]::new([uint32]$item.Length), $null, $none, $flags, $outRef) } else { Push-MgkaKeepAliveObject $state $item $outRef }
            if ($status -eq 0 -and $out -eq [IntPtr]::Zero) {
                if (-not $PSCmdlet.ShouldProcess($item, 'Keep alive')) { $null = $native::mgka_keep_alive_stream_withdraw($stream) }
                elseif ($state) { $state.Targets.Add($item) }
                elseif ($native::mgka_keep_alive_stream_settle($stream, $script:WaitSliceMs) -eq 0) { if ($PassThru) { $true } }
                else { $state = Open-MgkaKeepAlive -Cmdlet $PSCmdlet -ApiVersion $apiVersion -Stream $stream; $state.Targets.Add($item) }
            } else {
                if (-not $state) { $state = Open-MgkaKeepAlive -Cmdlet $PSCmdlet -ApiVersion $apiVersion -Stream $stream }
                Step-MgkaKeepAlive $state $status $item $out; $out = [IntPtr]::Zero
            }
        }
    }
    end { if ($state) { Complete-MgkaKeepAlive -State $state } }
    clean { if ($stream) { $null = $script:Native::mgka_keep_alive_stream_close($stream) } }
}

function Invoke-MgBetaKeepCommunicationCallAlive {
    # Help: en-US/MgKeepAlive-help.xml (MAML), shared by the v1.0 and beta commands' texts.
    <# .EXTERNALHELP MgKeepAlive-help.xml #>
    [CmdletBinding(DefaultParameterSetName = 'Keep', SupportsShouldProcess, ConfirmImpact = 'Medium', PositionalBinding = $false)]
    [OutputType([bool])]
    param(
        [Parameter(Mandatory, ParameterSetName = 'Keep')][string] $CallId,
        [Parameter(Mandatory, ParameterSetName = 'KeepViaIdentity', ValueFromPipeline)][object] $InputObject,
        [Parameter()][switch] $PassThru,
        [Parameter()][System.Collections.IDictionary] $Headers,
        [Parameter()][Alias('RHV')][string] $ResponseHeadersVariable,
        [Parameter(DontShow)][switch] $Break,
        [Parameter(DontShow)][object[]] $HttpPipelineAppend,
        [Parameter(DontShow)][object[]] $HttpPipelinePrepend,
        [Parameter(DontShow)][uri] $Proxy,
        [Parameter(DontShow)][pscredential] $ProxyCredential,
        [Parameter(DontShow)][switch] $ProxyUseDefaultCredentials,
        [Parameter()][ValidateRange(1, 256)][int] $ThrottleLimit = 32
    )

    begin {
        if (-not $script:PrivateLoaded) { Import-MgkaPrivate }
        $state = $null; $stream = [uint64]0; $apiVersion = 'beta'
        $state, $stream, $kind = Open-MgkaKeepAliveCommand $PSCmdlet $apiVersion $ThrottleLimit
        $native = $script:Native; $out = [IntPtr]::Zero; $outRef = [ref]$out; $none = [UIntPtr]::Zero; $flags = [uint32]0
        if ($kind) { $InputObject = $CallId }
    }
    process {
        # Per item, inline (see Open-MgkaKeepAliveCommand): push, ShouldProcess, settle a lone -CallId.
        foreach ($item in $InputObject) {
            $status = if ($item -is [string]) { $native::mgka_keep_alive_stream_push($stream, $kind, $item, [UIntPtr]::new([uint32]$item.Length), $null, $none, $flags, $outRef) } else { Push-MgkaKeepAliveObject $state $item $outRef }
            if ($status -eq 0 -and $out -eq [IntPtr]::Zero) {
                if (-not $PSCmdlet.ShouldProcess($item, 'Keep alive')) { $null = $native::mgka_keep_alive_stream_withdraw($stream) }
                elseif ($state) { $state.Targets.Add($item) }
                elseif ($native::mgka_keep_alive_stream_settle($stream, $script:WaitSliceMs) -eq 0) { if ($PassThru) { $true } }
                else { $state = Open-MgkaKeepAlive -Cmdlet $PSCmdlet -ApiVersion $apiVersion -Stream $stream; $state.Targets.Add($item) }
            } else {
                if (-not $state) { $state = Open-MgkaKeepAlive -Cmdlet $PSCmdlet -ApiVersion $apiVersion -Stream $stream }
                Step-MgkaKeepAlive $state $status $item $out; $out = [IntPtr]::Zero
            }
        }
    }
    end { if ($state) { Complete-MgkaKeepAlive -State $state } }
    clean { if ($stream) { $null = $script:Native::mgka_keep_alive_stream_close($stream) } }
}

function Connect-MgGraph {
    <#
    .SYNOPSIS
    Connects MgKeepAlive to Microsoft Graph.

    .DESCRIPTION
    Connects to Microsoft Graph as an application, with the parameter sets and names of
    Microsoft.Graph.Authentication's Connect-MgGraph, so an existing script's Connect-MgGraph line
    works unchanged. Call keep-alive is an application-only API (application permission
    Calls.Initiate.All or Calls.AccessMedia.All), so the app-only sign-ins are supported:

      -ClientId -TenantId -ClientSecretCredential      a client secret (the credential's password)
      -ClientId -TenantId -CertificateThumbprint       a certificate in the CurrentUser\My store
      -ClientId -TenantId -CertificateSubjectName      the same, found by subject name
      -ClientId -TenantId -Certificate                 an X509Certificate2 with its private key
      -ClientId -TenantId -CertificatePath             a PFX or PEM file (MgKeepAlive extension)
      -EnvironmentVariable                             AZURE_TENANT_ID, AZURE_CLIENT_ID, ... (below)
      -Identity [-ClientId]                            an Azure managed identity
      -AccessToken                                     a token you already have (not renewed)

    Delegated sign-in (-Scopes, -UseDeviceCode, or no credential at all) is refused with an
    error: keep-alive cannot be called with a user's token.

    The first token is requested right away, so a wrong secret, app, tenant, cloud or certificate
    fails here with a terminating AuthenticationError whose ErrorId is the AADSTS code (for
    example AADSTS7000215) and whose exception has Error, ErrorCodes, TraceId, CorrelationId and
    HttpStatus. Afterwards the native library renews the token five minutes before it expires
    and once on a Graph 401. The connection is kept for the process and shared by every runspace.

    Secrets and private keys are handed to the native library as bytes; the copies made on the
    way are zeroed, and they are never written to any output stream. Certificates sign the
    client assertion with PS256 (header x5t#S256); the private key must be RSA and exportable.

    -EnvironmentVariable reads, from the PowerShell process environment ($env:):
    AZURE_TENANT_ID and AZURE_CLIENT_ID, and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH
    (PFX or PEM; AZURE_CLIENT_CERTIFICATE_PASSWORD; AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true
    sends the chain). A secret wins over a certificate. AZURE_USERNAME/AZURE_PASSWORD (a user
    sign-in) cannot call keep-alive and are refused.

    Token requests go through the proxy that HTTPS_PROXY, HTTP_PROXY and NO_PROXY name (read
    from $env:, upper-case names first).

    -Identity uses the App Service / Functions / Container Apps endpoint when IDENTITY_ENDPOINT
    and IDENTITY_HEADER are set, else the VM instance metadata service (IMDS,
    http://169.254.169.254). For tests and diagnostics, MGKEEPALIVE_IMDS_ENDPOINT replaces the
    IMDS base URL.

    .PARAMETER Scopes
    Delegated permissions. Not supported: keep-alive needs application permissions, so
    Connect-MgGraph fails with an error that names the app-only alternatives.

    .PARAMETER ClientId
    The application (client) id of your app registration. With -Identity: the client id of a
    user-assigned managed identity (omit it for the system-assigned identity). With
    -ClientSecretCredential it may be omitted: the credential's user name is then the client id.

    .PARAMETER TenantId
    The tenant to sign in to: its id (GUID) or a verified domain such as contoso.onmicrosoft.com.

    .PARAMETER CertificateSubjectName
    The subject of a certificate in the CurrentUser\My store, for example 'CN=KeepAliveApp'
    (a distinguished name, or a part of the subject). Among several matches, the valid one with
    a private key that expires last is used.

    .PARAMETER CertificateThumbprint
    The thumbprint (SHA-1, 40 hex digits) of a certificate in the CurrentUser\My store. .NET
    provides that store on Linux and macOS too (~/.dotnet/corefx/cryptography/x509stores/my).

    .PARAMETER Certificate
    An X509Certificate2 with an exportable RSA private key.

    .PARAMETER CertificatePath
    MgKeepAlive extension: the path of a certificate file with its private key, PFX/PKCS#12
    (.pfx, .p12) or PEM (certificate and PKCS#8 or RSA key in one file), for systems without a
    certificate store.

    .PARAMETER CertificatePassword
    MgKeepAlive extension: the password of the -CertificatePath file (PFX, or an encrypted PEM key).

    .PARAMETER SendCertificateChain
    Sends the certificate and its chain (x5c) in the client assertion, for subject name/issuer
    authentication (certificate rollover without re-registering). The chain is built without a
    revocation check.

    .PARAMETER ClientSecretCredential
    A PSCredential whose password is the client secret (its user name is the client id when
    -ClientId is not given), for example Get-Credential -UserName $appId.

    .PARAMETER AccessToken
    An access token for Microsoft Graph, as a SecureString. It is used as is and not renewed.

    .PARAMETER EnvironmentVariable
    Signs in with the AZURE_* environment variables (see the description).

    .PARAMETER Identity
    Signs in with the managed identity of the Azure resource this runs on (see the description).

    .PARAMETER UseDeviceCode
    Delegated device-code sign-in. Not supported (see -Scopes).

    .PARAMETER ContextScope
    Accepted for compatibility. MgKeepAlive keeps connections for the process only (Process);
    CurrentUser writes a warning.

    .PARAMETER Environment
    The name of the cloud environment to connect to (Global, USGov, USGovDoD, China or one added
    with Add-MgEnvironment). Default: Global. Tokens are requested from that cloud's login
    endpoint for its Graph endpoint ({graph}/.default).

    .PARAMETER ClientTimeout
    The HTTP client timeout in seconds: sets ClientTimeout of the request context (see
    Set-MgRequestContext and Get-MgRequestContext), which bounds the token requests of this
    connect and every keep-alive, retries included. Default: 300.

    .PARAMETER NoWelcome
    Hides the welcome message (Microsoft's text, written to the output stream as one string, as
    Microsoft's Connect-MgGraph does).

    .PARAMETER LoginHint
    Delegated sign-in only (refused by MgKeepAlive); accepted for Microsoft's parameter sets.

    .PARAMETER Break
    Accepted for compatibility with Microsoft.Graph; ignored.

    .EXAMPLE
    $credential = Get-Credential -UserName $appId -Message 'Client secret'
    Connect-MgGraph -TenantId contoso.onmicrosoft.com -ClientSecretCredential $credential -NoWelcome

    Signs in with a client secret; the credential's user name is the client id.

    .EXAMPLE
    Connect-MgGraph -ClientId $appId -TenantId $tenantId -CertificateThumbprint 0123456789ABCDEF0123456789ABCDEF01234567

    Signs in with a certificate from the CurrentUser\My store.

    .EXAMPLE
    Connect-MgGraph -ClientId $appId -TenantId $tenantId -CertificatePath ./keepalive.pfx -CertificatePassword (Read-Host -AsSecureString)

    Signs in with a certificate file (an MgKeepAlive extension for systems without a store).

    .EXAMPLE
    Connect-MgGraph -EnvironmentVariable -NoWelcome

    Signs in with AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate).

    .EXAMPLE
    Connect-MgGraph -Identity -ClientId $userAssignedIdentityClientId

    Signs in with a user-assigned managed identity (omit -ClientId for the system-assigned one).

    .EXAMPLE
    try {
        Connect-MgGraph -TenantId $tenantId -ClientSecretCredential $credential -ErrorAction Stop
    } catch {
        "$($_.FullyQualifiedErrorId): trace id $($_.Exception.TraceId)"
    }

    Shows, for example, 'AADSTS7000215,Connect-MgGraph: trace id ...' for a wrong secret.

    .EXAMPLE
    $token = ConvertTo-SecureString $env:GRAPH_TOKEN -AsPlainText -Force
    Connect-MgGraph -AccessToken $token -Environment USGov -NoWelcome

    Connects to the US Government cloud with an access token you already have.

    .INPUTS
    None

    .OUTPUTS
    None

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/connect-mggraph

    .LINK
    Get-MgContext

    .LINK
    Disconnect-MgGraph

    .LINK
    Get-MgEnvironment
    #>
    [CmdletBinding(DefaultParameterSetName = 'UserParameterSet', PositionalBinding = $false)]
    [Alias('Connect-Graph')]
    param(
        [Parameter(ParameterSetName = 'UserParameterSet', Position = 1)]
        [string[]] $Scopes,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet', Mandatory, Position = 1)]
        [Parameter(ParameterSetName = 'UserParameterSet')]
        [Parameter(ParameterSetName = 'IdentityParameterSet')]
        [Alias('AppId', 'ApplicationId')]
        [ValidateNotNullOrEmpty()]
        [string] $ClientId,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet', Position = 2)]
        [Alias('CertificateSubject', 'CertificateName')]
        [ValidateNotNullOrEmpty()]
        [string] $CertificateSubjectName,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet', Position = 3)]
        [ValidateNotNullOrEmpty()]
        [string] $CertificateThumbprint,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [bool] $SendCertificateChain,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [System.Security.Cryptography.X509Certificates.X509Certificate2] $Certificate,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [ValidateNotNullOrEmpty()]
        [string] $CertificatePath,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [securestring] $CertificatePassword,

        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet')]
        [Alias('SecretCredential', 'Credential')]
        [pscredential] $ClientSecretCredential,

        [Parameter(ParameterSetName = 'AccessTokenParameterSet', Mandatory, Position = 1)]
        [securestring] $AccessToken,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet')]
        [Parameter(ParameterSetName = 'UserParameterSet', Position = 4)]
        [Alias('Audience', 'Tenant')]
        [ValidateNotNullOrEmpty()]
        [string] $TenantId,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet')]
        [Parameter(ParameterSetName = 'UserParameterSet')]
        [Parameter(ParameterSetName = 'IdentityParameterSet')]
        [Parameter(ParameterSetName = 'EnvironmentVariableParameterSet')]
        [ValidateSet('Process', 'CurrentUser')]
        [string] $ContextScope,

        [Parameter(ParameterSetName = 'EnvironmentVariableParameterSet')]
        [switch] $EnvironmentVariable,

        [Parameter(ParameterSetName = 'IdentityParameterSet', Position = 1)]
        [Alias('ManagedIdentity', 'ManagedServiceIdentity', 'MSI')]
        [switch] $Identity,

        [Parameter(ParameterSetName = 'UserParameterSet')]
        [Alias('UseDeviceAuthentication', 'DeviceCode', 'DeviceAuth', 'Device')]
        [switch] $UseDeviceCode,

        [Parameter(ParameterSetName = 'UserParameterSet')]
        [string] $LoginHint,

        [Parameter(ParameterSetName = 'AccessTokenParameterSet')]
        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet')]
        [Parameter(ParameterSetName = 'EnvironmentVariableParameterSet')]
        [Parameter(ParameterSetName = 'IdentityParameterSet')]
        [Parameter(ParameterSetName = 'UserParameterSet')]
        [Alias('EnvironmentName', 'NationalCloud')]
        [ValidateNotNullOrEmpty()]
        [ArgumentCompleter({ & (Get-Module MgKeepAlive)[0] { if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Complete-MgkaArgument @args } Environment $args[2] })]
        [string] $Environment,

        [Parameter(ParameterSetName = 'AccessTokenParameterSet')]
        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet')]
        [Parameter(ParameterSetName = 'EnvironmentVariableParameterSet')]
        [Parameter(ParameterSetName = 'IdentityParameterSet')]
        [Parameter(ParameterSetName = 'UserParameterSet')]
        [ValidateRange(1, 2147483)]
        [double] $ClientTimeout,

        [Parameter()]
        [switch] $NoWelcome,

        [Parameter(DontShow)]
        [switch] $Break
    )

    if (-not $script:PrivateLoaded) { Import-MgkaPrivate }
    $set = $PSCmdlet.ParameterSetName
    if ($set -eq 'UserParameterSet') {
        $how = if ($UseDeviceCode) { 'Device-code sign-in (-UseDeviceCode)' } elseif ($Scopes) { 'Delegated sign-in (-Scopes)' } else { 'Interactive (delegated) sign-in' }
        $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                [System.NotSupportedException]::new(("$how cannot keep calls alive: call keep-alive needs an application permission " +
                    '(Calls.Initiate.All or Calls.AccessMedia.All) and an app-only token. Sign in as the application instead: ' +
                    '-ClientId -TenantId -ClientSecretCredential, -ClientId -TenantId -CertificateThumbprint (or -CertificateSubjectName, ' +
                    '-Certificate, -CertificatePath), -Identity (managed identity), -EnvironmentVariable, or -AccessToken with an app-only token.')),
                'DelegatedAuthenticationNotSupported', [System.Management.Automation.ErrorCategory]::InvalidOperation, $null))
    }
    if ($ContextScope -eq 'CurrentUser') {
        Write-Warning 'MgKeepAlive keeps connections for this process only (ContextScope Process); nothing is cached for the current user.'
    }
    if ($PSBoundParameters.ContainsKey('ClientTimeout')) {
        # Like Microsoft.Graph: -ClientTimeout sets the request context's ClientTimeout (process-wide,
        # Get-MgRequestContext), which bounds this connect's token requests and every keep-alive.
        $null = Set-MgkaRequestContext -Cmdlet $PSCmdlet -Settings ([ordered]@{ ClientTimeout = $ClientTimeout }) -Terminating
    }

    if ($set -in 'AppSecretCredentialParameterSet', 'AppCertificateParameterSet', 'EnvironmentVariableParameterSet' -and -not $script:AuthHelpersLoaded) {
        # Loaded on first use (see MgKeepAlive.Auth.ps1); defines its functions in script scope.
        . "$PSScriptRoot/MgKeepAlive.Auth.ps1"
        $script:AuthHelpersLoaded = $true
    }
    $request = [ordered]@{ authType = $null }
    if ($Environment) { $request['environment'] = $Environment }
    $secret = $null
    $start = $null
    $fileCertificate = $null
    try {
        switch ($set) {
            'AccessTokenParameterSet' {
                $request['authType'] = 'AccessToken'
                $secret = ConvertFrom-MgkaSecureString -Cmdlet $PSCmdlet -SecureString $AccessToken -Parameter 'AccessToken'
            }
            'AppSecretCredentialParameterSet' {
                $request['authType'] = 'ClientSecret'
                $request['tenantId'] = $TenantId
                $request['clientId'] = if ($ClientId) { $ClientId } else { $ClientSecretCredential.UserName }
                Assert-MgkaAppIdentity -Cmdlet $PSCmdlet -Request $request -ClientIdSource 'ClientId (or the user name of -ClientSecretCredential)' -TenantIdSource 'TenantId'
                $secret = ConvertFrom-MgkaSecureString -Cmdlet $PSCmdlet -SecureString $ClientSecretCredential.Password -Parameter 'ClientSecretCredential'
            }
            'AppCertificateParameterSet' {
                $request['authType'] = 'ClientCertificate'
                $request['tenantId'] = $TenantId
                $request['clientId'] = $ClientId
                Assert-MgkaAppIdentity -Cmdlet $PSCmdlet -Request $request -ClientIdSource 'ClientId' -TenantIdSource 'TenantId'
                $sources = @('Certificate', 'CertificateThumbprint', 'CertificateSubjectName', 'CertificatePath').Where({ $PSBoundParameters.ContainsKey($_) })
                if ($sources.Count -ne 1) {
                    $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                            [System.ArgumentException]::new("Give exactly one of -CertificateThumbprint, -CertificateSubjectName, -Certificate or -CertificatePath$(if ($sources.Count) { " (given: -$($sources -join ', -'))" })."),
                            'CertificateParameterMissing', [System.Management.Automation.ErrorCategory]::InvalidArgument, $null))
                }
                $owned = $null
                try {
                    $cert = switch ($sources[0]) {
                        'Certificate' { $Certificate }
                        'CertificateThumbprint' { $owned = Find-MgkaCertificate -Cmdlet $PSCmdlet -Thumbprint $CertificateThumbprint; $owned }
                        'CertificateSubjectName' { $owned = Find-MgkaCertificate -Cmdlet $PSCmdlet -SubjectName $CertificateSubjectName; $owned }
                        'CertificatePath' {
                            # Kept (not disposed here) for Microsoft's module: -CertificatePath is MgKeepAlive's.
                            $fileCertificate = Import-MgkaCertificateFile -Cmdlet $PSCmdlet -Path $PSCmdlet.GetUnresolvedProviderPathFromPSPath($CertificatePath) -Password $CertificatePassword
                            $fileCertificate
                        }
                    }
                    $request['certificate'] = New-MgkaCertificateRequest -Certificate $cert -SendChain $SendCertificateChain
                    $secret = Export-MgkaPrivateKey -Cmdlet $PSCmdlet -Certificate $cert
                } finally {
                    if ($owned) { $owned.Dispose() }
                }
            }
            'EnvironmentVariableParameterSet' {
                $secret = Read-MgkaEnvironmentCredential -Cmdlet $PSCmdlet -Request $request
            }
            'IdentityParameterSet' {
                $request['authType'] = 'ManagedIdentity'
                if ($ClientId) { $request['clientId'] = $ClientId }
                $managed = [ordered]@{}
                $identityEndpoint = [Environment]::GetEnvironmentVariable('IDENTITY_ENDPOINT')
                $identityHeader = [Environment]::GetEnvironmentVariable('IDENTITY_HEADER')
                if ($identityEndpoint -and $identityHeader) {
                    Write-Verbose "Managed identity: App Service style endpoint $(Format-MgkaUrl $identityEndpoint) (IDENTITY_ENDPOINT)."
                    $managed['identityEndpoint'] = $identityEndpoint
                    $secret = [byte[]]::new($script:Utf8.GetByteCount($identityHeader))
                    [void]$script:Utf8.GetBytes($identityHeader, 0, $identityHeader.Length, $secret, 0)
                } else {
                    $imds = [Environment]::GetEnvironmentVariable('MGKEEPALIVE_IMDS_ENDPOINT')
                    if ($imds) { $managed['imdsEndpoint'] = $imds }
                    Write-Verbose "Managed identity: instance metadata service $(if ($imds) { "$(Format-MgkaUrl $imds) (MGKEEPALIVE_IMDS_ENDPOINT)" } else { 'http://169.254.169.254' })."
                }
                $request['managedIdentity'] = $managed
            }
        }
        # Token requests go through the proxy the host's variables name, as keep-alives do.
        $request['environmentProxy'] = Get-MgkaEnvironmentProxy
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['Environment'] = ConvertTo-MgkaJsonText $request
        if ($DebugPreference -ne 'SilentlyContinue') {
            # The request holds no secret; certificates are shown by thumbprint, not in full.
            $shown = [ordered]@{}
            foreach ($entry in $request.GetEnumerator()) { $shown[$entry.Key] = $entry.Value }
            # A proxy URL may carry a user name and password: shown without them.
            $proxies = [ordered]@{}
            foreach ($entry in $request['environmentProxy'].GetEnumerator()) {
                $proxies[$entry.Key] = Format-MgkaUrl $entry.Value
            }
            $shown['environmentProxy'] = $proxies
            if ($request['managedIdentity']) {
                $endpoints = [ordered]@{}
                foreach ($entry in $request['managedIdentity'].GetEnumerator()) { $endpoints[$entry.Key] = Format-MgkaUrl $entry.Value }
                $shown['managedIdentity'] = $endpoints
            }
            if ($request['certificate']) {
                $der = [Convert]::FromBase64String($request['certificate']['der'])
                $shown['certificate'] = [ordered]@{
                    thumbprint = [Convert]::ToHexString([System.Security.Cryptography.SHA1]::HashData($der))
                    chain      = $request['certificate']['chain'].Count
                    sendChain  = $request['certificate']['sendChain']
                }
            }
            Write-Debug "Connect request: $(ConvertTo-Json -InputObject $shown -Compress -Depth 5)"
        }
        $facts = New-MgkaContextFacts -ParameterSet $set -Bound $PSBoundParameters
        $start = Invoke-MgkaNative mgka_connect_start -Text $text -Secret $secret
    } finally {
        # The library copied the secret before mgka_connect_start returned.
        if ($null -ne $secret) { [Array]::Clear($secret) }
        if ($null -eq $start -and $fileCertificate) { $fileCertificate.Dispose() }
    }

    $result = if ($start.Status -eq $script:MGKA_OK) { Wait-MgkaOperation -Operation $start.Operation } else { $start }
    if ($result.Status -ne $script:MGKA_OK) {
        $info = ConvertFrom-MgkaJson $result.Json
        if ($info -and $info['kind'] -eq 'Cancelled') { throw [System.Management.Automation.PipelineStoppedException]::new() }
        $record = New-MgkaErrorRecord -Status $result.Status -Info $info -TargetObject $Environment -Activity 'Connect-MgGraph'
        if ($info -and $info['kind'] -eq 'AuthError') {
            Write-Verbose "Token request failed: $($info['error']) (HTTP $($info['httpStatus'])) at $($info['tokenEndpoint']); trace id $($info['traceId']), correlation id $($info['correlationId'])."
        }
        if ($fileCertificate) { $fileCertificate.Dispose() }
        $PSCmdlet.ThrowTerminatingError($record)
    }
    $info = ConvertFrom-MgkaJson $result.Json
    Set-MgkaContextFacts $facts
    # Get-MgContext's object (and its enum types) is made when asked for, not here: the welcome and
    # the verbose line need three of its values.
    $shown = @{ AuthType = $info['authType']; ClientId = $info['clientId']; TokenCredentialType = $info['tokenCredentialType'] }
    foreach ($name in @($shown.Keys)) { if ($facts.ContainsKey($name)) { $shown[$name] = $facts[$name] } }
    # Microsoft.Graph.Authentication gets the same sign-in, now or when it loads (see
    # MgKeepAlive.Coexistence.ps1); if it fails, MgKeepAlive signs out again and this throws.
    if (Get-Module -Name Microsoft.Graph.Authentication) {
        Import-MgkaCoexistence
        Complete-MgkaMicrosoftConnect -Cmdlet $PSCmdlet -Bound $PSBoundParameters -FileCertificate $fileCertificate
    } else {
        # Kept for when Microsoft's module loads (the command-lookup hook replays it then, see
        # MgKeepAlive.Coexistence.ps1, which a script without Microsoft's modules never loads).
        if ($script:MicrosoftCertificate) { $script:MicrosoftCertificate.Dispose() }
        $script:MicrosoftCertificate = $fileCertificate
        $script:MicrosoftReplay = @{ Bound = $PSBoundParameters; Certificate = $fileCertificate }
    }
    # Write-Verbose only when it shows something: it is Microsoft.PowerShell.Utility's, which a cold
    # job (connect, keep alive) would otherwise load for nothing.
    if ($VerbosePreference -notin 'SilentlyContinue', 'Ignore') {
        Write-Verbose "Connected to Microsoft Graph ($($info['environment'])) with $($shown.AuthType) ($($shown.TokenCredentialType))."
    }
    # Like Microsoft's: the welcome is one string on the output stream.
    if (-not $NoWelcome) { Format-MgkaWelcome -Context $shown }
}

function Disconnect-MgGraph {
    <#
    .SYNOPSIS
    Disconnects MgKeepAlive from Microsoft Graph.

    .DESCRIPTION
    Ends the current Microsoft Graph connection of the process: the native library forgets and
    zeroes its credential (secret, private key or token) and its cached tokens.
    Also stops the background keeper: every call kept with Start-MgCommunicationCallKeepAlive is
    stopped and forgotten.
    Returns the context of the connection that was closed (see Get-MgContext). When there is no
    connection, writes a non-terminating error.

    .PARAMETER SignOutFromBroker
    Accepted for Microsoft's parameters; MgKeepAlive never signs in through the Windows broker
    (WAM), so there is nothing more to sign out from.

    .EXAMPLE
    Disconnect-MgGraph

    Signs out and shows the context that was closed.

    .EXAMPLE
    Disconnect-MgGraph -ErrorAction SilentlyContinue | Out-Null

    Signs out if connected, silently.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.Context

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/disconnect-mggraph

    .LINK
    Connect-MgGraph
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.Context')]
    [Alias('Disconnect-Graph')]
    param(
        # Microsoft's signs out of the Windows broker (WAM) too; MgKeepAlive never signs in through it.
        [Parameter()]
        [switch] $SignOutFromBroker
    )

    if (-not $script:PrivateLoaded) { Import-MgkaPrivate }
    $result = Invoke-MgkaNative Disconnect
    if (-not (Assert-MgkaResult $PSCmdlet $result)) { return }
    $context = ConvertTo-MgkaContext (ConvertFrom-MgkaJson $result.Json)
    Set-MgkaContextFacts $null
    # Microsoft.Graph.Authentication signs out too; a sign-in kept for it is forgotten.
    $microsoft = $null
    if ($script:MicrosoftReplay -or (Get-Module -Name Microsoft.Graph.Authentication)) {
        Import-MgkaCoexistence
        Clear-MgkaMicrosoftReplay
        try { $microsoft = Disconnect-MgkaMicrosoft } catch { $PSCmdlet.WriteError($_) }
    }
    if ($null -eq $context -and $null -ne $microsoft) { return $microsoft }
    if ($null -eq $context) {
        # Microsoft's record: no id of its own, so the id is its cmdlet's type name.
        Write-MgkaExactError -Activity 'Disconnect-MgGraph' -Invocation (New-MgkaCallerInvocation -Invocation $PSCmdlet.MyInvocation) -Record (
            [System.Management.Automation.ErrorRecord]::new([System.ArgumentException]::new('No application to sign out from.'),
                'Microsoft.Graph.PowerShell.Authentication.Cmdlets.DisconnectMgGraph', [System.Management.Automation.ErrorCategory]::CloseError, $null))
        return
    }
    $context
}

function Get-MgContext {
    <#
    .SYNOPSIS
    Gets the current Microsoft Graph connection of MgKeepAlive.

    .DESCRIPTION
    Returns the context of the current connection with the properties of Microsoft's AuthContext,
    in its order: ClientId, TenantId, Scopes, AuthType, TokenCredentialType, CertificateThumbprint,
    CertificateSubjectName, SendCertificateChain, Account, LoginHint, HomeAccountId, AppName,
    ContextScope, Certificate, PSHostVersion, ManagedIdentityId, ClientSecret, Environment and
    WamEnabled. For -AccessToken, ClientId, TenantId, Scopes and AppName come from the token's
    claims, as in Microsoft's. Returns nothing ($null) when not connected, so scripts can test
    'if (-not (Get-MgContext))'. Never returns the token, a secret (ClientSecret stays empty) or a
    key (Certificate stays empty).

    .EXAMPLE
    Get-MgContext

    Shows the current connection.

    .EXAMPLE
    if (-not (Get-MgContext)) { Connect-MgGraph -AccessToken $token -NoWelcome }

    Connects only when not connected yet.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.Context

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/get-mgcontext

    .LINK
    Connect-MgGraph
    #>
    [CmdletBinding(DefaultParameterSetName = 'UserParameterSet')]
    [OutputType('MgKeepAlive.Context')]
    param()

    if (-not $script:PrivateLoaded) { Import-MgkaPrivate }
    $result = Invoke-MgkaNative Context
    if (-not (Assert-MgkaResult $PSCmdlet $result)) { return }
    ConvertTo-MgkaContext (ConvertFrom-MgkaJson $result.Json)
}

function Set-MgRequestContext {
    <#
    .SYNOPSIS
    Sets the retry and timeout settings of Microsoft Graph requests.

    .DESCRIPTION
    Changes the request settings that every keep-alive uses, with the parameters of
    Microsoft.Graph.Authentication's Set-MgRequestContext. A setting not given keeps its value.
    The settings belong to the process: they apply to keep-alives started afterwards in every
    runspace (ForEach-Object -Parallel, jobs in this process), like the connection. Returns the
    settings now in force (see Get-MgRequestContext).

    Keep-alives are retried after 429 (Too Many Requests), 503 and 504 answers and after
    connection failures, honouring Retry-After (seconds, fractions of seconds or an HTTP date);
    without Retry-After the waits are RetryDelay x 2^n seconds (3, 6, 12, ...), each at most
    180 s. Retries carry a Retry-Attempt header. 400, 403 and 404 answers are never retried.

    .PARAMETER RetryDelay
    The waiting time in seconds before retrying a request when the server gives no Retry-After,
    doubled for each further retry, with a maximum value of 180 seconds. Default: 3.

    .PARAMETER MaxRetry
    The maximum number of retries for a request, with a maximum value of 10. Default: 3.
    0 turns retries off.

    .PARAMETER RetriesTimeLimit
    The maximum time in seconds that the retries of one request may spend waiting. Default: 0
    (no limit other than ClientTimeout). A retry that would wait beyond it is not made.

    .PARAMETER ClientTimeout
    The HTTP client timeout in seconds: it bounds a whole keep-alive, its retries and waits
    included, so a hung server never holds a call longer than this. Default: 300.
    Connect-MgGraph -ClientTimeout sets it too.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Set-MgRequestContext -MaxRetry 5 -RetryDelay 2

    Retries throttled or unavailable requests up to 5 times, waiting 2, 4, 8, 16 and 32 seconds
    when Graph does not say how long (Retry-After).

    .EXAMPLE
    Set-MgRequestContext -ClientTimeout 30 -RetriesTimeLimit 20

    Gives up on a keep-alive after 30 seconds at most, and stops retrying once the retries
    would wait more than 20 seconds in all.

    .EXAMPLE
    Set-MgRequestContext -MaxRetry 0

    Turns retries off: every keep-alive is sent once.

    .INPUTS
    None

    Objects with RetryDelay, MaxRetry, RetriesTimeLimit or ClientTimeout properties bind by
    property name.

    .OUTPUTS
    MgKeepAlive.RequestContext

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/set-mgrequestcontext

    .LINK
    Get-MgRequestContext
    #>
    [CmdletBinding(SupportsShouldProcess, PositionalBinding = $false)]
    [OutputType('MgKeepAlive.RequestContext')]
    param(
        [Parameter(ValueFromPipelineByPropertyName)][ValidateRange(0, 180)][int] $RetryDelay,
        [Parameter(ValueFromPipelineByPropertyName)][ValidateRange(0, 10)][int] $MaxRetry,
        [Parameter(ValueFromPipelineByPropertyName)][ValidateRange(0, [int]::MaxValue)][int] $RetriesTimeLimit,
        [Parameter(ValueFromPipelineByPropertyName)][ValidateRange(1, [int]::MaxValue)][int] $ClientTimeout
    )

    begin { if (-not $script:PrivateLoaded) { Import-MgkaPrivate } }
    process {
        $settings = [ordered]@{}
        foreach ($name in 'RetryDelay', 'MaxRetry', 'RetriesTimeLimit', 'ClientTimeout') {
            if ($PSBoundParameters.ContainsKey($name)) { $settings[$name] = $PSBoundParameters[$name] }
        }
        if ($settings.Count -gt 0) {
            $what = ($settings.GetEnumerator() | ForEach-Object { "$($_.Key) $($_.Value)" }) -join ', '
            if (-not $PSCmdlet.ShouldProcess('request context (this process)', "Set $what")) { return }
        }
        Set-MgkaRequestContext -Cmdlet $PSCmdlet -Settings $settings
        Send-MgkaRequestContextToMicrosoft -Cmdlet $PSCmdlet -Settings $settings
    }
}

function Get-MgRequestContext {
    <#
    .SYNOPSIS
    Gets the retry and timeout settings of Microsoft Graph requests.

    .DESCRIPTION
    Returns the request settings of the process that every keep-alive uses (see
    Set-MgRequestContext): RetryDelay and MaxRetry as numbers, RetriesTimeLimit and
    ClientTimeout as TimeSpans, like Microsoft.Graph.Authentication. Defaults: RetryDelay 3,
    MaxRetry 3, RetriesTimeLimit 00:00:00 (no limit), ClientTimeout 00:05:00.

    .EXAMPLE
    Get-MgRequestContext

    Shows the settings in force.

    .EXAMPLE
    (Get-MgRequestContext).ClientTimeout.TotalSeconds

    The client timeout in seconds.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.RequestContext

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/get-mgrequestcontext

    .LINK
    Set-MgRequestContext
    #>
    [CmdletBinding(SupportsShouldProcess)]
    [OutputType('MgKeepAlive.RequestContext')]
    param()

    if (-not $script:PrivateLoaded) { Import-MgkaPrivate }
    Set-MgkaRequestContext -Cmdlet $PSCmdlet
}

function Get-MgEnvironment {
    <#
    .SYNOPSIS
    Gets the Microsoft Graph cloud environments.

    .DESCRIPTION
    Lists the environments Connect-MgGraph -Environment accepts: the built-in clouds Global,
    USGov, USGovDoD and China, and those added with Add-MgEnvironment (Type User-defined). Each
    has Name, AzureADEndpoint, GraphEndpoint and Type. Environments live for the process.

    .PARAMETER Name
    The name of the environment to get (case-insensitive; wildcards allowed). An unknown name
    without wildcards is a non-terminating ObjectNotFound error.

    .EXAMPLE
    Get-MgEnvironment

    Lists all environments.

    .EXAMPLE
    Get-MgEnvironment -Name USGov

    Shows the endpoints of the US Government L4 cloud.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.Environment

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/get-mgenvironment

    .LINK
    Add-MgEnvironment
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Position = 0, ValueFromPipelineByPropertyName)][ValidateNotNullOrEmpty()][ArgumentCompleter({ & (Get-Module MgKeepAlive)[0] { if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Complete-MgkaArgument @args } Environment $args[2] })][string] $Name
    )

    if (-not $script:PrivateLoaded) { Import-MgkaPrivate }
    $result = Invoke-MgkaNative EnvironmentList
    if (-not (Assert-MgkaResult $PSCmdlet $result)) { return }
    $environments = foreach ($entry in (ConvertFrom-MgkaJson $result.Json)) { ConvertTo-MgkaEnvironment $entry }
    if (-not $PSBoundParameters.ContainsKey('Name')) { return $environments }

    $pattern = [WildcardPattern]::new($Name, [System.Management.Automation.WildcardOptions]::IgnoreCase)
    $found = @($environments | Where-Object { $pattern.IsMatch($_.Name) })
    if ($found.Count -eq 0 -and -not [WildcardPattern]::ContainsWildcardCharacters($Name)) {
        $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new(
                [System.Management.Automation.ItemNotFoundException]::new("Environment '$Name' was not found. Known environments: $(($environments.Name) -join ', ')."),
                'EnvironmentNotFound', [System.Management.Automation.ErrorCategory]::ObjectNotFound, $Name))
        return
    }
    $found
}

function Add-MgEnvironment {
    <#
    .SYNOPSIS
    Adds a Microsoft Graph cloud environment.

    .DESCRIPTION
    Defines a user-defined environment (Type User-defined) that Connect-MgGraph -Environment
    can use, for example a private cloud or the project's Graph emulator. Adding a name that
    exists as a user-defined environment replaces it; built-in environments cannot be redefined.
    Endpoints must be https, except http to a loopback host (127.0.0.1, ::1, localhost).
    Environments live for the process. Returns the environment.

    .PARAMETER Name
    The name of the environment.

    .PARAMETER AzureADEndpoint
    The login endpoint (Microsoft Entra ID authority host), for example https://login.microsoftonline.com.
    Tokens are requested from {AzureADEndpoint}/{tenant}/oauth2/v2.0/token.

    .PARAMETER GraphEndpoint
    The Microsoft Graph endpoint, for example https://graph.microsoft.com. The token scope is
    {GraphEndpoint}/.default.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Add-MgEnvironment -Name Emulator -AzureADEndpoint http://127.0.0.1:5555 -GraphEndpoint http://127.0.0.1:5555

    Defines an environment for a Graph emulator on this machine.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.Environment

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/add-mgenvironment

    .LINK
    Get-MgEnvironment

    .LINK
    Set-MgEnvironment

    .LINK
    Remove-MgEnvironment
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Low')]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)][ValidateNotNullOrEmpty()][string] $Name,
        [Parameter(Mandatory, Position = 1, ValueFromPipelineByPropertyName)][Alias('AzureADUrl')][ValidateNotNullOrEmpty()][string] $AzureADEndpoint,
        [Parameter(Mandatory, Position = 2, ValueFromPipelineByPropertyName)][Alias('GraphUrl')][ValidateNotNullOrEmpty()][string] $GraphEndpoint
    )

    begin { if (-not $script:PrivateLoaded) { Import-MgkaPrivate } }
    process {
        if (-not $PSCmdlet.ShouldProcess($Name, 'Add environment')) { return }
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['Environment'] = ConvertTo-MgkaJsonText ([ordered]@{ name = $Name; azureADEndpoint = $AzureADEndpoint; graphEndpoint = $GraphEndpoint })
        $result = Invoke-MgkaNative mgka_environment_add -Text $text
        if (-not (Assert-MgkaResult $PSCmdlet $result $Name)) { return }
        $environment = ConvertTo-MgkaEnvironment (ConvertFrom-MgkaJson $result.Json)
        Send-MgkaEnvironmentToMicrosoft -Cmdlet $PSCmdlet -Command 'Add-MgEnvironment' -Environment $environment
        $environment
    }
}


function Set-MgEnvironment {
    <#
    .SYNOPSIS
    Changes a user-defined Microsoft Graph cloud environment.

    .DESCRIPTION
    Changes the endpoints of an environment added with Add-MgEnvironment; an endpoint not given
    keeps its value. The built-in environments (Global, USGov, USGovDoD, China) cannot be
    changed, and an unknown name is an ObjectNotFound error (use Add-MgEnvironment to add one).
    A connection already made keeps the endpoints it was made with; connect again to use the new
    ones. Returns the changed environment.

    .PARAMETER Name
    The name of the user-defined environment to change.

    .PARAMETER AzureADEndpoint
    The new login endpoint (Microsoft Entra ID authority host).

    .PARAMETER GraphEndpoint
    The new Microsoft Graph endpoint.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Set-MgEnvironment -Name Emulator -GraphEndpoint http://127.0.0.1:5556

    Points the Emulator environment at another port.

    .INPUTS
    System.String

    Objects with Name, AzureADEndpoint and GraphEndpoint properties bind by property name.

    .OUTPUTS
    MgKeepAlive.Environment

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/set-mgenvironment

    .LINK
    Add-MgEnvironment

    .LINK
    Get-MgEnvironment
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Low')]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)][ValidateNotNullOrEmpty()][ArgumentCompleter({ & (Get-Module MgKeepAlive)[0] { if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Complete-MgkaArgument @args } Environment $args[2] })][string] $Name,
        [Parameter(Position = 1, ValueFromPipelineByPropertyName)][Alias('AzureADUrl')][ValidateNotNullOrEmpty()][string] $AzureADEndpoint,
        [Parameter(Position = 2, ValueFromPipelineByPropertyName)][Alias('GraphUrl')][ValidateNotNullOrEmpty()][string] $GraphEndpoint
    )

    begin { if (-not $script:PrivateLoaded) { Import-MgkaPrivate } }
    process {
        # The library checks, merges and writes in one step (an endpoint not given is null: kept);
        # the preview (nothing changed) names the environment and its endpoints as the change would
        # make them, for ShouldProcess.
        $change = [ordered]@{ name = $Name; azureADEndpoint = $AzureADEndpoint; graphEndpoint = $GraphEndpoint }
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $change['preview'] = $true
        $text['Environment'] = ConvertTo-Json -Compress -InputObject $change
        $result = Invoke-MgkaNative EnvironmentSet -Text $text
        if (-not (Assert-MgkaResult $PSCmdlet $result $Name)) { return }
        $preview = ConvertFrom-MgkaJson $result.Json
        if (-not $PSCmdlet.ShouldProcess($preview['name'], "Set environment (AzureADEndpoint $($preview['azureADEndpoint']), GraphEndpoint $($preview['graphEndpoint']))")) { return }
        $change.Remove('preview')
        $text['Environment'] = ConvertTo-Json -Compress -InputObject $change
        $result = Invoke-MgkaNative EnvironmentSet -Text $text
        if (-not (Assert-MgkaResult $PSCmdlet $result $Name)) { return }
        $environment = ConvertTo-MgkaEnvironment (ConvertFrom-MgkaJson $result.Json)
        Send-MgkaEnvironmentToMicrosoft -Cmdlet $PSCmdlet -Command 'Set-MgEnvironment' -Environment $environment
        $environment
    }
}

function Remove-MgEnvironment {
    <#
    .SYNOPSIS
    Removes a user-defined Microsoft Graph cloud environment.

    .DESCRIPTION
    Removes an environment added with Add-MgEnvironment and returns it. The built-in
    environments cannot be removed, nor the environment of the current connection (disconnect
    first); an unknown name is an ObjectNotFound error.

    .PARAMETER Name
    The name of the user-defined environment to remove.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Remove-MgEnvironment -Name Emulator

    Removes the Emulator environment.

    .EXAMPLE
    Get-MgEnvironment | Where-Object Type -EQ 'User-defined' | Remove-MgEnvironment -WhatIf

    Shows which user-defined environments would be removed.

    .INPUTS
    System.String

    Objects with a Name property bind by property name.

    .OUTPUTS
    MgKeepAlive.Environment

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/remove-mgenvironment

    .LINK
    Add-MgEnvironment

    .LINK
    Get-MgEnvironment
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)][ValidateNotNullOrEmpty()][ArgumentCompleter({ & (Get-Module MgKeepAlive)[0] { if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Complete-MgkaArgument @args } Environment $args[2] })][string] $Name
    )

    begin { if (-not $script:PrivateLoaded) { Import-MgkaPrivate } }
    process {
        if (-not $PSCmdlet.ShouldProcess($Name, 'Remove environment')) { return }
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['Name'] = $Name
        $result = Invoke-MgkaNative EnvironmentRemove -Text $text
        if (-not (Assert-MgkaResult $PSCmdlet $result $Name)) { return }
        $environment = ConvertTo-MgkaEnvironment (ConvertFrom-MgkaJson $result.Json)
        Send-MgkaEnvironmentToMicrosoft -Cmdlet $PSCmdlet -Command 'Remove-MgEnvironment' -Environment $environment -Remove
        $environment
    }
}

#endregion

#region Keeper commands ---------------------------------------------------------------------------
# The background keeper runs in the native library and is process-wide: every runspace sees the
# same kept calls (see the keeper helpers in MgKeepAlive.Private.ps1).

function Start-MgCommunicationCallKeepAlive {
    <#
    .SYNOPSIS
    Keeps calls alive in the background until they end: a keep-alive every -Interval (15 minutes by default) for each call.

    .DESCRIPTION
    Registers calls with the background keeper of the MgKeepAlive library and returns at once,
    writing one state object (MgKeepAlive.CallKeepAliveState) per call. The keeper then works on
    its own while the session runs other commands: each call's first keep-alive goes out at once
    (so a wrong id shows up within a second), then one every -Interval, with up to ±10 % jitter so
    that calls do not fire in lock-step.

    Graph ends a call that has had no successful keep-alive for 45 minutes. The keeper retries
    throttling (429, honouring Retry-After for the whole app), server errors, network errors and
    "not connected" with back-off, always scheduled before the call's 45-minute deadline; a 401
    renews the token. When Graph answers 404 the call has ended: its state becomes Ended and it
    gets no more requests. A 403, 400 or 405 makes it Failed (no more requests either). Ended and
    Failed calls stay listed by Get-MgCommunicationCallKeepAlive, and are reported by
    Wait-MgCommunicationCallKeepAlive, until Stop-MgCommunicationCallKeepAlive removes them.

    Starting a call that is already kept changes its interval (from its next keep-alive on) and
    writes its current state; starting an Ended or Failed call again keeps it anew.

    The keeper is one per process: kept calls are shared by every runspace (ForEach-Object
    -Parallel, jobs in threads), use the process's Connect-MgGraph connection, and are stopped by
    Disconnect-MgGraph, by removing the module (Remove-Module MgKeepAlive, Import-Module -Force) in
    any runspace, and when the process exits (which never waits for the keeper).

    Ids are registered in batches of 1,000, so piping 100,000 ids is quick. Items without a call
    id are reported as they come; the state objects and the errors for refused ids are written
    batch by batch, in input order within a batch.

    .PARAMETER CallId
    The ids of the calls to keep alive. Each string is taken as the call id itself.

    .PARAMETER InputObject
    Calls from the pipeline, with the rules of Invoke-MgKeepCommunicationCallAlive's -InputObject:
    a hashtable or object with CallId (any case) or, failing that, Id (such as
    Get-MgCommunicationCall output or this command's state objects); a JSON identity string such
    as '{"CallId":"..."}'; or any other string, taken as the call id. An item without a call id is
    a non-terminating error (InputObjectCallIdMissing) and the pipeline goes on.

    .PARAMETER Interval
    How often each call is kept alive, as a TimeSpan: at least 1 second, 15 minutes by default (as
    Microsoft recommends). Above 45 minutes a warning is written, because Graph ends a call after
    45 minutes without a keep-alive. Give a TimeSpan or a string such as '00:10:00'; a bare
    number is a count of ticks (100 ns), so use New-TimeSpan -Minutes 10 or [TimeSpan]::FromMinutes(10).

    .PARAMETER WhatIf
    Shows which calls would be kept alive. Nothing is registered.

    .PARAMETER Confirm
    Prompts for confirmation before each call is registered.

    .EXAMPLE
    Start-MgCommunicationCallKeepAlive -CallId $callId

    Keeps one call alive every 15 minutes (about) until it ends or is stopped; returns at once.

    .EXAMPLE
    Get-MgCommunicationCall -All | Start-MgCommunicationCallKeepAlive -Interval (New-TimeSpan -Minutes 10) | Out-Null

    Starts keeping every call the bot currently holds alive every 10 minutes. Objects with Id
    (Get-MgCommunicationCall output), hashtables with CallId, JSON identities and plain id strings
    can be piped.

    .EXAMPLE
    $ids = Get-Content ./calls.txt
    $ids | Start-MgCommunicationCallKeepAlive -ErrorAction SilentlyContinue -ErrorVariable refused | Out-Null
    $refused | ForEach-Object { "not kept: $($_.TargetObject) ($($_.Exception.Message))" }

    Registers thousands of ids in batches and lists the ids the library refused (ErrorId
    InvalidCallId, TargetObject the id).

    .EXAMPLE
    Start-MgCommunicationCallKeepAlive -CallId $callIds | Out-Null
    Wait-MgCommunicationCallKeepAlive -Any | ForEach-Object {
        Write-Warning "Call $($_.CallId) is $($_.State): $($_.LastError)"
        $_ | Stop-MgCommunicationCallKeepAlive
    }

    Keeps calls alive, then blocks until one of them ends or fails, reports it and cleans it up.

    .INPUTS
    System.String

    System.Object

    Call id strings, JSON identity strings, hashtables or objects with a CallId or Id property.

    .OUTPUTS
    MgKeepAlive.CallKeepAliveState

    One per registered call: CallId, State, LastSuccess, NextDue, Deadline, Interval, Attempts,
    ConsecutiveFailures, LastError (times as local [datetime]; see Get-MgCommunicationCallKeepAlive).

    .NOTES
    The keeper sends keep-alives to Graph v1.0 with the connection of Connect-MgGraph. Calls kept
    before Connect-MgGraph (or after a failed token renewal) are retried until a connection is
    made, within their 45-minute deadline.

    .LINK
    Get-MgCommunicationCallKeepAlive

    .LINK
    Stop-MgCommunicationCallKeepAlive

    .LINK
    Wait-MgCommunicationCallKeepAlive

    .LINK
    Invoke-MgKeepCommunicationCallAlive

    .LINK
    https://learn.microsoft.com/graph/api/call-keepalive
    #>
    [CmdletBinding(DefaultParameterSetName = 'CallId', SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('MgKeepAlive.CallKeepAliveState')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'CallId')][AllowEmptyString()][string[]] $CallId,
        [Parameter(Mandatory, ValueFromPipeline, ParameterSetName = 'InputObject')][object] $InputObject,
        [Parameter()][ValidateScript({ $_ -ge [TimeSpan]::FromSeconds(1) }, ErrorMessage = 'The interval must be at least 1 second; {0} is shorter.')][TimeSpan] $Interval = [TimeSpan]::FromMinutes(15)
    )

    begin {
        # Graph ends a call that had no successful keep-alive for 45 minutes.
        if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Import-MgkaKeeper
        if ($Interval.TotalMinutes -gt 45) {
            Write-Warning ("The interval $Interval is longer than 45 minutes: Graph ends a call that gets no keep-alive for 45 minutes, " +
                'so calls kept at this interval are likely to end. Microsoft recommends 15 minutes (the default).')
        }
        Test-MgkaCloudAvailability -ApiVersion 'v1.0'
        $batch = [System.Collections.Generic.List[string]]::new()
        $byId = $PSCmdlet.ParameterSetName -eq 'CallId'
        $first = @{ Batch = $true }
        $send = {
            if ($first.Batch -and (Invoke-MgkaNative Context).Json -eq 'null') {
                Write-Warning ('Not connected: the keeper retries these calls until Connect-MgGraph connects the process, within their ' +
                    '45-minute deadline. Connect first to keep them alive from the start.')
            }
            $first.Batch = $false
            Invoke-MgkaKeeper $PSCmdlet KeeperStart (ConvertTo-MgkaKeeperJson callIds $batch intervalMs ([long][Math]::Ceiling($Interval.TotalMilliseconds)))
            $batch.Clear()
        }
    }

    process {
        $items = if ($byId) { $CallId } else { @($InputObject) }
        Add-MgkaKeeperItem $PSCmdlet $items $byId $batch 'Start keeping alive' $send
    }

    end { if ($batch.Count -gt 0) { & $send } }
}

function Get-MgCommunicationCallKeepAlive {
    <#
    .SYNOPSIS
    Gets the calls that the background keeper keeps alive, with their state.

    .DESCRIPTION
    Lists the calls registered with Start-MgCommunicationCallKeepAlive in this process (from any
    runspace), sorted by call id, as MgKeepAlive.CallKeepAliveState objects:

    CallId               the call id
    State                Active (kept; the last keep-alive succeeded or the first is under way),
                         Retrying (the last keep-alive failed transiently; retried before the
                         deadline), Ended (Graph answered 404: the call is over), Failed (Graph
                         refused for good, e.g. 403). Ended and Failed calls get no more requests
                         and stay listed until Stop-MgCommunicationCallKeepAlive removes them.
    LastSuccess          when the last keep-alive succeeded ($null before the first)
    NextDue              when the next keep-alive is due ($null while one is under way, or when
                         the call is Ended or Failed)
    Deadline             when Graph would end the call: the last success (or the registration)
                         plus 45 minutes
    Interval             the keep-alive interval ([TimeSpan])
    Attempts             keep-alives sent for the call so far
    ConsecutiveFailures  failed keep-alives since the last success
    LastError            the last failure's message, $null after a success

    Times are local [datetime] values (Kind Local), so they compare directly with Get-Date; use
    .ToUniversalTime() for UTC. The default view is a table; Format-List shows every property.

    .PARAMETER CallId
    Only these calls. A named call that is not kept is a non-terminating error (CallNotKept).
    Accepts ids, and objects with a CallId property (such as state objects), from the pipeline.

    .PARAMETER State
    Only calls in these states: Active, Retrying, Ended, Failed.

    .EXAMPLE
    Get-MgCommunicationCallKeepAlive

    Shows every kept call as a table: CallId, State, LastSuccess, NextDue, Deadline, Attempts and
    the start of LastError.

    .EXAMPLE
    Get-MgCommunicationCallKeepAlive -State Ended, Failed | Stop-MgCommunicationCallKeepAlive -PassThru

    Finds the calls that have ended or failed and removes them from the keeper.

    .EXAMPLE
    Get-MgCommunicationCallKeepAlive -State Retrying | Where-Object Deadline -LT (Get-Date).AddMinutes(5)

    Calls whose keep-alives keep failing and that Graph would end within 5 minutes.

    .INPUTS
    System.String

    Call ids, or objects with a CallId property.

    .OUTPUTS
    MgKeepAlive.CallKeepAliveState

    .LINK
    Start-MgCommunicationCallKeepAlive

    .LINK
    Stop-MgCommunicationCallKeepAlive

    .LINK
    Wait-MgCommunicationCallKeepAlive
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.CallKeepAliveState')]
    param(
        [Parameter(Position = 0, ValueFromPipeline, ValueFromPipelineByPropertyName)][ArgumentCompleter({ & (Get-Module MgKeepAlive)[0] { if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Complete-MgkaArgument @args } CallId $args[2] })][string[]] $CallId,
        [Parameter()][ValidateSet('Active', 'Retrying', 'Ended', 'Failed')][string[]] $State
    )

    begin {
        if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Import-MgkaKeeper
        $named = $null
    }

    process {
        if ($PSBoundParameters.ContainsKey('CallId')) {
            if ($null -eq $named) { $named = [System.Collections.Generic.List[string]]::new() }
            foreach ($id in $CallId) { if ($null -ne $id) { $named.Add($id) } }
        }
    }

    end {
        $ids = $null
        if ($null -ne $named) { $ids = Select-MgkaKeeperCallId $PSCmdlet $named }
        Invoke-MgkaKeeper $PSCmdlet KeeperList (ConvertTo-MgkaKeeperJson callIds $ids states $State)
    }
}

function Stop-MgCommunicationCallKeepAlive {
    <#
    .SYNOPSIS
    Stops keeping calls alive and removes them from the background keeper.

    .DESCRIPTION
    Stops sending keep-alives for the given calls (or, with -All, for every kept call of the
    process) and forgets them: they no longer appear in Get-MgCommunicationCallKeepAlive. This is
    also how Ended and Failed calls are cleaned up once a script has seen them.

    A call that is not kept is a non-terminating error (CallNotKept); use -ErrorAction Ignore to
    stop calls that may already be gone. Returns nothing unless -PassThru is given, then the
    stopped calls' last states (State Stopped).

    Disconnect-MgGraph and removing the module also stop every kept call.

    .PARAMETER CallId
    The ids of the calls to stop keeping alive.

    .PARAMETER InputObject
    Calls from the pipeline: state objects (Get-MgCommunicationCallKeepAlive,
    Start-MgCommunicationCallKeepAlive, Wait-MgCommunicationCallKeepAlive; by their CallId), and
    anything Start-MgCommunicationCallKeepAlive accepts (objects with CallId or Id, hashtables,
    JSON identity strings, call id strings).

    .PARAMETER All
    Stops every kept call of the process, in every state.

    .PARAMETER PassThru
    Writes the stopped calls' states (State Stopped). By default nothing is written.

    .PARAMETER WhatIf
    Shows which calls would be stopped. Nothing is stopped.

    .PARAMETER Confirm
    Prompts for confirmation before each call (or, with -All, once) is stopped.

    .EXAMPLE
    Stop-MgCommunicationCallKeepAlive -All

    Stops keeping every call alive.

    .EXAMPLE
    Stop-MgCommunicationCallKeepAlive -CallId $callId

    Stops keeping one call alive, for example when the bot hangs up.

    .EXAMPLE
    Get-MgCommunicationCallKeepAlive -State Ended, Failed | Stop-MgCommunicationCallKeepAlive -PassThru

    Removes the calls that have ended or failed and shows them.

    .INPUTS
    MgKeepAlive.CallKeepAliveState

    System.String

    System.Object

    .OUTPUTS
    None

    MgKeepAlive.CallKeepAliveState

    With -PassThru, the stopped calls' states.

    .LINK
    Start-MgCommunicationCallKeepAlive

    .LINK
    Get-MgCommunicationCallKeepAlive

    .LINK
    Wait-MgCommunicationCallKeepAlive
    #>
    [CmdletBinding(DefaultParameterSetName = 'CallId', SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('MgKeepAlive.CallKeepAliveState')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'CallId')][ArgumentCompleter({ & (Get-Module MgKeepAlive)[0] { if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Complete-MgkaArgument @args } CallId $args[2] })][string[]] $CallId,
        [Parameter(Mandatory, ValueFromPipeline, ParameterSetName = 'InputObject')][object] $InputObject,
        [Parameter(Mandatory, ParameterSetName = 'All')][switch] $All,
        [Parameter()][switch] $PassThru
    )

    begin {
        if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Import-MgkaKeeper
        $batch = [System.Collections.Generic.List[string]]::new()
        $send = { Invoke-MgkaKeeper $PSCmdlet KeeperStop (ConvertTo-MgkaKeeperJson callIds $batch) -Quiet (-not $PassThru); $batch.Clear() }
        $byId = $PSCmdlet.ParameterSetName -eq 'CallId'
    }

    process {
        if ($PSCmdlet.ParameterSetName -eq 'All') { return }
        $items = if ($byId) { $CallId } else { @($InputObject) }
        Add-MgkaKeeperItem $PSCmdlet $items $byId $batch 'Stop keeping alive' $send
    }

    end {
        if ($PSCmdlet.ParameterSetName -ne 'All') { if ($batch.Count -gt 0) { & $send } }
        elseif ($PSCmdlet.ShouldProcess('all kept calls', 'Stop keeping alive')) { Invoke-MgkaKeeper $PSCmdlet KeeperStop '{"all":true}' -Quiet (-not $PassThru) }
    }
}

function Wait-MgCommunicationCallKeepAlive {
    <#
    .SYNOPSIS
    Waits until kept calls end or fail, and writes their states.

    .DESCRIPTION
    Blocks until the given calls (by default every call the keeper keeps when the command starts)
    have ended (Graph answered 404) or failed (Graph refused for good, e.g. 403), or, with -Any,
    until one of them has. Writes the state object of each such call as soon as it is seen, so a
    pipeline can clean up while the others are still kept. Calls that have already ended or failed
    are written at once.

    The keeper goes on working in the background; this command only watches it, polling the
    library's event queue in slices of at most 200 ms, so Ctrl+C stops the wait promptly (the
    calls stay kept). Calls stopped meanwhile (Stop-MgCommunicationCallKeepAlive in another
    runspace, Disconnect-MgGraph) are no longer waited for. A named call that is not kept is a
    non-terminating error (CallNotKept).

    On -Timeout, writes a non-terminating error (ErrorId WaitTimeout, TargetObject the ids still
    kept) and returns.

    .PARAMETER CallId
    The calls to wait for (default: every kept call). Accepts ids, and objects with a CallId
    property (such as the output of Start-MgCommunicationCallKeepAlive), from the pipeline.

    .PARAMETER Any
    Returns as soon as one of the calls has ended or failed (all that have are written).

    .PARAMETER Timeout
    How long to wait at most, as a TimeSpan (e.g. (New-TimeSpan -Minutes 5) or '00:05:00'). By
    default the wait does not time out.

    .EXAMPLE
    Wait-MgCommunicationCallKeepAlive -Any -Timeout '00:01:00' | Stop-MgCommunicationCallKeepAlive -PassThru

    Waits up to a minute for any kept call to end, then removes the calls that did.

    .EXAMPLE
    Start-MgCommunicationCallKeepAlive -CallId $callIds | Wait-MgCommunicationCallKeepAlive | ForEach-Object {
        Write-Warning "Call $($_.CallId) is over ($($_.State)); cleaning up."
        Remove-CallResources $_.CallId
        $_ | Stop-MgCommunicationCallKeepAlive
    }

    Keeps calls alive and cleans each one up as it ends; returns when all are over.

    .EXAMPLE
    while ($true) {
        Wait-MgCommunicationCallKeepAlive -Any -Timeout '00:00:30' -ErrorAction SilentlyContinue |
            Stop-MgCommunicationCallKeepAlive -PassThru | ForEach-Object { "ended: $($_.CallId)" }
        if (-not (Get-MgCommunicationCallKeepAlive)) { break }
    }

    A watch loop: reports ended calls as they come, and stops when nothing is kept any more.

    .INPUTS
    System.String

    Call ids, or objects with a CallId property.

    .OUTPUTS
    MgKeepAlive.CallKeepAliveState

    The states (Ended or Failed) of the calls that ended or failed.

    .LINK
    Start-MgCommunicationCallKeepAlive

    .LINK
    Get-MgCommunicationCallKeepAlive

    .LINK
    Stop-MgCommunicationCallKeepAlive
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.CallKeepAliveState')]
    param(
        [Parameter(Position = 0, ValueFromPipeline, ValueFromPipelineByPropertyName)][ArgumentCompleter({ & (Get-Module MgKeepAlive)[0] { if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Complete-MgkaArgument @args } CallId $args[2] })][string[]] $CallId,
        [Parameter()][switch] $Any,
        [Parameter()][ValidateScript({ $_ -ge [TimeSpan]::Zero }, ErrorMessage = 'The timeout must not be negative; it is {0}.')][TimeSpan] $Timeout
    )

    begin {
        if (-not $script:PrivateLoaded) { Import-MgkaPrivate }; Import-MgkaKeeper
        $named = $null
    }

    process {
        if ($PSBoundParameters.ContainsKey('CallId')) {
            if ($null -eq $named) { $named = [System.Collections.Generic.List[string]]::new() }
            foreach ($id in $CallId) { if ($null -ne $id) { $named.Add($id) } }
        }
    }

    end {
        # The library waits (mgka_keeper_wait_start): each step of the wait is an operation, waited
        # for in short slices (Ctrl+C cancels it), whose result says what to write and names the next.
        $ids = $null
        if ($null -ne $named) { $ids = Select-MgkaKeeperCallId $PSCmdlet $named }
        $timeoutMs = if ($PSBoundParameters.ContainsKey('Timeout')) { $Timeout.TotalMilliseconds }
        $operation = Invoke-MgkaKeeper $PSCmdlet KeeperWaitStart (ConvertTo-MgkaKeeperJson callIds $ids any $Any.IsPresent timeoutMs $timeoutMs) -Operation
        try {
            while ($operation) {
                $result = Wait-MgkaOperation -Operation $operation
                $operation = 0
                $null = Assert-MgkaResult $PSCmdlet $result -Terminating
                $step = ConvertFrom-MgkaJson $result.Json
                $operation = [uint64]$step['next']
                ConvertFrom-MgkaKeeperStates -Cmdlet $PSCmdlet -Json $result.Json -Property calls
                foreach ($note in $step['notes']) { Write-Verbose $note }
                if ($step['timedOut']) {
                    $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new([System.TimeoutException]::new($step['timedOut']['message']),
                            'WaitTimeout', [System.Management.Automation.ErrorCategory]::OperationTimeout, [string[]]@($step['timedOut']['callIds'])))
                }
            }
        } finally {
            if ($operation) { $null = Invoke-MgkaNative OperationCancel -Operation $operation }
        }
    }
}

#endregion

#region Import ------------------------------------------------------------------------------------
# Straight-line code on purpose: import time is a feature (a first call of any PowerShell
# function or .NET method costs milliseconds of JIT), so this region calls as little as it can,
# and the private helpers are defined by the first command, not here (Import-MgkaPrivate).

# The module's version: the manifest's ModuleVersion, written here too because reading the
# manifest at import costs more than the rest of the import (Module.Tests.ps1 checks they agree).
$script:ModuleVersion = '0.1.0'

# The native library is found, loaded and its version checked on the first native call
# (Initialize-MgkaNative), not here: each .NET call at import costs milliseconds of start-up.
$script:LibraryPath = $null
$script:Native = $null

# Microsoft's Graph modules next to MgKeepAlive: the command-lookup hook that notices them is
# installed by the first command (MgKeepAlive.Private.ps1), not here: turning a script block into
# the handler's delegate costs milliseconds. OnRemove puts the previous handler back. A
# Connect-MgGraph made before Microsoft's module loads is kept for it (MicrosoftReplay: the bound
# parameters and a certificate read from -CertificatePath, disposed on Disconnect-MgGraph).
$script:MicrosoftReplay = $null
$script:MicrosoftCertificate = $null
$script:CoexistenceLoaded = $false
$script:StopKeeperOnRemove = $null
$script:LookupHookInstalled = $false
$script:PreviousLookupAction = $null
$ExecutionContext.SessionState.Module.OnRemove = {
    if ($script:LookupHookInstalled) { $ExecutionContext.InvokeCommand.PostCommandLookupAction = $script:PreviousLookupAction }
    if ($script:StopKeeperOnRemove) { & $script:StopKeeperOnRemove }
}

#endregion
