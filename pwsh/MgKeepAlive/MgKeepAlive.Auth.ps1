# MgKeepAlive: the app-only sign-in helpers of Connect-MgGraph (certificates, the AZURE_*
# environment variables, client id/tenant checks). Private. Dot-sourced by Connect-MgGraph the
# first time a sign-in needs them, not at import: import time is a feature, and parsing these
# functions would add to it for users who connect with an access token or a managed identity.
# The functions are defined in the module's script scope (function script:...), where the
# module's Set-StrictMode -Version 3.0 applies.

function script:Assert-MgkaAppIdentity {
    # App-only sign-in needs a client id and a tenant: a clear error naming where they come from.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.IDictionary] $Request, [string] $ClientIdSource, [string] $TenantIdSource)
    $missing = @()
    if ([string]::IsNullOrWhiteSpace($Request['clientId'])) { $missing += $ClientIdSource }
    if ([string]::IsNullOrWhiteSpace($Request['tenantId'])) { $missing += $TenantIdSource }
    if ($missing.Count -eq 0) { return }
    $Cmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
            [System.ArgumentException]::new("App-only sign-in needs the application's client id and the tenant; missing: $($missing -join ', ')."),
            'AppIdentityMissing', [System.Management.Automation.ErrorCategory]::InvalidArgument, $null))
}

function script:New-MgkaSignInError {
    # A sign-in error found here, worded by the library from its facts (error_record's "SignIn"
    # errors); a certificate's facts are its subject and thumbprint, and it is the record's target.
    param([string] $ErrorId, [hashtable] $Facts = @{}, $Certificate)
    if ($Certificate) { $Facts = $Facts + @{ subject = $Certificate.Subject; thumbprint = $Certificate.Thumbprint } }
    New-MgkaErrorRecord -Info (@{ kind = 'SignIn'; errorId = $ErrorId } + $Facts) -TargetObject $Certificate
}

