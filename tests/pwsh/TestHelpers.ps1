# Shared helpers for the MgKeepAlive Pester tests. Dot-source in BeforeAll:
#   . $PSScriptRoot/TestHelpers.ps1
# Helpers read $Emulator (set by the test file's BeforeAll) through PowerShell's dynamic scoping.
# Nothing here builds: the tests need `cargo build --release` (library and graph-emulator) first.

$RepoRoot = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '..' '..'))
$ModulePath = Join-Path $RepoRoot 'pwsh' 'MgKeepAlive'
$ManifestPath = Join-Path $ModulePath 'MgKeepAlive.psd1'

function Get-TestPwsh {
    # The pwsh to start child processes with (a fresh process per import scenario).
    $command = Get-Command pwsh -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if ($command) { return $command.Source }
    [Environment]::ProcessPath
}

function Invoke-TestPwsh {
    # Runs a command in a fresh `pwsh -NoProfile -NonInteractive`; returns @{ ExitCode; Output }.
    # -Environment: variables to set (value $null removes) for the child only.
    # -TimeoutSeconds: a hang guard; a child still running then is killed and the call throws.
    param(
        [Parameter(Mandatory)][string] $Command,
        [hashtable] $Environment = @{},
        [int] $TimeoutSeconds
    )
    $saved = @{}
    foreach ($name in $Environment.Keys) {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        [Environment]::SetEnvironmentVariable($name, $Environment[$name])
    }
    try {
        if (-not $TimeoutSeconds) {
            $output = & (Get-TestPwsh) -NoProfile -NonInteractive -Command $Command 2>&1 | ForEach-Object { "$_" }
            return @{ ExitCode = $LASTEXITCODE; Output = ($output -join "`n") }
        }
        $info = [System.Diagnostics.ProcessStartInfo]::new((Get-TestPwsh))
        foreach ($argument in '-NoProfile', '-NonInteractive', '-Command', $Command) { $info.ArgumentList.Add($argument) }
        $info.UseShellExecute = $false
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $process = [System.Diagnostics.Process]::Start($info)
        try {
            $stdout = $process.StandardOutput.ReadToEndAsync()
            $stderr = $process.StandardError.ReadToEndAsync()
            if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
                $process.Kill($true)
                throw "The child pwsh did not exit within $TimeoutSeconds s (killed)."
            }
            $process.WaitForExit()
            $output = ($stdout.Result + $stderr.Result).TrimEnd("`r", "`n") -replace "`r`n", "`n"
            @{ ExitCode = $process.ExitCode; Output = $output }
        } finally { $process.Dispose() }
    } finally {
        foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
    }
}

function Use-EnvironmentVariable {
    # Runs $Script with process environment variables set (value $null removes), then restores them.
    param([hashtable] $Variables, [scriptblock] $Script)
    # Names are case-sensitive on Linux and macOS (HTTP_PROXY and http_proxy are two variables).
    $saved = [hashtable]::new([StringComparer]::Ordinal)
    foreach ($name in $Variables.Keys) {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        [Environment]::SetEnvironmentVariable($name, $Variables[$name])
    }
    try { & $Script } finally {
        foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
    }
}

function Start-TestEmulator {
    # Starts target/release/graph-emulator on a free loopback port; returns @{ Process; Url }.
    # The emulator exits when its stdin closes (--exit-on-stdin-eof), so it never outlives us.
    $name = if ($IsWindows) { 'graph-emulator.exe' } else { 'graph-emulator' }
    $path = Join-Path $RepoRoot 'target' 'release' $name
    if (-not (Test-Path $path)) {
        throw "graph-emulator not found at $path; run 'cargo build --release' first."
    }
    $info = [System.Diagnostics.ProcessStartInfo]::new($path)
    foreach ($argument in '--port', '0', '--exit-on-stdin-eof') { $info.ArgumentList.Add($argument) }
    $info.UseShellExecute = $false
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardInput = $true
    $process = [System.Diagnostics.Process]::Start($info)
    $read = $process.StandardOutput.ReadLineAsync()
    if (-not $read.Wait(15000) -or $null -eq $read.Result) {
        try { $process.Kill() } catch { }
        throw 'graph-emulator did not print its address within 15 s.'
    }
    if ($read.Result -notmatch '^graph-emulator listening on (http://\S+)$') {
        try { $process.Kill() } catch { }
        throw "Unexpected first line from graph-emulator: $($read.Result)"
    }
    @{ Process = $process; Url = $Matches[1] }
}

function Stop-TestEmulator {
    param($Emulator)
    if (-not $Emulator -or -not $Emulator.Process) { return }
    $process = $Emulator.Process
    try { $process.StandardInput.Close() } catch { }
    if (-not $process.WaitForExit(5000)) { try { $process.Kill() } catch { } }
    $process.Dispose()
}

