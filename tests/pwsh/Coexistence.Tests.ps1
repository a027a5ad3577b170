#Requires -Version 7.4
# Pester tests: MgKeepAlive next to Microsoft's real Graph modules (Microsoft.Graph.Authentication
# and Microsoft.Graph.CloudCommunications 2.38.1, from ../shared/peers): one Connect-MgGraph for
# both, in both import orders and by auto-loading, through a whole call's life against the
# emulator. Each scenario runs in a fresh pwsh (import order is per session) whose HOME is a temp
# folder, since Microsoft's module writes ~/.mg/mg.context.json. Where ../shared/peers is absent (a
# user's clone) every test here is skipped, saying why.

BeforeDiscovery {
    $PeersArchive = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '..' '..' '..' 'shared' 'peers' 'microsoft-graph-powershell-2.38.1.tar.gz'))
    $script:SkipReason = if (-not (Test-Path -LiteralPath $PeersArchive)) {
        "Microsoft's Graph modules are not at $PeersArchive (they come with the project's shared folder, not with a clone)."
    }
    if ($SkipReason) { Write-Warning "Coexistence.Tests.ps1: every test here is skipped: $SkipReason" }
}

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $PeersArchive = [System.IO.Path]::GetFullPath((Join-Path $RepoRoot '..' 'shared' 'peers' 'microsoft-graph-powershell-2.38.1.tar.gz'))
    $HavePeers = Test-Path -LiteralPath $PeersArchive
    if ($HavePeers) {
        # Extracted once per run (this file's TestDrive); about 90 MB.
        $PeersRoot = Join-Path $TestDrive 'peers'
        $null = New-Item -ItemType Directory $PeersRoot
        & tar -xzf $PeersArchive -C $PeersRoot
        if ($LASTEXITCODE -ne 0) { throw "tar could not extract $PeersArchive." }
        $Emulator = Start-TestEmulator
    }
    $ScenarioHome = Join-Path $TestDrive 'home'
    $null = New-Item -ItemType Directory $ScenarioHome -Force

    function ConvertTo-Base64Url([string] $Text) {
        [Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($Text)).TrimEnd('=').Replace('+', '-').Replace('/', '_')
    }
    # An app-only access token shaped as a JWT with tid (Microsoft's module reads the tenant and
    # the app from it), registered with the emulator (strict mode: only registered tokens pass).
    $TenantId = '6babcaad-604b-40ac-a9d7-9fd97c0b779f'
    $AppId = '3f0c2a9e-5d7b-4c1e-9a6f-2b8d4e7c1a05'
    $Token = (ConvertTo-Base64Url '{"typ":"JWT","alg":"RS256"}') + '.' +
        (ConvertTo-Base64Url ('{"aud":"https://graph.microsoft.com","iss":"https://sts.windows.net/' + $TenantId + '/","tid":"' + $TenantId +
            '","appid":"' + $AppId + '","roles":["Calls.Initiate.All"],"exp":4102444800}')) + '.c2lnbmF0dXJl'
    if ($HavePeers) { $null = Invoke-Emulator POST tokens @{ token = $Token; expiresInSecs = 86400 } }

    function Invoke-Scenario {
        # Runs $Script in a fresh pwsh that finds MgKeepAlive first and Microsoft's modules next
        # (as when both are installed in one folder: MgKeepAlive sorts first). The script gets
        # $Url and $Token; its last output line is JSON. Returns @{ Output; Result }.
        param([Parameter(Mandatory)][string] $Script, [string] $Url = $Emulator.Url, [hashtable] $Environment = @{})
        $path = Join-Path $TestDrive "scenario-$([guid]::NewGuid().ToString('n')).ps1"
        Set-Content -LiteralPath $path -Value ("param([string] `$Url, [string] `$Token)`n`$ErrorActionPreference = 'Stop'`n" + $Script)
        $separator = [System.IO.Path]::PathSeparator
        $variables = @{
            PSModulePath = (Join-Path $RepoRoot 'pwsh') + $separator + $PeersRoot
            HOME         = $ScenarioHome
            USERPROFILE  = $ScenarioHome
        }
        foreach ($name in $Environment.Keys) { $variables[$name] = $Environment[$name] }
        $saved = @{}
        foreach ($name in $variables.Keys) { $saved[$name] = [Environment]::GetEnvironmentVariable($name); [Environment]::SetEnvironmentVariable($name, $variables[$name]) }
        try {
            $output = @(& (Get-TestPwsh) -NoProfile -NonInteractive -File $path -Url $Url -Token $Token 2>&1 | ForEach-Object { "$_" })
        } finally {
            foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
        }
        $text = $output -join "`n"
        $json = $output | Where-Object { $_ -like '{*' } | Select-Object -Last 1
        if (-not $json) { throw "The scenario printed no result:`n$text" }
        @{ Output = $text; Result = ($json | ConvertFrom-Json -AsHashtable) }
    }

    # A whole call's life in one script: one Connect-MgGraph, Microsoft's commands to create, read
    # and end the call, MgKeepAlive's keep-alive (by -CallId and piped from Get-MgCommunicationCall),
    # the 404 of an ended call, and one Disconnect-MgGraph.
    $CallLife = @'
