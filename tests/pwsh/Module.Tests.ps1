#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# The module as a package: manifest, import, library resolution, version check, help, packaging.

BeforeDiscovery {
    $manifest = Join-Path $PSScriptRoot '..' '..' 'pwsh' 'MgKeepAlive' 'MgKeepAlive.psd1'
    $ExportedCommands = (Import-PowerShellDataFile $manifest).FunctionsToExport
}

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    Import-Module $ManifestPath -Force -ErrorAction Stop
    $Module = Get-Module MgKeepAlive
    $LibraryName = if ($IsWindows) { 'mgkeepalive.dll' } elseif ($IsMacOS) { 'libmgkeepalive.dylib' } else { 'libmgkeepalive.so' }
    $Library = & $Module { Import-MgkaPrivate; Find-MgkaLibrary }
}

Describe 'Manifest' {
    BeforeAll {
        $data = Import-PowerShellDataFile $ManifestPath
    }

    It 'is valid' {
        { Test-ModuleManifest $ManifestPath -ErrorAction Stop } | Should -Not -Throw
    }

    It 'has version 0.1.0, Core edition, PowerShell 7.4 and a fixed GUID' {
        $data.ModuleVersion | Should -Be '0.1.0'
        $data.CompatiblePSEditions | Should -Be @('Core')
        $data.PowerShellVersion | Should -Be '7.4'
        $data.GUID | Should -Match '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
        $data.RootModule | Should -Be 'MgKeepAlive.psm1'
        $data.FormatsToProcess | Should -Be @('MgKeepAlive.Format.ps1xml')
    }

    It 'has what a gallery shows: tags for the edition and platforms, project and license links, release notes' {
        $psData = $data.PrivateData.PSData
        foreach ($tag in 'PSEdition_Core', 'Linux', 'MacOS', 'Windows') { $psData.Tags | Should -Contain $tag }
        $psData.ProjectUri | Should -Match '^https://'
        $psData.LicenseUri | Should -Match '^https://'
        $psData.ReleaseNotes | Should -BeLike "$($data.ModuleVersion):*"
        $data.ContainsKey('HelpInfoURI') | Should -BeFalse -Because 'no updatable help is shipped'
        Join-Path $RepoRoot 'LICENSE' | Should -FileContentMatch 'MIT License'
        $null = Test-ModuleManifest $ManifestPath -WarningAction SilentlyContinue -WarningVariable manifestWarnings -ErrorAction Stop
        $manifestWarnings | Should -BeNullOrEmpty
    }

    It 'exports explicit lists, no wildcards' {
        $data.FunctionsToExport | Should -Be @('Invoke-MgKeepCommunicationCallAlive', 'Invoke-MgBetaKeepCommunicationCallAlive',
            'Connect-MgGraph', 'Disconnect-MgGraph', 'Get-MgContext', 'Get-MgEnvironment', 'Add-MgEnvironment', 'Set-MgEnvironment',
            'Remove-MgEnvironment', 'Start-MgCommunicationCallKeepAlive', 'Get-MgCommunicationCallKeepAlive', 'Stop-MgCommunicationCallKeepAlive',
            'Wait-MgCommunicationCallKeepAlive', 'Set-MgRequestContext', 'Get-MgRequestContext')
        $data.AliasesToExport | Should -Be @('Connect-Graph', 'Disconnect-Graph')
        @($data.CmdletsToExport).Count | Should -Be 0
        @($data.VariablesToExport).Count | Should -Be 0
    }

    It 'exports exactly those commands' {
        @($Module.ExportedFunctions.Keys | Sort-Object) | Should -Be @($data.FunctionsToExport | Sort-Object)
        @($Module.ExportedAliases.Keys | Sort-Object) | Should -Be @($data.AliasesToExport | Sort-Object)
        $Module.ExportedVariables.Count | Should -Be 0
    }
}

