# MgKeepAlive: the module's private helpers: native interop, keep-alive and bulk paths, error
# records, the keeper's helpers. Dot-sourced by Import-MgkaPrivate on the first command that runs
# in a session, not at import: import time is a feature, and defining these ~60 functions and the
# .NET objects below costs more than the rest of the import. The functions are defined in the
# module's script scope (function script:...), where the module's Set-StrictMode -Version 3.0
# applies; every native call goes through Invoke-MgkaNative, except the keep-alive stream's
# (Open-MgkaKeepAlive and the commands' process blocks: a call per piped item).

#region Native interop ---------------------------------------------------------------------------

# MgkaStatus values (stable, never reused), indexed by value.
$script:StatusNames = @(
    'Ok', 'GraphError', 'NotConnected', 'InvalidArgument', 'NullPointer', 'InvalidUtf8',
    'TransportError', 'Timeout', 'Cancelled', 'Pending', 'InvalidHandle', 'AuthError', 'Panic', 'NotFound'
)
$script:MGKA_OK = [uint32]0
$script:MGKA_INVALID_ARGUMENT = [uint32]3
$script:MGKA_PENDING = [uint32]9

# The sign-in helpers of MgKeepAlive.Auth.ps1 are dot-sourced on first use.
$script:AuthHelpersLoaded = $false
# What Set-MgRequestContext set, for Microsoft.Graph.Authentication when it loads later.
$script:MicrosoftRequestContext = [ordered]@{}

# Strict UTF-8: a lone surrogate is an error, never silently replaced.
$script:Utf8 = [System.Text.UTF8Encoding]::new($false, $true)

# Wait slice: how long one native wait may block, i.e. how soon Ctrl+C is honoured.
$script:WaitSliceMs = [uint32]100

# Piped input: when Write-Progress starts (items done). Chunks and concurrency are the library's
# (mgka_keep_alive_stream_open).
$script:BulkProgressAfter = 500
$script:BulkProgressId = 0x4D474B41

# Get-MgContext's enums (MgKeepAlive.Types.ps1) are defined by the first context built: defining
# types costs start-up time that keep-alive-only commands need not pay.
$script:ContextTypes = $null

# What Microsoft's cmdlets say and show, word for word (Microsoft.Graph 2.38.1).
$script:NotConnectedMessage = 'Authentication needed. Please call Connect-MgGraph.'
$script:GraphErrorRecommendation = 'See service error codes: https://learn.microsoft.com/graph/errors'
# Microsoft's keep-alive commands are proxies of generated cmdlets (one per parameter set, such
# as InvokeMgKeepCommunicationCallAlive_Keep); their error records are named after those.
$script:KeepAliveCmdletNames = @{
    'v1.0' = @{ Namespace = 'Microsoft.Graph.PowerShell.Cmdlets'; Type = 'InvokeMgKeepCommunicationCallAlive'; Activity = 'Invoke-MgKeepCommunicationCallAlive' }
    'beta' = @{ Namespace = 'Microsoft.Graph.Beta.PowerShell.Cmdlets'; Type = 'InvokeMgBetaKeepCommunicationCallAlive'; Activity = 'Invoke-MgBetaKeepCommunicationCallAlive' }
}

function script:ConvertTo-MgkaUtf8 {
    # NUL-terminated UTF-8 for a C string; $null stays $null (a NULL pointer).
    param([AllowNull()][string] $Text)
    if ($null -eq $Text) { return $null }
    $count = $script:Utf8.GetByteCount($Text)
    $buffer = [byte[]]::new($count + 1)
    [void]$script:Utf8.GetBytes($Text, 0, $Text.Length, $buffer, 0)
    , $buffer
}

function script:Read-MgkaNativeString {
    # Copies a library-owned string and frees it with mgka_string_free.
    param([IntPtr] $Pointer)
    if ($Pointer -eq [IntPtr]::Zero) { return $null }
    try { [System.Runtime.InteropServices.Marshal]::PtrToStringUTF8($Pointer) }
    finally { $script:Native::mgka_string_free($Pointer) }
}

