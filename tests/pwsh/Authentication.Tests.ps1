#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# Connect-MgGraph's app-only sign-ins, the token lifecycle, environments, the beta cmdlet, cloud
# availability warnings, and the rule that no secret, key or token reaches any output stream.
# Against the project's Graph emulator.

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    Import-Module $ManifestPath -Force -ErrorAction Stop
    $null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $Emulator.Url -GraphEndpoint $Emulator.Url

    $TenantId = 'contoso.onmicrosoft.com'
    $ClientId = '11111111-2222-3333-4444-555555555555'
    $Secret = 'S3cr3t~' + [guid]::NewGuid().ToString('N')
    $X509 = 'System.Security.Cryptography.X509Certificates'

    function New-TestCertificate {
        # A self-signed RSA certificate with an exportable key (or ECDSA with -Ecdsa).
        param([string] $Subject, [switch] $Ecdsa)
        $notBefore = [datetimeoffset]::UtcNow.AddDays(-1); $notAfter = [datetimeoffset]::UtcNow.AddDays(30)
        if ($Ecdsa) {
            $key = [System.Security.Cryptography.ECDsa]::Create()
            $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new($Subject, $key, 'SHA256')
        } else {
            $key = [System.Security.Cryptography.RSA]::Create(2048)
            $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new($Subject, $key, 'SHA256',
                [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
        }
        $created = $request.CreateSelfSigned($notBefore, $notAfter)
        # Round-trip through PFX so the key is a persisted, exportable one (as from a real store).
        $pfx = $created.Export('Pfx', 'pfx-password')
        $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]'Exportable, PersistKeySet'
        [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($pfx, 'pfx-password', $flags)
        $created.Dispose(); $key.Dispose()
    }

    function Get-PrivateKeyBase64 {
        param($Certificate)
        $rsa = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($Certificate)
        try { [Convert]::ToBase64String($rsa.ExportPkcs8PrivateKey()) } finally { $rsa.Dispose() }
    }

    function Get-TokenRequest { @(Get-EmulatorRequest | Where-Object kind -EQ 'token') }

    function Get-IssuedToken {
        # Every bearer token the emulator saw (on keep-alives).
        @(Get-EmulatorRequest | ForEach-Object { $_.headers.authorization } | Where-Object { $_ -like 'Bearer *' } |
                ForEach-Object { $_.Substring(7) } | Sort-Object -Unique)
    }

    function Use-TestEnvironment {
        # Runs $Script with process environment variables set (value $null removes), then restores.
        # Every AZURE_* variable not given is removed for the duration.
        param([hashtable] $Variables, [scriptblock] $Script)
        $all = $AzureVariables.Clone()
        foreach ($name in $Variables.Keys) { $all[$name] = $Variables[$name] }
        Use-EnvironmentVariable $all $Script
    }

    $AzureVariables = @{
        AZURE_TENANT_ID = $null; AZURE_CLIENT_ID = $null; AZURE_CLIENT_SECRET = $null; AZURE_CLIENT_CERTIFICATE_PATH = $null
        AZURE_CLIENT_CERTIFICATE_PASSWORD = $null; AZURE_CLIENT_SEND_CERTIFICATE_CHAIN = $null; AZURE_USERNAME = $null; AZURE_PASSWORD = $null
    }

    function Connect-TestSecret {
        param([string] $Value = $Secret, [string] $Tenant = $TenantId, [string] $Client = $ClientId)
        $credential = [pscredential]::new($Client, (ConvertTo-SecureString $Value -AsPlainText -Force))
        Connect-MgGraph -TenantId $Tenant -ClientSecretCredential $credential -Environment Emulator -NoWelcome
    }

    # The app's certificate, in the CurrentUser\My store, as PFX and PEM files.
    $Subject = "CN=MgKeepAlive Test $([guid]::NewGuid().ToString('N').Substring(0, 12))"
    $Cert = New-TestCertificate -Subject $Subject
    $Store = [System.Security.Cryptography.X509Certificates.X509Store]::new('My', 'CurrentUser')
    $Store.Open('ReadWrite')
    $Store.Add($Cert)
    $PfxPath = Join-Path $TestDrive 'app.pfx'
    [System.IO.File]::WriteAllBytes($PfxPath, $Cert.Export('Pfx', 'file-password'))
    $PemPath = Join-Path $TestDrive 'app.pem'
    $rsa = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($Cert)
    [System.IO.File]::WriteAllText($PemPath, $Cert.ExportCertificatePem() + "`n" + $rsa.ExportPkcs8PrivateKeyPem() + "`n")
    $EncryptedPemPath = Join-Path $TestDrive 'app-encrypted.pem'
    $pbe = [System.Security.Cryptography.PbeParameters]::new('Aes256Cbc', 'SHA256', 10000)
    [System.IO.File]::WriteAllText($EncryptedPemPath, $Cert.ExportCertificatePem() + "`n" + $rsa.ExportEncryptedPkcs8PrivateKeyPem([char[]]'pem-password', $pbe) + "`n")
    $rsa.Dispose()
    $KeyBase64 = Get-PrivateKeyBase64 $Cert
    $UnregisteredCert = New-TestCertificate -Subject 'CN=MgKeepAlive Unregistered'

    $null = Invoke-Emulator POST apps @{ tenantId = $TenantId; clientId = $ClientId; clientSecret = $Secret; certificates = @([Convert]::ToBase64String($Cert.RawData)) }
    $null = Invoke-Emulator POST apps @{ tenantId = $TenantId; clientId = 'expired-app'; clientSecret = 'old-secret'; secretExpired = $true }
    $UserAssigned = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'
    $null = Invoke-Emulator POST identities @{ clientId = $UserAssigned }
    New-EmulatorCall 'auth-call'
}

AfterAll {
    if ($Store) {
        $Store.Remove($Cert)
        $Store.Dispose()
    }
    $null = Disconnect-MgGraph -ErrorAction SilentlyContinue
    Stop-TestEmulator $Emulator
}

Describe 'Connect-MgGraph parameter sets (as Microsoft.Graph.Authentication has them)' {
    BeforeAll {
        $Command = Get-Command Connect-MgGraph -Module MgKeepAlive
    }

    It 'has the official parameter sets, UserParameterSet the default' {
        $Command.ParameterSets.Name | Sort-Object | Should -Be @('AccessTokenParameterSet', 'AppCertificateParameterSet',
            'AppSecretCredentialParameterSet', 'EnvironmentVariableParameterSet', 'IdentityParameterSet', 'UserParameterSet')
        $Command.DefaultParameterSet | Should -Be 'UserParameterSet'
    }

    It 'has the official aliases' {
        $Command.Parameters['ClientId'].Aliases | Should -Be @('AppId', 'ApplicationId')
        $Command.Parameters['TenantId'].Aliases | Should -Contain 'Tenant'
        $Command.Parameters['ClientSecretCredential'].Aliases | Should -Be @('SecretCredential', 'Credential')
        $Command.Parameters['CertificateSubjectName'].Aliases | Should -Contain 'CertificateName'
        $Command.Parameters['UseDeviceCode'].Aliases | Should -Contain 'UseDeviceAuthentication'
        $Command.Parameters['Identity'].Aliases | Should -Contain 'ManagedIdentity'
        $Command.Parameters['Environment'].Aliases | Should -Be @('EnvironmentName', 'NationalCloud')
        (Get-Alias Connect-Graph).ResolvedCommand.Name | Should -Be 'Connect-MgGraph'
    }

    It 'takes -Environment, -ClientTimeout and -NoWelcome in every set' {
        foreach ($set in $Command.ParameterSets) {
            foreach ($name in 'Environment', 'ClientTimeout', 'NoWelcome') {
                $set.Parameters.Name | Should -Contain $name -Because "set $($set.Name)"
            }
        }
    }

    It 'has the certificate parameters in AppCertificateParameterSet only, with the file extension' {
        foreach ($name in 'CertificateThumbprint', 'CertificateSubjectName', 'Certificate', 'SendCertificateChain', 'CertificatePath', 'CertificatePassword') {
            $Command.Parameters[$name].ParameterSets.Keys | Should -Be @('AppCertificateParameterSet')
        }
        $Command.Parameters['Certificate'].ParameterType | Should -Be ([System.Security.Cryptography.X509Certificates.X509Certificate2])
        $Command.Parameters['CertificatePassword'].ParameterType | Should -Be ([securestring])
        $Command.Parameters['ClientSecretCredential'].ParameterType | Should -Be ([pscredential])
    }
}

Describe 'Client secret' {
    BeforeAll {
        Clear-EmulatorRequest
        Connect-TestSecret
    }

    It 'connects and fills the context' {
        $context = Get-MgContext
        $context.ClientId | Should -Be $ClientId
        $context.TenantId | Should -Be $TenantId
        $context.AuthType | Should -Be 'AppOnly'
        $context.TokenCredentialType | Should -Be 'ClientSecret'
        $context.Scopes | Should -Be @("$($Emulator.Url)/.default")
        $context.Environment | Should -Be 'Emulator'
        $context.ContextScope | Should -Be 'Process'
        $context.CertificateThumbprint | Should -BeNullOrEmpty
    }

    It 'requested the token at connect, from the tenant''s token URL' {
        $tokens = Get-TokenRequest
        $tokens.Count | Should -Be 1
        $tokens[0].rawPath | Should -BeLike "/$TenantId/oauth2/v2.0/token*"
        $tokens[0].status | Should -Be 200
    }

    It 'reuses one token for 10 keep-alives' {
        Clear-EmulatorRequest
        1..10 | ForEach-Object { Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru } | Should -Be (@($true) * 10)
        (Get-TokenRequest).Count | Should -Be 0
        @(Get-EmulatorRequest | Where-Object kind -EQ keepAlive).Count | Should -Be 10
        (Get-IssuedToken).Count | Should -Be 1
    }

    It 'takes the client id from the credential''s user name, and the aliases -Tenant, -Credential; -ClientId is not in this set (as in Microsoft''s)' {
        $credential = [pscredential]::new($ClientId, (ConvertTo-SecureString $Secret -AsPlainText -Force))
        Connect-MgGraph -TenantId $TenantId -ClientSecretCredential $credential -Environment Emulator -NoWelcome
        (Get-MgContext).ClientId | Should -Be $ClientId
        Connect-MgGraph -Tenant $TenantId -Credential $credential -EnvironmentName Emulator -NoWelcome
        (Get-MgContext).TokenCredentialType | Should -Be 'ClientSecret'
        { Connect-MgGraph -AppId $ClientId -Tenant $TenantId -Credential $credential -EnvironmentName Emulator -NoWelcome } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,Connect-MgGraph'
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru | Should -BeTrue
    }

    It 'writes Microsoft''s welcome, one string on the output stream' {
        $credential = [pscredential]::new($ClientId, (ConvertTo-SecureString $Secret -AsPlainText -Force))
        $welcome = @(Connect-MgGraph -TenantId $TenantId -ClientSecretCredential $credential -Environment Emulator 6>$null)
        $welcome.Count | Should -Be 1
        $welcome[0] | Should -BeOfType [string]
        $welcome[0] | Should -BeLike "Welcome to Microsoft Graph!*Connected via apponly access using $ClientId$([Environment]::NewLine)Readme:*-NoWelcome*"
    }
}

Describe 'Token lifecycle' {
    AfterAll {
        $null = Invoke-Emulator PUT config @{ tokenLifetimeSecs = 3599 }
    }

    It 'renews a short-lived token and keeps keep-alives working' {
        $null = Invoke-Emulator PUT config @{ tokenLifetimeSecs = 2 }
        Clear-EmulatorRequest
        Connect-TestSecret
        foreach ($i in 1..3) {
            Start-Sleep -Milliseconds 2200
            Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru -ErrorAction Stop | Should -BeTrue
        }
        (Get-TokenRequest).Count | Should -BeGreaterOrEqual 4
        (Get-IssuedToken).Count | Should -BeGreaterOrEqual 3
        @(Get-EmulatorRequest | Where-Object { $_.kind -eq 'keepAlive' -and $_.status -ne 200 }).Count | Should -Be 0
    }

    It 'renews once and retries once on a Graph 401' {
        $null = Invoke-Emulator PUT config @{ tokenLifetimeSecs = 3599 }
        Connect-TestSecret
        Clear-EmulatorRequest
        $null = Invoke-Emulator POST faults @{ callId = 'auth-call'; responses = @(@{ status = 401 }) }
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru -ErrorAction Stop | Should -BeTrue
        (Get-TokenRequest).Count | Should -Be 1
        $keepAlives = @(Get-EmulatorRequest | Where-Object kind -EQ keepAlive)
        $keepAlives.status | Should -Be @(401, 200)
    }

    It 'gives up after one retry when Graph keeps answering 401' {
        Clear-EmulatorRequest
        $null = Invoke-Emulator POST faults @{ callId = 'auth-call'; responses = @(@{ status = 401 }, @{ status = 401 }) }
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure[0].Exception.StatusCode | Should -Be 401
        (Get-TokenRequest).Count | Should -Be 1
        $null = Invoke-Emulator DELETE faults
    }
}

Describe 'Sign-in failures carry the AADSTS code' {
    It '<Case> -> <Code>' -TestCases @(
        @{ Case = 'wrong secret'; Code = 7000215; Error = 'invalid_client'; Status = 401; Connect = { Connect-TestSecret -Value 'wrong-secret' } }
        @{ Case = 'expired secret'; Code = 7000222; Error = 'invalid_client'; Status = 401; Connect = { Connect-TestSecret -Client 'expired-app' -Value 'old-secret' } }
        @{ Case = 'app not in the tenant'; Code = 700016; Error = 'unauthorized_client'; Status = 400; Connect = { Connect-TestSecret -Client '99999999-0000-0000-0000-000000000000' } }
        @{ Case = 'wrong tenant or cloud'; Code = 90002; Error = 'invalid_request'; Status = 400; Connect = { Connect-TestSecret -Tenant 'fabrikam.onmicrosoft.com' } }
        @{ Case = 'certificate not registered (bad assertion)'; Code = 700027; Error = 'invalid_client'; Status = 401; Connect = {
                Connect-MgGraph -ClientId $ClientId -TenantId $TenantId -Certificate $UnregisteredCert -Environment Emulator -NoWelcome } }
    ) {
        param($Code, $Error, $Status, $Connect)
        Clear-EmulatorRequest
        $caught = $null
        try { & $Connect } catch { $caught = $_ }
        $caught | Should -Not -BeNullOrEmpty -Because 'the sign-in must fail'
        $tokenRequests = Get-TokenRequest
        $tokenRequests.Count | Should -Be 1
        $tokenRequests[0].status | Should -Be $Status
        $caught.FullyQualifiedErrorId | Should -Be "AADSTS$Code,Connect-MgGraph"
        $caught.CategoryInfo.Category | Should -Be 'AuthenticationError'
        $caught.Exception | Should -BeOfType ([System.Security.Authentication.AuthenticationException])
        $caught.Exception.Message | Should -BeLike "AADSTS$($Code):*"
        $caught.Exception.ErrorCodes | Should -Contain $Code
        $caught.Exception.Error | Should -Be $Error
        $caught.Exception.TraceId | Should -Match '^[0-9a-f-]{36}$'
        $caught.Exception.CorrelationId | Should -Match '^[0-9a-f-]{36}$'
        $caught.Exception.HttpStatus | Should -Be $Status
        "$caught $($caught.Exception.ErrorDescription)" | Should -Not -BeLike "*$Secret*"
    }

    It 'is a terminating error, even with -ErrorAction SilentlyContinue' {
        { Connect-TestSecret -Value 'wrong' -ErrorAction SilentlyContinue; throw 'not reached' } | Should -Throw -ErrorId 'AADSTS7000215,Connect-MgGraph'
    }
}

Describe 'Certificates' {
    It 'connects with -CertificateThumbprint from the CurrentUser My store (PS256, x5t#S256)' {
        Clear-EmulatorRequest
        Connect-MgGraph -ClientId $ClientId -TenantId $TenantId -CertificateThumbprint $Cert.Thumbprint -Environment Emulator -NoWelcome
        $context = Get-MgContext
        $context.AuthType | Should -Be 'AppOnly'
        $context.TokenCredentialType | Should -Be 'ClientCertificate'
        $context.CertificateThumbprint | Should -Be $Cert.Thumbprint
        $assertion = (Get-TokenRequest)[0].assertion
        $assertion.alg | Should -Be 'PS256'
        $sha256 = [System.Security.Cryptography.SHA256]::HashData($Cert.RawData)
        $assertion.x5tS256 | Should -BeExactly ([Convert]::ToBase64String($sha256).TrimEnd('=').Replace('+', '-').Replace('/', '_'))
        $assertion.x5cLength | Should -BeNullOrEmpty
        $assertion.iss | Should -Be $ClientId
        $assertion.sub | Should -Be $ClientId
        $assertion.aud | Should -BeLike "*/$TenantId/oauth2/v2.0/token"
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru | Should -BeTrue
    }

    It 'connects with -CertificateSubjectName (<_>)' -TestCases @('full', 'CN only') {
        $name = if ($_ -eq 'full') { $Subject } else { $Subject -replace '^CN=', '' }
        Connect-MgGraph -ClientId $ClientId -TenantId $TenantId -CertificateSubjectName $name -Environment Emulator -NoWelcome
        (Get-MgContext).CertificateThumbprint | Should -Be $Cert.Thumbprint
        (Get-MgContext).CertificateSubjectName | Should -BeExactly $name
    }

    It 'connects with -Certificate' {
        Connect-MgGraph -ClientId $ClientId -TenantId $TenantId -Certificate $Cert -Environment Emulator -NoWelcome
        (Get-MgContext).CertificateThumbprint | Should -Be $Cert.Thumbprint
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru | Should -BeTrue
    }

    It 'connects with -CertificatePath <Kind>' -TestCases @(
        @{ Kind = 'PFX with password'; File = 'app.pfx'; Password = 'file-password' }
        @{ Kind = 'PEM'; File = 'app.pem'; Password = $null }
        @{ Kind = 'encrypted PEM'; File = 'app-encrypted.pem'; Password = 'pem-password' }
    ) {
        param($File, $Password)
        $parameters = @{ CertificatePath = (Join-Path $TestDrive $File) }
        if ($Password) { $parameters.CertificatePassword = ConvertTo-SecureString $Password -AsPlainText -Force }
        Connect-MgGraph -ClientId $ClientId -TenantId $TenantId @parameters -Environment Emulator -NoWelcome
        (Get-MgContext).CertificateThumbprint | Should -Be $Cert.Thumbprint
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru | Should -BeTrue
    }

    It 'sends x5c with -SendCertificateChain $true' {
        Clear-EmulatorRequest
        Connect-MgGraph -ClientId $ClientId -TenantId $TenantId -CertificateThumbprint $Cert.Thumbprint -SendCertificateChain $true -Environment Emulator -NoWelcome
        (Get-TokenRequest)[0].assertion.x5cLength | Should -BeGreaterOrEqual 1
    }

    It 'fails clearly: <Case>' -TestCases @(
        @{ Case = 'thumbprint not in the store'; ErrorId = 'CertificateNotFound'; Message = '*0000000000000000000000000000000000000000*CurrentUser\My*'
            Parameters = { @{ CertificateThumbprint = '0000000000000000000000000000000000000000' } } }
        @{ Case = 'subject not in the store'; ErrorId = 'CertificateNotFound'; Message = "*'CN=No Such Certificate'*"
            Parameters = { @{ CertificateSubjectName = 'CN=No Such Certificate' } } }
        @{ Case = 'no private key'; ErrorId = 'CertificatePrivateKeyMissing'; Message = "*$Subject*$($Cert.Thumbprint)*no private key*"
            Parameters = { @{ Certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($Cert.RawData) } } }
        @{ Case = 'not RSA'; ErrorId = 'CertificateKeyNotRsa'; Message = '*CN=MgKeepAlive ECDSA*RSA*'
            Parameters = { @{ Certificate = (New-TestCertificate -Subject 'CN=MgKeepAlive ECDSA' -Ecdsa) } } }
        @{ Case = 'missing file'; ErrorId = 'CertificateFileNotFound'; Message = '*nope.pfx*'
            Parameters = { @{ CertificatePath = (Join-Path $TestDrive 'nope.pfx') } } }
        @{ Case = 'wrong PFX password'; ErrorId = 'CertificateFileInvalid'; Message = '*app.pfx*'
            Parameters = { @{ CertificatePath = $PfxPath; CertificatePassword = (ConvertTo-SecureString 'wrong' -AsPlainText -Force) } } }
        @{ Case = 'no certificate parameter'; ErrorId = 'CertificateParameterMissing'; Message = '*-CertificateThumbprint*'
            Parameters = { @{ SendCertificateChain = $true } } }
    ) {
        param($ErrorId, $Message, $Parameters)
        Clear-EmulatorRequest
        $splat = & $Parameters
        { Connect-MgGraph -ClientId $ClientId -TenantId $TenantId @splat -Environment Emulator -NoWelcome } |
            Should -Throw -ErrorId "$ErrorId,Connect-MgGraph" -ExpectedMessage $Message
        (Get-TokenRequest).Count | Should -Be 0
    }
}

Describe 'Connect-MgGraph -EnvironmentVariable' {
    It 'signs in with AZURE_CLIENT_SECRET (read from $env:, not from the native environment)' {
        Use-TestEnvironment (@{ AZURE_TENANT_ID = $TenantId; AZURE_CLIENT_ID = $ClientId; AZURE_CLIENT_SECRET = $Secret }) {
            Connect-MgGraph -EnvironmentVariable -Environment Emulator -NoWelcome
        }
        $context = Get-MgContext
        # As Microsoft's shows an -EnvironmentVariable connection.
        $context.AuthType | Should -Be 'EnvironmentVariable'
        $context.TokenCredentialType | Should -Be 'EnvironmentVariable'
        $context.ClientId | Should -Be $ClientId
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru | Should -BeTrue
    }

    It 'signs in with AZURE_CLIENT_CERTIFICATE_PATH (<File>) and AZURE_CLIENT_SEND_CERTIFICATE_CHAIN' -TestCases @(
        @{ File = 'app.pfx'; Password = 'file-password' }
        @{ File = 'app.pem'; Password = $null }
    ) {
        param($File, $Password)
        Clear-EmulatorRequest
        Use-TestEnvironment (@{ AZURE_TENANT_ID = $TenantId; AZURE_CLIENT_ID = $ClientId
                AZURE_CLIENT_CERTIFICATE_PATH = (Join-Path $TestDrive $File); AZURE_CLIENT_CERTIFICATE_PASSWORD = $Password
                AZURE_CLIENT_SEND_CERTIFICATE_CHAIN = 'true'
            }) {
            Connect-MgGraph -EnvironmentVariable -Environment Emulator -NoWelcome
        }
        (Get-MgContext).CertificateThumbprint | Should -Be $Cert.Thumbprint
        (Get-TokenRequest)[0].assertion.x5cLength | Should -BeGreaterOrEqual 1
    }

    It 'prefers the secret when both a secret and a certificate are set' {
        Use-TestEnvironment (@{ AZURE_TENANT_ID = $TenantId; AZURE_CLIENT_ID = $ClientId; AZURE_CLIENT_SECRET = $Secret
                AZURE_CLIENT_CERTIFICATE_PATH = $PemPath
            }) {
            Connect-MgGraph -EnvironmentVariable -Environment Emulator -NoWelcome
        }
        (Get-MgContext).TokenCredentialType | Should -Be 'EnvironmentVariable'
        (Get-MgContext).CertificateThumbprint | Should -BeNullOrEmpty -Because 'the secret was used, not the certificate'
    }

    It 'refuses a user name/password-only environment' {
        Use-TestEnvironment (@{ AZURE_TENANT_ID = $TenantId; AZURE_CLIENT_ID = $ClientId; AZURE_USERNAME = 'user@contoso.com'; AZURE_PASSWORD = 'pw' }) {
            { Connect-MgGraph -EnvironmentVariable -Environment Emulator -NoWelcome } |
                Should -Throw -ErrorId 'EnvironmentUserCredentialNotSupported,Connect-MgGraph' -ExpectedMessage '*AZURE_USERNAME*app-only*AZURE_CLIENT_SECRET*'
        }
    }

    It 'names the missing variables' {
        Use-TestEnvironment (@{ AZURE_CLIENT_ID = $ClientId }) {
            { Connect-MgGraph -EnvironmentVariable -Environment Emulator -NoWelcome } |
                Should -Throw -ErrorId 'EnvironmentVariableMissing,Connect-MgGraph' -ExpectedMessage '*AZURE_TENANT_ID*AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH*'
        }
    }
}

Describe 'Connect-MgGraph -Identity' {
    It 'uses the instance metadata service (<Case>)' -TestCases @(
        @{ Case = 'system-assigned'; Id = $null }
        @{ Case = 'user-assigned -ClientId'; Id = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee' }
    ) {
        param($Id)
        Clear-EmulatorRequest
        $parameters = @{}
        if ($Id) { $parameters.ClientId = $Id }
        Use-TestEnvironment @{ IDENTITY_ENDPOINT = $null; IDENTITY_HEADER = $null; MGKEEPALIVE_IMDS_ENDPOINT = $Emulator.Url } {
            Connect-MgGraph -Identity @parameters -Environment Emulator -NoWelcome
        }
        $context = Get-MgContext
        $context.AuthType | Should -Be 'ManagedIdentity'
        $context.TokenCredentialType | Should -Be 'ManagedIdentity'
        # As Microsoft's shows them: its own default client id, and MSI@50342 for the system-assigned identity.
        $context.ClientId | Should -Be '14d82eec-204b-4c2f-b7e8-296a70dab67e'
        $context.ManagedIdentityId | Should -Be $(if ($Id) { $Id } else { 'MSI@50342' })
        $request = @(Get-EmulatorRequest | Where-Object kind -EQ managedIdentity)
        $request.Count | Should -Be 1
        $request[0].rawPath | Should -BeLike '/metadata/identity/oauth2/token*'
        if ($Id) { $request[0].rawPath | Should -BeLike "*$Id*" }
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru | Should -BeTrue
    }

    It 'uses IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service) with a user-assigned -ClientId' {
        Clear-EmulatorRequest
        $null = Invoke-Emulator PUT config @{ identityHeader = 'test-identity-header-value' }
        Use-TestEnvironment @{ IDENTITY_ENDPOINT = "$($Emulator.Url)/msi/token"; IDENTITY_HEADER = 'test-identity-header-value'; MGKEEPALIVE_IMDS_ENDPOINT = $null } {
            Connect-MgGraph -Identity -ClientId $UserAssigned -Environment Emulator -NoWelcome
        }
        (Get-MgContext).AuthType | Should -Be 'ManagedIdentity'
        $request = @(Get-EmulatorRequest | Where-Object kind -EQ managedIdentity)
        $request[0].rawPath | Should -BeLike '/msi/token*'
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru | Should -BeTrue
    }

    It 'fails with the identity endpoint''s error for an unknown user-assigned identity' {
        Clear-EmulatorRequest
        Use-TestEnvironment @{ IDENTITY_ENDPOINT = $null; IDENTITY_HEADER = $null; MGKEEPALIVE_IMDS_ENDPOINT = $Emulator.Url } {
            { Connect-MgGraph -Identity -ClientId 'ffffffff-0000-0000-0000-000000000000' -Environment Emulator -NoWelcome } |
                Should -Throw -ExpectedMessage '*Identity not found*'
        }
        $request = @(Get-EmulatorRequest | Where-Object kind -EQ managedIdentity)
        $request.Count | Should -Be 1
        $request[0].status | Should -Be 400
    }
}

Describe 'Access token and delegated sign-in' {
    It 'connects with -AccessToken (UserProvidedAccessToken)' {
        $null = Invoke-Emulator POST tokens @{ token = 'registered-user-token'; expiresInSecs = 600 }
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 'registered-user-token' -AsPlainText -Force) -Environment Emulator -NoWelcome
        (Get-MgContext).AuthType | Should -Be 'UserProvidedAccessToken'
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru | Should -BeTrue
    }

    It 'refuses delegated sign-in (<Case>) and names the app-only alternatives' -TestCases @(
        @{ Case = '-Scopes'; Parameters = @{ Scopes = 'Calls.Initiate.All' } }
        @{ Case = '-UseDeviceCode'; Parameters = @{ UseDeviceCode = $true } }
        @{ Case = '-UseDeviceAuthentication'; Parameters = @{ UseDeviceAuthentication = $true } }
        @{ Case = 'no credential'; Parameters = @{} }
        @{ Case = '-ClientId -TenantId only'; Parameters = @{ ClientId = 'x'; TenantId = 'y' } }
    ) {
        param($Parameters)
        { Connect-MgGraph @Parameters -NoWelcome } | Should -Throw -ErrorId 'DelegatedAuthenticationNotSupported,Connect-MgGraph' -ExpectedMessage (
            '*application permission*Calls.Initiate.All*Calls.AccessMedia.All*-ClientSecretCredential*-CertificateThumbprint*-Identity*-EnvironmentVariable*-AccessToken*')
    }
}

Describe 'Disconnect-MgGraph' {
    It 'returns the context it closed and clears the connection' {
        Connect-TestSecret
        $closed = Disconnect-MgGraph
        $closed.ClientId | Should -Be $ClientId
        $closed.TokenCredentialType | Should -Be 'ClientSecret'
        Get-MgContext | Should -BeNullOrEmpty
        Clear-EmulatorRequest
        Invoke-MgKeepCommunicationCallAlive -CallId auth-call -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure[0].FullyQualifiedErrorId | Should -BeExactly 'Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        @(Get-EmulatorRequest).Count | Should -Be 0
    }
}

Describe 'Set-MgEnvironment and Remove-MgEnvironment' {
    BeforeAll {
        Connect-TestSecret
    }

    It 'changes one endpoint of a user-defined environment and keeps the other' {
        $null = Add-MgEnvironment -Name Crud -AzureADEndpoint 'https://login.crud.test' -GraphEndpoint 'https://graph.crud.test'
        $changed = Set-MgEnvironment -Name Crud -GraphEndpoint 'https://graph2.crud.test'
        $changed.GraphEndpoint | Should -Be 'https://graph2.crud.test'
        $changed.AzureADEndpoint | Should -Be 'https://login.crud.test'
        (Get-MgEnvironment -Name Crud).GraphEndpoint | Should -Be 'https://graph2.crud.test'
    }

    It 'takes positional and pipeline-by-property-name input like the official' {
        Set-MgEnvironment Crud 'https://login3.crud.test' | Out-Null
        (Get-MgEnvironment Crud).AzureADEndpoint | Should -Be 'https://login3.crud.test'
        [pscustomobject]@{ Name = 'Piped'; AzureADEndpoint = 'https://l.piped.test'; GraphEndpoint = 'https://g.piped.test' } | Add-MgEnvironment | Out-Null
        (Get-MgEnvironment Piped).Type | Should -Be 'User-defined'
        Get-MgEnvironment Piped | Remove-MgEnvironment | Out-Null
        Get-MgEnvironment Piped -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'supports -WhatIf on Set and Remove' {
        Set-MgEnvironment -Name Crud -GraphEndpoint 'https://whatif.crud.test' -WhatIf | Should -BeNullOrEmpty
        (Get-MgEnvironment Crud).GraphEndpoint | Should -Be 'https://graph2.crud.test'
        Remove-MgEnvironment -Name Crud -WhatIf | Should -BeNullOrEmpty
        Get-MgEnvironment Crud | Should -Not -BeNullOrEmpty
    }

    It 'removes a user-defined environment and returns it' {
        $removed = Remove-MgEnvironment -Name Crud
        $removed.Name | Should -Be 'Crud'
        Get-MgEnvironment -Name Crud -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'protects <Name> from <Command>' -TestCases @(
        @{ Command = 'Set-MgEnvironment'; Name = 'Global'; Category = 'InvalidArgument' }
        @{ Command = 'Remove-MgEnvironment'; Name = 'Global'; Category = 'InvalidArgument' }
        @{ Command = 'Remove-MgEnvironment'; Name = 'China'; Category = 'InvalidArgument' }
        @{ Command = 'Remove-MgEnvironment'; Name = 'Emulator'; Category = 'InvalidArgument' }
        @{ Command = 'Set-MgEnvironment'; Name = 'NoSuchCloud'; Category = 'ObjectNotFound' }
        @{ Command = 'Remove-MgEnvironment'; Name = 'NoSuchCloud'; Category = 'ObjectNotFound' }
    ) {
        param($Command, $Name, $Category)
        $parameters = @{ Name = $Name }
        if ($Command -eq 'Set-MgEnvironment') { $parameters.GraphEndpoint = 'https://graph.evil.test' }
        & $Command @parameters -ErrorVariable failure -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $failure.Count | Should -Be 1
        $failure[0].CategoryInfo.Category | Should -Be $Category
        (Get-MgEnvironment -Name Global).GraphEndpoint | Should -Be 'https://graph.microsoft.com'
        Get-MgEnvironment -Name Emulator | Should -Not -BeNullOrEmpty
    }
}

Describe 'Invoke-MgBetaKeepCommunicationCallAlive' {
    BeforeAll {
        Connect-TestSecret
        $V1 = Get-Command Invoke-MgKeepCommunicationCallAlive -Module MgKeepAlive
        $Beta = Get-Command Invoke-MgBetaKeepCommunicationCallAlive -Module MgKeepAlive
    }

    It 'has the same parameters and parameter sets as the v1.0 cmdlet' {
        $Beta.ParameterSets.Name | Should -Be $V1.ParameterSets.Name
        $Beta.DefaultParameterSet | Should -Be $V1.DefaultParameterSet
        ($Beta.Parameters.Keys | Sort-Object) | Should -Be ($V1.Parameters.Keys | Sort-Object)
        foreach ($name in $V1.Parameters.Keys) {
            $Beta.Parameters[$name].ParameterType | Should -Be $V1.Parameters[$name].ParameterType
        }
    }

    It 'posts to /beta/ and behaves like v1.0 (PassThru, pipeline, errors)' {
        Clear-EmulatorRequest
        'auth-call', @{ Id = 'auth-call' } | Invoke-MgBetaKeepCommunicationCallAlive -PassThru | Should -Be @($true, $true)
        $log = @(Get-EmulatorKeepAlive)
        $log.rawPath | Should -Be @('/beta/communications/calls/auth-call/keepAlive', '/beta/communications/calls/auth-call/keepAlive')
        Invoke-MgBetaKeepCommunicationCallAlive -CallId no-such-call -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure[0].FullyQualifiedErrorId | Should -BeExactly 'itemNotFound,Microsoft.Graph.Beta.PowerShell.Cmdlets.InvokeMgBetaKeepCommunicationCallAlive_Keep'
        $failure[0].CategoryInfo.Activity | Should -Be 'Invoke-MgBetaKeepCommunicationCallAlive_Keep'
    }

    It 'honours -WhatIf' {
        Clear-EmulatorRequest
        Invoke-MgBetaKeepCommunicationCallAlive -CallId auth-call -WhatIf
        @(Get-EmulatorRequest).Count | Should -Be 0
    }
}

Describe 'Cloud availability warnings' {
    # The library says each warning once per process (for each cloud and API version): every case
    # here meets a cloud and version not yet warned about in this process, or runs in its own.
    AfterAll {
        Connect-TestSecret
    }

    It 'warns once for v1.0 in China, and says the request is sent' {
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 't' -AsPlainText -Force) -Environment China -NoWelcome
        $first = Invoke-MgKeepCommunicationCallAlive -CallId x -WhatIf 3>&1
        $warnings = @($first | Where-Object { $_ -is [System.Management.Automation.WarningRecord] })
        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -BeLike '*keepAlive (v1.0)*not in China*China cloud*sends the request anyway*'
        @(Invoke-MgKeepCommunicationCallAlive -CallId x -WhatIf 3>&1 | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }).Count | Should -Be 0
    }

    It 'warns for beta outside Global (<Cloud>), not for v1.0 there' -TestCases @(@{ Cloud = 'USGov' }, @{ Cloud = 'USGovDoD' }) {
        param($Cloud)
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 't' -AsPlainText -Force) -Environment $Cloud -NoWelcome
        @(Invoke-MgKeepCommunicationCallAlive -CallId x -WhatIf 3>&1 | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }).Count | Should -Be 0
        $warnings = @(Invoke-MgBetaKeepCommunicationCallAlive -CallId x -WhatIf 3>&1 | Where-Object { $_ -is [System.Management.Automation.WarningRecord] })
        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -BeLike "*keepAlive (beta)*only in the Global cloud*$Cloud cloud*"
    }

    It 'does not warn in Global or for a custom endpoint (the emulator)' {
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 't' -AsPlainText -Force) -Environment Global -NoWelcome
        @(Invoke-MgBetaKeepCommunicationCallAlive -CallId x -WhatIf 3>&1 | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }).Count | Should -Be 0
        Connect-TestSecret
        @(Invoke-MgBetaKeepCommunicationCallAlive -CallId auth-call 3>&1 | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }).Count | Should -Be 0
    }

    It 'classifies a user-defined environment by its Graph endpoint' {
        # In a process of its own: China v1.0 was warned about in this one.
        $command = @"
Import-Module '$ManifestPath' -ErrorAction Stop
`$null = Add-MgEnvironment -Name MyChina -AzureADEndpoint 'https://login.chinacloudapi.cn' -GraphEndpoint 'https://microsoftgraph.chinacloudapi.cn'
Connect-MgGraph -AccessToken (ConvertTo-SecureString 't' -AsPlainText -Force) -Environment MyChina -NoWelcome
@(Invoke-MgKeepCommunicationCallAlive -CallId x -WhatIf 3>&1 | Where-Object { `$_ -is [System.Management.Automation.WarningRecord] }).Count
`$null = Disconnect-MgGraph
`$null = Remove-MgEnvironment MyChina -ErrorAction Stop
"@
        $result = Invoke-TestPwsh -Command $command -TimeoutSeconds 300
        $result.ExitCode | Should -Be 0
        ($result.Output -split "`n" | Where-Object { $_ -notlike 'What if:*' }) | Should -Be '1'
    }
}