Describe 'Source rules' {
    BeforeAll {
        $tokens = $null; $errors = $null; $authErrors = $null; $privateErrors = $null
        $moduleAst = [System.Management.Automation.Language.Parser]::ParseFile((Join-Path $ModulePath 'MgKeepAlive.psm1'), [ref]$tokens, [ref]$errors)
        $privateAst = [System.Management.Automation.Language.Parser]::ParseFile((Join-Path $ModulePath 'MgKeepAlive.Private.ps1'), [ref]$tokens, [ref]$privateErrors)
        $authAst = [System.Management.Automation.Language.Parser]::ParseFile((Join-Path $ModulePath 'MgKeepAlive.Auth.ps1'), [ref]$tokens, [ref]$authErrors)
        $coexistenceErrors = $null
        $coexistenceAst = [System.Management.Automation.Language.Parser]::ParseFile((Join-Path $ModulePath 'MgKeepAlive.Coexistence.ps1'), [ref]$tokens, [ref]$coexistenceErrors)
        # The private helpers loaded later than the first command (the rest of the keep-alive path, the keeper's).
        $streamErrors = $null; $keeperErrors = $null
        $streamAst = [System.Management.Automation.Language.Parser]::ParseFile((Join-Path $ModulePath 'MgKeepAlive.Stream.ps1'), [ref]$tokens, [ref]$streamErrors)
        $keeperAst = [System.Management.Automation.Language.Parser]::ParseFile((Join-Path $ModulePath 'MgKeepAlive.Keeper.ps1'), [ref]$tokens, [ref]$keeperErrors)
        $helperAsts = @($privateAst, $streamAst, $keeperAst)
        $errors = @($errors) + @($privateErrors) + @($authErrors) + @($coexistenceErrors) + @($streamErrors) + @($keeperErrors)
        $commands = @($moduleAst, $privateAst, $authAst, $coexistenceAst, $streamAst, $keeperAst) | ForEach-Object { $_.FindAll({ $args[0] -is [System.Management.Automation.Language.CommandAst] }, $true) } | ForEach-Object { $_.GetCommandName() }
    }

    It 'parses without errors' {
        $errors | Should -BeNullOrEmpty
    }

    It 'never uses <_>' -TestCases @('Write-Host', 'Add-Type', 'Invoke-Expression', 'Set-Variable') {
        $commands | Should -Not -Contain $_
    }

    It 'loads the sign-in helpers (MgKeepAlive.Auth.ps1) on first use, into script scope, with no native calls' {
        $authAst.EndBlock.Statements | ForEach-Object { $_ | Should -BeOfType ([System.Management.Automation.Language.FunctionDefinitionAst]) -Because 'the file only defines functions' }
        $authAst.FindAll({ $args[0] -is [System.Management.Automation.Language.FunctionDefinitionAst] }, $false).Name | ForEach-Object { $_ | Should -BeLike 'script:*-Mgka*' }
        $authAst.FindAll({ $args[0] -is [System.Management.Automation.Language.InvokeMemberExpressionAst] -and "$($args[0].Member)" -like 'mgka_*' }, $true) | Should -BeNullOrEmpty
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath'; & (Get-Module MgKeepAlive) { [bool](Get-Command Find-MgkaCertificate -ErrorAction Ignore) }; try { Connect-MgGraph -EnvironmentVariable -NoWelcome -ErrorAction Stop } catch { }; & (Get-Module MgKeepAlive) { [bool](Get-Command Find-MgkaCertificate -ErrorAction Ignore) }" -Environment @{ AZURE_TENANT_ID = $null; AZURE_CLIENT_ID = $null }
        $result.Output | Should -Be "False`nTrue"
    }

    It 'defines only the exported commands (and the private loader) in the .psm1; each loads the private helpers first' {
        $functions = $moduleAst.FindAll({ $args[0] -is [System.Management.Automation.Language.FunctionDefinitionAst] }, $false)
        $exported = (Import-PowerShellDataFile $ManifestPath).FunctionsToExport
        @($functions.Name | Where-Object { $_ -notin $exported }) | Should -Be @('Import-MgkaPrivate', 'Import-MgkaCoexistence')
        foreach ($function in $functions | Where-Object Name -In $exported) {
            $function.Body.Extent.Text | Should -Match ([regex]::Escape('if (-not $script:PrivateLoaded) { Import-MgkaPrivate }')) -Because "$($function.Name) runs helpers"
        }
        foreach ($ast in $privateAst, $coexistenceAst, $streamAst, $keeperAst) {
            $ast.FindAll({ $args[0] -is [System.Management.Automation.Language.FunctionDefinitionAst] }, $false).Name | ForEach-Object { $_ | Should -BeLike 'script:*-Mgka*' }
        }
        $coexistenceAst.FindAll({ $args[0] -is [System.Management.Automation.Language.InvokeMemberExpressionAst] -and "$($args[0].Member)" -like 'mgka_*' }, $true) | Should -BeNullOrEmpty
    }

    It 'defines the private helpers on the first command, not at import, and once' {
        $probe = "[bool](& (Get-Module MgKeepAlive) { Get-Command Invoke-MgkaNative -ErrorAction Ignore })"
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath'; $probe; `$null = Get-MgEnvironment; $probe; `$null = Get-MgContext; (Get-Module MgKeepAlive).OnRemove -ne `$null"
        $result.Output | Should -Be "False`nTrue`nTrue"
    }

    It 'calls native methods only in Invoke-MgkaNative, its helpers, the keep-alive stream''s helpers and the keep-alive commands'' process blocks' {
        $native = $helperAsts | ForEach-Object { $_.FindAll({
                $args[0] -is [System.Management.Automation.Language.InvokeMemberExpressionAst] -and
                $args[0].Static -and "$($args[0].Member)" -like 'mgka_*' }, $true) }
        $owners = $native | ForEach-Object {
            $parent = $_.Parent
            while ($parent -and $parent -isnot [System.Management.Automation.Language.FunctionDefinitionAst]) { $parent = $parent.Parent }
            $parent.Name -replace '^script:'
        } | Sort-Object -Unique
        # The keep-alive stream is called directly: a call per piped item, where a PowerShell
        # function call per native call would cost more than the rest (bench/fresh-bulk.ps1).
        $owners | Should -Be @('Invoke-MgkaNative', 'Open-MgkaKeepAlive', 'Open-MgkaKeepAliveCommand', 'Push-MgkaKeepAliveObject', 'Read-MgkaKeepAliveAnswers', 'Read-MgkaNativeString',
            'Resolve-MgkaKeeperItem', 'Step-MgkaKeepAlive', 'Complete-MgkaKeepAlive', 'Wait-MgkaOperation' | Sort-Object)
        # In the .psm1: the keep-alive commands' process and clean blocks (a call per piped item).
        $inModule = $moduleAst.FindAll({ $args[0] -is [System.Management.Automation.Language.InvokeMemberExpressionAst] -and "$($args[0].Member)" -like 'mgka_*' }, $true) | ForEach-Object {
            $parent = $_.Parent
            while ($parent -and $parent -isnot [System.Management.Automation.Language.FunctionDefinitionAst]) { $parent = $parent.Parent }
            $parent.Name
        } | Sort-Object -Unique
        $inModule | Should -Be @('Invoke-MgBetaKeepCommunicationCallAlive', 'Invoke-MgKeepCommunicationCallAlive')
    }
}