function script:Find-MgkaLibrary {
    # The native library's absolute path: MGKEEPALIVE_LIBRARY (absolute path), else
    # <module>/<rid>/, else the source tree's target/release, then target/debug. Throws a clear
    # error naming where it looked.
    $path = [Environment]::GetEnvironmentVariable('MGKEEPALIVE_LIBRARY')
    if ($path) {
        if (-not [System.IO.Path]::IsPathFullyQualified($path)) {
            throw "MgKeepAlive: MGKEEPALIVE_LIBRARY must be an absolute path to the native library; it is '$path'."
        }
        if (-not [System.IO.File]::Exists($path)) {
            throw "MgKeepAlive: MGKEEPALIVE_LIBRARY points to '$path', which does not exist."
        }
        return $path
    }
    $libraryName = if ($IsWindows) { 'mgkeepalive.dll' } elseif ($IsMacOS) { 'libmgkeepalive.dylib' } else { 'libmgkeepalive.so' }
    $rid = $(if ($IsWindows) { 'win-' } elseif ($IsMacOS) { 'osx-' } else { 'linux-' }) +
        [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()
    $sourceTree = [System.IO.Path]::GetDirectoryName([System.IO.Path]::GetDirectoryName($PSScriptRoot))
    $candidates = "$PSScriptRoot/$rid/$libraryName", "$sourceTree/target/release/$libraryName", "$sourceTree/target/debug/$libraryName"
    foreach ($candidate in $candidates) {
        if ([System.IO.File]::Exists($candidate)) { return $candidate }
    }
    throw ("MgKeepAlive: cannot find the native library $libraryName for $rid. Looked in:`n  " + ($candidates -join "`n  ") +
        "`nBuild it with 'cargo build --release' in the source tree, import a packaged module (pwsh/build-module.ps1)," +
        " or set MGKEEPALIVE_LIBRARY to the library's absolute path.")
}

function script:Initialize-MgkaNative {
    # Finds the library (Find-MgkaLibrary), loads it and checks that its version (its
    # mgka_version_string data: a symbol lookup, no call) is the module's, then makes the interop:
    # a static class of P/Invoke methods emitted with System.Reflection.Emit and bound to the
    # library's absolute path (no C# is compiled). Runs on the first native call, not at import.
    # The class is cached per path in the AppDomain, so a re-import, or an import in another
    # runspace, reuses it: a native library is loaded once per process and never unloaded. The
    # key's number changes whenever the signature list does.
    if (-not $script:LibraryPath) {
        $path = Find-MgkaLibrary
        try {
            $libraryHandle = [System.Runtime.InteropServices.NativeLibrary]::Load($path)
            $libraryVersion = [System.Runtime.InteropServices.Marshal]::PtrToStringUTF8(
                [System.Runtime.InteropServices.NativeLibrary]::GetExport($libraryHandle, 'mgka_version_string'))
        } catch {
            $reason = if ($_.Exception.InnerException) { $_.Exception.InnerException.Message } else { $_.Exception.Message }
            throw "MgKeepAlive: cannot load the native library '$path': $reason"
        }
        # A fourth part of the module version (0.1.0.1) is a re-packaging of the same library.
        $wanted = ($script:ModuleVersion -split '\.')[0..2] -join '.'
        if ($libraryVersion -ne $wanted) {
            throw ("MgKeepAlive $script:ModuleVersion needs libmgkeepalive $wanted, but '$path' is version '$libraryVersion'." +
                " Rebuild the library ('cargo build --release'), reinstall the module, or point MGKEEPALIVE_LIBRARY at a matching build.")
        }
        $script:LibraryPath = $path
    }
    $script:Native = [AppDomain]::CurrentDomain.GetData("MgKeepAlive.Native.5|$script:LibraryPath")
    if ($script:Native -isnot [type]) {
        $assemblyName = [System.Reflection.AssemblyName]::new('MgKeepAlive.Native.' + [guid]::NewGuid().ToString('N'))
        $typeBuilder = [System.Reflection.Emit.AssemblyBuilder]::DefineDynamicAssembly($assemblyName, 'Run').
            DefineDynamicModule($assemblyName.Name).DefineType('MgKeepAlive.Native', 'Public, Sealed, Abstract, Class')
        $ptr = [IntPtr]; $ptrOut = [IntPtr].MakeByRefType(); $u64Out = [uint64].MakeByRefType(); $bytes = [byte[]]
        # name, return type, parameter types (see include/mgkeepalive.h)
        foreach ($signature in @(
                , @('mgka_version', $ptr, [type[]]@())
                , @('mgka_string_free', [void], [type[]]@($ptr))
                , @('mgka_environment_list', [uint32], [type[]]@($ptrOut))
                , @('mgka_environment_add', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_environment_remove', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_url_redact', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_connect', [uint32], [type[]]@($bytes, $bytes, [UIntPtr], $ptrOut))
                , @('mgka_connect_start', [uint32], [type[]]@($bytes, $bytes, [UIntPtr], $u64Out))
                , @('mgka_disconnect', [uint32], [type[]]@($ptrOut))
                , @('mgka_context', [uint32], [type[]]@($ptrOut))
                , @('mgka_keep_alive_by_id_start', [uint32], [type[]]@($bytes, $bytes, $u64Out))
                , @('mgka_keep_alive_by_identity_start', [uint32], [type[]]@($bytes, $bytes, $u64Out))
                , @('mgka_keep_alive_bulk_start', [uint32], [type[]]@($bytes, $bytes, $u64Out))
                , @('mgka_operation_wait', [uint32], [type[]]@([uint64], [uint32], $ptrOut))
                , @('mgka_operation_cancel', [uint32], [type[]]@([uint64]))
                , @('mgka_request_context_get', [uint32], [type[]]@($ptrOut))
                , @('mgka_request_context_set', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_identity_resolve', [uint32], [type[]]@([uint32], [string], [UIntPtr], [string], [UIntPtr], [uint32], $ptrOut))
                , @('mgka_keep_alive_stream_open', [uint32], [type[]]@($bytes, $bytes, $u64Out, $ptrOut))
                , @('mgka_keep_alive_stream_push', [uint32], [type[]]@([uint64], [uint32], [string], [UIntPtr], [string], [UIntPtr], [uint32], $ptrOut))
                , @('mgka_keep_alive_stream_withdraw', [uint32], [type[]]@([uint64]))
                , @('mgka_keep_alive_stream_finish', [uint32], [type[]]@([uint64]))
                , @('mgka_keep_alive_stream_next', [uint32], [type[]]@([uint64], [uint32], $u64Out, $ptrOut))
                , @('mgka_keep_alive_stream_close', [uint32], [type[]]@([uint64]))
            )) {
            $typeBuilder.DefinePInvokeMethod($signature[0], $script:LibraryPath, 'Public, Static, PinvokeImpl, HideBySig', 'Standard',
                $signature[1], $signature[2], 'Cdecl', 'Unicode').SetImplementationFlags('PreserveSig')
        }
        $script:Native = $typeBuilder.CreateType()
        [AppDomain]::CurrentDomain.SetData("MgKeepAlive.Native.5|$script:LibraryPath", $script:Native)
    }
    $script:Native
}

function script:Invoke-MgkaNative {
    <#
    .SYNOPSIS
    The one place where PowerShell values cross into the native library (private).
    .DESCRIPTION
    Encodes input strings as NUL-terminated UTF-8 (rejecting strings that contain NUL or are not
    valid UTF-16), calls one export, copies and frees every returned string, and returns
    [pscustomobject]@{ Status; Json; Operation }. Status is the MgkaStatus value; Json the returned
    string (error JSON on failure). Inputs that cannot be encoded produce Status 3
    (InvalidArgument) with an error JSON naming the parameter, without calling the library.
    #>
    # A simple (not advanced) function on purpose: it is called per request.
    param(
        # Version, EnvironmentList, EnvironmentAdd, EnvironmentRemove, Connect, ConnectStart,
        # Disconnect, Context, KeepAliveByIdStart, KeepAliveByIdentityStart, KeepAliveBulkStart,
        # OperationCancel (waits: Wait-MgkaOperation), RequestContextGet or RequestContextSet; KeeperStart, KeeperStop, KeeperList or KeeperEvents (bound on first
        # use: Initialize-MgkaKeeper).
        [string] $Function,

        # Input strings in native argument order; each key is the user-facing parameter name
        # used in error messages. A $null value is passed as a NULL pointer.
        [System.Collections.Specialized.OrderedDictionary] $Text,

        # Secret bytes (mgka_connect, mgka_connect_start). The caller owns and zeroes them.
        [byte[]] $Secret,

        # An operation handle; for KeeperEvents, the sequence number to read events after.
        [uint64] $Operation,

        [uint32] $TimeoutMs
    )

    if ($null -eq $script:Native) { $null = Initialize-MgkaNative }
    if ($Function -eq 'Version') {
        # A static string owned by the library: copied, never freed.
        return [System.Runtime.InteropServices.Marshal]::PtrToStringUTF8($script:Native::mgka_version())
    }
    $encoded = [System.Collections.Generic.List[byte[]]]::new()
    if ($Text) {
        foreach ($entry in $Text.GetEnumerator()) {
            $value = [string]$entry.Value
            if ($null -ne $entry.Value -and $value.Contains([char]0)) {
                return [pscustomobject]@{
                    Status = $script:MGKA_INVALID_ARGUMENT; Operation = [uint64]0
                    Json = ConvertTo-Json -Compress @{
                        kind = 'InvalidArgument'; parameter = $entry.Key; callId = $null
                        message = "The value of $($entry.Key) contains a NUL character, which cannot be passed on."
                    }
                }
            }
            try {
                $encoded.Add((ConvertTo-MgkaUtf8 -Text ($entry.Value -as [string])))
            } catch [System.Text.EncoderFallbackException] {
                return [pscustomobject]@{
                    Status = $script:MGKA_INVALID_ARGUMENT; Operation = [uint64]0
                    Json = ConvertTo-Json -Compress @{
                        kind = 'InvalidArgument'; parameter = $entry.Key; callId = $null
                        message = "The value of $($entry.Key) is not valid Unicode text (it contains a lone surrogate)."
                    }
                }
            }
        }
    }

    $N = $script:Native
    $out = [IntPtr]::Zero
    $op = [uint64]0
    $status = [uint32]0
    try {
        switch ($Function) {
            'EnvironmentList' { $status = $N::mgka_environment_list([ref]$out) }
            'EnvironmentAdd' { $status = $N::mgka_environment_add($encoded[0], [ref]$out) }
            'EnvironmentRemove' { $status = $N::mgka_environment_remove($encoded[0], [ref]$out) }
            'UrlRedact' { $status = $N::mgka_url_redact($encoded[0], [ref]$out) }
            'Connect' {
                $length = if ($Secret) { [UIntPtr]::new([uint64]$Secret.Length) } else { [UIntPtr]::Zero }
                $status = $N::mgka_connect($encoded[0], $Secret, $length, [ref]$out)
            }
            'ConnectStart' {
                # The library copies the secret before it returns; the caller zeroes its copy then.
                $length = if ($Secret) { [UIntPtr]::new([uint64]$Secret.Length) } else { [UIntPtr]::Zero }
                $status = $N::mgka_connect_start($encoded[0], $Secret, $length, [ref]$op)
            }
            'Disconnect' { $status = $N::mgka_disconnect([ref]$out) }
            'Context' { $status = $N::mgka_context([ref]$out) }
            'KeepAliveByIdStart' { $status = $N::mgka_keep_alive_by_id_start($encoded[0], $encoded[1], [ref]$op) }
            'KeepAliveByIdentityStart' { $status = $N::mgka_keep_alive_by_identity_start($encoded[0], $encoded[1], [ref]$op) }
            'KeepAliveBulkStart' { $status = $N::mgka_keep_alive_bulk_start($encoded[0], $encoded[1], [ref]$op) }
            'OperationCancel' { $status = $N::mgka_operation_cancel($Operation) }
            'RequestContextGet' { $status = $N::mgka_request_context_get([ref]$out) }
            'RequestContextSet' { $status = $N::mgka_request_context_set($encoded[0], [ref]$out) }
            'KeeperStart' { $status = $script:KeeperNative::mgka_keeper_start($encoded[0], [ref]$out) }
            'KeeperStop' { $status = $script:KeeperNative::mgka_keeper_stop($encoded[0], [ref]$out) }
            'KeeperList' { $status = $script:KeeperNative::mgka_keeper_list($encoded[0], [ref]$out) }
            'KeeperEvents' { $status = $script:KeeperNative::mgka_keeper_events($Operation, $TimeoutMs, [ref]$out) }
            default { throw "Invoke-MgkaNative: unknown function '$Function'." }
        }
    } catch [System.EntryPointNotFoundException] {
        throw "MgKeepAlive: the native library '$script:LibraryPath' has no export for $Function ($($_.Exception.Message)). Rebuild it ('cargo build --release') so it matches this module."
    } finally {
        $json = Read-MgkaNativeString -Pointer $out
    }
    [pscustomobject]@{ Status = $status; Json = $json; Operation = $op }
}

function script:ConvertFrom-MgkaJson {
    # JSON -> ordered dictionaries (case-insensitive keys), object[] and primitives. Strings stay
    # strings (ConvertFrom-Json would turn ISO dates into [datetime]).
    param([AllowNull()][AllowEmptyString()][string] $Json)
    if ([string]::IsNullOrWhiteSpace($Json)) { return $null }
    $document = [System.Text.Json.JsonDocument]::Parse($Json)
    try { , (ConvertFrom-MgkaJsonElement -Element $document.RootElement) }
    finally { $document.Dispose() }
}

function script:ConvertFrom-MgkaJsonElement {
    param([System.Text.Json.JsonElement] $Element)
    switch ($Element.ValueKind) {
        'Object' {
            $map = [System.Collections.Specialized.OrderedDictionary]::new([StringComparer]::OrdinalIgnoreCase)
            foreach ($property in $Element.EnumerateObject()) {
                $value = $property.Value
                $map[$property.Name] = switch ($value.ValueKind) {
                    'String' { $value.GetString() }
                    'Null' { $null }
                    default { , (ConvertFrom-MgkaJsonElement -Element $value) }
                }
            }
            return , $map
        }
        'Array' {
            $list = [System.Collections.Generic.List[object]]::new()
            foreach ($item in $Element.EnumerateArray()) {
                if ($item.ValueKind -eq 'String') { $list.Add($item.GetString()) }
                else { $list.Add((ConvertFrom-MgkaJsonElement -Element $item)) }
            }
            return , $list.ToArray()
        }
        'String' { return $Element.GetString() }
        'Number' {
            $long = 0L
            if ($Element.TryGetInt64([ref]$long)) { return $long }
            return $Element.GetDouble()
        }
        'True' { return $true }
        'False' { return $false }
        default { return $null }
    }
}

#endregion

#region Helpers -----------------------------------------------------------------------------------

function script:New-MgkaHeaderDictionary {
    # Case-insensitive header name -> string[] (like the official -ResponseHeadersVariable).
    param([AllowNull()] $Headers)
    $result = [System.Collections.Generic.Dictionary[string, string[]]]::new([StringComparer]::OrdinalIgnoreCase)
    if ($Headers -is [System.Collections.IDictionary]) {
        foreach ($entry in $Headers.GetEnumerator()) {
            $result[[string]$entry.Key] = [string[]]@($entry.Value | ForEach-Object { [string]$_ })
        }
    }
    , $result
}

function script:Get-MgkaStatusName {
    param([uint32] $Status)
    if ($Status -lt $script:StatusNames.Count) { $script:StatusNames[$Status] } else { "Status$Status" }
}

function script:Limit-MgkaText {
    # At most 2,000 characters of an error text.
    param([string] $Text)
    if ($Text.Length -le 2000) { return $Text }
    $Text.Substring(0, 2000) + "... ($($Text.Length - 2000) more characters; the whole answer is in Exception.ResponseBody)"
}

function script:Format-MgkaErrorDetails {
    # The ErrorDetails text of Microsoft's cmdlets for an HTTP error, line for line: the message,
    # Status, ErrorCode, Date (Graph's innerError date), then the response headers as .NET names
    # and keeps them (content headers such as Content-Type are not among them).
    param([System.Collections.IDictionary] $Info, [string] $Code)
    $newLine = [Environment]::NewLine
    $builder = [System.Text.StringBuilder]::new()
    $message = if ($null -ne $Info['graphMessage']) { [string]$Info['graphMessage'] } else { [string]$Info['message'] }
    [void]$builder.Append((Limit-MgkaText $message)).Append($newLine).Append($newLine)
    $reason = if ($Info['reason']) { $Info['reason'] } else { [Enum]::ToObject([System.Net.HttpStatusCode], [int]$Info['httpStatus']).ToString() }
    [void]$builder.Append("Status: $($Info['httpStatus']) ($reason)").Append($newLine)
    [void]$builder.Append("ErrorCode: $Code").Append($newLine)
    [void]$builder.Append("Date: $($Info['date'])").Append($newLine).Append($newLine)
    [void]$builder.Append('Headers:').Append($newLine)
    $headers = $Info['headers']
    if ($headers -is [System.Collections.IDictionary] -and $headers.Count -gt 0) {
        # .NET's response headers give the names their canonical case (date -> Date) and leave
        # out content headers, as Microsoft's cmdlet shows them.
        $response = [System.Net.Http.HttpResponseMessage]::new()
        try {
            foreach ($entry in $headers.GetEnumerator()) {
                foreach ($value in @($entry.Value)) { [void]$response.Headers.TryAddWithoutValidation([string]$entry.Key, [string]$value) }
            }
            $lines = foreach ($header in $response.Headers) { '{0,-30}: {1}' -f $header.Key, ($header.Value -join ', ') }
            [void]$builder.Append(($lines -join $newLine))
        } finally { $response.Dispose() }
    }
    [void]$builder.Append($newLine).Append($newLine)
    $builder.ToString()
}

function script:New-MgkaErrorRecord {
    <#
    Turns a failed native status + error JSON into an ErrorRecord. For Graph errors the exception
    is an HttpRequestException (its StatusCode property is the HTTP status) carrying the
    NoteProperties ErrorCode, GraphMessage, RequestId, ClientRequestId, Date, ResponseHeaders,
    ResponseBody, Attempts, AttemptLog and CallId; Timeout and TransportError exceptions carry
    Attempts, AttemptLog and CallId.
    #>
    param(
        [uint32] $Status,
        [AllowNull()] [System.Collections.IDictionary] $Info,
        [AllowNull()] $TargetObject,
        [string] $Activity
    )
    if ($null -eq $Info) { $Info = [ordered]@{} }
    $kind = if ($Info['kind']) { [string]$Info['kind'] } else { Get-MgkaStatusName $Status }
    $message = if ($Info['message']) { [string]$Info['message'] } else { "MgKeepAlive: $Activity failed ($kind)." }
    # A broken server's body can be the message (up to 1 MiB): the whole text stays in
    # Exception.ResponseBody, the message shows its start.
    $message = Limit-MgkaText $message
    $details = $null
    $category = [System.Management.Automation.ErrorCategory]::InvalidOperation

    switch ($kind) {
        'GraphError' {
            $code = if ($Info['code']) { [string]$Info['code'] } else { 'UnknownError' }
            $httpStatus = [int]$Info['httpStatus']
            $exception = [System.Net.Http.HttpRequestException]::new($message, $null, [Enum]::ToObject([System.Net.HttpStatusCode], $httpStatus))
            $headers = New-MgkaHeaderDictionary $Info['headers']
            Add-Member -InputObject $exception -NotePropertyMembers ([ordered]@{
                    ErrorCode       = $code
                    GraphMessage    = $Info['graphMessage']
                    RequestId       = $Info['requestId']
                    ClientRequestId = $Info['clientRequestId']
                    Date            = $Info['date']
                    ResponseHeaders = $headers
                    ResponseBody    = $Info['body']
                    Attempts        = $Info['attempts']
                    AttemptLog      = @(ConvertTo-MgkaAttemptLog $Info['attemptLog'])
                    CallId          = $Info['callId']
                })
            $errorId = $code
            $details = Format-MgkaErrorDetails -Info $Info -Code $code
        }
        'NotConnected' {
            # Microsoft's words; its record's CategoryInfo.Reason is AuthenticationException too.
            $message = $script:NotConnectedMessage
            $exception = [System.Security.Authentication.AuthenticationException]::new($message)
            $errorId = 'NotConnected'
            $category = [System.Management.Automation.ErrorCategory]::AuthenticationError
        }
        'InvalidArgument' {
            $parameter = if ($Info['parameter']) { [string]$Info['parameter'] } else { $null }
            # No ParamName: it would append "(Parameter '...')" to the message; the ErrorId names it.
            $exception = [System.ArgumentException]::new($message)
            $errorId = switch ($parameter) {
                'CallId' { 'InvalidCallId' }
                'InputObject' { 'InvalidIdentity' }
                'InputObject.CallId' { 'InputObjectCallIdMissing' }
                'Headers' { 'InvalidHeaders' }
                'Environment' { 'InvalidEnvironment' }
                'AccessToken' { 'InvalidAccessToken' }
                $null { 'InvalidArgument' }
                default { "Invalid$_" }
            }
            $category = [System.Management.Automation.ErrorCategory]::InvalidArgument
        }
        'NotFound' {
            $exception = [System.Management.Automation.ItemNotFoundException]::new($message)
            $errorId = 'NotFound'
            $category = [System.Management.Automation.ErrorCategory]::ObjectNotFound
        }
        'Timeout' {
            $exception = [System.TimeoutException]::new($message)
            $errorId = 'Timeout'
            $category = [System.Management.Automation.ErrorCategory]::OperationTimeout
            Add-Member -InputObject $exception -NotePropertyMembers ([ordered]@{
                    Attempts = $Info['attempts']; AttemptLog = @(ConvertTo-MgkaAttemptLog $Info['attemptLog']); CallId = $Info['callId'] })
        }
        'TransportError' {
            $exception = [System.Net.Http.HttpRequestException]::new($message)
            $errorId = 'TransportError'
            $category = [System.Management.Automation.ErrorCategory]::ConnectionError
            Add-Member -InputObject $exception -NotePropertyMembers ([ordered]@{
                    Attempts = $Info['attempts']; AttemptLog = @(ConvertTo-MgkaAttemptLog $Info['attemptLog']); CallId = $Info['callId'] })
        }
        'AuthError' {
            # Token endpoint failures: ErrorId AADSTS<first code>, else the OAuth error, and the
            # exception carries the fields scripts branch on. The library never puts the secret,
            # key, assertion or a token into this JSON.
            $exception = [System.Security.Authentication.AuthenticationException]::new($message)
            $codes = [long[]]@($Info['errorCodes'] | Where-Object { $null -ne $_ })
            $errorId = if ($codes.Count -gt 0) { "AADSTS$($codes[0])" } elseif ($Info['error']) { [string]$Info['error'] } else { 'AuthenticationFailed' }
            Add-Member -InputObject $exception -NotePropertyMembers ([ordered]@{
                    Error            = $Info['error']
                    ErrorDescription = $Info['errorDescription']
                    ErrorCodes       = $codes
                    TraceId          = $Info['traceId']
                    CorrelationId    = $Info['correlationId']
                    HttpStatus       = $Info['httpStatus']
                    TokenEndpoint    = $Info['tokenEndpoint']
                })
            $category = [System.Management.Automation.ErrorCategory]::AuthenticationError
        }
        default {
            # NullPointer, InvalidUtf8, InvalidHandle, Panic: bugs in this module or the library.
            $exception = [System.InvalidOperationException]::new("MgKeepAlive internal error ($kind): $message Please report it.")
            $errorId = "Internal$kind"
            $category = [System.Management.Automation.ErrorCategory]::NotSpecified
        }
    }
    $record = [System.Management.Automation.ErrorRecord]::new($exception, $errorId, $category, $TargetObject)
    if ($details) {
        $record.ErrorDetails = [System.Management.Automation.ErrorDetails]::new($details)
        $record.ErrorDetails.RecommendedAction = $script:GraphErrorRecommendation
    }
    # Only Microsoft's module connected: the record says which Connect-MgGraph line connects both.
    if ($kind -eq 'NotConnected' -and (Get-Module -Name Microsoft.Graph.Authentication)) { Import-MgkaCoexistence; Add-MgkaMicrosoftConnectHint -Record $record }
    $record
}

function script:Wait-MgkaOperation {
    # Waits for a started native operation in short slices so that a pipeline stop (Ctrl+C) is
    # honoured within one slice; an unfinished operation is cancelled in finally. Calls the
    # library directly (a keep-alive's every wait: a function call per slice would cost more than
    # the round trip). Returns @{ Status; Json }; with -SuccessJson $false a success's JSON is
    # freed unread (Json $null), for callers that show nothing for a success.
    param([uint64] $Operation, [bool] $SuccessJson = $true)
    $native = $script:Native
    $out = [IntPtr]::Zero
    $finished = $false
    try {
        do { $status = $native::mgka_operation_wait($Operation, $script:WaitSliceMs, [ref]$out) } while ($status -eq $script:MGKA_PENDING)
        $finished = $true
    } finally {
        if (-not $finished) {
            # Runs on pipeline stop too. A direct method call: commands may refuse to run
            # while the pipeline is stopping, a .NET call always runs.
            [void]$native::mgka_operation_cancel($Operation)
        }
    }
    if ($status -eq $script:MGKA_OK -and -not $SuccessJson) {
        if ($out -ne [IntPtr]::Zero) { $native::mgka_string_free($out) }
        return @{ Status = $status; Json = $null }
    }
    @{ Status = $status; Json = (Read-MgkaNativeString -Pointer $out) }
}

function script:Format-MgkaUrl {
    # A URL as messages show it, without user name and password: the library's one redaction
    # (mgka_url_redact), the same its own messages use, never a second one here.
    param([AllowNull()][AllowEmptyString()][string] $Url)
    if (-not $Url) { return $Url }
    $text = [System.Collections.Specialized.OrderedDictionary]::new()
    $text['Url'] = $Url
    $result = Invoke-MgkaNative UrlRedact -Text $text
    if ($result.Status -eq $script:MGKA_OK) { ConvertFrom-MgkaJson $result.Json } else { '(not shown: not valid text)' }
}

function script:Get-MgkaEnvironmentProxy {
    # HTTPS_PROXY, HTTP_PROXY and NO_PROXY as PowerShell sees them ($env:, which native code on
    # Linux and macOS does not see), the upper-case name first. Only the variables that are set.
    $result = [ordered]@{}
    foreach ($names in ('httpsProxy', 'HTTPS_PROXY', 'https_proxy'), ('httpProxy', 'HTTP_PROXY', 'http_proxy'), ('noProxy', 'NO_PROXY', 'no_proxy')) {
        $value = [Environment]::GetEnvironmentVariable($names[1])
        if (-not $value) { $value = [Environment]::GetEnvironmentVariable($names[2]) }
        if ($value) { $result[$names[0]] = $value }
    }
    $result
}

function script:ConvertTo-MgkaAttemptLog {
    # The library's attemptLog as objects (without the -Debug HTTP traces).
    param($Log)
    foreach ($entry in @($Log)) {
        if ($entry -isnot [System.Collections.IDictionary]) { continue }
        [pscustomobject]@{
            Attempt    = $entry['attempt']
            Status     = $entry['status']
            Error      = $entry['error']
            ElapsedMs  = $entry['elapsedMs']
            WaitMs     = $entry['waitMs']
            RetryAfter = $entry['retryAfter']
        }
    }
}

function script:Format-MgkaHttpHeaders {
    # "name : value" lines like the official -Debug output; credentials are never shown.
    param($Headers)
    $builder = [System.Text.StringBuilder]::new()
    foreach ($pair in @($Headers)) {
        if ($null -eq $pair -or @($pair).Count -lt 2) { continue }
        $name = [string]$pair[0]
        $value = if ($name -in 'authorization', 'proxy-authorization', 'cookie', 'set-cookie') { '[Filtered]' } else { [string]$pair[1] }
        [void]$builder.AppendLine(('{0,-30}: {1}' -f $name, $value))
    }
    $builder.ToString()
}

function script:Write-MgkaAttemptLog {
    # -Verbose: one line per attempt but the last (the caller writes that). -Debug: HTTP REQUEST / HTTP RESPONSE blocks per attempt,
    # like the official cmdlets (Authorization is sent but never shown).
    param([System.Collections.IDictionary] $Info, [string] $DisplayId, [bool] $Debug)
    $log = @($Info['attemptLog'] | Where-Object { $_ -is [System.Collections.IDictionary] })
    foreach ($entry in $log) {
        $attempt = $entry['attempt']
        $outcome = if ($null -ne $entry['status']) {
            $reason = if ($entry['error']) { " $($entry['error'])" } else { '' }
            "$($entry['status'])$reason"
        } elseif ($entry['error']) { "no answer ($($entry['error']))" } else { 'no answer (timed out)' }
        if ($attempt -lt $log.Count) {
            # The last attempt is the caller's summary line.
            $line = "Keep alive call '$DisplayId', attempt $attempt of $($log.Count): $outcome in $($entry['elapsedMs']) ms"
            if ($null -ne $entry['waitMs']) {
                $retryAfter = if ($null -ne $entry['retryAfter']) { " (Retry-After: $($entry['retryAfter']))" } else { '' }
                $line += "; waiting $($entry['waitMs']) ms$retryAfter before attempt $($attempt + 1)"
            }
            Write-Verbose $line
        }

        $http = $entry['http']
        if (-not $Debug -or $http -isnot [System.Collections.IDictionary]) { continue }
        $nl = [Environment]::NewLine
        $request = [System.Text.StringBuilder]::new()
        [void]$request.Append("============================ HTTP REQUEST ============================$nl$nl")
        [void]$request.Append("HTTP Method:$nl$($http['method'])$nl$nl")
        [void]$request.Append("Absolute Uri:$nl$($http['uri'])$nl$nl")
        [void]$request.Append("Headers:$nl")
        [void]$request.Append(('{0,-30}: {1}{2}' -f 'Authorization', '[Filtered]', $nl))
        [void]$request.Append((Format-MgkaHttpHeaders $http['requestHeaders']))
        [void]$request.Append("${nl}Body:$nl$nl")
        Write-Debug $request.ToString()

        $response = [System.Text.StringBuilder]::new()
        [void]$response.Append("============================ HTTP RESPONSE ============================$nl$nl")
        if ($null -eq $http['status']) {
            $why = if ($entry['error']) { $entry['error'] } else { 'timed out' }
            [void]$response.Append("Status Code:$nl(no response: $why)$nl")
        } else {
            $code = [int]$http['status']
            $name = [Enum]::ToObject([System.Net.HttpStatusCode], $code).ToString()
            [void]$response.Append("Status Code:$nl$name ($code)$nl$nl")
            [void]$response.Append("Headers:$nl")
            [void]$response.Append((Format-MgkaHttpHeaders $http['responseHeaders']))
            [void]$response.Append("${nl}Body:$nl$($http['responseBody'])$nl")
        }
        Write-Debug $response.ToString()
    }
}

function script:Open-MgkaKeepAlive {
    # The begin block of Invoke-MgKeepCommunicationCallAlive and
    # Invoke-MgBetaKeepCommunicationCallAlive (they differ only in -ApiVersion): writes the
    # warnings, opens the keep-alive stream (mgka_keep_alive_stream_open) that -CallId or every
    # piped item is pushed into, and returns the state the other blocks need. Runs once per
    # command, i.e. once per keep-alive for a bot's timer.
    param(
        [System.Management.Automation.PSCmdlet] $Cmdlet,
        [string] $ApiVersion,
        [int] $ThrottleLimit
    )
    $bound = $Cmdlet.MyInvocation.BoundParameters
    # The library warns (mgka_keep_alive_stream_open): about the ignored compatibility parameters
    # given, and once per process about a cloud where keepAlive is not documented. Microsoft's
    # modules loaded next to MgKeepAlive are checked by Connect-MgGraph and Get-MgContext, and when
    # a keep-alive finds no connection, not here.
    $given = @(foreach ($name in 'HttpPipelineAppend', 'HttpPipelinePrepend') { if ($bound.ContainsKey($name)) { $name } }) +
        @(if ($bound['ProxyCredential'] -and -not $bound['Proxy']) { 'ProxyCredential' }) + @(if ($bound['ProxyUseDefaultCredentials']) { 'ProxyUseDefaultCredentials' })
    $cloud = [AppDomain]::CurrentDomain.GetData('MgKeepAlive.Cloud')

    # Timeout and retries come from the process-wide request context (Set-MgRequestContext).
    $options = [ordered]@{ apiVersion = $ApiVersion }
    $headers = $bound['Headers']
    if ($headers -and $headers.Count -gt 0) {
        $extra = [ordered]@{}
        foreach ($entry in $headers.GetEnumerator()) {
            $extra[[string]$entry.Key] = (@($entry.Value) | ForEach-Object { [string]$_ }) -join ', '
        }
        $options['headers'] = $extra
    }
    $proxy = $bound['Proxy']
    if ($proxy) {
        if (-not $proxy.IsAbsoluteUri -or $proxy.Scheme -notin 'http', 'https') {
            # The URI may carry a user name and password: shown, and kept as target, without them.
            $shown = Format-MgkaUrl $proxy.OriginalString
            $Cmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                    [System.ArgumentException]::new("-Proxy must be an absolute http or https URI such as http://proxy.contoso.com:3128; it is '$shown'."),
                    'InvalidProxy', [System.Management.Automation.ErrorCategory]::InvalidArgument, $shown))
        }
        $options['proxy'] = [ordered]@{ url = $proxy.OriginalString }
        $credential = $bound['ProxyCredential']
        if ($credential) {
            $options['proxy']['username'] = $credential.UserName
            # Only in the options JSON handed to the library; never written to any stream.
            $options['proxy']['password'] = $credential.GetNetworkCredential().Password
        }
    }
    $environmentProxy = Get-MgkaEnvironmentProxy
    $debug = $DebugPreference -ne 'SilentlyContinue' -and $DebugPreference -ne 'Ignore'
    if ($options.Count -eq 1 -and $environmentProxy.Count -eq 0 -and -not $debug) {
        # The common case, kept cheap: called every 15 minutes per call, or in bulk.
        $optionsJson = '{"apiVersion":"' + $ApiVersion + '","environmentProxy":{}}'
    } else {
        $options['environmentProxy'] = $environmentProxy
        if ($debug) { $options['debug'] = $true }
        $optionsJson = ConvertTo-Json -Compress -Depth 4 -InputObject $options
    }
    $variable = [string]$bound['ResponseHeadersVariable']
    # Success details are parsed only when someone will see them.
    $verbose = $VerbosePreference -ne 'SilentlyContinue' -and $VerbosePreference -ne 'Ignore'
    $details = [bool]$variable -or $debug -or $verbose
    $stream = [uint64]0; $out = [IntPtr]::Zero
    $settings = '{"concurrency":' + $ThrottleLimit + ',"details":' + $(if ($details) { 'true' } else { 'false' }) + ',"notes":' + $(if ($verbose) { 'true' } else { 'false' })
    if ($cloud) { $settings += ',"cloud":"' + $cloud + '"' }
    if ($given.Count) { $settings += ',"given":["' + ($given -join '","') + '"]' }
    $settings += '}'
    try { $optionsBytes = $script:Utf8.GetBytes($optionsJson + [char]0) } catch [System.Text.EncoderFallbackException] { $optionsBytes = $null }
    if ($null -eq $script:Native) { $null = Initialize-MgkaNative }
    $status = if ($null -eq $optionsBytes) { $script:MGKA_INVALID_ARGUMENT } else { $script:Native::mgka_keep_alive_stream_open($optionsBytes, $script:Utf8.GetBytes($settings + [char]0), [ref]$stream, [ref]$out) }
    $json = Read-MgkaNativeString -Pointer $out
    if ($status -eq $script:MGKA_OK -and $null -ne $json) { foreach ($warning in (ConvertFrom-MgkaJson $json)['warnings']) { Write-Warning $warning } }
    $state = @{
        Cmdlet                  = $Cmdlet
        ApiVersion              = $ApiVersion
        ErrorInvocation         = $null # see Write-MgkaKeepAliveError
        PassThru                = [bool]$bound['PassThru']
        ResponseHeadersVariable = $variable
        Debug                   = $debug
        Stream                  = $stream
        # MGKA_ITEM_CALL_ID for -CallId, MGKA_ITEM_TEXT for piped strings.
        Kind                    = [uint32]$(if ($Cmdlet.ParameterSetName -eq 'Keep') { 1 } else { 0 })
        # The items pushed and not withdrawn, in input order, for their answers' records; Read:
        # how many have been answered; Shown: call ids of items that are not their own call id.
        Targets                 = [System.Collections.Generic.List[object]]::new()
        Shown                   = [System.Collections.Generic.Dictionary[int, string]]::new()
        Read                    = 0
        Done                    = 0
        Clock                   = [System.Diagnostics.Stopwatch]::StartNew()
        ProgressShown           = $false
        ProgressAt              = 0L
        OpenError               = $null
    }
    if ($status -ne $script:MGKA_OK) {
        # The options cannot be used (a lone surrogate or a refused name in -Headers, ...): every
        # item would fail the same way, as before the first request.
        if ($null -eq $json) { $json = ConvertTo-Json -Compress @{ kind = 'InvalidArgument'; parameter = 'Headers'; message = 'The value of Headers is not valid Unicode text (it contains a lone surrogate).' } }
        $state.OpenError = @{ Status = $status; Info = (ConvertFrom-MgkaJson $json) }
    }
    $state
}

function script:Get-MgkaIdentityValue {
    # A piped item that is not a string, as the library's identity rule takes it
    # (MGKA_ITEM_PROPERTIES): its CallId and Id values (a dictionary's keys or an object's
    # properties, any case) as text, and the flags of values without a text form (a collection,
    # an object), which are passed as their type's name. Returns @(CallId, Id, flags).
    param($Item)
    $base = if ($Item -is [psobject]) { $Item.PSObject.BaseObject } else { $Item }
    $texts = [string[]]::new(2); $notText = [uint32]0
    foreach ($i in 0, 1) {
        $name = ('CallId', 'Id')[$i]; $value = $null
        if ($base -is [System.Collections.IDictionary]) {
            foreach ($key in $base.Keys) { if ([string]::Equals([string]$key, $name, [StringComparison]::OrdinalIgnoreCase)) { $value = $base[$key]; break } }
        } elseif ($property = $Item.PSObject.Properties[$name]) { $value = $property.Value }
        if ($null -eq $value) { continue }
        if ($value -is [psobject]) { $value = $value.PSObject.BaseObject }
        if ($value -isnot [string] -and ($value -is [System.Collections.IEnumerable] -or $value -is [System.Management.Automation.PSCustomObject])) {
            $texts[$i] = $value.GetType().Name; $notText += $i + 1
        } else { $texts[$i] = if ($value -is [System.IFormattable]) { $value.ToString($null, [cultureinfo]::InvariantCulture) } else { [string]$value } }
    }
    , @($texts[0], [UIntPtr]::new([uint32]([string]$texts[0]).Length), $texts[1], [UIntPtr]::new([uint32]([string]$texts[1]).Length), $notText)
}

function script:Push-MgkaKeepAliveObject {
    # Pushes a piped item that is not a string (Get-MgkaIdentityValue); returns the push's status.
    param([hashtable] $State, $Item, [ref] $Out)
    if ($State.Stream -eq 0) { return [uint32]10 }   # no stream: MGKA_STATUS_INVALID_HANDLE
    $v = Get-MgkaIdentityValue $Item
    $script:Native::mgka_keep_alive_stream_push($State.Stream, 2, $v[0], $v[1], $v[2], $v[3], $v[4], $Out)
}

function script:Step-MgkaKeepAlive {
    # The rest of a push that the commands' process block does not handle inline: an item named
    # by another call id than its text (asked about by that id), a refused item (answered in its
    # place, nothing to ask), and answers that are due (read before pushing more).
    param([hashtable] $State, [uint32] $Status, $Item, [IntPtr] $Out)
    if ($State.OpenError) {
        # No stream (its options were refused): each item asked about gets that error at the end.
        if ($State.Cmdlet.ShouldProcess($Item, 'Keep alive')) { $State.Targets.Add($Item) }
        return
    }
    $callId = Read-MgkaNativeString -Pointer $Out
    if ($Status -eq $script:MGKA_OK -or $Status -eq $script:MGKA_PENDING) {
        $shown = if ($null -ne $callId) { $callId } else { $Item }
        if ($State.Cmdlet.ShouldProcess($shown, 'Keep alive')) {
            if ($null -ne $callId) { $State.Shown[$State.Targets.Count] = $callId }
            $State.Targets.Add($Item)
        } else { $null = $script:Native::mgka_keep_alive_stream_withdraw($State.Stream) }
    } elseif ($Status -eq $script:MGKA_INVALID_ARGUMENT) {
        $State.Targets.Add($Item)
    } else {
        throw "MgKeepAlive internal error: the keep-alive stream refused an item ($(Get-MgkaStatusName $Status)). Please report it."
    }
    Read-MgkaKeepAliveAnswers -State $State
}

function script:Read-MgkaKeepAliveAnswers {
    # Writes the answers that are due, in input order: $true per success (-PassThru), and for an
    # answer with details (a failure; every success with -Verbose, -Debug or
    # -ResponseHeadersVariable) its lines, variable and error record; the library's note (once,
    # -Verbose). Waits in short slices, so Ctrl+C is honoured within one.
    param([hashtable] $State)
    $native = $script:Native; $ok = [uint64]0; $out = [IntPtr]::Zero
    while ($true) {
        $status = $native::mgka_keep_alive_stream_next($State.Stream, $script:WaitSliceMs, [ref]$ok, [ref]$out)
        if ($status -eq $script:MGKA_PENDING) { continue }
        $json = Read-MgkaNativeString -Pointer $out
        if ($status -ne $script:MGKA_OK) { throw "MgKeepAlive internal error: reading the keep-alive stream failed ($(Get-MgkaStatusName $status)): $json Please report it." }
        if ($ok -gt 0) {
            if ($State.PassThru) { for ($i = 0; $i -lt $ok; $i++) { $true } }
            $State.Read += $ok; $State.Done += $ok
        }
        if ($null -ne $json) {
            $answer = ConvertFrom-MgkaJson $json
            if ($answer.Contains('note')) { Write-Verbose $answer['note']; continue }
            $index = $State.Read++; $State.Done++
            $target = $State.Targets[$index]
            $shown = if ($State.Shown.ContainsKey($index)) { $State.Shown[$index] } else { [string]$target }
            if ($answer['ok']) { $status = $script:MGKA_OK; $info = $answer['result'] }
            else {
                $info = $answer['error']
                $status = [uint32][Math]::Max(0, [array]::IndexOf($script:StatusNames, [string]$info['kind']))
            }
            Write-MgkaKeepAliveResult -State $State -Status $status -Info $info -DisplayId $shown -Target $target -ElapsedMs $State.Clock.ElapsedMilliseconds
        } elseif ($ok -eq 0) { break }
        Write-MgkaBulkProgress -State $State
    }
    if ($State.Read -eq $State.Targets.Count) { $State.Targets.Clear(); $State.Shown.Clear(); $State.Read = 0 }
}

function script:Complete-MgkaKeepAlive {
    # The end block: sends what is left and writes every answer, then completes the progress bar.
    param([hashtable] $State)
    if ($State.OpenError) {
        foreach ($target in $State.Targets) { Write-MgkaKeepAliveResult -State $State -Status $State.OpenError.Status -Info $State.OpenError.Info -DisplayId ([string]$target) -Target $target -ElapsedMs 0 }
        return
    }
    $null = $script:Native::mgka_keep_alive_stream_finish($State.Stream)
    Read-MgkaKeepAliveAnswers -State $State
    if ($State.ProgressShown) {
        $State.ProgressShown = $false
        Write-Progress -Id $script:BulkProgressId -Activity 'Keeping calls alive' -Completed
    }
}

function script:Write-MgkaKeepAliveResult {
    # One item's result, as the single and the bulk keep-alive write it: -ResponseHeadersVariable,
    # the verbose and debug lines, then $true (-PassThru) or the error record. $Status is the
    # item's MgkaStatus (0 for success); $Info its success or error JSON, parsed.
    param(
        [hashtable] $State,
        [uint32] $Status,
        [AllowNull()] [System.Collections.IDictionary] $Info,
        [string] $DisplayId,
        $Target,
        [long] $ElapsedMs
    )
    $cmdlet = $State.Cmdlet
    if ($null -eq $Info) { $Info = [ordered]@{} }
    $elapsed = if ($null -ne $Info['elapsedMs']) { $Info['elapsedMs'] } else { $ElapsedMs }

    if ($State.ResponseHeadersVariable) {
        # The caller's session state: the variable lands in the caller's scope.
        $cmdlet.SessionState.PSVariable.Set($State.ResponseHeadersVariable, (New-MgkaHeaderDictionary $Info['headers']))
    }

    if ($Info['attemptLog']) { Write-MgkaAttemptLog -Info $Info -DisplayId $DisplayId -Debug $State.Debug }
    $attemptsText = if ($Info['attempts'] -gt 1) { " (attempt $($Info['attempts']) of $($Info['attempts']))" } else { '' }

    if ($Status -eq $script:MGKA_OK) {
        Write-Verbose "Keep alive call '$DisplayId': $($Info['httpStatus']) in $elapsed ms$attemptsText"
        Write-Debug ("Keep alive response: POST $($Info['uri']) -> $($Info['httpStatus']); request-id: $($Info['requestId'])" +
            "; client-request-id: $($Info['clientRequestId']); date: $($Info['date']); attempts: $($Info['attempts'])")
        if ($State.PassThru) { $true }
        return
    }

    $kind = if ($Info['kind']) { $Info['kind'] } else { Get-MgkaStatusName $Status }
    if ($kind -eq 'Cancelled') {
        throw [System.Management.Automation.PipelineStoppedException]::new()
    }
    $statusText = if ($Info['httpStatus']) { "$($Info['httpStatus']) $($Info['code'])" } else { $kind }
    # An item the identity rule refused was never a keep-alive: no line for it.
    if ($Info['parameter'] -notlike 'InputObject*') { Write-Verbose "Keep alive call '$DisplayId': $statusText in $elapsed ms$attemptsText" }
    $record = New-MgkaErrorRecord -Status $Status -Info $Info -TargetObject $Target -Activity 'Keep alive'
    if ($record.ErrorDetails) { Write-Debug "Keep alive error response:`n$($record.ErrorDetails.Message)" }
    Write-MgkaKeepAliveError -State $State -Record $record
}

function script:Write-MgkaKeepAliveError {
    <#
    Writes a keep-alive command's error record the way Microsoft's cmdlet does: FullyQualifiedErrorId
    "<id>,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep" (_KeepViaIdentity
    for piped identities; the beta command's under Microsoft.Graph.Beta.PowerShell.Cmdlets), activity
    "Invoke-MgKeepCommunicationCallAlive_Keep"; Graph errors in category InvalidOperation with reason
    Exception and Microsoft's target name; not connected as Microsoft's (no id, NotSpecified).
    The exception (with its extra properties), ErrorDetails and TargetObject are kept.
    #>
    param([hashtable] $State, [System.Management.Automation.ErrorRecord] $Record)
    $names = $script:KeepAliveCmdletNames[$State.ApiVersion]
    $variant = if ($State.Cmdlet.ParameterSetName -eq 'Keep') { 'Keep' } else { 'KeepViaIdentity' }
    $errorId = $Record.FullyQualifiedErrorId
    $category = $Record.CategoryInfo.Category
    $exception = $Record.Exception
    $graph = $errorId -ne 'NotConnected' -and $null -ne $exception.PSObject.Properties['GraphMessage']
    if ($errorId -eq 'NotConnected') {
        $errorId = ''
        $category = [System.Management.Automation.ErrorCategory]::NotSpecified
    } elseif ($graph) {
        $category = [System.Management.Automation.ErrorCategory]::InvalidOperation
    }
    $fullId = "$($names.Namespace).$($names.Type)_$variant"
    if ($errorId) { $fullId = "$errorId,$fullId" }
    $shaped = [System.Management.Automation.ErrorRecord]::new($exception, $fullId, $category, $Record.TargetObject)
    $shaped.ErrorDetails = $Record.ErrorDetails
    $info = $shaped.CategoryInfo
    if ($graph) {
        # Microsoft's target is the generated cmdlet's parameters (an anonymous type).
        $headers = $State.Cmdlet.MyInvocation.BoundParameters['Headers']
        $info.Reason = 'Exception'
        if ($variant -eq 'Keep') {
            $info.TargetName = "{ CallId = $($exception.CallId), Headers = $headers }"
            $info.TargetType = '<>f__AnonymousType78`2'
        } else {
            $info.TargetName = "{ Headers = $headers }"
            $info.TargetType = '<>f__AnonymousType3`1'
        }
    }
    if ($null -eq $State.ErrorInvocation) { $State.ErrorInvocation = New-MgkaCallerInvocation -Invocation $State.Cmdlet.MyInvocation }
    Write-MgkaExactError -Record $shaped -Activity "$($names.Activity)_$variant" -Invocation $State.ErrorInvocation
}

function script:Write-MgkaExactError {
    # Writes $Record (non-terminating) with its FullyQualifiedErrorId exactly as built: a function's
    # WriteError would append the function's name. Write-Error keeps the invocation it finds in
    # $MyInvocation, and one without a command (New-MgkaCallerInvocation) leaves the id as it is
    # and points at the caller's command line, as Microsoft's records do. -ErrorAction, -ErrorVariable
    # and $ErrorActionPreference of the calling command apply as for WriteError.
    param([System.Management.Automation.ErrorRecord] $Record, [string] $Activity, [System.Management.Automation.InvocationInfo] $Invocation)
    & {
        $MyInvocation = $Invocation
        Write-Error -ErrorRecord $Record -CategoryActivity $Activity
    }
}

function script:New-MgkaCallerInvocation {
    # An InvocationInfo without a command that points where $Invocation was called.
    param([System.Management.Automation.InvocationInfo] $Invocation)
    $line = if ($null -ne $Invocation.Line) { $Invocation.Line } else { '' }
    $column = [Math]::Max(1, $Invocation.OffsetInLine)
    $statement = [string]$Invocation.Statement
    $end = [Math]::Min($line.Length + 1, $column + $statement.Length)
    if ($end -lt $column) { $end = $column }
    $start = [System.Management.Automation.Language.ScriptPosition]::new($Invocation.ScriptName, $Invocation.ScriptLineNumber, $column, $line)
    $stop = [System.Management.Automation.Language.ScriptPosition]::new($Invocation.ScriptName, $Invocation.ScriptLineNumber, $end, $line)
    [System.Management.Automation.InvocationInfo]::Create($null, [System.Management.Automation.Language.ScriptExtent]::new($start, $stop))
}

function script:Write-MgkaBulkProgress {
    # "Keeping calls alive": once $script:BulkProgressAfter items are done, at most every 250 ms.
    param([hashtable] $State)
    if ($State.Done -lt $script:BulkProgressAfter -or $null -eq $State.Clock) { return }
    $now = $State.Clock.ElapsedMilliseconds
    if ($State.ProgressShown -and $now - $State.ProgressAt -lt 250) { return }
    $State.ProgressAt = $now
    $State.ProgressShown = $true
    $rate = if ($now -gt 0) { [Math]::Round($State.Done * 1000.0 / $now) } else { 0 }
    Write-Progress -Id $script:BulkProgressId -Activity 'Keeping calls alive' -Status ('{0:N0} done, {1:N0}/s' -f $State.Done, $rate)
}

function script:Get-MgkaCloud {
    # Which Microsoft cloud an environment is: Global, USGov, USGovDoD, China, or Other (a
    # user-defined endpoint that is none of them, such as an emulator).
    param([System.Collections.IDictionary] $Environment)
    if ($Environment['type'] -eq 'Built-in') { return [string]$Environment['name'] }
    $graphHost = ([uri][string]$Environment['graphEndpoint']).Host
    switch ($graphHost) {
        'graph.microsoft.com' { return 'Global' }
        'graph.microsoft.us' { return 'USGov' }
        'dod-graph.microsoft.us' { return 'USGovDoD' }
        'microsoftgraph.chinacloudapi.cn' { return 'China' }
        default { return 'Other' }
    }
}

function script:Test-MgkaCloudAvailability {
    # The keeper's cloud warning: the library's (the keep-alive commands' warning, once per
    # process per cloud and API version for both), from a keep-alive stream opened for it alone.
    param([string] $ApiVersion)
    $cloud = [AppDomain]::CurrentDomain.GetData('MgKeepAlive.Cloud')
    if (-not $cloud) { return }
    if ($null -eq $script:Native) { $null = Initialize-MgkaNative }
    $stream = [uint64]0; $out = [IntPtr]::Zero
    $status = $script:Native::mgka_keep_alive_stream_open((ConvertTo-MgkaUtf8 ('{"apiVersion":"' + $ApiVersion + '"}')), (ConvertTo-MgkaUtf8 ('{"cloud":"' + $cloud + '"}')), [ref]$stream, [ref]$out)
    $json = Read-MgkaNativeString -Pointer $out
    if ($status -ne $script:MGKA_OK) { return }
    $null = $script:Native::mgka_keep_alive_stream_close($stream)
    if ($null -ne $json) { foreach ($warning in (ConvertFrom-MgkaJson $json)['warnings']) { Write-Warning $warning } }
}

function script:Send-MgkaEnvironmentToMicrosoft {
    # Add-, Set- and Remove-MgEnvironment apply to Microsoft.Graph.Authentication too when it is
    # loaded (when it loads later, Connect-MgGraph gives it the user-defined environments then).
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string] $Command, $Environment, [switch] $Remove)
    if ($null -eq $Environment -or -not (Get-Module -Name Microsoft.Graph.Authentication)) { return }
    Import-MgkaCoexistence
    Invoke-MgkaMicrosoftForward -Cmdlet $Cmdlet -Command $Command -Action {
        if ($Remove) { Remove-MgkaMicrosoftEnvironment -Name $Environment.Name }
        else { Set-MgkaMicrosoftEnvironment -Name $Environment.Name -AzureADEndpoint $Environment.AzureADEndpoint -GraphEndpoint $Environment.GraphEndpoint }
    }
}

