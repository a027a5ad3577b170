#Requires -Version 7.4
<#
.SYNOPSIS
Packages MgKeepAlive as a self-contained module folder and a .nupkg.

.DESCRIPTION
Copies pwsh/MgKeepAlive (manifest, script modules, format file, the en-US help: about_MgKeepAlive and the MAML) and the
LICENSE to <OutputPath>/MgKeepAlive, and the native library to <OutputPath>/MgKeepAlive/<rid>/,
where the module looks first; then packs that folder as <OutputPath>/MgKeepAlive.<version>.nupkg
with Compress-PSResource (Microsoft.PowerShell.PSResourceGet, which ships with PowerShell 7.4+).
The folder imports from anywhere (Import-Module <OutputPath>/MgKeepAlive, or copy it into a
folder on $env:PSModulePath); the .nupkg is what a PowerShell repository serves
(Publish-PSResource -NupkgPath, or copy it into a file-system repository) for Install-PSResource,
Update-PSResource and PowerShellGet 2's Install-Module. Builds nothing unless -Build is given.
Returns the folder and the .nupkg.

.PARAMETER OutputPath
Where to create the MgKeepAlive folder and the .nupkg. Default: dist/ in the repository.

.PARAMETER Configuration
release (default) or debug: which target/ folder the library comes from.

.PARAMETER LibraryPath
An explicit library file to package instead of target/<configuration>/.

.PARAMETER RuntimeIdentifier
The <rid> folder name (linux-x64, linux-arm64, osx-x64, osx-arm64, win-x64, win-arm64) of
-LibraryPath or the target/ library. Default: this machine's.

.PARAMETER LibraryRoot
A folder holding one <rid>/ folder per platform, each with that platform's library
(mgkeepalive.dll, libmgkeepalive.dylib or libmgkeepalive.so), as the release workflow collects
them: every one of them is packaged. Replaces -LibraryPath and -RuntimeIdentifier.

.PARAMETER Version
The packaged module's version. Default: the source manifest's, which is Cargo.toml's. It must be
the library's version (Cargo.toml) or that version with a fourth part, a re-packaging of the same
library (0.1.0.1): the module accepts a library whose version is its first three parts.

.PARAMETER Build
Runs 'cargo build -p mgkeepalive' (with --release for release) first.

.EXAMPLE
pwsh pwsh/build-module.ps1 -Build
Import-Module ./dist/MgKeepAlive

.EXAMPLE
pwsh pwsh/build-module.ps1 -LibraryRoot ./libraries -OutputPath ./release

