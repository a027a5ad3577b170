#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# No user name or password of any URL (proxy variables, -Proxy, managed identity endpoints,
# environments) in any output stream or error, and tenant ids that are one clean URL path
# segment. Against the project's Graph emulator.

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    Import-Module $ManifestPath -Force -ErrorAction Stop
    $null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $Emulator.Url -GraphEndpoint $Emulator.Url
    $EmulatorHost = ([uri]$Emulator.Url).Authority

    $TenantId = 'contoso.onmicrosoft.com'
    $ClientId = '11111111-2222-3333-4444-555555555555'
    $Secret = 'S3cr3t~' + [guid]::NewGuid().ToString('N')
    $null = Invoke-Emulator POST apps @{ tenantId = $TenantId; clientId = $ClientId; clientSecret = $Secret }

    # A user name and a password with '@', ':' and a percent-escape. None of these pieces may show
    # (a redaction that stops at the first '@' or ':' leaves one of them).
    $User = 'pRoxyUser'
    $Password = 'lEft7@mIddle8:rIght9%40end'
    $Pieces = 'pRoxyUser', 'lEft7', 'mIddle8', 'rIght9', '%40end'

    function Get-Leak {
        # The pieces of the user info that $Text shows (case-insensitively: a URL scheme is lower-cased).
        param([string] $Text)
        @($Pieces | Where-Object { $Text -match [regex]::Escape($_) })
    }

    function Get-AllText {
        # Every stream of $Script and its error, as text: messages, error details, targets.
        param([scriptblock] $Script)
        $lines = [System.Collections.Generic.List[string]]::new()
        try {
            & $Script *>&1 | ForEach-Object {
                $lines.Add("$_")
                if ($_ -is [System.Management.Automation.ErrorRecord]) { $lines.Add("$($_.TargetObject)"); $lines.Add("$($_.ErrorDetails)") }
            }
        } catch {
            $lines.Add("$_"); $lines.Add("$($_.Exception.Message)"); $lines.Add("$($_.TargetObject)"); $lines.Add("$($_.ErrorDetails)")
        }
        $lines -join "`n"
    }

    # Every proxy variable removed (both spellings: on Linux and macOS they are different variables).
    $NoProxy = [hashtable]::new([StringComparer]::Ordinal)
    foreach ($name in 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy') { $NoProxy[$name] = $null }

    function Connect-TestSecret {
        # -Trace: with -Verbose and -Debug. Errors are terminating.
        param([string] $Tenant = $TenantId, [switch] $Trace)
        $credential = [pscredential]::new($ClientId, (ConvertTo-SecureString $Secret -AsPlainText -Force))
        $common = if ($Trace) { @{ Verbose = $true; Debug = $true } } else { @{} }
        Connect-MgGraph -TenantId $Tenant -ClientSecretCredential $credential -Environment Emulator -NoWelcome -ErrorAction Stop @common
    }
}

AfterAll {
    Disconnect-MgGraph -ErrorAction SilentlyContinue | Out-Null
    Remove-Module MgKeepAlive -Force -ErrorAction SilentlyContinue
    Stop-TestEmulator $Emulator
}