function script:Send-MgkaRequestContextToMicrosoft {
    # Set-MgRequestContext applies to Microsoft.Graph.Authentication too: now when it is loaded,
    # else when Connect-MgGraph signs it in ($script:MicrosoftRequestContext keeps what was set).
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.IDictionary] $Settings)
    if ($Settings.Count -eq 0) { return }
    foreach ($entry in $Settings.GetEnumerator()) { $script:MicrosoftRequestContext[$entry.Key] = $entry.Value }
    if (-not (Get-Module -Name Microsoft.Graph.Authentication)) { return }
    Import-MgkaCoexistence
    Invoke-MgkaMicrosoftForward -Cmdlet $Cmdlet -Command 'Set-MgRequestContext' -Action { $null = Microsoft.Graph.Authentication\Set-MgRequestContext @Settings -ErrorAction Stop }
}

function script:ConvertFrom-MgkaSecureString {
    # SecureString -> UTF-8 bytes without a managed string copy: the unmanaged UTF-16 buffer and
    # the char[] are zeroed here; the caller zeroes the returned bytes.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [securestring] $SecureString, [string] $Parameter)
    $unicode = [IntPtr]::Zero
    $chars = $null
    try {
        $unicode = [System.Runtime.InteropServices.Marshal]::SecureStringToGlobalAllocUnicode($SecureString)
        $chars = [char[]]::new($SecureString.Length)
        [System.Runtime.InteropServices.Marshal]::Copy($unicode, $chars, 0, $chars.Length)
        $bytes = [byte[]]::new($script:Utf8.GetByteCount($chars))
        [void]$script:Utf8.GetBytes($chars, 0, $chars.Length, $bytes, 0)
        , $bytes
    } catch [System.Text.EncoderFallbackException] {
        $Cmdlet.ThrowTerminatingError((New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -Info ([ordered]@{
                        kind = 'InvalidArgument'; parameter = $Parameter; message = "$Parameter is not valid Unicode text." })))
    } finally {
        if ($null -ne $chars) { [Array]::Clear($chars) }
        if ($unicode -ne [IntPtr]::Zero) { [System.Runtime.InteropServices.Marshal]::ZeroFreeGlobalAllocUnicode($unicode) }
    }
}