Packages the libraries of every platform (./libraries/win-x64/mgkeepalive.dll, ...) into one
module and one .nupkg.
#>
[CmdletBinding()]
param(
    [string] $OutputPath = (Join-Path $PSScriptRoot '..' 'dist'),
    [ValidateSet('release', 'debug')]
    [string] $Configuration = 'release',
    [string] $LibraryPath,
    [string] $RuntimeIdentifier,
    [string] $LibraryRoot,
    [ValidatePattern('^\d+\.\d+\.\d+(\.\d+)?$')]
    [string] $Version,
    [switch] $Build
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$repo = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '..'))
$source = Join-Path $PSScriptRoot 'MgKeepAlive'
# The library file name of each platform, by the <rid>'s operating system part.
$libraryNames = @{ win = 'mgkeepalive.dll'; osx = 'libmgkeepalive.dylib'; linux = 'libmgkeepalive.so' }
$os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
$thisRid = "$os-" + [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()
if (-not $RuntimeIdentifier) { $RuntimeIdentifier = $thisRid }

if ($Build) {
    $cargoArgs = @('build', '-p', 'mgkeepalive') + @(if ($Configuration -eq 'release') { '--release' })
    Push-Location $repo
    try {
        & cargo @cargoArgs
        if ($LASTEXITCODE -ne 0) { throw "cargo $($cargoArgs -join ' ') failed with exit code $LASTEXITCODE." }
    } finally { Pop-Location }
}

# rid -> library file to package
$libraries = [ordered]@{}
if ($LibraryRoot) {
    foreach ($folder in Get-ChildItem -LiteralPath $LibraryRoot -Directory | Sort-Object Name) {
        if ($folder.Name -notmatch '^(win|osx|linux)-(x64|arm64)$') { continue }
        $file = Join-Path $folder.FullName $libraryNames[$Matches[1]]
        if (Test-Path -LiteralPath $file -PathType Leaf) { $libraries[$folder.Name] = $file }
    }
    if ($libraries.Count -eq 0) { throw "No <rid>/<library> folders (such as linux-x64/libmgkeepalive.so) in '$LibraryRoot'." }
} else {
    if (-not $LibraryPath) { $LibraryPath = Join-Path $repo 'target' $Configuration $libraryNames[$os] }
    if (-not (Test-Path -LiteralPath $LibraryPath -PathType Leaf)) {
        throw "Native library not found at '$LibraryPath'. Run 'cargo build --release' (or pass -Build)."
    }
    $libraries[$RuntimeIdentifier] = $LibraryPath
}

# The version: Cargo.toml's (the library's, which the source manifest and script module repeat),
# or with -Version that plus a fourth part.
$crateVersion = [regex]::Match((Get-Content -Raw -LiteralPath (Join-Path $repo 'Cargo.toml')), '(?m)^version = "([^"]+)"').Groups[1].Value
$sourceVersion = (Import-PowerShellDataFile (Join-Path $source 'MgKeepAlive.psd1')).ModuleVersion
if ($sourceVersion -ne $crateVersion) { throw "pwsh/MgKeepAlive/MgKeepAlive.psd1 says $sourceVersion but Cargo.toml says ${crateVersion}: make them agree." }
if (-not $Version) { $Version = $crateVersion }
if (($Version -split '\.')[0..2] -join '.' -ne $crateVersion) {
    throw "-Version $Version does not package library ${crateVersion}: use $crateVersion or $crateVersion.<revision>."
}

$OutputPath = [System.IO.Path]::GetFullPath($OutputPath)
$destination = Join-Path $OutputPath 'MgKeepAlive'
if (Test-Path -LiteralPath $destination) { Remove-Item -LiteralPath $destination -Recurse -Force }
$null = New-Item -ItemType Directory -Path (Join-Path $destination 'en-US') -Force
# Every file of the module folder (the scripts, the manifest, the formats, the generated
# MgKeepAlive.Native.abi) and of en-US (the help: about_MgKeepAlive and the keep-alive commands'
# MAML); no other subfolder holds anything in a source tree.
Get-ChildItem -LiteralPath $source -File | Copy-Item -Destination $destination
Get-ChildItem -LiteralPath (Join-Path $source 'en-US') -File | Copy-Item -Destination (Join-Path $destination 'en-US')
Copy-Item -LiteralPath (Join-Path $repo 'LICENSE') -Destination $destination
foreach ($rid in $libraries.Keys) {
    $null = New-Item -ItemType Directory -Path (Join-Path $destination $rid) -Force
    Copy-Item -LiteralPath $libraries[$rid] -Destination (Join-Path $destination $rid $libraryNames[($rid -split '-')[0]])
}
if ($Version -ne $sourceVersion) {
    # The manifest and the script module state the version (the .psm1 so that import need not read the manifest).
    $manifest = Join-Path $destination 'MgKeepAlive.psd1'
    $script = Join-Path $destination 'MgKeepAlive.psm1'
    (Get-Content -Raw -LiteralPath $manifest) -replace "(?m)^(\s*ModuleVersion\s*=\s*)'[^']*'", "`${1}'$Version'" | Set-Content -LiteralPath $manifest -NoNewline
    (Get-Content -Raw -LiteralPath $script) -replace "(?m)^\`$script:ModuleVersion = '[^']*'", "`$script:ModuleVersion = '$Version'" | Set-Content -LiteralPath $script -NoNewline
}

# Check the result the way a user would: a fresh pwsh importing the folder by path and running
# a command (the library is found and loaded on the first one). Only possible for this machine's <rid>.
if ($libraries.Contains($thisRid)) {
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
} else {
    Write-Warning "No library for this machine ($thisRid) in the package: its import was not checked here."
}

# The .nupkg: Compress-PSResource validates the manifest and packs every file of the folder.
$package = Join-Path $OutputPath "MgKeepAlive.$Version.nupkg"
if (Test-Path -LiteralPath $package) { Remove-Item -LiteralPath $package -Force }
Import-Module Microsoft.PowerShell.PSResourceGet -ErrorAction Stop -Verbose:$false
Compress-PSResource -Path $destination -DestinationPath $OutputPath
if (-not (Test-Path -LiteralPath $package -PathType Leaf)) { throw "Compress-PSResource did not write '$package'." }
Write-Verbose "Packaged $destination ($($libraries.Keys -join ', ')) and $package."
Get-Item -LiteralPath $destination
Get-Item -LiteralPath $package
