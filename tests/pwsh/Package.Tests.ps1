#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# The module as users install it: pwsh/build-module.ps1's .nupkg goes through PowerShell's own tools
# (Microsoft.PowerShell.PSResourceGet, which ships with pwsh 7.4+, and PowerShellGet 2 where it is
# present) from a file-system repository, no network, into a scratch user scope, and is imported by
# name in a new pwsh that keeps a call alive against the emulator. The steps build on each other.
#
# Each step runs in a child pwsh whose HOME and XDG_* folders are under $TestDrive, with no inherited
# PSModulePath: the repository registrations and the user scope (~/.local/share/powershell/Modules)
# are scratch, and the real user's modules are neither seen nor touched. Windows keeps the user scope
# in the Documents known folder, which no variable redirects: there the steps run only on CI runners.

BeforeDiscovery {
    $SkipIsolation = $IsWindows -and -not $env:GITHUB_ACTIONS
    $HasPowerShellGet2 = [bool](Get-Module -ListAvailable PowerShellGet | Where-Object { $_.Version.Major -eq 2 })
}

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    $CallId = 'package-call'
    New-EmulatorCall -Id $CallId
    $LibraryName = if ($IsWindows) { 'mgkeepalive.dll' } elseif ($IsMacOS) { 'libmgkeepalive.dylib' } else { 'libmgkeepalive.so' }
    $os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
    $Rid = "$os-" + [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()

    # Two builds of the same library: the source's version, and a re-packaging of it (a fourth
    # version part), which the module accepts with the same library and Update-PSResource sees as newer.
    $Work = Join-Path $TestDrive 'package'
    $BaseVersion = (Import-PowerShellDataFile $ManifestPath).ModuleVersion
    $NewerVersion = "$BaseVersion.1"
    $buildModule = Join-Path $RepoRoot 'pwsh' 'build-module.ps1'
    $OlderPackage = (& $buildModule -OutputPath (Join-Path $Work 'older') | Where-Object Extension -EQ '.nupkg').FullName
    $NewerPackage = (& $buildModule -OutputPath (Join-Path $Work 'newer') -Version $NewerVersion | Where-Object Extension -EQ '.nupkg').FullName
    $Repository = (New-Item -ItemType Directory (Join-Path $Work 'repository')).FullName

    $ScratchHome = Join-Path $Work 'home'
    $UserModules = Join-Path $ScratchHome '.local' 'share' 'powershell' 'Modules'
    $Scratch = @{
        HOME = $ScratchHome; XDG_DATA_HOME = Join-Path $ScratchHome '.local' 'share'
        XDG_CONFIG_HOME = Join-Path $ScratchHome '.config'; XDG_CACHE_HOME = Join-Path $ScratchHome '.cache'
        PSModulePath = $null; MGKEEPALIVE_LIBRARY = $null
    }
    # .NET resolves these folders only when they exist (else PSResourceGet would use the working directory).
    foreach ($folder in $Scratch['XDG_DATA_HOME'], $Scratch['XDG_CONFIG_HOME'], $Scratch['XDG_CACHE_HOME']) { $null = New-Item -ItemType Directory $folder -Force }

    function Invoke-ScratchPwsh {
        # Runs a command in a child pwsh with the scratch user scope; fails the test when it fails.
        param([string] $Command)
        $result = Invoke-TestPwsh -Command "`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'; Set-Location '$ScratchHome'; $Command" -Environment $Scratch
        $result.ExitCode | Should -Be 0 -Because $result.Output
        $result.Output
    }

    # What a user's script does: import by name, connect, keep a call alive. Prints
    # "<version>|<module folder>|<keep-alive result>".
    $KeepAliveByName = "Import-Module MgKeepAlive; `$module = Get-Module MgKeepAlive; " +
    "`$null = Add-MgEnvironment -Name Emulator -AzureADEndpoint '$($Emulator.Url)' -GraphEndpoint '$($Emulator.Url)'; " +
    "Connect-MgGraph -AccessToken (ConvertTo-SecureString test-token -AsPlainText -Force) -Environment Emulator -NoWelcome; " +
    "`$kept = Invoke-MgKeepCommunicationCallAlive -CallId $CallId -PassThru; '{0}|{1}|{2}' -f `$module.Version, `$module.ModuleBase, `$kept"

    function Get-CallKeepAliveCount { @(Get-EmulatorKeepAlive | Where-Object callId -EQ $CallId).Count }
}

AfterAll {
    if ($IsWindows -and $env:GITHUB_ACTIONS) {
        # Not isolated there (see the top): leave the runner's user scope as it was.
        $null = Invoke-TestPwsh -Command "Uninstall-PSResource MgKeepAlive -Version '*' -Scope CurrentUser -ErrorAction Ignore; Unregister-PSResourceRepository MgKeepAliveTest -ErrorAction Ignore; Unregister-PSRepository MgKeepAliveTest2 -ErrorAction Ignore"
    }
    Stop-TestEmulator $Emulator
}