function script:Set-MgkaConnectedCloud {
    # Remembers (per process, like the connection) which cloud keep-alive goes to, for the
    # availability warnings; $null when disconnected.
    param([AllowNull()][string] $EnvironmentName)
    $cloud = $null
    if ($EnvironmentName) {
        $list = Invoke-MgkaNative EnvironmentList
        if ($list.Status -eq $script:MGKA_OK) {
            foreach ($entry in (ConvertFrom-MgkaJson $list.Json)) {
                if ([string]::Equals($entry['name'], $EnvironmentName, [StringComparison]::OrdinalIgnoreCase)) { $cloud = Get-MgkaCloud $entry; break }
            }
        }
    }
    [AppDomain]::CurrentDomain.SetData('MgKeepAlive.Cloud', $cloud)
}

function script:New-MgkaContextFacts {
    <#
    What Get-MgContext shows that the library does not know, as Microsoft's AuthContext shows it:
    the parameter set's AuthType/TokenCredentialType (-EnvironmentVariable), the certificate subject
    name asked for, and for -AccessToken the token's claims (tid, appid, roles, app_displayname;
    claims are not secret, the token itself is not kept). Applied by Set-MgkaContextFacts once the
    connection is made.
    #>
    param([string] $ParameterSet, [System.Collections.IDictionary] $Bound, [byte[]] $Token)
    $facts = @{}
    if ($ParameterSet -eq 'EnvironmentVariableParameterSet') {
        $facts['AuthType'] = 'EnvironmentVariable'; $facts['TokenCredentialType'] = 'EnvironmentVariable'
    }
    if ($Bound.ContainsKey('CertificateSubjectName')) { $facts['CertificateSubjectName'] = [string]$Bound['CertificateSubjectName'] }
    if ($ParameterSet -eq 'IdentityParameterSet') {
        # Microsoft's context keeps its own default client id for a managed identity, and names a
        # system-assigned identity MSI@50342 (Azure.Identity's account name for it).
        $facts['ClientId'] = '14d82eec-204b-4c2f-b7e8-296a70dab67e'
        $facts['ManagedIdentityId'] = if ($Bound['ClientId']) { [string]$Bound['ClientId'] } else { 'MSI@50342' }
    }
    if ($ParameterSet -eq 'AccessTokenParameterSet' -and $null -ne $Token) {
        $facts['AppName'] = $null
        $claims = $null
        try {
            # Only the claims segment becomes a string; the token's signature never does.
            $first = [Array]::IndexOf($Token, [byte]46)
            $second = if ($first -ge 0) { [Array]::IndexOf($Token, [byte]46, $first + 1) } else { -1 }
            if ($second -gt $first + 1) {
                $payload = $script:Utf8.GetString($Token, $first + 1, $second - $first - 1).Replace('-', '+').Replace('_', '/')
                $payload += '=' * ((4 - $payload.Length % 4) % 4)
                $claims = ConvertFrom-MgkaJson ($script:Utf8.GetString([Convert]::FromBase64String($payload)))
            }
        } catch { $claims = $null }   # not a JWT: nothing to show
        if ($claims -is [System.Collections.IDictionary]) {
            $appId = if ($claims['appid']) { $claims['appid'] } else { $claims['azp'] }
            if ($appId) { $facts['ClientId'] = [string]$appId }
            if ($claims['tid']) { $facts['TenantId'] = [string]$claims['tid'] }
            $scopes = if ($claims['roles']) { @($claims['roles']) } elseif ($claims['scp']) { ([string]$claims['scp']).Split(' ', [StringSplitOptions]::RemoveEmptyEntries) }
            $facts['Scopes'] = [string[]]@($scopes | Where-Object { $null -ne $_ })
            $facts['AppName'] = [string]$claims['app_displayname']
        }
    }
    $facts
}