Describe 'URLs in messages never show a user name or password' {
    It 'Connect-MgGraph names an HTTPS_PROXY it cannot use without its user info' {
        $variables = $NoProxy.Clone(); $variables['HTTPS_PROXY'] = "socks5h://${User}:$Password@127.0.0.1:1080"
        $text = Use-EnvironmentVariable $variables { Get-AllText { Connect-TestSecret -Trace } }
        $text | Should -Match ([regex]::Escape("socks5h://***@127.0.0.1:1080"))
        Get-Leak $text | Should -BeNullOrEmpty
    }

    It 'Connect-MgGraph -Debug shows the proxy variables without user info' {
        # The emulator is the proxy (it answers absolute-form requests); the sign-in succeeds through it.
        $variables = $NoProxy.Clone(); $variables['HTTP_PROXY'] = "http://${User}:$Password@$EmulatorHost"
        $text = Use-EnvironmentVariable $variables { Get-AllText { Connect-TestSecret -Trace } }
        $text | Should -Match ([regex]::Escape("http://***@$EmulatorHost"))
        $text | Should -Match 'Connected to Microsoft Graph'
        Get-Leak $text | Should -BeNullOrEmpty
    }

    It 'a keep-alive names a proxy variable it cannot use without its user info' {
        Connect-TestSecret
        $variables = $NoProxy.Clone(); $variables['HTTP_PROXY'] = "ftp://${User}:$Password@127.0.0.1:21"
        $text = Use-EnvironmentVariable $variables { Get-AllText { Invoke-MgKeepCommunicationCallAlive -CallId sec-proxy -Verbose -Debug } }
        $text | Should -Match ([regex]::Escape('ftp://***@127.0.0.1:21'))
        Get-Leak $text | Should -BeNullOrEmpty
    }

    It '-Proxy that is not http(s) is named (and kept as target) without its user info' {
        # .NET's [uri] takes '@' in a password only escaped; ':' and escapes as they are.
        $proxy = "socks5://${User}:lEft7%40mIddle8:rIght9@127.0.0.1:1080"
        $text = Get-AllText { Invoke-MgKeepCommunicationCallAlive -CallId sec-proxy -Proxy $proxy -ErrorAction Stop }
        $text | Should -Match 'InvalidProxy|-Proxy must be'
        $text | Should -Match ([regex]::Escape('socks5://***@127.0.0.1:1080'))
        Get-Leak $text | Should -BeNullOrEmpty
    }

    It 'managed identity endpoints are named without user info (IDENTITY_ENDPOINT, MGKEEPALIVE_IMDS_ENDPOINT)' {
        $variables = @{ IDENTITY_ENDPOINT = "http://${User}:$Password@$EmulatorHost/msi/token"; IDENTITY_HEADER = 'wrong-header' }
        $text = Use-EnvironmentVariable $variables { Get-AllText { Connect-MgGraph -Identity -NoWelcome -ErrorAction Stop -Verbose -Debug } }
        $text | Should -Match ([regex]::Escape("http://***@$EmulatorHost/msi/token"))
        Get-Leak $text | Should -BeNullOrEmpty

        $variables = @{ IDENTITY_ENDPOINT = $null; IDENTITY_HEADER = $null; MGKEEPALIVE_IMDS_ENDPOINT = "ftp://${User}:$Password@169.254.169.254" }
        $text = Use-EnvironmentVariable $variables { Get-AllText { Connect-MgGraph -Identity -NoWelcome -ErrorAction Stop -Verbose -Debug } }
        $text | Should -Match ([regex]::Escape('ftp://***@169.254.169.254'))
        Get-Leak $text | Should -BeNullOrEmpty
    }

    It 'environment endpoints with credentials are refused and named without them' {
        $endpoint = "https://${User}:$Password@login.example"
        $text = Get-AllText { Add-MgEnvironment -Name UserInfoCloud -AzureADEndpoint $endpoint -GraphEndpoint https://graph.example -Verbose }
        $text += Get-AllText { Set-MgEnvironment -Name Emulator -AzureADEndpoint $endpoint -Verbose -Confirm:$false }
        $text | Should -Match 'must not contain credentials'
        Get-Leak $text | Should -BeNullOrEmpty
        (Get-MgEnvironment -Name Emulator).AzureADEndpoint | Should -Be $Emulator.Url
    }
}

Describe 'Tenant ids are one clean URL path segment' {
    It 'Connect-MgGraph refuses -TenantId <Bad> before anything is sent' -TestCases @(
        @{ Bad = '.' }, @{ Bad = '..' }, @{ Bad = "a`tb" }
    ) {
        param($Bad)
        Clear-EmulatorRequest
        $caught = $null
        try { Connect-TestSecret -Tenant $Bad } catch { $caught = $_ }
        $caught | Should -Not -BeNullOrEmpty
        $caught.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $caught.Exception.Message | Should -Match '-TenantId'
        @(Get-EmulatorRequest | Where-Object kind -EQ 'token') | Should -HaveCount 0
    }
}