Describe 'Import' {
    It 'finds the library in the source tree (<_>)' -TestCases @('target/release') {
        $Library | Should -Be (Join-Path $RepoRoot $_ $LibraryName)
    }

    It 'imports in a fresh pwsh from the source tree' {
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath' -ErrorAction Stop; (Get-Module MgKeepAlive).Version.ToString()" -Environment @{ MGKEEPALIVE_LIBRARY = $null }
        $result.ExitCode | Should -Be 0
        $result.Output | Should -Be '0.1.0'
    }

    It 'imports the .psm1 directly too' {
        $result = Invoke-TestPwsh -Command "Import-Module '$(Join-Path $ModulePath 'MgKeepAlive.psm1')' -ErrorAction Stop; & (Get-Module MgKeepAlive) { `$script:ModuleVersion }"
        $result.Output | Should -Be '0.1.0'
    }

    It 're-imports with -Force and reuses the emitted interop type' {
        $null = Get-MgContext    # the interop type is made on the first native call
        $before = & $Module { $script:Native }
        $before | Should -BeOfType [type]
        Import-Module $ManifestPath -Force -ErrorAction Stop
        & (Get-Module MgKeepAlive) { $script:Native } | Should -BeNullOrEmpty -Because 'import makes no interop type'
        $null = Get-MgContext
        $after = & (Get-Module MgKeepAlive) { $script:Native }
        $after | Should -Be $before
        Get-MgEnvironment -Name Global | Should -Not -BeNullOrEmpty
    }

    It 'compiles no C# (no Add-Type assembly appears)' {
        # Import makes no interop type at all; the first native call emits one (Reflection.Emit).
        $count = "[AppDomain]::CurrentDomain.GetAssemblies().Where({ `$_.IsDynamic -and `$_.GetName().Name -like 'MgKeepAlive*' }).Count"
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath' -ErrorAction Stop; $count; `$null = Get-MgContext; $count; [AppDomain]::CurrentDomain.GetAssemblies().Where({ -not `$_.IsDynamic -and -not `$_.Location }).Count"
        $lines = $result.Output -split "`n"
        $lines[0] | Should -Be '0'
        $lines[1] | Should -Be '1'
        $lines[2] | Should -Be '0'
    }

    It 'honours MGKEEPALIVE_LIBRARY (an absolute path)' {
        $copy = Join-Path $TestDrive 'lib' $LibraryName
        $null = New-Item -ItemType Directory (Split-Path $copy) -Force
        Copy-Item $Library $copy
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath' -ErrorAction Stop; `$null = Get-MgEnvironment; & (Get-Module MgKeepAlive) { `$script:LibraryPath }" -Environment @{ MGKEEPALIVE_LIBRARY = $copy }
        $result.Output | Should -Be $copy
    }

    # The library is found, loaded and checked on the first command that needs it, not at import
    # (import time is a feature): the import succeeds, the first command fails clearly, every time.
    It 'fails clearly at the first command when MGKEEPALIVE_LIBRARY is <Case>' -TestCases @(
        @{ Case = 'relative'; Value = 'libmgkeepalive.so'; Message = '*MGKEEPALIVE_LIBRARY must be an absolute path*' }
        @{ Case = 'missing'; Value = '/nonexistent/libmgkeepalive.so'; Message = "*MGKEEPALIVE_LIBRARY points to '/nonexistent/libmgkeepalive.so', which does not exist*" }
    ) {
        param($Value, $Message)
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath' -ErrorAction Stop; 'imported'; try { Get-MgContext } catch { `$_.Exception.Message }; try { Connect-MgGraph -AccessToken (ConvertTo-SecureString x -AsPlainText -Force) } catch { `$_.Exception.Message }" -Environment @{ MGKEEPALIVE_LIBRARY = $Value }
        $lines = $result.Output -split "`n"
        $lines[0] | Should -Be 'imported'
        $lines[1] | Should -BeLike $Message
        $lines[2] | Should -BeLike $Message
    }

    It 'fails clearly at the first command when the library is not a library' {
        $fake = Join-Path $TestDrive $LibraryName
        Set-Content $fake 'not a library'
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath' -ErrorAction Stop; try { Invoke-MgKeepCommunicationCallAlive -CallId x } catch { `$_.Exception.Message }" -Environment @{ MGKEEPALIVE_LIBRARY = $fake }
        $result.Output | Should -BeLike "MgKeepAlive: cannot load the native library '$fake'*"
    }

    It 'fails clearly at the first command when the library version differs from the manifest' {
        $copy = Join-Path $TestDrive 'MgKeepAlive'
        Copy-Item $ModulePath $copy -Recurse -Force
        $manifest = Join-Path $copy 'MgKeepAlive.psd1'
        $script = Join-Path $copy 'MgKeepAlive.psm1'
        (Get-Content -Raw $manifest) -replace "ModuleVersion\s*=\s*'0\.1\.0'", "ModuleVersion        = '9.9.9'" | Set-Content $manifest
        (Get-Content -Raw $script) -replace "\`$script:ModuleVersion = '0\.1\.0'", "`$script:ModuleVersion = '9.9.9'" | Set-Content $script
        $result = Invoke-TestPwsh -Command "Import-Module '$manifest' -ErrorAction Stop; try { Get-MgEnvironment } catch { `$_.Exception.Message }" -Environment @{ MGKEEPALIVE_LIBRARY = $Library }
        $result.Output | Should -BeLike "*MgKeepAlive 9.9.9 needs libmgkeepalive 9.9.9, but '$Library' is version '0.1.0'*"
    }

    It 'states one version in the manifest, the script module and the crate' {
        $manifestVersion = (Import-PowerShellDataFile $ManifestPath).ModuleVersion
        $scriptVersion = [regex]::Match((Get-Content -Raw (Join-Path $ModulePath 'MgKeepAlive.psm1')), "\`$script:ModuleVersion = '([^']+)'").Groups[1].Value
        $crateVersion = [regex]::Match((Get-Content -Raw (Join-Path $PSScriptRoot '..' '..' 'Cargo.toml')), '(?m)^version = "([^"]+)"').Groups[1].Value
        $scriptVersion | Should -Be $manifestVersion
        $crateVersion | Should -Be $manifestVersion
        & $Module { Invoke-MgkaNative Version } | Should -Be $manifestVersion -Because 'mgka_version is the crate version'
    }

    # The import stays cheap because it leaves the native library for later (its speed is measured
    # in bench/, not asserted here): the library is mapped into the process by the first command.
    It 'loads the native library on the first command, not at import' {
        $loaded = "@([System.Diagnostics.Process]::GetCurrentProcess().Modules | Where-Object ModuleName -EQ '$LibraryName').Count"
        $result = Invoke-TestPwsh -Command "$loaded; Import-Module '$ManifestPath' -ErrorAction Stop; $loaded; `$null = Get-MgEnvironment; $loaded" -Environment @{ MGKEEPALIVE_LIBRARY = $null }
        $result.ExitCode | Should -Be 0
        $result.Output | Should -Be "0`n0`n1"
    }
}