function script:Set-MgkaContextFacts {
    # Process-wide, like the connection itself ($null after Disconnect-MgGraph).
    param([AllowNull()] [hashtable] $Facts)
    [AppDomain]::CurrentDomain.SetData('MgKeepAlive.ContextFacts', $Facts)
}

function script:ConvertTo-MgkaContext {
    # The library's context JSON as Microsoft's AuthContext: the same properties in the same order
    # (Get-MgContext | Format-List shows what Microsoft's shows). ClientSecret and Certificate stay
    # empty: MgKeepAlive hands no secret or key back.
    param([AllowNull()][System.Collections.IDictionary] $Info)
    if ($null -eq $Info) { return }
    if ($null -eq $script:ContextTypes) { . "$PSScriptRoot/MgKeepAlive.Types.ps1" }
    $types = $script:ContextTypes
    $facts = [AppDomain]::CurrentDomain.GetData('MgKeepAlive.ContextFacts')
    if ($facts -isnot [hashtable]) { $facts = @{} }
    $fact = { param($Name, $Value) if ($facts.ContainsKey($Name)) { $facts[$Name] } else { $Value } }
    [pscustomobject]@{
        PSTypeName             = 'MgKeepAlive.Context'
        ClientId               = & $fact ClientId $Info['clientId']
        TenantId               = & $fact TenantId $Info['tenantId']
        Scopes                 = [string[]]@(& $fact Scopes @($Info['scopes'] | Where-Object { $null -ne $_ }))
        AuthType               = (& $fact AuthType $Info['authType']) -as $types.AuthType
        TokenCredentialType    = (& $fact TokenCredentialType $Info['tokenCredentialType']) -as $types.TokenCredentialType
        CertificateThumbprint  = $Info['certificateThumbprint']
        CertificateSubjectName = & $fact CertificateSubjectName $null
        SendCertificateChain   = [bool]$Info['sendCertificateChain']
        Account                = $null
        LoginHint              = $null
        HomeAccountId          = $null
        AppName                = & $fact AppName $Info['appName']
        ContextScope           = $Info['contextScope'] -as $types.ContextScope
        Certificate            = $null
        PSHostVersion          = $Host.Version
        ManagedIdentityId      = & $fact ManagedIdentityId $Info['managedIdentityId']
        ClientSecret           = $null
        Environment            = $Info['environment']
        # Microsoft's default (Set-MgGraphOption -DisableLoginByWAM); MgKeepAlive signs in as an app only.
        WamEnabled             = $true
    }
}

