#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# Connect-MgGraph, Disconnect-MgGraph, Get-MgContext, Get-MgEnvironment, Add-MgEnvironment.
# The library's session and environments belong to the process: every test leaves the process
# connected to the emulator again.

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    Import-Module $ManifestPath -Force -ErrorAction Stop
    Connect-TestGraph
    New-EmulatorCall 'conn-call'
}

AfterAll {
    Stop-TestEmulator $Emulator
}

Describe 'Get-MgContext' {
    It 'describes the connection without the token, with the properties of Microsoft''s AuthContext in its order' {
        $context = Get-MgContext
        $context.PSObject.TypeNames[0] | Should -Be 'MgKeepAlive.Context'
        $context.AuthType | Should -Be 'UserProvidedAccessToken'
        $context.TokenCredentialType | Should -Be 'UserProvidedAccessToken'
        $context.Environment | Should -Be 'Emulator'
        $context.ContextScope | Should -Be 'Process'
        $context.AppName | Should -BeNullOrEmpty    # 'test-token' is no JWT: no claims to show
        $context.ClientId | Should -BeNullOrEmpty
        $context.TenantId | Should -BeNullOrEmpty
        $context.PSHostVersion | Should -Be $Host.Version
        $context.WamEnabled | Should -BeTrue
        $context.ClientSecret | Should -BeNullOrEmpty
        , $context.Scopes | Should -BeOfType ([string[]])
        $context.PSObject.Properties.Name | Should -Be @('ClientId', 'TenantId', 'Scopes', 'AuthType', 'TokenCredentialType',
            'CertificateThumbprint', 'CertificateSubjectName', 'SendCertificateChain', 'Account', 'LoginHint', 'HomeAccountId',
            'AppName', 'ContextScope', 'Certificate', 'PSHostVersion', 'ManagedIdentityId', 'ClientSecret', 'Environment', 'WamEnabled')
    }

    It 'shows the claims of a JWT access token as Microsoft''s does (ClientId, TenantId, Scopes, AppName)' {
        $token = New-TestJwt -Claims ([ordered]@{ tid = 'tenant-from-token'; appid = 'app-from-token'; app_displayname = 'Token App'; roles = @('Calls.Initiate.All') })
        try {
            Connect-TestGraph -Token $token
            $context = Get-MgContext
            $context.ClientId | Should -Be 'app-from-token'
            $context.TenantId | Should -Be 'tenant-from-token'
            $context.Scopes | Should -Be @('Calls.Initiate.All')
            $context.AppName | Should -Be 'Token App'
            Get-MgContext | Out-String | Should -Not -Match ([regex]::Escape($token.Split('.')[2]))
        } finally { Connect-TestGraph }
    }

    It 'formats as a list of every property, as Microsoft''s AuthContext does' {
        $text = Get-MgContext | Out-String
        $text | Should -Match '(?m)^TokenCredentialType\s+: UserProvidedAccessToken\s*$'
        $text | Should -Match '(?m)^WamEnabled\s+: True\s*$'
        Get-MgContext | Format-Table | Out-String | Should -Match 'ClientId\s+TenantId\s+Scopes'
    }
}

Describe 'Not connected' {
    BeforeAll {
        $closed = Disconnect-MgGraph
    }
    AfterAll {
        Connect-TestGraph
    }

    It 'Disconnect-MgGraph returns the context it closed' {
        $closed.PSObject.TypeNames[0] | Should -Be 'MgKeepAlive.Context'
        $closed.Environment | Should -Be 'Emulator'
    }

    It 'Get-MgContext returns nothing ($null)' {
        $context = Get-MgContext
        $null -eq $context | Should -BeTrue
        @(Get-MgContext).Count | Should -Be 0
        -not (Get-MgContext) | Should -BeTrue
    }

    It 'Invoke-MgKeepCommunicationCallAlive says "Authentication needed. Please call Connect-MgGraph." per item, in Microsoft''s record' {
        Clear-EmulatorRequest
        'conn-call', 'conn-call' | Invoke-MgKeepCommunicationCallAlive -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure.Count | Should -Be 2
        $failure[0].Exception.Message | Should -BeExactly 'Authentication needed. Please call Connect-MgGraph.'
        $failure[0].FullyQualifiedErrorId | Should -BeExactly 'Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_KeepViaIdentity'
        $failure[0].CategoryInfo.Category | Should -Be 'NotSpecified'
        $failure[0].CategoryInfo.Reason | Should -Be 'AuthenticationException'
        $failure[0].CategoryInfo.Activity | Should -Be 'Invoke-MgKeepCommunicationCallAlive_KeepViaIdentity'
        $failure[0].TargetObject | Should -Be 'conn-call'
        Invoke-MgBetaKeepCommunicationCallAlive -CallId conn-call -ErrorVariable beta -ErrorAction SilentlyContinue
        $beta[0].FullyQualifiedErrorId | Should -BeExactly 'Microsoft.Graph.Beta.PowerShell.Cmdlets.InvokeMgBetaKeepCommunicationCallAlive_Keep'
        (Get-EmulatorRequest).Count | Should -Be 0
    }

    It 'Disconnect-MgGraph when not connected is a non-terminating error' {
        Disconnect-MgGraph -ErrorVariable failure -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $failure[0].Exception.Message | Should -Be 'No application to sign out from.'
        $failure[0].FullyQualifiedErrorId | Should -BeExactly 'Microsoft.Graph.PowerShell.Authentication.Cmdlets.DisconnectMgGraph'
        $failure[0].CategoryInfo.Category | Should -Be 'CloseError'
        $failure[0].Exception | Should -BeOfType [System.ArgumentException]
    }
}

