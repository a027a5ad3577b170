#Requires -Version 7.4
<#
.SYNOPSIS
Packages MgKeepAlive as a self-contained module folder.

.DESCRIPTION
Copies pwsh/MgKeepAlive (manifest, script module, format file) to <OutputPath>/MgKeepAlive and
the native library to <OutputPath>/MgKeepAlive/<rid>/, where the module looks first. The result
imports from anywhere (Import-Module <OutputPath>/MgKeepAlive, or copy it into a folder on
$env:PSModulePath). Builds nothing unless -Build is given.

.PARAMETER OutputPath
Where to create the MgKeepAlive folder. Default: dist/ in the repository.

.PARAMETER Configuration
release (default) or debug: which target/ folder the library comes from.

.PARAMETER LibraryPath
An explicit library file to package instead of target/<configuration>/.

.PARAMETER RuntimeIdentifier
The <rid> folder name (linux-x64, linux-arm64, osx-x64, osx-arm64, win-x64, win-arm64).
Default: this machine's.

.PARAMETER Build
Runs 'cargo build -p mgkeepalive' (with --release for release) first.

.EXAMPLE
pwsh pwsh/build-module.ps1 -Build
Import-Module ./dist/MgKeepAlive
#>
[CmdletBinding()]
param(
    [string] $OutputPath = (Join-Path $PSScriptRoot '..' 'dist'),
    [ValidateSet('release', 'debug')]
    [string] $Configuration = 'release',
    [string] $LibraryPath,
    [string] $RuntimeIdentifier,
    [switch] $Build
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$repo = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '..'))
$source = Join-Path $PSScriptRoot 'MgKeepAlive'
$libraryName = if ($IsWindows) { 'mgkeepalive.dll' } elseif ($IsMacOS) { 'libmgkeepalive.dylib' } else { 'libmgkeepalive.so' }
if (-not $RuntimeIdentifier) {
    $os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
    $RuntimeIdentifier = "$os-" + [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()
}

if ($Build) {
    $cargoArgs = @('build', '-p', 'mgkeepalive') + @(if ($Configuration -eq 'release') { '--release' })
    Push-Location $repo
    try {
        & cargo @cargoArgs
        if ($LASTEXITCODE -ne 0) { throw "cargo $($cargoArgs -join ' ') failed with exit code $LASTEXITCODE." }
    } finally { Pop-Location }
}

if (-not $LibraryPath) { $LibraryPath = Join-Path $repo 'target' $Configuration $libraryName }
if (-not (Test-Path -LiteralPath $LibraryPath -PathType Leaf)) {
    throw "Native library not found at '$LibraryPath'. Run 'cargo build --release' (or pass -Build)."
}

$destination = Join-Path ([System.IO.Path]::GetFullPath($OutputPath)) 'MgKeepAlive'
if (Test-Path -LiteralPath $destination) { Remove-Item -LiteralPath $destination -Recurse -Force }
$null = New-Item -ItemType Directory -Path (Join-Path $destination $RuntimeIdentifier) -Force
foreach ($file in 'MgKeepAlive.psd1', 'MgKeepAlive.psm1', 'MgKeepAlive.Private.ps1', 'MgKeepAlive.Auth.ps1', 'MgKeepAlive.Types.ps1', 'MgKeepAlive.Format.ps1xml') {
    Copy-Item -LiteralPath (Join-Path $source $file) -Destination $destination
}
Copy-Item -LiteralPath $LibraryPath -Destination (Join-Path $destination $RuntimeIdentifier $libraryName)

# Check the result the way a user would: a fresh pwsh importing the folder by path and running
# a command (the library is found and loaded on the first one).
$pwsh = (Get-Command pwsh -CommandType Application -ErrorAction Ignore | Select-Object -First 1).Source
if (-not $pwsh) { $pwsh = [Environment]::ProcessPath }
$saved = $env:MGKEEPALIVE_LIBRARY
$env:MGKEEPALIVE_LIBRARY = $null
try {
    $check = & $pwsh -NoProfile -NonInteractive -Command "Import-Module '$destination' -ErrorAction Stop; `$null = Get-MgEnvironment -ErrorAction Stop; & (Get-Module MgKeepAlive) { `$script:LibraryPath }" 2>&1
} finally { $env:MGKEEPALIVE_LIBRARY = $saved }
if ($LASTEXITCODE -ne 0 -or "$check" -notlike "$destination*") {
    throw "The packaged module does not import cleanly: $check"
}
Write-Verbose "Packaged $destination (library $RuntimeIdentifier/$libraryName)."
Get-Item -LiteralPath $destination