function script:Format-MgkaWelcome {
    # Microsoft's welcome text, written to the output stream as one string as Microsoft's is.
    param($Context)
    $newLine = [Environment]::NewLine
    "Welcome to Microsoft Graph!$newLine$newLine" +
    "Connected via $(([string]$Context.AuthType).ToLowerInvariant()) access using $($Context.ClientId)$newLine" +
    "Readme: https://aka.ms/graph/sdk/powershell$newLine" +
    "SDK Docs: https://aka.ms/graph/sdk/powershell/docs$newLine" +
    "API Docs: https://aka.ms/graph/docs$newLine$newLine" +
    "NOTE: You can use the -NoWelcome parameter to suppress this message.$newLine" +
    "NOTE: Sign in by Web Account Manager (WAM) is enabled by default on Windows systems and cannot be disabled when using the default ClientId.$newLine" +
    "To disable WAM run Set-MgGraphOption -DisableLoginByWAM `$true and then use a custom ClientId.$newLine"
}

function script:ConvertTo-MgkaRequestContext {
    # The library's request context JSON as the official IRequestContext shape.
    param([System.Collections.IDictionary] $Info)
    [pscustomobject]@{
        PSTypeName       = 'MgKeepAlive.RequestContext'
        RetryDelay       = [int][Math]::Round([double]$Info['RetryDelay'])
        MaxRetry         = [int]$Info['MaxRetry']
        RetriesTimeLimit = [timespan]::FromSeconds([double]$Info['RetriesTimeLimit'])
        ClientTimeout    = [timespan]::FromSeconds([double]$Info['ClientTimeout'])
    }
}