$null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $Url -GraphEndpoint $Url
Connect-MgGraph -AccessToken (ConvertTo-SecureString $Token -AsPlainText -Force) -Environment Emulator -NoWelcome
$result = [ordered]@{}
$result.loadedAfterConnect = @(Get-Module Microsoft.Graph.* | ForEach-Object Name | Sort-Object)
$body = @{
    '@odata.type'       = '#microsoft.graph.call'
    callbackUri         = 'https://bot.contoso.com/api/calls'
    requestedModalities = @('audio')
    mediaConfig         = @{ '@odata.type' = '#microsoft.graph.serviceHostedMediaConfig' }
    targets             = @(@{ '@odata.type' = '#microsoft.graph.invitationParticipantInfo'; identity = @{ '@odata.type' = '#microsoft.graph.identitySet'; application = @{ '@odata.type' = '#microsoft.graph.identity'; id = 'c6e5f2c8-6b1d-4a8e-9f3a-2d7b1e0c4f59' } } })
}
$call = New-MgCommunicationCall -BodyParameter $body
$result.callId = $call.Id
$result.keepAlive = Invoke-MgKeepCommunicationCallAlive -CallId $call.Id -PassThru
$read = Get-MgCommunicationCall -CallId $call.Id
$result.readId = $read.Id
$result.piped = Get-MgCommunicationCall -CallId $call.Id | Invoke-MgKeepCommunicationCallAlive -PassThru
Remove-MgCommunicationCall -CallId $call.Id
Invoke-MgKeepCommunicationCallAlive -CallId $call.Id -ErrorAction SilentlyContinue -ErrorVariable ended
$result.endedCount = $ended.Count
$result.endedStatus = [int]$ended[0].Exception.StatusCode
$result.endedErrorId = $ended[0].FullyQualifiedErrorId
$result.keepAliveSource = (Get-Command Invoke-MgKeepCommunicationCallAlive).Source
$result.loaded = @(Get-Module Microsoft.Graph.* | ForEach-Object Name | Sort-Object)
$closed = Disconnect-MgGraph
$result.closedAuthType = [string]$closed.AuthType
$result.oursAfter = $null -ne (Get-MgContext)
$result.microsoftAfter = $null -ne (Microsoft.Graph.Authentication\Get-MgContext)
$result | ConvertTo-Json -Compress
'@
}

AfterAll {
    if ($Emulator) { Stop-TestEmulator $Emulator }
}