Describe 'Connect-MgGraph' {
    AfterEach {
        Connect-TestGraph
    }

    It 'has -AccessToken <securestring> (mandatory), -Environment (aliases EnvironmentName, NationalCloud), -ClientTimeout, -NoWelcome and the alias Connect-Graph' {
        $command = Get-Command Connect-MgGraph -Module MgKeepAlive
        $command.Parameters['AccessToken'].ParameterType | Should -Be ([securestring])
        $command.Parameters['AccessToken'].Attributes.Where({ $_ -is [System.Management.Automation.ParameterAttribute] })[0].Mandatory | Should -BeTrue
        $command.Parameters['Environment'].Aliases | Should -Be @('EnvironmentName', 'NationalCloud')
        $command.Parameters['ClientTimeout'].ParameterType | Should -Be ([double])
        $command.Parameters['NoWelcome'].ParameterType | Should -Be ([switch])
        (Get-Alias Connect-Graph).ResolvedCommand.Name | Should -Be 'Connect-MgGraph'
    }

    It 'prints a welcome message to the information stream unless -NoWelcome' {
        $token = ConvertTo-SecureString 'test-token' -AsPlainText -Force
        $welcome = Connect-MgGraph -AccessToken $token -Environment Emulator 6>&1
        "$welcome" | Should -BeLike 'Welcome to Microsoft Graph!*'
        $quiet = Connect-MgGraph -AccessToken $token -Environment Emulator -NoWelcome 6>&1
        $quiet | Should -BeNullOrEmpty
    }

    It 'accepts -EnvironmentName and -NationalCloud' {
        $token = ConvertTo-SecureString 'test-token' -AsPlainText -Force
        Connect-MgGraph -AccessToken $token -EnvironmentName Emulator -NoWelcome
        (Get-MgContext).Environment | Should -Be 'Emulator'
        Connect-MgGraph -AccessToken $token -NationalCloud Emulator -NoWelcome
        (Get-MgContext).Environment | Should -Be 'Emulator'
    }

    It 'connects to Global by default' {
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 'test-token' -AsPlainText -Force) -NoWelcome
        (Get-MgContext).Environment | Should -Be 'Global'
    }

    It 'sends the new token after a reconnect' {
        Clear-EmulatorRequest
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 'second-token' -AsPlainText -Force) -Environment Emulator -NoWelcome
        Invoke-MgKeepCommunicationCallAlive -CallId conn-call
        (Get-EmulatorRequest)[0].headers.authorization | Should -Be 'Bearer second-token'
    }

    It 'fails clearly for an unknown environment' {
        { Connect-MgGraph -AccessToken (ConvertTo-SecureString 't' -AsPlainText -Force) -Environment NoSuchCloud -NoWelcome } |
            Should -Throw -ErrorId 'NotFound,Connect-MgGraph'
    }

    It 'fails clearly for an empty token' {
        $empty = [securestring]::new()
        { Connect-MgGraph -AccessToken $empty -Environment Emulator -NoWelcome } | Should -Throw -ErrorId 'InvalidAccessToken,Connect-MgGraph'
    }
}