Describe 'No secret, key or token in any output stream' {
    It 'holds across every command with -Verbose -Debug, success and failure' {
        $outputs = [System.Collections.Generic.List[string]]::new()
        $record = { param($items) foreach ($item in $items) { $outputs.Add(($item | Out-String -Width 500)); if ($item -is [System.Management.Automation.ErrorRecord]) { $outputs.Add("$($item.Exception | Format-List * -Force | Out-String -Width 500) $($item.ErrorDetails) $($item.Exception.ErrorDescription)") } } }
        $common = @{ Verbose = $true; Debug = $true }
        $credential = [pscredential]::new($ClientId, (ConvertTo-SecureString $Secret -AsPlainText -Force))
        $wrong = [pscredential]::new($ClientId, (ConvertTo-SecureString "$Secret-wrong" -AsPlainText -Force))
        $steps = @(
            { Connect-MgGraph -TenantId $TenantId -ClientSecretCredential $credential -Environment Emulator @common }
            { Get-MgContext @common }
            { Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru -ResponseHeadersVariable h @common; $h | Out-String }
            { Invoke-MgBetaKeepCommunicationCallAlive -CallId auth-call -PassThru @common }
            { Invoke-MgKeepCommunicationCallAlive -CallId no-such-call @common }
            { Connect-MgGraph -TenantId $TenantId -ClientSecretCredential $wrong -Environment Emulator @common }
            { Connect-MgGraph -ClientId $ClientId -TenantId $TenantId -CertificateThumbprint $Cert.Thumbprint -SendCertificateChain $true -Environment Emulator @common }
            { Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru @common }
            { Connect-MgGraph -ClientId $ClientId -TenantId $TenantId -CertificatePath $PfxPath -CertificatePassword (ConvertTo-SecureString 'file-password' -AsPlainText -Force) -Environment Emulator @common }
            { Connect-MgGraph -ClientId $ClientId -TenantId $TenantId -Certificate $UnregisteredCert -Environment Emulator @common }
            { Use-TestEnvironment (@{ AZURE_TENANT_ID = $TenantId; AZURE_CLIENT_ID = $ClientId; AZURE_CLIENT_SECRET = $Secret }) { Connect-MgGraph -EnvironmentVariable -Environment Emulator @common } }
            { Use-TestEnvironment @{ IDENTITY_ENDPOINT = "$($Emulator.Url)/msi/token"; IDENTITY_HEADER = 'test-identity-header-value'; MGKEEPALIVE_IMDS_ENDPOINT = $null } { Connect-MgGraph -Identity -Environment Emulator @common } }
            { Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru @common }
            { Get-MgEnvironment @common; Add-MgEnvironment -Name Leak -AzureADEndpoint https://l.leak.test -GraphEndpoint https://g.leak.test @common; Set-MgEnvironment -Name Leak -GraphEndpoint https://g2.leak.test @common; Remove-MgEnvironment -Name Leak @common }
            { Disconnect-MgGraph @common }
            { Connect-MgGraph -AccessToken (ConvertTo-SecureString 'registered-user-token' -AsPlainText -Force) -Environment Emulator @common }
            { Invoke-MgKeepCommunicationCallAlive -CallId auth-call -PassThru @common }
        )
        # Every step's output and error go to the scan; which steps fail is checked too, so a step
        # that fails for another reason cannot silently shrink what is scanned.
        $failed = [System.Collections.Generic.List[int]]::new()
        for ($i = 0; $i -lt $steps.Count; $i++) {
            $items = try { & $steps[$i] *>&1 } catch { $failed.Add($i); $_ }
            & $record @($items)
        }
        $failed | Should -Be @(4, 5, 9) -Because 'only the unknown call, the wrong secret and the unregistered certificate fail'
        @($outputs | Where-Object { $_ -match 'itemNotFound' }).Count | Should -BeGreaterThan 0 -Because 'the unknown call''s error was scanned too'
        $text = $outputs -join "`n"
        $text | Should -Match 'VERBOSE|Connected|Keep alive'   # the streams were really captured
        $forbidden = @($Secret, $KeyBase64, 'file-password', 'test-identity-header-value', 'registered-user-token') + (Get-IssuedToken | Where-Object { $_.Length -ge 8 })
        (Get-IssuedToken).Count | Should -BeGreaterThan 1
        foreach ($value in $forbidden) {
            $text.Contains($value) | Should -BeFalse -Because "'$($value.Substring(0, [Math]::Min(12, $value.Length)))...' must not appear"
        }
        # Pieces of the private part of the key too (past the public modulus and exponent, which
        # the certificate shares): a PEM or a log line could wrap the base64.
        foreach ($offset in 500, 800, 1200) { $text.Contains($KeyBase64.Substring($offset, 64)) | Should -BeFalse }
        Connect-TestSecret
    }
}