Describe 'Packaging (pwsh/build-module.ps1)' {
    It 'produces a self-contained module folder that imports from anywhere' {
        $out = Join-Path $TestDrive 'dist'
        $folder, $package = & (Join-Path $RepoRoot 'pwsh' 'build-module.ps1') -OutputPath $out
        $folder.FullName | Should -Be (Join-Path $out 'MgKeepAlive')
        $package.FullName | Should -Be (Join-Path $out "MgKeepAlive.$($Module.Version).nupkg")
        $os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
        $rid = "$os-" + [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()
        $files = Get-ChildItem (Join-Path $out 'MgKeepAlive') -Recurse -File | ForEach-Object { [IO.Path]::GetRelativePath((Join-Path $out 'MgKeepAlive'), $_.FullName) -replace '\\', '/' }
        $files | Sort-Object | Should -Be (@('MgKeepAlive.Auth.ps1', 'MgKeepAlive.Coexistence.ps1', 'MgKeepAlive.Format.ps1xml', 'MgKeepAlive.Keeper.ps1', 'MgKeepAlive.Native.abi', 'MgKeepAlive.Private.ps1', 'MgKeepAlive.Stream.ps1', 'MgKeepAlive.Types.ps1', 'MgKeepAlive.psd1', 'MgKeepAlive.psm1', 'en-US/about_MgKeepAlive.help.txt', 'en-US/MgKeepAlive-help.xml', 'LICENSE', "$rid/$LibraryName") | Sort-Object)
        # Import from another working directory, with no source tree next to it.
        $elsewhere = Join-Path $TestDrive 'elsewhere' 'MgKeepAlive'
        $null = New-Item -ItemType Directory (Split-Path $elsewhere) -Force
        Copy-Item (Join-Path $out 'MgKeepAlive') $elsewhere -Recurse
        $result = Invoke-TestPwsh -Command "Set-Location '$TestDrive'; Import-Module '$elsewhere' -ErrorAction Stop; `$null = Get-MgEnvironment; & (Get-Module MgKeepAlive) { `$script:LibraryPath }" -Environment @{ MGKEEPALIVE_LIBRARY = $null }
        $result.ExitCode | Should -Be 0
        $result.Output | Should -BeLike "$elsewhere*$LibraryName"
    }
}

Describe 'Help of <_>' -ForEach $ExportedCommands {
    BeforeAll {
        $name = $_
        $help = Get-Help $name -Full
        $commandInfo = Get-Command $name -Module MgKeepAlive
        $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
        $parameters = $commandInfo.Parameters.Values | Where-Object {
            $_.Name -notin $common -and -not ($_.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] -and $_.DontShow })
        }
    }

    It 'has a synopsis (not the generated syntax)' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -BeLike "*$name *[<CommonParameters>]*"
        $help.Synopsis.Trim() | Should -Not -Be $name
    }

    It 'has a description' {
        ($help.Description.Text -join "`n") | Should -Not -BeNullOrEmpty
    }

    It 'has at least one example with code' {
        @($help.Examples.Example).Count | Should -BeGreaterThan 0
        $help.Examples.Example | ForEach-Object { $_.Code | Should -Not -BeNullOrEmpty }
    }

    It 'describes every parameter' {
        foreach ($parameter in $parameters) {
            $parameterHelp = $help.Parameters.Parameter | Where-Object Name -EQ $parameter.Name
            ($parameterHelp.Description.Text -join '') | Should -Not -BeNullOrEmpty -Because "-$($parameter.Name) needs a description"
        }
    }

    It 'has inputs, outputs and links' {
        $help.inputTypes | Should -Not -BeNullOrEmpty
        $help.returnValues | Should -Not -BeNullOrEmpty
        @($help.relatedLinks.navigationLink).Count | Should -BeGreaterThan 0
    }
}