function script:Find-MgkaCertificate {
    # Looks a certificate up in the CurrentUser\My store (.NET provides it on Linux and macOS).
    # Returns a certificate the caller disposes.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string] $Thumbprint, [string] $SubjectName)
    $store = [System.Security.Cryptography.X509Certificates.X509Store]::new('My', 'CurrentUser')
    try {
        $store.Open('ReadOnly, OpenExistingOnly')
        $all = $store.Certificates
    } catch {
        $all = [System.Security.Cryptography.X509Certificates.X509Certificate2Collection]::new()
    }
    try {
        if ($Thumbprint) {
            $wanted = $Thumbprint -replace '[\s:]', ''
            $found = @($all.Find('FindByThumbprint', $wanted, $false))
        } else {
            $found = @($all.Find('FindBySubjectDistinguishedName', $SubjectName, $false))
            if ($found.Count -eq 0) {
                $plain = $SubjectName -replace '^\s*CN\s*=\s*', ''
                $found = @($all.Find('FindBySubjectName', $plain, $false))
            }
        }
        if ($found.Count -eq 0) {
            $Cmdlet.ThrowTerminatingError((New-MgkaSignInError CertificateNotFound @{ thumbprint = if ($Thumbprint) { $wanted }; subjectName = $SubjectName; count = $all.Count }))
        }
        $now = [datetime]::Now
        $best = $found | Sort-Object -Property @{ Expression = { $_.HasPrivateKey }; Descending = $true },
        @{ Expression = { $_.NotBefore -le $now -and $_.NotAfter -ge $now }; Descending = $true },
        @{ Expression = { $_.NotAfter }; Descending = $true } | Select-Object -First 1
        Write-Verbose "Certificate '$($best.Subject)' (thumbprint $($best.Thumbprint), valid until $($best.NotAfter.ToString('u'))) from CurrentUser\My."
        [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($best)
    } finally {
        foreach ($certificate in $all) { $certificate.Dispose() }
        $store.Dispose()
    }
}

function script:Import-MgkaCertificateFile {
    # A PFX/PKCS#12 or PEM file with the private key. Returns a certificate the caller disposes.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string] $Path, [securestring] $Password, [string] $PlainPassword, [string] $Source = '-CertificatePath')
    if (-not [System.IO.File]::Exists($Path)) {
        $Cmdlet.ThrowTerminatingError((New-MgkaSignInError CertificateFileNotFound @{ path = $Path; source = $Source }))
    }
    $head = [System.IO.File]::ReadAllText($Path)
    $chars = $null
    $unicode = [IntPtr]::Zero
    try {
        if ($head.Contains('-----BEGIN')) {
            if ($Password -or $PlainPassword) {
                if ($Password) {
                    $unicode = [System.Runtime.InteropServices.Marshal]::SecureStringToGlobalAllocUnicode($Password)
                    $chars = [char[]]::new($Password.Length)
                    [System.Runtime.InteropServices.Marshal]::Copy($unicode, $chars, 0, $chars.Length)
                } else { $chars = $PlainPassword.ToCharArray() }
                return [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromEncryptedPemFile($Path, $chars)
            }
            return [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($Path)
        }
        $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]::Exportable
        if ($Password) { return [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($Path, $Password, $flags) }
        return [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($Path, [string]$PlainPassword, $flags)
    } catch {
        $reason = if ($_.Exception.InnerException) { $_.Exception.InnerException.Message } else { $_.Exception.Message }
        $Cmdlet.ThrowTerminatingError((New-MgkaSignInError CertificateFileInvalid @{ path = $Path; source = $Source; reason = $reason }))
    } finally {
        if ($null -ne $chars) { [Array]::Clear($chars) }
        if ($unicode -ne [IntPtr]::Zero) { [System.Runtime.InteropServices.Marshal]::ZeroFreeGlobalAllocUnicode($unicode) }
    }
}

function script:New-MgkaCertificateRequest {
    # The "certificate" object of the connect request: public parts only.
    param([System.Security.Cryptography.X509Certificates.X509Certificate2] $Certificate, [bool] $SendChain)
    $chain = [System.Collections.Generic.List[string]]::new()
    if ($SendChain) {
        $builder = [System.Security.Cryptography.X509Certificates.X509Chain]::new()
        try {
            $builder.ChainPolicy.RevocationMode = 'NoCheck'
            $builder.ChainPolicy.VerificationFlags = 'AllFlags'
            [void]$builder.Build($Certificate)
            # The elements after the leaf, without a self-signed root.
            for ($i = 1; $i -lt $builder.ChainElements.Count; $i++) {
                $element = $builder.ChainElements[$i].Certificate
                if ($element.SubjectName.RawData.Length -gt 0 -and $element.Subject -eq $element.Issuer) { continue }
                $chain.Add([Convert]::ToBase64String($element.RawData))
            }
        } finally {
            foreach ($element in $builder.ChainElements) { $element.Certificate.Dispose() }
            $builder.Dispose()
        }
        Write-Verbose "Sending the certificate chain (x5c): the leaf and $($chain.Count) more."
    }
    [ordered]@{
        der       = [Convert]::ToBase64String($Certificate.RawData)
        chain     = $chain.ToArray()
        sendChain = $SendChain
    }
}

function script:Export-MgkaPrivateKey {
    # The certificate's RSA private key as PKCS#8 DER, for the native library to sign the client
    # assertion. Every reason it cannot be used is a terminating error naming the certificate.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Security.Cryptography.X509Certificates.X509Certificate2] $Certificate)
    if (-not $Certificate.HasPrivateKey) {
        $Cmdlet.ThrowTerminatingError((New-MgkaSignInError CertificatePrivateKeyMissing -Certificate $Certificate))
    }
    $rsa = $null
    try {
        $rsa = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($Certificate)
    } catch {
        $Cmdlet.ThrowTerminatingError((New-MgkaSignInError CertificatePrivateKeyUnreadable @{ reason = $_.Exception.InnerException.Message } -Certificate $Certificate))
    }
    if ($null -eq $rsa) {
        $Cmdlet.ThrowTerminatingError((New-MgkaSignInError CertificateKeyNotRsa @{ algorithm = $Certificate.PublicKey.Oid.FriendlyName } -Certificate $Certificate))
    }
    try {
        , $rsa.ExportPkcs8PrivateKey()
    } catch {
        $Cmdlet.ThrowTerminatingError((New-MgkaSignInError CertificatePrivateKeyNotExportable -Certificate $Certificate))
    } finally {
        $rsa.Dispose()
    }
}

function script:Read-MgkaEnvironmentCredential {
    # Connect-MgGraph -EnvironmentVariable: Azure.Identity's EnvironmentCredential variables, read
    # from the PowerShell process environment (native code does not see $env: changes on Linux
    # and macOS). Fills $Request and returns the secret bytes (the caller zeroes them).
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.IDictionary] $Request)
    $get = { param($name) $value = [Environment]::GetEnvironmentVariable($name); if ([string]::IsNullOrEmpty($value)) { $null } else { $value } }
    $tenant = & $get 'AZURE_TENANT_ID'
    $client = & $get 'AZURE_CLIENT_ID'
    $secretText = & $get 'AZURE_CLIENT_SECRET'
    $certificatePath = & $get 'AZURE_CLIENT_CERTIFICATE_PATH'
    if (-not $secretText -and -not $certificatePath -and ((& $get 'AZURE_USERNAME') -or (& $get 'AZURE_PASSWORD'))) {
        $Cmdlet.ThrowTerminatingError((New-MgkaSignInError EnvironmentUserCredentialNotSupported))
    }
    $missing = @()
    if (-not $tenant) { $missing += 'AZURE_TENANT_ID' }
    if (-not $client) { $missing += 'AZURE_CLIENT_ID' }
    if (-not $secretText -and -not $certificatePath) { $missing += 'AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH' }
    if ($missing.Count -gt 0) { $Cmdlet.ThrowTerminatingError((New-MgkaSignInError EnvironmentVariableMissing @{ missing = $missing })) }
    $Request['tenantId'] = $tenant
    $Request['clientId'] = $client
    if ($secretText) {
        Write-Verbose 'Environment credential: client secret (AZURE_CLIENT_SECRET).'
        $Request['authType'] = 'ClientSecret'
        $bytes = [byte[]]::new($script:Utf8.GetByteCount($secretText))
        [void]$script:Utf8.GetBytes($secretText, 0, $secretText.Length, $bytes, 0)
        return , $bytes
    }
    Write-Verbose "Environment credential: certificate file $certificatePath (AZURE_CLIENT_CERTIFICATE_PATH)."
    $Request['authType'] = 'ClientCertificate'
    $sendChain = (& $get 'AZURE_CLIENT_SEND_CERTIFICATE_CHAIN') -in @('1', 'true', 'True', 'TRUE', 'yes')
    $certificate = Import-MgkaCertificateFile -Cmdlet $Cmdlet -Path $certificatePath -PlainPassword (& $get 'AZURE_CLIENT_CERTIFICATE_PASSWORD') -Source 'AZURE_CLIENT_CERTIFICATE_PATH'
    try {
        $Request['certificate'] = New-MgkaCertificateRequest -Certificate $certificate -SendChain $sendChain
        , (Export-MgkaPrivateKey -Cmdlet $Cmdlet -Certificate $certificate)
    } finally {
        $certificate.Dispose()
    }
}