Describe 'Get-MgEnvironment' {
    It 'lists the built-in <Name> cloud with its endpoints' -TestCases @(
        @{ Name = 'Global'; Login = 'https://login.microsoftonline.com'; Graph = 'https://graph.microsoft.com' }
        @{ Name = 'USGov'; Login = 'https://login.microsoftonline.us'; Graph = 'https://graph.microsoft.us' }
        @{ Name = 'USGovDoD'; Login = 'https://login.microsoftonline.us'; Graph = 'https://dod-graph.microsoft.us' }
        @{ Name = 'China'; Login = 'https://login.chinacloudapi.cn'; Graph = 'https://microsoftgraph.chinacloudapi.cn' }
    ) {
        param($Name, $Login, $Graph)
        $environment = Get-MgEnvironment -Name $Name
        $environment.PSObject.TypeNames[0] | Should -Be 'MgKeepAlive.Environment'
        $environment.Name | Should -BeExactly $Name
        $environment.AzureADEndpoint | Should -BeOfType [string]
        $environment.AzureADEndpoint | Should -BeExactly $Login
        $environment.GraphEndpoint | Should -BeExactly $Graph
        $environment.Type | Should -Be 'Built-in'
        (Get-MgEnvironment | Where-Object Name -EQ $Name) | Should -Not -BeNullOrEmpty
    }

    It 'matches names case-insensitively, positionally and with wildcards' {
        (Get-MgEnvironment usgov).Name | Should -Be 'USGov'
        (Get-MgEnvironment 'USGov*').Name | Should -Be @('USGov', 'USGovDoD')
    }

    It 'writes a non-terminating ObjectNotFound error for an unknown name' {
        $output = Get-MgEnvironment -Name NoSuchCloud -ErrorVariable failure -ErrorAction SilentlyContinue
        $output | Should -BeNullOrEmpty
        $failure.Count | Should -Be 1
        $failure[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $failure[0].Exception.Message | Should -BeLike "*'NoSuchCloud'*"
    }

    It 'formats as a table with Name, AzureADEndpoint, GraphEndpoint and Type' {
        $text = Get-MgEnvironment -Name Global | Format-Table | Out-String -Width 200
        $text | Should -Match 'Name\s+AzureADEndpoint\s+GraphEndpoint\s+Type'
        $text | Should -Match 'Global\s+https://login.microsoftonline.com\s+https://graph.microsoft.com\s+Built-in'
    }
}

Describe 'Add-MgEnvironment' {
    It 'adds a user-defined environment and returns it' {
        $added = Add-MgEnvironment -Name TestCloud -AzureADEndpoint 'https://login.example.test' -GraphEndpoint 'https://graph.example.test'
        $added.PSObject.TypeNames[0] | Should -Be 'MgKeepAlive.Environment'
        $added.Name | Should -Be 'TestCloud'
        $added.Type | Should -Be 'User-defined'
        (Get-MgEnvironment -Name TestCloud).GraphEndpoint | Should -Be 'https://graph.example.test'
    }

    It 'replaces a user-defined environment of the same name' {
        $null = Add-MgEnvironment -Name TestCloud -AzureADEndpoint 'https://login.example.test' -GraphEndpoint 'https://graph2.example.test'
        @(Get-MgEnvironment -Name TestCloud).Count | Should -Be 1
        (Get-MgEnvironment -Name TestCloud).GraphEndpoint | Should -Be 'https://graph2.example.test'
    }

    It 'supports -WhatIf' {
        $output = Add-MgEnvironment -Name WhatIfCloud -AzureADEndpoint 'https://a.example.test' -GraphEndpoint 'https://b.example.test' -WhatIf
        $output | Should -BeNullOrEmpty
        Get-MgEnvironment -Name WhatIfCloud -ErrorVariable failure -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        # Not found, rather than a lookup that found nothing for another reason.
        $failure.Count | Should -Be 1
        $failure[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'refuses <Name>' -TestCases @(
        @{ Name = 'http to a non-loopback host'; Environment = @{ Name = 'Plain'; AzureADEndpoint = 'http://login.example.test'; GraphEndpoint = 'http://graph.example.test' } }
        @{ Name = 'redefining a built-in'; Environment = @{ Name = 'Global'; AzureADEndpoint = 'https://login.example.test'; GraphEndpoint = 'https://graph.example.test' } }
        @{ Name = 'a malformed URL'; Environment = @{ Name = 'Broken'; AzureADEndpoint = 'not a url'; GraphEndpoint = 'https://graph.example.test' } }
    ) {
        param($Environment)
        Add-MgEnvironment @Environment -ErrorVariable failure -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $failure.Count | Should -Be 1
        $failure[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        (Get-MgEnvironment -Name Global).GraphEndpoint | Should -Be 'https://graph.microsoft.com'
    }

    It 'allows http to loopback (the emulator)' {
        (Add-MgEnvironment -Name Loop -AzureADEndpoint 'http://127.0.0.1:9' -GraphEndpoint 'http://localhost:9').Type | Should -Be 'User-defined'
    }
}