Describe 'Help of Invoke-MgKeepCommunicationCallAlive (the seed)' {
    BeforeAll {
        $help = Get-Help Invoke-MgKeepCommunicationCallAlive -Full
        $seedText = @(
            'Make a request to this API every 15 to 45 minutes to ensure that an ongoing call remains active.'
            'A call that does not receive this request within 45 minutes is considered inactive and will subsequently end.'
            'At least one successful request must be made within 45 minutes of the previous request, or the start of the call.'
            'We recommend that you send a request in shorter time intervals (every 15 minutes).'
            'Make sure that these requests are successful to prevent the call from timing out and ending.'
            'Attempting to send a request to a call that has already ended will result in a 404 Not-Found error.'
            'The resources related to the call should be cleaned up on the application side.'
            'This API is available in the following national cloud deployments.'
        )
    }

    It 'carries the seed''s synopsis verbatim' {
        ($help.Synopsis -replace '\s+', ' ').Trim() | Should -BeExactly ($seedText -join ' ')
    }

    It 'carries the seed''s description verbatim' {
        $description = ($help.Description.Text -join "`n") -replace '\s+', ' '
        $description | Should -BeLike "$([WildcardPattern]::Escape($seedText -join ' '))*"
    }

    It 'carries the seed''s parameter texts' {
        ($help.Parameters.Parameter | Where-Object Name -EQ CallId).Description.Text | Should -Be 'The unique identifier of call'
        ($help.Parameters.Parameter | Where-Object Name -EQ PassThru).Description.Text | Should -Be 'Returns true when the command succeeds'
        ($help.Parameters.Parameter | Where-Object Name -EQ InputObject).Description.Text | Should -BeLike 'Identity Parameter*'
    }

    It 'has the seed''s example and our own (pipeline, Id objects, -ResponseHeadersVariable, errors, a loop)' {
        $code = ($help.Examples.Example | ForEach-Object { $_.Code + "`n" + ($_.Remarks.Text -join "`n") }) -join "`n"
        $code | Should -BeLike '*Invoke-MgKeepCommunicationCallAlive -CallId $callId*'
        $code | Should -BeLike "*' | Invoke-MgKeepCommunicationCallAlive*"
        $code | Should -BeLike '*Get-MgCommunicationCall*'
        $code | Should -BeLike '*-ResponseHeadersVariable*'
        $code | Should -BeLike '*-ErrorAction Stop*StatusCode*'
        $code | Should -BeLike '*Start-Sleep*15*'
    }

    It 'shows the official online help link' {
        $help.relatedLinks.navigationLink.uri | Should -Contain 'https://learn.microsoft.com/powershell/module/microsoft.graph.cloudcommunications/invoke-mgkeepcommunicationcallalive'
    }
}