function script:Set-MgkaRequestContext {
    # Changes the process-wide request context (mgka_request_context_set) and returns it; an empty
    # -Settings only reads it. Errors are written (or thrown with -Terminating) on -Cmdlet.
    param(
        [System.Management.Automation.PSCmdlet] $Cmdlet,
        [System.Collections.IDictionary] $Settings,
        [switch] $Terminating
    )
    if ($Settings -and $Settings.Count -gt 0) {
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['RequestContext'] = ConvertTo-Json -Compress -InputObject $Settings
        $result = Invoke-MgkaNative RequestContextSet -Text $text
    } else {
        $result = Invoke-MgkaNative RequestContextGet
    }
    if ($result.Status -ne $script:MGKA_OK) {
        $record = New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -Activity 'Set-MgRequestContext'
        if ($Terminating) { $Cmdlet.ThrowTerminatingError($record) }
        $Cmdlet.WriteError($record)
        return
    }
    ConvertTo-MgkaRequestContext (ConvertFrom-MgkaJson $result.Json)
}

function script:ConvertTo-MgkaEnvironment {
    param([System.Collections.IDictionary] $Info)
    [pscustomobject]@{
        PSTypeName      = 'MgKeepAlive.Environment'
        Name            = $Info['name']
        AzureADEndpoint = $Info['azureADEndpoint']
        GraphEndpoint   = $Info['graphEndpoint']
        Type            = $Info['type']
    }
}

#endregion

#region Keeper helpers ------------------------------------------------------------------------------------
# The background keeper (Start/Get/Stop/Wait-MgCommunicationCallKeepAlive) runs in the native
# library and is process-wide: every runspace sees the same kept calls. Its four exports are bound
# on first use (Initialize-MgkaKeeper), so the import does no more work than before.

$script:KeeperNative = $null
# Ids per mgka_keeper_start / mgka_keeper_stop request.
$script:KeeperBatchSize = 1000
# Longest native wait of Wait-MgCommunicationCallKeepAlive (how soon Ctrl+C is honoured).
$script:KeeperWaitSliceMs = 200

function script:Initialize-MgkaKeeper {
    # Binds mgka_keeper_*: a second emitted P/Invoke class like $script:Native, cached per library
    # path in the AppDomain, so re-imports and other runspaces reuse it.
    if ($null -ne $script:KeeperNative) { return }
    if ($null -eq $script:Native) { $null = Initialize-MgkaNative }   # finds and checks the library
    $key = "MgKeepAlive.Keeper.1|$script:LibraryPath"
    $type = [AppDomain]::CurrentDomain.GetData($key)
    if ($type -isnot [type]) {
        $assemblyName = [System.Reflection.AssemblyName]::new('MgKeepAlive.Keeper.' + [guid]::NewGuid().ToString('N'))
        $typeBuilder = [System.Reflection.Emit.AssemblyBuilder]::DefineDynamicAssembly($assemblyName, 'Run').
            DefineDynamicModule($assemblyName.Name).DefineType('MgKeepAlive.Keeper', 'Public, Sealed, Abstract, Class')
        $ptrOut = [IntPtr].MakeByRefType(); $bytes = [byte[]]
        # name, parameter types (see include/mgkeepalive.h); all return MgkaStatus
        foreach ($signature in @(
                , @('mgka_keeper_start', [type[]]@($bytes, $ptrOut))
                , @('mgka_keeper_stop', [type[]]@($bytes, $ptrOut))
                , @('mgka_keeper_list', [type[]]@($bytes, $ptrOut))
                , @('mgka_keeper_events', [type[]]@([uint64], [uint32], $ptrOut))
            )) {
            $typeBuilder.DefinePInvokeMethod($signature[0], $script:LibraryPath, 'Public, Static, PinvokeImpl, HideBySig', 'Standard',
                [uint32], $signature[1], 'Cdecl', 'Ansi').SetImplementationFlags('PreserveSig')
        }
        $type = $typeBuilder.CreateType()
        [AppDomain]::CurrentDomain.SetData($key, $type)
    }
    $script:KeeperNative = $type
}

function script:Invoke-MgkaKeeper {
    # One mgka_keeper_start/stop/list request; returns the answer's JSON. A failure of the whole
    # request is a terminating error of $Cmdlet.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string] $Function, [string] $RequestJson)
    $text = [System.Collections.Specialized.OrderedDictionary]::new()
    $text['Keeper'] = $RequestJson
    $result = Invoke-MgkaNative $Function -Text $text
    if ($result.Status -ne $script:MGKA_OK) {
        $Cmdlet.ThrowTerminatingError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -Activity $Function))
    }
    $result.Json
}

function script:ConvertTo-MgkaJsonArray {
    # string list -> JSON array text (ids were checked for lone surrogates, which the serializer
    # would replace silently).
    param([System.Collections.Generic.IEnumerable[string]] $Items)
    [System.Text.Json.JsonSerializer]::Serialize([string[]]@($Items), [string[]])
}