Describe 'One Connect-MgGraph for MgKeepAlive and Microsoft''s modules, a whole call''s life' -Skip:([bool]$SkipReason) {
    It 'works when <Name>' -TestCases @(
        @{ Name = 'Microsoft''s modules are imported first'; Imports = "Import-Module Microsoft.Graph.CloudCommunications`nImport-Module MgKeepAlive`n" }
        @{ Name = 'MgKeepAlive is imported first'; Imports = "Import-Module MgKeepAlive`nImport-Module Microsoft.Graph.CloudCommunications`n" }
        @{ Name = 'only MgKeepAlive is imported (Microsoft''s modules auto-load)'; Imports = "Import-Module MgKeepAlive`n" }
        @{ Name = 'nothing is imported (everything auto-loads)'; Imports = '' }
    ) {
        Clear-EmulatorRequest
        $run = Invoke-Scenario -Script ($Imports + $CallLife)
        $result = $run.Result
        if ($Imports -notmatch 'CloudCommunications') {
            # Connect-MgGraph loaded none of Microsoft's modules: New-MgCommunicationCall did, later.
            $result.loadedAfterConnect | Should -BeNullOrEmpty -Because $run.Output
        }
        $result.loaded | Should -Be @('Microsoft.Graph.Authentication', 'Microsoft.Graph.CloudCommunications')
        $result.callId | Should -Not -BeNullOrEmpty -Because $run.Output
        $result.readId | Should -Be $result.callId
        $result.keepAlive | Should -BeTrue
        $result.piped | Should -BeTrue
        $result.endedCount | Should -Be 1
        $result.endedStatus | Should -Be 404
        $result.endedErrorId | Should -BeLike 'itemNotFound,*'
        $result.closedAuthType | Should -Not -BeNullOrEmpty
        $result.oursAfter | Should -BeFalse
        $result.microsoftAfter | Should -BeFalse

        # MgKeepAlive's keep-alive ran (its path is /keepAlive; Microsoft's cmdlet sends
        # /microsoft.graph.keepAlive), with the same token as Microsoft's requests.
        $log = @(Get-EmulatorRequest | Where-Object { "$($_.rawPath)" -like "*$($result.callId)*" -or $_.kind -eq 'batch' })
        $keepAlives = @(Get-EmulatorKeepAlive | Where-Object callId -EQ $result.callId)
        $keepAlives.Count | Should -Be 3
        $ours = "/v1.0/communications/calls/$($result.callId)/keepAlive"
        @($keepAlives | ForEach-Object { $_.rawPath }) | Should -Be @($ours, $ours, $ours)
        @($keepAlives | ForEach-Object { [int]$_.status }) | Should -Be @(200, 200, 404)
        @($log | Where-Object { "$($_.rawPath)" -like '*microsoft.graph.keepAlive*' }) | Should -BeNullOrEmpty
        @($log | Where-Object method -EQ 'GET').Count | Should -Be 2
        @($log | Where-Object method -EQ 'DELETE').Count | Should -Be 1
    }
}