Describe 'Help of Invoke-MgBetaKeepCommunicationCallAlive (MAML shared with the v1.0 command)' {
    BeforeAll {
        $help = Get-Help Invoke-MgBetaKeepCommunicationCallAlive -Full
        $v1 = Get-Help Invoke-MgKeepCommunicationCallAlive -Full
    }

    It 'speaks of the beta endpoint and the beta command, not of v1.0' {
        ($help.Description.Text -join "`n") | Should -BeLike '*POST {graph}/beta/communications/calls/{call-id}/keepAlive*'
        ($help.Description.Text -join "`n") | Should -Not -BeLike '*{graph}/v1.0/*'
        foreach ($example in $help.Examples.Example) {
            ($example.Code + ($example.Remarks.Text -join "`n")) | Should -Not -Match 'Invoke-MgKeepCommunicationCallAlive -'
        }
        $help.relatedLinks.navigationLink.uri | Should -Contain 'https://learn.microsoft.com/powershell/module/microsoft.graph.beta.cloudcommunications/invoke-mgbetakeepcommunicationcallalive'
    }

    It 'describes the same parameters in the same words as the v1.0 command' {
        foreach ($parameter in $v1.Parameters.Parameter) {
            $beta = $help.Parameters.Parameter | Where-Object Name -EQ $parameter.Name
            ($beta.Description.Text -join "`n") | Should -Be ($parameter.Description.Text -join "`n") -Because "-$($parameter.Name) is the same parameter"
        }
    }
}