function Invoke-Emulator {
    # The emulator's control API (/_emulator/...).
    param(
        [Parameter(Mandatory)][string] $Method,
        [Parameter(Mandatory)][string] $Path,
        $Body
    )
    $parameters = @{ Method = $Method; Uri = "$($Emulator.Url)/_emulator/$Path" }
    if ($PSBoundParameters.ContainsKey('Body')) {
        $parameters.Body = ConvertTo-Json -InputObject $Body -Depth 10 -Compress
        $parameters.ContentType = 'application/json'
    }
    Invoke-RestMethod @parameters
}

function New-EmulatorCall {
    param([Parameter(Mandatory)][string[]] $Id)
    $null = Invoke-Emulator POST calls @{ ids = $Id }
}

function Get-EmulatorRequest {
    # The request log (keep-alives and other Graph requests; control requests are never logged),
    # one entry per pipeline item (Invoke-RestMethod writes a JSON array as one object).
    @(Invoke-Emulator GET requests | ForEach-Object { $_ })
}

function Get-EmulatorKeepAlive {
    # Every keep-alive sent, one entry each: single requests as logged, and each item of a JSON
    # batch ($batch) as @{ callId; rawPath = '/{version}{item url}'; status; kind = 'batchItem' }.
    foreach ($request in Get-EmulatorRequest) {
        if ($request.kind -eq 'keepAlive') { $request }
        elseif ($request.kind -eq 'batch') {
            foreach ($item in $request.items) {
                [pscustomobject]@{ callId = $item.callId; rawPath = "/$($request.apiVersion)$($item.url)"; status = $item.status; kind = 'batchItem' }
            }
        }
    }
}

function Get-EmulatorCallRequest {
    # The single keep-alive requests the emulator received for one call, oldest first.
    param([Parameter(Mandatory)][string] $CallId)
    @(Invoke-Emulator GET "requests?kind=keepAlive&callId=$([uri]::EscapeDataString($CallId))" | ForEach-Object { $_ })
}

function Get-EmulatorRequestTime {
    # When the emulator received a logged request (its `time`, UTC, milliseconds), as a DateTime.
    param([Parameter(Mandatory)] $Request)
    if ($Request.time -is [datetime]) { return $Request.time.ToUniversalTime() }
    [datetimeoffset]::Parse($Request.time, [cultureinfo]::InvariantCulture).UtcDateTime
}

function Get-EmulatorRequestGapMs {
    # Milliseconds between the arrivals of consecutive logged requests (n requests: n - 1 gaps).
    param([object[]] $Requests)
    for ($i = 1; $i -lt $Requests.Count; $i++) {
        ((Get-EmulatorRequestTime $Requests[$i]) - (Get-EmulatorRequestTime $Requests[$i - 1])).TotalMilliseconds
    }
}

function Wait-Until {
    # Polls $Condition until it is true; $false if it is not within -TimeoutMs. The timeout only
    # guards against waiting forever: keep it generous (a true condition returns at once).
    param([Parameter(Mandatory)][scriptblock] $Condition, [int] $TimeoutMs = 20000)
    $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
    while ($stopwatch.ElapsedMilliseconds -lt $TimeoutMs) {
        if (& $Condition) { return $true }
        Start-Sleep -Milliseconds 50
    }
    [bool](& $Condition)
}

function Clear-EmulatorRequest { $null = Invoke-Emulator DELETE requests }

function Connect-TestGraph {
    # Points the module at the emulator and connects with the test token.
    param([string] $Token = 'test-token')
    $null = Add-MgEnvironment -Name Emulator -AzureADEndpoint $Emulator.Url -GraphEndpoint $Emulator.Url
    Connect-MgGraph -AccessToken (ConvertTo-SecureString $Token -AsPlainText -Force) -Environment Emulator -NoWelcome
}


function New-TestJwt {
    # An unsigned JWT-shaped access token with these claims (the emulator accepts any bearer
    # token until one is registered; Microsoft's module reads tid/appid/roles from the claims).
    param([System.Collections.IDictionary] $Claims = [ordered]@{})
    $encode = { param($Text) [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($Text)).TrimEnd('=').Replace('+', '-').Replace('/', '_') }
    $body = [ordered]@{ exp = 4102444800 }
    foreach ($entry in $Claims.GetEnumerator()) { $body[$entry.Key] = $entry.Value }
    (& $encode '{"alg":"none","typ":"JWT"}') + '.' + (& $encode (ConvertTo-Json -InputObject $body -Compress)) + '.' + (& $encode 'signature')
}