Describe 'Connect-MgGraph, Disconnect-MgGraph and the settings, for both modules' -Skip:([bool]$SkipReason) {
    It 'module-qualified names still reach each module''s own command' {
        $run = Invoke-Scenario -Script @'
Import-Module MgKeepAlive
Import-Module Microsoft.Graph.CloudCommunications
$null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $Url -GraphEndpoint $Url
Connect-MgGraph -AccessToken (ConvertTo-SecureString $Token -AsPlainText -Force) -Environment Emulator -NoWelcome
$null = Invoke-RestMethod -Method Post "$Url/_emulator/calls" -Body '{"ids":["qualified-call"]}' -ContentType application/json
[ordered]@{
    microsoft = Microsoft.Graph.CloudCommunications\Invoke-MgKeepCommunicationCallAlive -CallId qualified-call -PassThru -ErrorAction SilentlyContinue -ErrorVariable e
    microsoftErrors = @($e | ForEach-Object FullyQualifiedErrorId)
    ours = MgKeepAlive\Invoke-MgKeepCommunicationCallAlive -CallId qualified-call -PassThru
    plain = Invoke-MgKeepCommunicationCallAlive -CallId qualified-call -PassThru
} | ConvertTo-Json -Compress
'@
        $run.Result.ours | Should -BeTrue -Because $run.Output
        $run.Result.plain | Should -BeTrue
        $paths = @(Get-EmulatorRequest | Where-Object callId -EQ 'qualified-call' | ForEach-Object rawPath)
        # Microsoft's sends the namespaced segment, MgKeepAlive's the short one (twice).
        $paths | Should -Be @('/v1.0/communications/calls/qualified-call/microsoft.graph.keepAlive', '/v1.0/communications/calls/qualified-call/keepAlive', '/v1.0/communications/calls/qualified-call/keepAlive')
    }

    It 'Remove-Module MgKeepAlive gives Microsoft''s keep-alive back and restores the previous command-lookup handler' {
        $run = Invoke-Scenario -Script @'
$seen = [System.Collections.Generic.List[string]]::new()
$ExecutionContext.InvokeCommand.PostCommandLookupAction = { param($name, $lookup) if ($name -eq 'Get-Date') { $seen.Add($name) } }
$previous = $ExecutionContext.InvokeCommand.PostCommandLookupAction
Import-Module MgKeepAlive
Import-Module Microsoft.Graph.CloudCommunications
$null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $Url -GraphEndpoint $Url
Connect-MgGraph -AccessToken (ConvertTo-SecureString $Token -AsPlainText -Force) -Environment Emulator -NoWelcome
$null = Invoke-RestMethod -Method Post "$Url/_emulator/calls" -Body '{"ids":["remove-call"]}' -ContentType application/json
$null = Get-Date
$ours = Invoke-MgKeepCommunicationCallAlive -CallId remove-call -PassThru
Remove-Module MgKeepAlive
$microsoft = Invoke-MgKeepCommunicationCallAlive -CallId remove-call -PassThru -ErrorAction SilentlyContinue
[ordered]@{
    chained  = $seen.Count
    restored = [object]::ReferenceEquals($ExecutionContext.InvokeCommand.PostCommandLookupAction, $previous)
    ours     = $ours
    source   = (Get-Command Invoke-MgKeepCommunicationCallAlive).Source
} | ConvertTo-Json -Compress
'@
        $run.Result.chained | Should -Be 1 -Because $run.Output
        $run.Result.restored | Should -BeTrue
        $run.Result.ours | Should -BeTrue
        $run.Result.source | Should -Be 'Microsoft.Graph.CloudCommunications'
        # Before Remove-Module the plain name ran MgKeepAlive's; after it, Microsoft's (still signed in).
        @(Get-EmulatorRequest | Where-Object callId -EQ 'remove-call' | ForEach-Object rawPath) |
            Should -Be @('/v1.0/communications/calls/remove-call/keepAlive', '/v1.0/communications/calls/remove-call/microsoft.graph.keepAlive')
    }

    It 'a failed sign-in of Microsoft''s module leaves neither connected, and the error says which failed' {
        # MSAL refuses a plain-http authority, MgKeepAlive accepts loopback http: so here only
        # Microsoft's half of the secret sign-in fails.
        $null = Invoke-Emulator POST apps @{ tenantId = $TenantId; clientId = $AppId; clientSecret = 'coexistence-secret' }
        $run = Invoke-Scenario -Script @"
Import-Module Microsoft.Graph.Authentication
Import-Module MgKeepAlive
`$null = Add-MgEnvironment -Name Emulator -AzureADEndpoint `$Url -GraphEndpoint `$Url
`$credential = [pscredential]::new('$AppId', (ConvertTo-SecureString 'coexistence-secret' -AsPlainText -Force))
try { Connect-MgGraph -TenantId $TenantId -ClientSecretCredential `$credential -Environment Emulator -NoWelcome; `$caught = `$null } catch { `$caught = `$_ }
[ordered]@{
    errorId = `$caught.FullyQualifiedErrorId
    message = `$caught.Exception.Message
    ours = `$null -ne (Get-MgContext)
    microsoft = `$null -ne (Microsoft.Graph.Authentication\Get-MgContext)
} | ConvertTo-Json -Compress
"@
        $run.Result.errorId | Should -BeLike 'MicrosoftGraphAuthenticationSignInFailed,*' -Because $run.Output
        $run.Result.message | Should -BeLike "Microsoft.Graph.Authentication's sign-in failed: *MgKeepAlive's sign-in had succeeded and was undone: neither module is connected."
        $run.Result.ours | Should -BeFalse
        $run.Result.microsoft | Should -BeFalse
        # MgKeepAlive did sign in (one token request) before Microsoft's failed.
        @(Get-EmulatorRequest | Where-Object { $_.kind -eq 'token' -and $_.status -eq 200 }).Count | Should -BeGreaterThan 0
    }

    It 'a keep-alive that finds only Microsoft''s connection says which Connect-MgGraph line connects both' {
        $run = Invoke-Scenario -Script @'
Import-Module MgKeepAlive
Import-Module Microsoft.Graph.Authentication
$null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $Url -GraphEndpoint $Url
Microsoft.Graph.Authentication\Connect-MgGraph -AccessToken (ConvertTo-SecureString $Token -AsPlainText -Force) -Environment Emulator -NoWelcome
Invoke-MgKeepCommunicationCallAlive -CallId only-microsoft -ErrorAction SilentlyContinue -ErrorVariable failed
[ordered]@{
    message = $failed[0].Exception.Message
    details = $failed[0].ErrorDetails.Message
    action = $failed[0].ErrorDetails.RecommendedAction
} | ConvertTo-Json -Compress
'@
        $run.Result.message | Should -BeLike 'Authentication needed*Connect-MgGraph.' -Because $run.Output
        $run.Result.action | Should -BeLike '*Run: Connect-MgGraph -AccessToken $token -Environment Emulator -- *connects both modules.'
        $run.Result.details | Should -BeLike "$($run.Result.message) Only Microsoft.Graph.Authentication is connected*"
    }

    It 'environments and request settings apply to both, also when Microsoft''s module loads later' {
        $run = Invoke-Scenario -Script @'
Import-Module MgKeepAlive
$null = Add-MgEnvironment -Name Early -AzureADEndpoint $Url -GraphEndpoint $Url
$null = Set-MgRequestContext -MaxRetry 7
Connect-MgGraph -AccessToken (ConvertTo-SecureString $Token -AsPlainText -Force) -Environment Early -NoWelcome
$null = Microsoft.Graph.Authentication\Get-MgContext
$afterLoad = [ordered]@{
    early = (Microsoft.Graph.Authentication\Get-MgEnvironment | Where-Object Name -EQ Early).GraphEndpoint
    environment = (Microsoft.Graph.Authentication\Get-MgContext).Environment
    maxRetry = (Microsoft.Graph.Authentication\Get-MgRequestContext).MaxRetry
}
$null = Add-MgEnvironment -Name Late -AzureADEndpoint https://login.late.example -GraphEndpoint https://graph.late.example
$null = Set-MgEnvironment -Name Late -GraphEndpoint https://graph2.late.example
$late = (Microsoft.Graph.Authentication\Get-MgEnvironment | Where-Object Name -EQ Late).GraphEndpoint
$null = Remove-MgEnvironment -Name Late
$null = Set-MgRequestContext -RetryDelay 9
[ordered]@{
    afterLoad = $afterLoad
    late = $late
    lateRemoved = -not (Microsoft.Graph.Authentication\Get-MgEnvironment | Where-Object Name -EQ Late)
    retryDelay = (Microsoft.Graph.Authentication\Get-MgRequestContext).RetryDelay
} | ConvertTo-Json -Compress
'@
        $result = $run.Result
        $result.afterLoad.early | Should -Be $Emulator.Url -Because $run.Output
        $result.afterLoad.environment | Should -Be 'Early'
        $result.afterLoad.maxRetry | Should -Be 7
        $result.late | Should -Be 'https://graph2.late.example'
        $result.lateRemoved | Should -BeTrue
        $result.retryDelay | Should -Be 9
    }
}

Describe 'Secret and certificate sign-in for both modules, over TLS' -Skip:([bool]$SkipReason) {
    BeforeAll {
        # Microsoft's module (MSAL) signs in only against an https authority: an emulator over TLS
        # with a self-signed loopback certificate, trusted by the child pwsh through SSL_CERT_FILE
        # (a bundle of the system's CAs and this certificate; .NET and MgKeepAlive's library read it).
        $certificatePem = Join-Path $TestDrive 'emulator.pem'
        $path = Join-Path $RepoRoot 'target' 'release' ($IsWindows ? 'graph-emulator.exe' : 'graph-emulator')
        $info = [System.Diagnostics.ProcessStartInfo]::new($path)
        foreach ($argument in '--port', '0', '--tls', '--write-cert', $certificatePem, '--exit-on-stdin-eof') { $info.ArgumentList.Add($argument) }
        $info.UseShellExecute = $false
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardInput = $true
        $process = [System.Diagnostics.Process]::Start($info)
        $line = $process.StandardOutput.ReadLine()
        if ($line -notmatch '^graph-emulator listening on (https://\S+)$') { try { $process.Kill() } catch { }; throw "Unexpected first line from graph-emulator --tls: $line" }
        $TlsEmulator = @{ Process = $process; Url = $Matches[1] }
        $Bundle = Join-Path $TestDrive 'bundle.pem'
        & bash (Join-Path $RepoRoot 'emulator' 'trust-cert.sh') bundle $certificatePem $Bundle
        if ($LASTEXITCODE -ne 0) { throw 'trust-cert.sh bundle failed.' }

        $TlsTenant = 'b4c1d7e2-3a5f-4e6b-8c9d-0a1b2c3d4e5f'
        $TlsApp = '9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b'
        $rsa = [System.Security.Cryptography.RSA]::Create(2048)
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=CoexistenceApp', $rsa,
            [System.Security.Cryptography.HashAlgorithmName]::SHA256, [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
        $certificate = $request.CreateSelfSigned([DateTimeOffset]::UtcNow.AddMinutes(-5), [DateTimeOffset]::UtcNow.AddDays(1))
        $PfxPath = Join-Path $TestDrive 'app.pfx'
        [System.IO.File]::WriteAllBytes($PfxPath, $certificate.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx, 'pfx-password'))
        function Invoke-TlsEmulator {
            # The TLS emulator's control API. This process does not trust the emulator's
            # certificate (only the child pwsh gets SSL_CERT_FILE), so its own control requests
            # skip the check: loopback, and only the test talking to its emulator.
            param([string] $Method, [string] $Path, $Body)
            $parameters = @{ Method = $Method; Uri = "$($TlsEmulator.Url)/_emulator/$Path"; SkipCertificateCheck = $true }
            if ($PSBoundParameters.ContainsKey('Body')) { $parameters.Body = ConvertTo-Json -InputObject $Body -Depth 10 -Compress; $parameters.ContentType = 'application/json' }
            @(Invoke-RestMethod @parameters | ForEach-Object { $_ })
        }
        $null = Invoke-TlsEmulator POST apps @{ tenantId = $TlsTenant; clientId = $TlsApp; clientSecret = 'tls-secret'; certificates = @([Convert]::ToBase64String($certificate.RawData)) }

        $TlsCallLife = @'
$null = Add-MgEnvironment -Name EmulatorTls -AzureADEndpoint $Url -GraphEndpoint $Url
__CONNECT__
$context = Microsoft.Graph.Authentication\Get-MgContext
$result = [ordered]@{ microsoftAuth = [string]$context.TokenCredentialType; microsoftTenant = $context.TenantId; oursAuth = [string](Get-MgContext).TokenCredentialType }
$call = New-MgCommunicationCall -BodyParameter @{ callbackUri = 'https://bot.contoso.com/api/calls'; requestedModalities = @('audio') }
$result.callId = $call.Id
$result.keepAlive = Invoke-MgKeepCommunicationCallAlive -CallId $call.Id -PassThru
$result.piped = Get-MgCommunicationCall -CallId $call.Id | Invoke-MgKeepCommunicationCallAlive -PassThru
Remove-MgCommunicationCall -CallId $call.Id
Invoke-MgKeepCommunicationCallAlive -CallId $call.Id -ErrorAction SilentlyContinue -ErrorVariable ended
$result.endedStatus = [int]$ended[0].Exception.StatusCode
$null = Disconnect-MgGraph
$result.after = [bool](Get-MgContext) -or [bool](Microsoft.Graph.Authentication\Get-MgContext)
$result | ConvertTo-Json -Compress
'@
    }

    AfterAll {
        if ($TlsEmulator) { Stop-TestEmulator $TlsEmulator }
    }

    It 'signs both in with <Name>, through a whole call''s life' -TestCases @(
        @{ Name = 'a client secret'; Expected = 'ClientSecret'; Connect = '$credential = [pscredential]::new(''__APP__'', (ConvertTo-SecureString ''tls-secret'' -AsPlainText -Force)); Connect-MgGraph -TenantId __TENANT__ -ClientSecretCredential $credential -Environment EmulatorTls -NoWelcome' }
        @{ Name = 'a certificate file (-CertificatePath, passed on as -Certificate)'; Expected = 'ClientCertificate'; Connect = 'Connect-MgGraph -ClientId __APP__ -TenantId __TENANT__ -CertificatePath ''__PFX__'' -CertificatePassword (ConvertTo-SecureString ''pfx-password'' -AsPlainText -Force) -Environment EmulatorTls -NoWelcome' }
    ) {
        $connect = $Connect.Replace('__APP__', $TlsApp).Replace('__TENANT__', $TlsTenant).Replace('__PFX__', $PfxPath)
        $run = Invoke-Scenario -Url $TlsEmulator.Url -Environment @{ SSL_CERT_FILE = $Bundle } -Script ("Import-Module MgKeepAlive`n" + $TlsCallLife.Replace('__CONNECT__', $connect))
        $result = $run.Result
        $result.microsoftAuth | Should -Be $Expected -Because $run.Output
        $result.oursAuth | Should -Be $Expected
        $result.microsoftTenant | Should -Be $TlsTenant
        $result.callId | Should -Not -BeNullOrEmpty
        $result.keepAlive | Should -BeTrue
        $result.piped | Should -BeTrue
        $result.endedStatus | Should -Be 404
        $result.after | Should -BeFalse
        # Both modules asked the token endpoint (each keeps its own token), and the keep-alives
        # were MgKeepAlive's.
        $log = Invoke-TlsEmulator GET requests
        @($log | Where-Object { $_.kind -eq 'token' -and $_.status -eq 200 }).Count | Should -BeGreaterOrEqual 2
        $ours = "/v1.0/communications/calls/$($result.callId)/keepAlive"
        @($log | Where-Object { $_.kind -eq 'keepAlive' -and $_.callId -eq $result.callId } | ForEach-Object rawPath) | Should -Be @($ours, $ours, $ours)
        $null = Invoke-TlsEmulator DELETE requests
    }
}
