#Requires -Version 7.4
<#
.SYNOPSIS
Runs the MgKeepAlive Pester tests in a fresh pwsh and prints "Pester: N passed, N failed, N skipped".

.DESCRIPTION
Starts `pwsh -NoProfile -NonInteractive` with an explicit [PesterConfiguration] (Run.Path =
tests/pwsh, Output Detailed, Run.Exit, no test result file), streams its output, and ends with
one summary line for CI. Exit code: 0 when every test passed, else non-zero.
Needs Pester 5.5+ and a release build (`cargo build --release`: library and graph-emulator).

.PARAMETER Path
Test files or folders to run instead of tests/pwsh.

.PARAMETER FullName
Only tests whose full name matches these wildcard patterns (Pester Filter.FullName).
#>
[CmdletBinding()]
param(
    [string[]] $Path = @($PSScriptRoot),
    [string[]] $FullName
)
$ErrorActionPreference = 'Stop'

$paths = ($Path | ForEach-Object { "'" + ([System.IO.Path]::GetFullPath($_) -replace "'", "''") + "'" }) -join ', '
$filter = if ($FullName) { '$configuration.Filter.FullName = @(' + (($FullName | ForEach-Object { "'" + ($_ -replace "'", "''") + "'" }) -join ', ') + ')' } else { '' }
$inner = @"
`$ErrorActionPreference = 'Stop'
Import-Module Pester -MinimumVersion 5.5.0
`$configuration = [PesterConfiguration]::new()
`$configuration.Run.Path = @($paths)
`$configuration.Run.Exit = `$true
`$configuration.Output.Verbosity = 'Detailed'
`$configuration.TestResult.Enabled = `$false
$filter
Invoke-Pester -Configuration `$configuration
"@

$pwsh = (Get-Command pwsh -CommandType Application -ErrorAction Ignore | Select-Object -First 1).Source
if (-not $pwsh) { $pwsh = [Environment]::ProcessPath }

$summary = $null
& $pwsh -NoProfile -NonInteractive -Command $inner 2>&1 | ForEach-Object {
    $line = "$_"
    $plain = $line -replace '\x1b\[[0-9;]*m', ''
    if ($plain -match 'Tests Passed: (\d+), Failed: (\d+), Skipped: (\d+)') {
        $summary = [pscustomobject]@{ Passed = [int]$Matches[1]; Failed = [int]$Matches[2]; Skipped = [int]$Matches[3] }
    }
    $line
}
$exitCode = $LASTEXITCODE

if (-not $summary) {
    "Pester: 0 passed, 1 failed, 0 skipped (the test run did not finish; exit code $exitCode)"
    exit ([Math]::Max(1, $exitCode))
}
"Pester: $($summary.Passed) passed, $($summary.Failed) failed, $($summary.Skipped) skipped"
if ($summary.Failed -gt 0 -or $exitCode -ne 0) { exit ([Math]::Max(1, $summary.Failed)) }
exit 0