Describe 'The .nupkg of pwsh/build-module.ps1' {
    It 'holds the module folder with the library under <rid>/, the help and the license, at the package root' {
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [System.IO.Compression.ZipFile]::OpenRead($OlderPackage)
        try { $entries = $zip.Entries.FullName } finally { $zip.Dispose() }
        foreach ($file in 'MgKeepAlive.nuspec', 'MgKeepAlive.psd1', 'MgKeepAlive.psm1', 'MgKeepAlive.Private.ps1', 'MgKeepAlive.Stream.ps1', 'MgKeepAlive.Keeper.ps1', 'MgKeepAlive.Auth.ps1',
            'MgKeepAlive.Format.ps1xml', 'en-US/about_MgKeepAlive.help.txt', 'en-US/MgKeepAlive-help.xml', 'LICENSE', "$Rid/$LibraryName") {
            $entries | Should -Contain $file
        }
        Split-Path $OlderPackage -Leaf | Should -Be "MgKeepAlive.$BaseVersion.nupkg"
        Split-Path $NewerPackage -Leaf | Should -Be "MgKeepAlive.$NewerVersion.nupkg"
    }

    It 'refuses a version that is not the library''s (a module would not load it)' {
        { & (Join-Path $RepoRoot 'pwsh' 'build-module.ps1') -OutputPath (Join-Path $Work 'wrong') -Version 9.9.9 } |
            Should -Throw "-Version 9.9.9 does not package library $BaseVersion*"
    }
}

Describe 'Installed with PSResourceGet' -Skip:$SkipIsolation {
    It 'is published to a file-system repository and installed with Install-PSResource into the user scope' {
        $output = Invoke-ScratchPwsh ("Register-PSResourceRepository -Name MgKeepAliveTest -Uri '$Repository' -Trusted; " +
            "Publish-PSResource -NupkgPath '$OlderPackage' -Repository MgKeepAliveTest; " +
            "Install-PSResource MgKeepAlive -Repository MgKeepAliveTest -Scope CurrentUser; " +
            "(Get-InstalledPSResource MgKeepAlive).Version.ToString()")
        $output | Should -Be $BaseVersion
        Join-Path $UserModules 'MgKeepAlive' $BaseVersion $Rid $LibraryName | Should -Exist
        Join-Path $Scratch['XDG_DATA_HOME'] 'PSResourceGet' 'PSResourceRepository.xml' | Should -FileContentMatch 'MgKeepAliveTest' -Because 'the registration is scratch too'
    }

    It 'is imported by name in a new pwsh, which keeps a call alive with it' {
        $before = Get-CallKeepAliveCount
        Invoke-ScratchPwsh $KeepAliveByName | Should -Be "$BaseVersion|$(Join-Path $UserModules 'MgKeepAlive' $BaseVersion)|True"
        Get-CallKeepAliveCount | Should -Be ($before + 1)
    }

    It 'is updated with Update-PSResource to a newer build, which a new pwsh then uses' {
        Invoke-ScratchPwsh ("Publish-PSResource -NupkgPath '$NewerPackage' -Repository MgKeepAliveTest; " +
            "Update-PSResource MgKeepAlive -Repository MgKeepAliveTest -Scope CurrentUser; " +
            "(Get-InstalledPSResource MgKeepAlive | Sort-Object Version -Descending | Select-Object -First 1).Version.ToString()") |
            Should -Be $NewerVersion
        $before = Get-CallKeepAliveCount
        Invoke-ScratchPwsh $KeepAliveByName | Should -Be "$NewerVersion|$(Join-Path $UserModules 'MgKeepAlive' $NewerVersion)|True"
        Get-CallKeepAliveCount | Should -Be ($before + 1)
    }

    It 'is uninstalled with Uninstall-PSResource' {
        Invoke-ScratchPwsh ("Uninstall-PSResource MgKeepAlive -Version '*' -Scope CurrentUser; Unregister-PSResourceRepository MgKeepAliveTest; " +
            "@(Get-Module -ListAvailable MgKeepAlive).Count; @(Get-PSResourceRepository MgKeepAliveTest -ErrorAction Ignore).Count") |
            Should -Be "0`n0"
        Join-Path $UserModules 'MgKeepAlive' | Should -Not -Exist
    }
}

Describe 'Installed with PowerShellGet 2 (Install-Module)' -Skip:($SkipIsolation -or -not $HasPowerShellGet2) {
    It 'installs the same package with Install-Module, imports it by name and keeps a call alive, then uninstalls it' {
        Copy-Item $OlderPackage $Repository -Force    # a file-system repository is a folder of packages
        Invoke-ScratchPwsh ("Import-Module PowerShellGet -MaximumVersion 2.99; " +
            "Register-PSRepository -Name MgKeepAliveTest2 -SourceLocation '$Repository' -InstallationPolicy Trusted; " +
            "Install-Module MgKeepAlive -Repository MgKeepAliveTest2 -RequiredVersion $BaseVersion -Scope CurrentUser; " +
            "(Get-InstalledModule MgKeepAlive).Version.ToString()") | Should -Be $BaseVersion
        $before = Get-CallKeepAliveCount
        Invoke-ScratchPwsh $KeepAliveByName | Should -Be "$BaseVersion|$(Join-Path $UserModules 'MgKeepAlive' $BaseVersion)|True"
        Get-CallKeepAliveCount | Should -Be ($before + 1)
        Invoke-ScratchPwsh ("Import-Module PowerShellGet -MaximumVersion 2.99; Uninstall-Module MgKeepAlive -AllVersions; Unregister-PSRepository MgKeepAliveTest2; " +
            "@(Get-Module -ListAvailable MgKeepAlive).Count") | Should -Be '0'
    }
}
