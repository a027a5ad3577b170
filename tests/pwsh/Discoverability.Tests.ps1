#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# What a module user looks for: Get-Help about_MgKeepAlive (in every culture) and Tab completion of
# the kept calls' ids and the environments' names, which costs nothing at import.

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    Import-Module $ManifestPath -Force -ErrorAction Stop
    Connect-TestGraph

    function Get-Completion {
        # The completion texts PowerShell offers for $InputScript with the cursor at its end.
        param([string] $InputScript)
        (TabExpansion2 -inputScript $InputScript -cursorColumn $InputScript.Length).CompletionMatches.CompletionText
    }
}

AfterAll {
    Get-Module MgKeepAlive | ForEach-Object { Stop-MgCommunicationCallKeepAlive -All -ErrorAction Ignore }
    Stop-TestEmulator $Emulator
}

Describe 'about_MgKeepAlive' {
    It 'is found by Get-Help under <Culture>, and covers moving a script over, the keeper and troubleshooting' -TestCases @(
        @{ Culture = 'en-US (LANG=en_US.UTF-8)'; Lang = 'en_US.UTF-8' }
        @{ Culture = 'the invariant culture (LANG=C)'; Lang = 'C' }
        @{ Culture = 'de-DE (LANG=de_DE.UTF-8)'; Lang = 'de_DE.UTF-8' }
    ) {
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath'; [cultureinfo]::CurrentUICulture.Name; Get-Help about_MgKeepAlive | Out-String -Width 200" -Environment @{ LANG = $Lang; LC_ALL = $Lang }
        $result.ExitCode | Should -Be 0
        $result.Output | Should -Match 'about_MgKeepAlive'
        foreach ($section in 'MOVING A SCRIPT OVER', 'THE KEEPER', 'TROUBLESHOOTING', 'Install-PSResource MgKeepAlive') {
            $result.Output | Should -Match ([regex]::Escape($section))
        }
    }
}

Describe 'Tab completion' {
    It 'completes -CallId of <_> to the calls the keeper holds' -ForEach @('Get-MgCommunicationCallKeepAlive', 'Stop-MgCommunicationCallKeepAlive', 'Wait-MgCommunicationCallKeepAlive') {
        $ids = 'complete-alpha', 'complete-beta', 'other-gamma'
        New-EmulatorCall -Id $ids
        $null = $ids | Start-MgCommunicationCallKeepAlive -Interval ([TimeSpan]::FromMinutes(15))
        try {
            Get-Completion "$_ -CallId complete-" | Should -Be @('complete-alpha', 'complete-beta')
            Get-Completion "$_ -CallId 'OTHER" | Should -Be @('other-gamma')
        } finally {
            Stop-MgCommunicationCallKeepAlive -All
        }
        Get-Completion "$_ -CallId complete-" | Should -BeNullOrEmpty -Because 'stopped calls are no longer kept'
    }

    It 'quotes a kept call id that needs quotes' {
        New-EmulatorCall -Id "spaced id's"
        $null = Start-MgCommunicationCallKeepAlive -CallId "spaced id's"
        try {
            Get-Completion 'Get-MgCommunicationCallKeepAlive -CallId spaced' | Should -Be @("'spaced id''s'")
        } finally {
            Stop-MgCommunicationCallKeepAlive -All
        }
    }

    It 'completes <Command> to the environments, user-defined ones included' -TestCases @(
        @{ Command = 'Connect-MgGraph -Environment' }
        @{ Command = 'Get-MgEnvironment -Name' }
        @{ Command = 'Set-MgEnvironment -Name' }
        @{ Command = 'Remove-MgEnvironment -Name' }
    ) {
        Get-Completion "$Command US" | Should -Be @('USGov', 'USGovDoD')
        Get-Completion "$Command emu" | Should -Be @('Emulator')
        Get-Completion "$Command " | Should -Contain 'Global'
    }

    It 'costs nothing at import: the helpers load on the first Tab, in a fresh pwsh' {
        $probe = "[bool](& (Get-Module MgKeepAlive) { Get-Command Complete-MgkaArgument -ErrorAction Ignore })"
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath'; $probe; (TabExpansion2 -inputScript 'Get-MgEnvironment -Name Glo' -cursorColumn 27).CompletionMatches.CompletionText; $probe"
        $result.Output | Should -Be "False`nGlobal`nTrue"
    }
}