function script:ConvertFrom-MgkaKeeperStates {
    # The keeper's answer (a JSON array) -> one MgKeepAlive.CallKeepAliveState per call state, in
    # order; an entry {"callId","error"} becomes @{ CallId; Error } (a hashtable). One loop, no
    # call per item: Start- may see 100,000 of them.
    param([string] $Json)
    $document = [System.Text.Json.JsonDocument]::Parse($Json)
    try {
        $p = [System.Text.Json.JsonElement]::new()
        # Unix ms beyond 9999-12-31 (an interval of centuries) show as [datetime]::MaxValue.
        $maxMs = 253402300799999
        foreach ($e in $document.RootElement.EnumerateArray()) {
            if ($e.TryGetProperty('error', [ref]$p)) {
                # The library 0.1.0 spells this entry's id "call_id" (the header says "callId").
                $id = [System.Text.Json.JsonElement]::new()
                $callId = if ($e.TryGetProperty('callId', [ref]$id) -or $e.TryGetProperty('call_id', [ref]$id)) { $id.GetString() }
                @{ CallId = $callId; Error = (ConvertFrom-MgkaJsonElement -Element $p) }
                continue
            }
            $lastSuccess = $null; $nextDue = $null; $lastError = $null
            if ($e.TryGetProperty('lastSuccessUnixMs', [ref]$p) -and $p.ValueKind -eq 'Number') {
                $lastSuccess = [DateTimeOffset]::FromUnixTimeMilliseconds($p.GetInt64()).LocalDateTime
            }
            if ($e.TryGetProperty('nextDueUnixMs', [ref]$p) -and $p.ValueKind -eq 'Number') {
                $ms = $p.GetInt64()
                $nextDue = if ($ms -gt $maxMs) { [datetime]::MaxValue } else { [DateTimeOffset]::FromUnixTimeMilliseconds($ms).LocalDateTime }
            }
            if ($e.TryGetProperty('lastError', [ref]$p) -and $p.ValueKind -eq 'String') { $lastError = $p.GetString() }
            $ms = $e.GetProperty('intervalMs').GetInt64()
            $interval = if ($ms -ge [TimeSpan]::MaxValue.TotalMilliseconds) { [TimeSpan]::MaxValue } else { [TimeSpan]::FromMilliseconds($ms) }
            [pscustomobject]@{
                PSTypeName          = 'MgKeepAlive.CallKeepAliveState'
                CallId              = $e.GetProperty('callId').GetString()
                State               = $e.GetProperty('state').GetString()
                LastSuccess         = $lastSuccess
                NextDue             = $nextDue
                Deadline            = [DateTimeOffset]::FromUnixTimeMilliseconds($e.GetProperty('deadlineUnixMs').GetInt64()).LocalDateTime
                Interval            = $interval
                Attempts            = $e.GetProperty('attempts').GetInt32()
                ConsecutiveFailures = $e.GetProperty('consecutiveFailures').GetInt32()
                LastError           = $lastError
            }
        }
    } finally { $document.Dispose() }
}

function script:Get-MgkaKeeperStates {
    # mgka_keeper_list -> state objects (sorted by call id). $CallId: only those; $State: only
    # those states.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string[]] $CallId, [string[]] $State)
    $request = [System.Text.StringBuilder]::new('{')
    if ($null -ne $CallId) { [void]$request.Append('"callIds":').Append((ConvertTo-MgkaJsonArray $CallId)) }
    if ($State) {
        if ($request.Length -gt 1) { [void]$request.Append(',') }
        [void]$request.Append('"states":').Append((ConvertTo-MgkaJsonArray $State))
    }
    ConvertFrom-MgkaKeeperStates (Invoke-MgkaKeeper -Cmdlet $Cmdlet -Function KeeperList -RequestJson $request.Append('}').ToString())
}

function script:Test-MgkaKeeperCallId {
    # $null when the id can be sent to the library as JSON text, else the error record (a lone
    # surrogate cannot be encoded; the library checks everything else and answers per id).
    param([string] $CallId)
    for ($i = 0; $i -lt $CallId.Length; $i++) {
        if ([char]::IsHighSurrogate($CallId[$i]) -and $i + 1 -lt $CallId.Length -and [char]::IsLowSurrogate($CallId[$i + 1])) { $i++; continue }
        if ([char]::IsSurrogate($CallId[$i])) {
            return New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -TargetObject $CallId -Info ([ordered]@{
                    kind = 'InvalidArgument'; parameter = 'CallId'; message = 'The call id is not valid Unicode text (it contains a lone surrogate).' })
        }
    }
}

function script:Resolve-MgkaKeeperItem {
    # A pipeline item of Start-/Stop-MgCommunicationCallKeepAlive -> its call id, or $null after
    # writing the item's error: the library's identity rule (mgka_identity_resolve), as for the
    # keep-alive commands. (The callers resolve the common cases inline first.)
    param([System.Management.Automation.PSCmdlet] $Cmdlet, $Item)
    if ($null -eq $script:Native) { $null = Initialize-MgkaNative }
    $out = [IntPtr]::Zero
    $base = if ($Item -is [psobject]) { $Item.PSObject.BaseObject } else { $Item }
    $v = if ($base -is [string]) { 0, $base, [UIntPtr]::new([uint32]$base.Length), $null, [UIntPtr]::Zero, [uint32]0 } else { @(2) + (Get-MgkaIdentityValue $Item) }
    $status = $script:Native::mgka_identity_resolve($v[0], $v[1], $v[2], $v[3], $v[4], $v[5], [ref]$out)
    $info = ConvertFrom-MgkaJson (Read-MgkaNativeString -Pointer $out)
    if ($status -eq $script:MGKA_OK) { return [string]$info['callId'] }
    $Cmdlet.WriteError((New-MgkaErrorRecord -Status $status -Info $info -TargetObject $Item))
}

function script:Send-MgkaKeeperStart {
    # Registers a batch of ids; writes their states in order, and an InvalidCallId error for each
    # id the library refuses. Clears the batch.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.Generic.List[string]] $Batch, [long] $IntervalMs)
    if ($Batch.Count -eq 0) { return }
    $json = Invoke-MgkaKeeper -Cmdlet $Cmdlet -Function KeeperStart -RequestJson ('{"callIds":' + (ConvertTo-MgkaJsonArray $Batch) + ',"intervalMs":' + $IntervalMs + '}')
    $Batch.Clear()
    foreach ($entry in ConvertFrom-MgkaKeeperStates $json) {
        if ($entry -is [hashtable]) {
            $Cmdlet.WriteError((New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -Info $entry.Error -TargetObject $entry.CallId -Activity 'Start keeping alive'))
        } else { $entry }
    }
}

function script:Send-MgkaKeeperStop {
    # Stops a batch of ids; with $PassThru writes their Stopped states. Ids that were not kept:
    # a CallNotKept error each. Clears the batch.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.Generic.List[string]] $Batch, [bool] $PassThru)
    if ($Batch.Count -eq 0) { return }
    $json = Invoke-MgkaKeeper -Cmdlet $Cmdlet -Function KeeperStop -RequestJson ('{"callIds":' + (ConvertTo-MgkaJsonArray $Batch) + '}')
    $stopped = [System.Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
    foreach ($state in ConvertFrom-MgkaKeeperStates $json) {
        [void]$stopped.Add($state.CallId)
        if ($PassThru) { $state }
    }
    foreach ($id in $Batch) {
        if ($stopped.Add($id)) { $Cmdlet.WriteError((New-MgkaCallNotKeptError -CallId $id)) }
    }
    $Batch.Clear()
}

function script:New-MgkaCallNotKeptError {
    param([string] $CallId)
    [System.Management.Automation.ErrorRecord]::new(
        [System.Management.Automation.ItemNotFoundException]::new("Call '$CallId' is not kept alive by MgKeepAlive (see Start-MgCommunicationCallKeepAlive)."),
        'CallNotKept', [System.Management.Automation.ErrorCategory]::ObjectNotFound, $CallId)
}

# Removing the module (Remove-Module, Import-Module -Force) stops the keeper: every kept call of
# the process, whichever runspace started it. Nothing to do when no runspace has used the keeper.
# Run by the module's OnRemove (MgKeepAlive.psm1).
if ($ExecutionContext.SessionState.Module) {
    $script:StopKeeperOnRemove = {
        if ($null -eq $script:KeeperNative) {
            # Another runspace may have started the keeper in this process: look it up by path.
            $path = if ($script:LibraryPath) { $script:LibraryPath } else { try { Find-MgkaLibrary } catch { $null } }
            if ($path) { $script:KeeperNative = [AppDomain]::CurrentDomain.GetData("MgKeepAlive.Keeper.1|$path") }
        }
        if ($script:KeeperNative -is [type]) {
            $text = [System.Collections.Specialized.OrderedDictionary]::new()
            $text['Keeper'] = '{"all":true}'
            $null = Invoke-MgkaNative KeeperStop -Text $text
        }
    }
}

#endregion

#region Microsoft's Graph modules -------------------------------------------------------------------
# A command-lookup hook notices Microsoft's commands (MgKeepAlive.Coexistence.ps1 is loaded only
# when one shows up) without probing for them. Installed here, by MgKeepAlive's first command (in
# any real script Connect-MgGraph, which is MgKeepAlive's), not at import. It runs for every command
# lookup of this runspace, so it only compares the name unless the command is one of Microsoft's
# (BENCHMARKS.md). It sees Microsoft's command after auto-loading, before it runs: then a pending
# Connect-MgGraph is handed to Microsoft.Graph.Authentication, and Microsoft's keep-alive functions
# (CloudCommunications imported after MgKeepAlive replaces ours in the session) resolve to
# MgKeepAlive's, unless called module-qualified. PostCommandLookupAction is a single slot: the
# previous handler is called first and put back by the module's OnRemove (MgKeepAlive.psm1).
if ($ExecutionContext.SessionState.Module -and -not $script:LookupHookInstalled) {
    $script:PreviousLookupAction = $ExecutionContext.InvokeCommand.PostCommandLookupAction
    $ExecutionContext.InvokeCommand.PostCommandLookupAction = {
        param($Name, $Lookup)   # untyped: cheaper to bind, on every lookup
        if ($script:PreviousLookupAction) { $script:PreviousLookupAction.Invoke($Name, $Lookup) }
        if ($Name -like '*-Mg*' -and $null -ne ($command = $Lookup.Command) -and $command.ModuleName -like 'Microsoft.Graph.*') {
            if ($command.Name -like 'Invoke-Mg*KeepCommunicationCallAlive') { Import-MgkaCoexistence; Select-MgkaKeepAliveCommand -Name $Name -Lookup $Lookup }
            if ($script:MicrosoftReplay) { Import-MgkaCoexistence; Invoke-MgkaMicrosoftReplay }
        }
    }
    $script:LookupHookInstalled = $true
}

#endregion

#region Argument completion -----------------------------------------------------------------------

function script:Complete-MgkaArgument {
    # Tab completion of -CallId (the calls the keeper holds) and -Environment / -Name (the known
    # environments). Called by the commands' [ArgumentCompleter()] script blocks, which run outside
    # the module: they cost nothing at import and load the helpers on the first Tab. Values that
    # start with the typed text (case-insensitive; quotes are ignored), quoted when needed.
    param([ValidateSet('CallId', 'Environment')][string] $Kind, [string] $WordToComplete)
    $values = if ($Kind -eq 'CallId') {
        (Get-MgCommunicationCallKeepAlive -ErrorAction Ignore).CallId
    } else {
        (Get-MgEnvironment -ErrorAction Ignore).Name
    }
    $typed = $WordToComplete.Trim([char]39, [char]34)   # PowerShell passes a quoted word with its quotes
    foreach ($value in $values | Sort-Object -Unique) {
        if (-not $value.StartsWith($typed, [StringComparison]::OrdinalIgnoreCase)) { continue }
        $text = if ($value -match '^[\w.:@-]+$') { $value } else { "'" + ($value -replace "'", "''") + "'" }
        [System.Management.Automation.CompletionResult]::new($text, $value, 'ParameterValue', $value)
    }
}

#endregion

$script:PrivateLoaded = $true
