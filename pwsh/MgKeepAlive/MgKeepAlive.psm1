#Requires -Version 7.4
# MgKeepAlive: a thin PowerShell layer over the libmgkeepalive C ABI (include/mgkeepalive.h).
# This file only binds parameters, asks ShouldProcess, builds error records and formats output;
# the work happens in the native library. Every native call goes through Invoke-MgkaNative.
Set-StrictMode -Version 3.0

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

# Strict UTF-8: a lone surrogate is an error, never silently replaced.
$script:Utf8 = [System.Text.UTF8Encoding]::new($false, $true)

# Wait slice: how long one native wait may block, i.e. how soon Ctrl+C is honoured.
$script:WaitSliceMs = [uint32]100

# Bulk keep-alive of piped input: the default -ThrottleLimit (requests in flight; on loopback 32
# reaches the plateau of 64 while 16 gives 75-90 % of it, and Graph's throttling argues against
# more; the parameters' default in the two commands is the same number), the chunk size (items
# per mgka_keep_alive_bulk_start: the larger of BulkMinChunkSize and BulkChunkFactor x
# -ThrottleLimit; 512 measured best, 128 much worse), and when Write-Progress starts (items done).
$script:BulkDefaultThrottleLimit = 32
$script:BulkMinChunkSize = 512
$script:BulkChunkFactor = 4
$script:BulkProgressAfter = 500
$script:BulkProgressId = 0x4D474B41
$script:JsonObject = [System.Text.Json.JsonValueKind]::Object
$script:JsonTrue = [System.Text.Json.JsonValueKind]::True

function ConvertTo-MgkaUtf8 {
    # NUL-terminated UTF-8 for a C string; $null stays $null (a NULL pointer).
    param([AllowNull()][string] $Text)
    if ($null -eq $Text) { return $null }
    $count = $script:Utf8.GetByteCount($Text)
    $buffer = [byte[]]::new($count + 1)
    [void]$script:Utf8.GetBytes($Text, 0, $Text.Length, $buffer, 0)
    , $buffer
}

function Read-MgkaNativeString {
    # Copies a library-owned string and frees it with mgka_string_free.
    param([IntPtr] $Pointer)
    if ($Pointer -eq [IntPtr]::Zero) { return $null }
    try { [System.Runtime.InteropServices.Marshal]::PtrToStringUTF8($Pointer) }
    finally { $script:Native::mgka_string_free($Pointer) }
}

function Find-MgkaLibrary {
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

function Initialize-MgkaNative {
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
        if ($libraryVersion -ne $script:ModuleVersion) {
            throw ("MgKeepAlive $script:ModuleVersion needs libmgkeepalive $script:ModuleVersion, but '$path' is version '$libraryVersion'." +
                " Rebuild the library ('cargo build --release'), reinstall the module, or point MGKEEPALIVE_LIBRARY at a matching build.")
        }
        $script:LibraryPath = $path
    }
    $script:Native = [AppDomain]::CurrentDomain.GetData("MgKeepAlive.Native.4|$script:LibraryPath")
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
            )) {
            $typeBuilder.DefinePInvokeMethod($signature[0], $script:LibraryPath, 'Public, Static, PinvokeImpl, HideBySig', 'Standard',
                $signature[1], $signature[2], 'Cdecl', 'Ansi').SetImplementationFlags('PreserveSig')
        }
        $script:Native = $typeBuilder.CreateType()
        [AppDomain]::CurrentDomain.SetData("MgKeepAlive.Native.4|$script:LibraryPath", $script:Native)
    }
    $script:Native
}

function Invoke-MgkaNative {
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
        # Disconnect, Context, KeepAliveByIdStart, KeepAliveByIdentityStart, KeepAliveBulkStart, OperationWait,
        # OperationCancel, RequestContextGet or RequestContextSet; KeeperStart, KeeperStop, KeeperList or KeeperEvents (bound on first
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
            'OperationWait' { $status = $N::mgka_operation_wait($Operation, $TimeoutMs, [ref]$out) }
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

function ConvertFrom-MgkaJson {
    # JSON -> ordered dictionaries (case-insensitive keys), object[] and primitives. Strings stay
    # strings (ConvertFrom-Json would turn ISO dates into [datetime]).
    param([AllowNull()][AllowEmptyString()][string] $Json)
    if ([string]::IsNullOrWhiteSpace($Json)) { return $null }
    $document = [System.Text.Json.JsonDocument]::Parse($Json)
    try { , (ConvertFrom-MgkaJsonElement -Element $document.RootElement) }
    finally { $document.Dispose() }
}

function ConvertFrom-MgkaJsonElement {
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

function New-MgkaHeaderDictionary {
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

function Get-MgkaErrorCategory {
    param([int] $HttpStatus)
    switch ($HttpStatus) {
        400 { return [System.Management.Automation.ErrorCategory]::InvalidArgument }
        401 { return [System.Management.Automation.ErrorCategory]::AuthenticationError }
        403 { return [System.Management.Automation.ErrorCategory]::PermissionDenied }
        404 { return [System.Management.Automation.ErrorCategory]::ObjectNotFound }
        429 { return [System.Management.Automation.ErrorCategory]::ResourceUnavailable }
        { $_ -ge 500 -and $_ -le 599 } { return [System.Management.Automation.ErrorCategory]::ResourceUnavailable }
        default { return [System.Management.Automation.ErrorCategory]::InvalidOperation }
    }
}

function Get-MgkaStatusName {
    param([uint32] $Status)
    if ($Status -lt $script:StatusNames.Count) { $script:StatusNames[$Status] } else { "Status$Status" }
}

function Limit-MgkaText {
    # At most 2,000 characters of an error text.
    param([string] $Text)
    if ($Text.Length -le 2000) { return $Text }
    $Text.Substring(0, 2000) + "... ($($Text.Length - 2000) more characters; the whole answer is in Exception.ResponseBody)"
}

function Format-MgkaErrorDetails {
    # The text the official cmdlet shows for an HTTP error.
    param([System.Collections.IDictionary] $Info, [string] $Code)
    $builder = [System.Text.StringBuilder]::new()
    $message = if ($Info['graphMessage']) { [string]$Info['graphMessage'] } else { [string]$Info['message'] }
    [void]$builder.AppendLine((Limit-MgkaText $message)).AppendLine()
    $reason = if ($Info['reason']) { $Info['reason'] } else { [Enum]::ToObject([System.Net.HttpStatusCode], [int]$Info['httpStatus']).ToString() }
    [void]$builder.AppendLine("Status: $($Info['httpStatus']) ($reason)")
    [void]$builder.AppendLine("ErrorCode: $Code")
    [void]$builder.AppendLine("Date: $($Info['date'])")
    if ($Info['requestId']) { [void]$builder.AppendLine("RequestId: $($Info['requestId'])") }
    if ($Info['clientRequestId']) { [void]$builder.AppendLine("ClientRequestId: $($Info['clientRequestId'])") }
    if ($Info['attempts'] -gt 1) { [void]$builder.AppendLine("Attempts: $($Info['attempts'])") }
    $headers = $Info['headers']
    if ($headers -is [System.Collections.IDictionary] -and $headers.Count -gt 0) {
        [void]$builder.AppendLine().AppendLine('Headers:')
        foreach ($entry in $headers.GetEnumerator()) {
            [void]$builder.AppendLine(('{0,-30}: {1}' -f $entry.Key, (@($entry.Value) -join ', ')))
        }
    }
    $builder.ToString().TrimEnd()
}

function New-MgkaErrorRecord {
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
            $category = Get-MgkaErrorCategory $httpStatus
            $details = Format-MgkaErrorDetails -Info $Info -Code $code
        }
        'NotConnected' {
            $message = 'Authentication needed, call Connect-MgGraph.'
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
    if ($details) { $record.ErrorDetails = [System.Management.Automation.ErrorDetails]::new($details) }
    $record
}

function Get-MgkaIdentityCallId {
    # Returns the call id of an identity (CallId first, then Id; names case-insensitive) or $null,
    # or an ArgumentException (not thrown) when the value is a collection or an object.
    param($Identity)
    foreach ($name in 'CallId', 'Id') {
        $value = $null
        if ($Identity -is [System.Collections.IDictionary]) {
            foreach ($key in $Identity.Keys) {
                if ([string]::Equals([string]$key, $name, [StringComparison]::OrdinalIgnoreCase)) { $value = $Identity[$key]; break }
            }
        } else {
            $property = $Identity.PSObject.Properties[$name]
            if ($property) { $value = $property.Value }
        }
        if ($null -ne $value) {
            if ($value -is [psobject]) { $value = $value.PSObject.BaseObject }
            if ($value -isnot [string] -and ($value -is [System.Collections.IEnumerable] -or $value -is [System.Management.Automation.PSCustomObject])) {
                # Never a silent "System.Collections.Hashtable" call id: the caller reports this.
                return [System.ArgumentException]::new("InputObject.$name must be a string, not $($value.GetType().Name).")
            }
            $text = if ($value -is [System.IFormattable]) { $value.ToString($null, [cultureinfo]::InvariantCulture) } else { [string]$value }
            if ($text.Length -gt 0) { return $text }
        }
    }
    $null
}

function Get-MgkaJsonIdentityCallId {
    # For ShouldProcess/verbose text only: the library resolves the identity JSON itself.
    # Returns @{ Ok; CallId; Error }.
    param([string] $Json)
    # Test-Json first: an exception, even one caught here, would land in the caller's
    # -ErrorVariable. -ErrorAction Ignore records nothing.
    if (-not (Test-Json -Json $Json -ErrorAction Ignore)) {
        return @{ Ok = $false; Error = 'InputObject is not a valid JSON identity: the text starts with ''{'' but is not valid JSON.' }
    }
    try {
        $document = [System.Text.Json.JsonDocument]::Parse($Json)
    } catch {
        return @{ Ok = $false; Error = "InputObject is not a valid JSON identity: $($_.Exception.InnerException.Message)" }
    }
    try {
        $root = $document.RootElement
        if ($root.ValueKind -ne 'Object') { return @{ Ok = $false; Error = 'InputObject is not a valid JSON identity: expected a JSON object.' } }
        foreach ($name in 'CallId', 'Id') {
            foreach ($property in $root.EnumerateObject()) {
                if ([string]::Equals($property.Name, $name, [StringComparison]::OrdinalIgnoreCase) -and $property.Value.ValueKind -ne 'Null') {
                    $text = if ($property.Value.ValueKind -eq 'String') { $property.Value.GetString() } else { $property.Value.GetRawText() }
                    if ($text.Length -gt 0) { return @{ Ok = $true; CallId = $text } }
                }
            }
        }
        @{ Ok = $true; CallId = $null }
    } finally { $document.Dispose() }
}

function New-MgkaMissingCallIdError {
    param($TargetObject)
    [System.Management.Automation.ErrorRecord]::new(
        [System.ArgumentException]::new('InputObject has null value for InputObject.CallId'),
        'InputObjectCallIdMissing',
        [System.Management.Automation.ErrorCategory]::InvalidArgument,
        $TargetObject)
}

function Write-MgkaResolveError {
    # Resolve-MgkaCallIdentity's errors: written through $Cmdlet, or kept in $ErrorList.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.Generic.List[object]] $ErrorList, [System.Management.Automation.ErrorRecord] $Record)
    if ($null -ne $ErrorList) { $ErrorList.Add($Record) } else { $Cmdlet.WriteError($Record) }
}

function Resolve-MgkaCallIdentity {
    # One pipeline item of the keep-alive and keeper commands -> @{ By; Value; CallId }, or $null
    # after writing the item's error through $Cmdlet. By 'Id': Value is the call id (a plain
    # string, or an object's CallId, else Id); by 'Identity': Value is a JSON identity string
    # (resolved again by the library) and CallId what it names. Errors: invalid JSON identity
    # (InvalidIdentity), no CallId/Id (InputObjectCallIdMissing). With -ErrorList the error record
    # is added to that list instead of written (the bulk keep-alive writes it in input order).
    param(
        [System.Management.Automation.PSCmdlet] $Cmdlet,
        $Item,
        [System.Collections.Generic.List[object]] $ErrorList
    )
    $base = if ($Item -is [psobject]) { $Item.PSObject.BaseObject } else { $Item }
    if ($base -is [string]) {
        $trimmed = $base.TrimStart()
        if ($trimmed.StartsWith('[') -and (Test-Json -Json $base -ErrorAction Ignore)) {
            Write-MgkaResolveError $Cmdlet $ErrorList ((New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -TargetObject $Item -Info ([ordered]@{
                            kind = 'InvalidArgument'; parameter = 'InputObject'
                            message = 'InputObject is a JSON array, not a JSON identity: pipe its items one at a time (ConvertFrom-Json unrolls them).' })))
            return
        }
        if (-not $trimmed.StartsWith('{')) { return @{ By = 'Id'; Value = $base; CallId = $base } }
        $parsed = Get-MgkaJsonIdentityCallId -Json $base
        if (-not $parsed.Ok) {
            Write-MgkaResolveError $Cmdlet $ErrorList ((New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -TargetObject $Item -Info ([ordered]@{
                            kind = 'InvalidArgument'; parameter = 'InputObject'; message = $parsed.Error })))
            return
        }
        if ($null -eq $parsed.CallId) {
            Write-MgkaResolveError $Cmdlet $ErrorList ((New-MgkaMissingCallIdError -TargetObject $Item))
            return
        }
        return @{ By = 'Identity'; Value = $base; CallId = $parsed.CallId }
    }
    $value = Get-MgkaIdentityCallId -Identity $base
    if ($null -eq $value -and $base -isnot [System.Collections.IDictionary]) {
        $value = Get-MgkaIdentityCallId -Identity $Item
    }
    if ($value -is [System.ArgumentException]) {
        Write-MgkaResolveError $Cmdlet $ErrorList ((New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -TargetObject $Item -Info ([ordered]@{
                        kind = 'InvalidArgument'; parameter = 'InputObject'; message = $value.Message })))
        return
    }
    if ($null -eq $value) {
        Write-MgkaResolveError $Cmdlet $ErrorList ((New-MgkaMissingCallIdError -TargetObject $Item))
        return
    }
    @{ By = 'Id'; Value = $value; CallId = $value }
}

function Wait-MgkaOperation {
    # Waits for a started native operation in short slices so that a pipeline stop (Ctrl+C) is
    # honoured within one slice; an unfinished operation is cancelled in finally.
    # Returns @{ Status; Json }.
    param([uint64] $Operation)
    $finished = $false
    try {
        while ($true) {
            $wait = Invoke-MgkaNative OperationWait -Operation $Operation -TimeoutMs $script:WaitSliceMs
            if ($wait.Status -ne $script:MGKA_PENDING) {
                $finished = $true
                return @{ Status = $wait.Status; Json = $wait.Json }
            }
        }
    } finally {
        if (-not $finished) {
            # Runs on pipeline stop too. A direct method call: commands may refuse to run
            # while the pipeline is stopping, a .NET call always runs.
            [void]$script:Native::mgka_operation_cancel($Operation)
        }
    }
}

function Get-MgkaEnvironmentProxy {
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

function ConvertTo-MgkaAttemptLog {
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

function Format-MgkaHttpHeaders {
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

function Write-MgkaAttemptLog {
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

function Initialize-MgkaKeepAlive {
    # The begin block of Invoke-MgKeepCommunicationCallAlive and
    # Invoke-MgBetaKeepCommunicationCallAlive (they differ only in -ApiVersion). Writes the
    # warnings and returns the state the process block needs. Runs once per command, i.e. once
    # per keep-alive for a bot's timer: the common case stays in this one function.
    param(
        [System.Management.Automation.PSCmdlet] $Cmdlet,
        [string] $ApiVersion,
        [int] $ThrottleLimit = $script:BulkDefaultThrottleLimit
    )
    $bound = $Cmdlet.MyInvocation.BoundParameters
    if ($bound.ContainsKey('HttpPipelineAppend')) { Write-Warning 'MgKeepAlive does not support -HttpPipelineAppend; the request is sent without it.' }
    if ($bound.ContainsKey('HttpPipelinePrepend')) { Write-Warning 'MgKeepAlive does not support -HttpPipelinePrepend; the request is sent without it.' }
    # Microsoft.Graph.Authentication loaded next to MgKeepAlive is checked at import, by
    # Connect-MgGraph and Get-MgContext, and when a keep-alive finds no connection, not here: with
    # a connection made by MgKeepAlive the keep-alive works whatever else is loaded.
    $cloud = [AppDomain]::CurrentDomain.GetData('MgKeepAlive.Cloud')
    if ($cloud -and $cloud -ne 'Global' -and $cloud -ne 'Other') { Test-MgkaCloudAvailability -ApiVersion $ApiVersion }

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
            $Cmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                    [System.ArgumentException]::new("-Proxy must be an absolute http or https URI such as http://proxy.contoso.com:3128; it is '$proxy'."),
                    'InvalidProxy', [System.Management.Automation.ErrorCategory]::InvalidArgument, $proxy))
        }
        $options['proxy'] = [ordered]@{ url = $proxy.OriginalString }
        $credential = $bound['ProxyCredential']
        if ($credential) {
            $options['proxy']['username'] = $credential.UserName
            # Only in the options JSON handed to the library; never written to any stream.
            $options['proxy']['password'] = $credential.GetNetworkCredential().Password
        }
    } elseif ($bound['ProxyCredential']) {
        Write-Warning '-ProxyCredential is used only together with -Proxy; it is ignored.'
    }
    if ($bound['ProxyUseDefaultCredentials']) {
        Write-Warning ('MgKeepAlive cannot send default (integrated Windows) credentials to a proxy: -ProxyUseDefaultCredentials is ignored ' +
            'and the request goes to the proxy without credentials. Give -ProxyCredential for a proxy that needs a user name and password.')
    }
    $environmentProxy = if ([Environment]::GetEnvironmentVariable('HTTPS_PROXY') -or [Environment]::GetEnvironmentVariable('https_proxy') -or
        [Environment]::GetEnvironmentVariable('HTTP_PROXY') -or [Environment]::GetEnvironmentVariable('http_proxy') -or
        [Environment]::GetEnvironmentVariable('NO_PROXY') -or [Environment]::GetEnvironmentVariable('no_proxy')) { Get-MgkaEnvironmentProxy }
    $debug = $DebugPreference -ne 'SilentlyContinue' -and $DebugPreference -ne 'Ignore'
    if ($options.Count -eq 1 -and -not $environmentProxy -and -not $debug) {
        # The common case, kept cheap: called every 15 minutes per call, or in bulk.
        $optionsJson = '{"apiVersion":"' + $ApiVersion + '","environmentProxy":{}}'
    } else {
        $options['environmentProxy'] = if ($environmentProxy) { $environmentProxy } else { [ordered]@{} }
        if ($debug) { $options['debug'] = $true }
        $optionsJson = ConvertTo-Json -Compress -Depth 4 -InputObject $options
    }
    # The options as the C string the library takes; $null when they cannot be encoded (a lone
    # surrogate in -Headers), so that the general path reports it.
    $optionsBytes = try { $script:Utf8.GetBytes($optionsJson + [char]0) } catch [System.Text.EncoderFallbackException] { $null }
    $variable = [string]$bound['ResponseHeadersVariable']
    $state = @{
        Cmdlet                  = $Cmdlet
        OptionsJson             = $optionsJson
        OptionsBytes            = $optionsBytes
        PassThru                = [bool]$bound['PassThru']
        ResponseHeadersVariable = $variable
        # Success details are parsed only when someone will see them.
        WantDetails             = [bool]$variable -or $debug -or ($VerbosePreference -ne 'SilentlyContinue' -and $VerbosePreference -ne 'Ignore')
        Debug                   = $debug
        # Piped input (KeepViaIdentity) is sent in chunks through mgka_keep_alive_bulk_start.
        Bulk                    = $Cmdlet.ParameterSetName -ne 'Keep'
    }
    if ($state.Bulk) {
        $state.ThrottleLimit = $ThrottleLimit
        $state.ChunkSize = [Math]::Max($script:BulkMinChunkSize, $script:BulkChunkFactor * $ThrottleLimit)
        # The pending chunk, one entry per item in input order (see Send-MgkaBulkChunk).
        $state.Pending = [System.Collections.Generic.List[object]]::new()
        $state.ResolveErrors = [System.Collections.Generic.List[object]]::new()
        $state.InFlight = $null # @{ Operation; Chunk; Stopwatch }: the chunk being sent
        $state.Sent = 0         # items handed to bulk operations so far
        $state.Done = 0         # items whose results were written
        $state.Clock = $null    # started with the first bulk operation (progress)
        $state.ProgressShown = $false
        $state.ProgressAt = 0L
        $state.PendingMixed = $false # the pending chunk holds more than plain call id strings
    }
    $state
}

function Invoke-MgkaSingleKeepAlive {
    # One keep-alive (after ShouldProcess) and its result: -CallId, or a single piped item. The
    # common case (a bot's timer: success, no -Verbose) calls the library directly, in this one
    # function: each PowerShell function call costs more than the native round trip.
    param(
        [hashtable] $State,
        [string] $By,          # Id or Identity
        [string] $Value,       # the call id, or the identity JSON
        [string] $DisplayId,
        $Target
    )
    $started = [System.Diagnostics.Stopwatch]::GetTimestamp()
    $valueBytes = $null
    if ($null -ne $State.OptionsBytes -and $Value.IndexOf([char]0) -lt 0) {
        $valueBytes = try { $script:Utf8.GetBytes($Value + [char]0) } catch [System.Text.EncoderFallbackException] { $null }
    }
    if ($null -eq $valueBytes) {
        # NUL, a lone surrogate: Invoke-MgkaNative names the parameter in the error.
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text[$(if ($By -eq 'Id') { 'CallId' } else { 'InputObject' })] = $Value; $text['Headers'] = $State.OptionsJson
        $result = Invoke-MgkaNative $(if ($By -eq 'Id') { 'KeepAliveByIdStart' } else { 'KeepAliveByIdentityStart' }) -Text $text
        $status = $result.Status; $json = $result.Json
    } else {
        if ($null -eq $script:Native) { $null = Initialize-MgkaNative }
        $native = $script:Native
        $operation = [uint64]0
        $out = [IntPtr]::Zero
        $status = if ($By -eq 'Id') { $native::mgka_keep_alive_by_id_start($valueBytes, $State.OptionsBytes, [ref]$operation) }
        else { $native::mgka_keep_alive_by_identity_start($valueBytes, $State.OptionsBytes, [ref]$operation) }
        if ($status -eq $script:MGKA_OK) {
            # Short waits, so that Ctrl+C (a pipeline stop between two waits) is honoured;
            # an unfinished operation is cancelled in finally.
            $finished = $false
            try {
                do { $status = $native::mgka_operation_wait($operation, $script:WaitSliceMs, [ref]$out) } while ($status -eq $script:MGKA_PENDING)
                $finished = $true
            } finally {
                if (-not $finished) { [void]$native::mgka_operation_cancel($operation) }
            }
        }
        if ($status -eq $script:MGKA_OK -and -not $State.WantDetails) {
            if ($out -ne [IntPtr]::Zero) { $native::mgka_string_free($out) }
            if ($State.PassThru) { $true }
            return
        }
        $json = Read-MgkaNativeString -Pointer $out
    }
    $elapsedMs = [long](([System.Diagnostics.Stopwatch]::GetTimestamp() - $started) * 1000 / [System.Diagnostics.Stopwatch]::Frequency)
    Write-MgkaKeepAliveResult -State $State -Status $status -Info (ConvertFrom-MgkaJson $json) -DisplayId $DisplayId -Target $Target -ElapsedMs $elapsedMs
}

function Write-MgkaKeepAliveResult {
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
    if ($kind -eq 'NotConnected') { Test-MgkaCoexistence -Cmdlet $cmdlet }
    $statusText = if ($Info['httpStatus']) { "$($Info['httpStatus']) $($Info['code'])" } else { $kind }
    Write-Verbose "Keep alive call '$DisplayId': $statusText in $elapsed ms$attemptsText"
    $record = New-MgkaErrorRecord -Status $Status -Info $Info -TargetObject $Target -Activity 'Keep alive'
    if ($record.ErrorDetails) { Write-Debug "Keep alive error response:`n$($record.ErrorDetails.Message)" }
    $cmdlet.WriteError($record)
}

# Bulk keep-alive (piped input). Items are resolved and asked about (ShouldProcess) one by one,
# collected into chunks of $State.ChunkSize, and each chunk is sent with one
# mgka_keep_alive_bulk_start (at most -ThrottleLimit requests in flight). The results are written
# per item, in input order, while the next chunk is under way: one chunk in flight at a time, so
# -ThrottleLimit is a strict bound. A pending entry is a plain call id [string] (the commands'
# inline fast path), an ErrorRecord (an item that could not be resolved; written in its place),
# or @{ By = 'Id'|'Identity'; Value; Target; Display } for any other item.

function Add-MgkaBulkItem {
    # An item that the inline fast path of the commands' process block did not take: resolves it
    # (its error joins the chunk in order), asks ShouldProcess and adds it to the pending chunk.
    param([hashtable] $State, $Item)
    $errors = $State.ResolveErrors
    $State.PendingMixed = $true
    $resolved = Resolve-MgkaCallIdentity -Cmdlet $State.Cmdlet -Item $Item -ErrorList $errors
    if ($null -eq $resolved) {
        if ($errors.Count -gt 0) {
            $State.Pending.Add($errors[0])
            $errors.Clear()
        }
    } elseif ($State.Cmdlet.ShouldProcess($resolved.CallId, 'Keep alive')) {
        $State.Pending.Add(@{ By = $resolved.By; Value = $resolved.Value; Target = $Item; Display = $resolved.CallId })
    }
    if ($State.Pending.Count -ge $State.ChunkSize) { Send-MgkaBulkChunk -State $State }
}

function Send-MgkaBulkChunk {
    # Starts the pending chunk's bulk operation (after the one in flight has finished), then
    # writes the finished chunk's results while the new one runs.
    param([hashtable] $State)
    if ($State.Pending.Count -eq 0) { return }
    $chunk = @{ Entries = $State.Pending.ToArray(); Requests = 0; Errors = 0; Mixed = $State.PendingMixed }
    $State.Pending.Clear()
    $State.PendingMixed = $false
    $request = ConvertTo-MgkaBulkRequest -State $State -Chunk $chunk

    $finished = $null
    if ($State.InFlight) {
        $previous = $State.InFlight
        $State.InFlight = $null
        $result = Wait-MgkaOperation -Operation $previous.Operation
        $previous.Stopwatch.Stop()
        $finished = @{ Chunk = $previous.Chunk; Result = $result; ElapsedMs = $previous.Stopwatch.ElapsedMilliseconds }
    }
    $result = @{ Status = $script:MGKA_OK; Json = '[]' }   # a chunk without requests
    if ($null -ne $request) {
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['InputObject'] = $request; $text['Headers'] = $State.OptionsJson
        if ($null -eq $State.Clock) { $State.Clock = [System.Diagnostics.Stopwatch]::StartNew() }
        $start = Invoke-MgkaNative KeepAliveBulkStart -Text $text
        $State.Sent += $chunk.Requests
        if ($start.Status -eq $script:MGKA_OK) {
            $State.InFlight = @{ Operation = $start.Operation; Chunk = $chunk; Stopwatch = [System.Diagnostics.Stopwatch]::StartNew() }
            $chunk = $null
        } else {
            $result = @{ Status = $start.Status; Json = $start.Json }
        }
    }
    if ($finished) { Write-MgkaBulkResults -State $State -Chunk $finished.Chunk -Result $finished.Result -ElapsedMs $finished.ElapsedMs }
    # A chunk that needed no operation (only errors), or that the library refused at once.
    if ($chunk) { Write-MgkaBulkResults -State $State -Chunk $chunk -Result $result -ElapsedMs 0 }
}

function Complete-MgkaBulk {
    # The end block: when no chunk was sent and at most one item is a request, the single
    # keep-alive way (as for -CallId); otherwise the rest is sent and every result written. Then
    # the progress bar is completed.
    param([hashtable] $State)
    $pending = $State.Pending
    if ($null -eq $State.InFlight -and $State.Sent -eq 0) {
        $requests = 0
        foreach ($entry in $pending) { if ($entry -isnot [System.Management.Automation.ErrorRecord]) { $requests++ } }
        if ($requests -le 1) {
            $entries = $pending.ToArray()
            $pending.Clear()
            foreach ($entry in $entries) {
                if ($entry -is [System.Management.Automation.ErrorRecord]) { $State.Cmdlet.WriteError($entry); continue }
                if ($entry -is [string]) { Invoke-MgkaSingleKeepAlive -State $State -By Id -Value $entry -DisplayId $entry -Target $entry }
                else { Invoke-MgkaSingleKeepAlive -State $State -By $entry.By -Value $entry.Value -DisplayId $entry.Display -Target $entry.Target }
            }
            return
        }
    }
    Send-MgkaBulkChunk -State $State
    if ($State.InFlight) {
        $last = $State.InFlight
        $State.InFlight = $null
        $result = Wait-MgkaOperation -Operation $last.Operation
        $last.Stopwatch.Stop()
        Write-MgkaBulkResults -State $State -Chunk $last.Chunk -Result $result -ElapsedMs $last.Stopwatch.ElapsedMilliseconds
    }
    if ($State.ProgressShown) {
        $State.ProgressShown = $false
        Write-Progress -Id $script:BulkProgressId -Activity 'Keeping calls alive' -Completed
    }
}

function Stop-MgkaBulk {
    # The clean block (also after Ctrl+C, -ErrorAction Stop or a downstream Select-Object -First):
    # cancels the chunk still in flight; its results are not written.
    param([hashtable] $State)
    $inFlight = $State.InFlight
    if ($inFlight) {
        $State.InFlight = $null
        $null = Invoke-MgkaNative OperationCancel -Operation $inFlight.Operation
    }
    if ($State.ProgressShown) {
        $State.ProgressShown = $false
        Write-Progress -Id $script:BulkProgressId -Activity 'Keeping calls alive' -Completed
    }
}

function ConvertTo-MgkaBulkRequest {
    # The chunk's request JSON: {"items":[{"callId":"..."}|{"identity":"..."}],"concurrency":n},
    # or $null when it has no request. Counts the chunk's Requests and Errors. A value that is
    # not valid UTF-16 (a lone surrogate) becomes that item's error, as for a single keep-alive.
    param([hashtable] $State, [hashtable] $Chunk)
    $entries = $Chunk.Entries
    $tail = ',"concurrency":' + $State.ThrottleLimit + $(if ($State.WantDetails) { '}' } else { ',"details":false}' })
    if (-not $Chunk.Mixed) {
        # Only plain call ids (the process block's inline path): one .NET call encodes them all.
        # It throws on a lone surrogate; then the loop below finds the item.
        try {
            $ids = [System.Text.Json.JsonSerializer]::Serialize($entries, [object[]], [System.Text.Json.JsonSerializerOptions]$null)
            $Chunk.Requests = $entries.Length
            $Chunk.Errors = 0
            return '{"callIds":' + $ids + $tail
        } catch { }
    }
    $builder = [System.Text.StringBuilder]::new(48 * $entries.Length + 64)
    [void]$builder.Append('{"items":[')
    $count = 0
    $errors = 0
    for ($i = 0; $i -lt $entries.Length; $i++) {
        $entry = $entries[$i]
        if ($entry -is [string]) { $key = '{"callId":"'; $value = [string]$entry }
        elseif ($entry -is [System.Management.Automation.ErrorRecord]) { $errors++; continue }
        else { $key = if ($entry.By -eq 'Id') { '{"callId":"' } else { '{"identity":"' }; $value = $entry.Value }
        try {
            $escaped = [System.Text.Json.JsonEncodedText]::Encode($value).ToString()
        } catch {
            $parameter = if ($key -eq '{"callId":"') { 'CallId' } else { 'InputObject' }
            $target = if ($entry -is [string]) { $entry } else { $entry.Target }
            $entries[$i] = New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -TargetObject $target -Info ([ordered]@{
                    kind = 'InvalidArgument'; parameter = $parameter; callId = $null
                    message = "The value of $parameter is not valid Unicode text (it contains a lone surrogate)." })
            $errors++
            continue
        }
        if ($count -gt 0) { [void]$builder.Append(',') }
        [void]$builder.Append($key).Append($escaped).Append('"}')
        $count++
    }
    $Chunk.Requests = $count
    $Chunk.Errors = $errors
    if ($count -eq 0) { return $null }
    [void]$builder.Append(']').Append($tail)
    $builder.ToString()
}

function Write-MgkaBulkResults {
    # Writes a chunk's results in input order: the resolution errors in their places, one $true
    # (-PassThru) or one error record per request. $Result: the bulk operation's @{ Status; Json }.
    param([hashtable] $State, [hashtable] $Chunk, [hashtable] $Result, [long] $ElapsedMs)
    $entries = $Chunk.Entries
    $json = $Result.Json
    $State.Done += $entries.Length
    if ($Result.Status -eq $script:MGKA_OK -and $Chunk.Errors -eq 0 -and -not $State.WantDetails -and
        -not $json.Contains('"ok":false') -and -not $json.Contains('[null') -and -not $json.Contains(',null')) {
        # Every item succeeded (a failed item's answer always holds "ok":false, a lost one null):
        # nothing to look at per item.
        if ($State.PassThru) { for ($i = 0; $i -lt $entries.Length; $i++) { $true } }
        Write-MgkaBulkProgress -State $State
        return
    }
    $cmdlet = $State.Cmdlet
    $passThru = $State.PassThru
    $wantDetails = $State.WantDetails
    $document = $null
    $answers = $null
    $failure = $null
    if ($Result.Status -eq $script:MGKA_OK) {
        $document = [System.Text.Json.JsonDocument]::Parse($json)
        $answers = $document.RootElement.EnumerateArray()
    } else {
        # The whole request failed (not connected, ...): each item gets that error.
        $failure = ConvertFrom-MgkaJson $json
        if ($null -eq $failure) { $failure = [ordered]@{} }
    }
    try {
        foreach ($entry in $entries) {
            if ($entry -is [System.Management.Automation.ErrorRecord]) { $cmdlet.WriteError($entry); continue }
            if ($entry -is [string]) { $display = [string]$entry; $target = $entry }
            else { $display = $entry.Display; $target = $entry.Target }
            if ($null -ne $failure) {
                Write-MgkaKeepAliveResult -State $State -Status $Result.Status -Info $failure -DisplayId $display -Target $target -ElapsedMs $ElapsedMs
                continue
            }
            if (-not $answers.MoveNext()) {
                $cmdlet.WriteError((New-MgkaErrorRecord -Status 12 -TargetObject $target -Activity 'Keep alive' -Info ([ordered]@{
                                kind = 'Panic'; message = 'The bulk keep-alive answered fewer items than it was given.' })))
                continue
            }
            $answer = $answers.Current
            # {"ok":true,"result":{...}} or {"ok":false,"error":{...}}; null if the item's task died.
            $isObject = $answer.ValueKind -eq $script:JsonObject
            $ok = $isObject -and $answer.GetProperty('ok').ValueKind -eq $script:JsonTrue
            if ($ok -and -not $wantDetails) {
                if ($passThru) { $true }
                continue
            }
            $status = $script:MGKA_OK
            if ($ok) {
                $info = ConvertFrom-MgkaJsonElement -Element $answer.GetProperty('result')
            } else {
                $info = if ($isObject) { ConvertFrom-MgkaJsonElement -Element $answer.GetProperty('error') }
                else { [ordered]@{ kind = 'Panic'; message = 'The bulk keep-alive gave no answer for this item.' } }
                $index = [array]::IndexOf($script:StatusNames, [string]$info['kind'])
                $status = if ($index -gt 0) { [uint32]$index } else { [uint32]12 }
            }
            Write-MgkaKeepAliveResult -State $State -Status $status -Info $info -DisplayId $display -Target $target -ElapsedMs $ElapsedMs
        }
    } finally {
        if ($document) { $document.Dispose() }
    }
    Write-MgkaBulkProgress -State $State
}

function Write-MgkaBulkProgress {
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

function Get-MgkaCloud {
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

function Test-MgkaCloudAvailability {
    # Keep-alive is documented for v1.0 in Global, USGov and USGovDoD, and for beta in Global
    # only. Elsewhere the request is still sent; this warns once per process per cloud and version.
    param([string] $ApiVersion)
    $cloud = [AppDomain]::CurrentDomain.GetData('MgKeepAlive.Cloud')
    if (-not $cloud -or $cloud -eq 'Global' -or $cloud -eq 'Other') { return }
    if ($ApiVersion -eq 'v1.0' -and $cloud -ne 'China') { return }
    $key = "MgKeepAlive.CloudWarning|$cloud|$ApiVersion"
    if ([AppDomain]::CurrentDomain.GetData($key)) { return }
    [AppDomain]::CurrentDomain.SetData($key, $true)
    $available = if ($ApiVersion -eq 'beta') { 'only in the Global cloud' } else { 'in the Global, USGov and USGovDoD clouds, not in China' }
    Write-Warning ("Microsoft documents call keepAlive ($ApiVersion) as available $available; you are connected to the $cloud cloud. " +
        'MgKeepAlive sends the request anyway; if it fails, check with your cloud''s Graph documentation. (This warning is shown once per process.)')
}

function Test-MgkaCoexistence {
    # Warns once per process when Microsoft's Microsoft.Graph.Authentication is loaded next to
    # MgKeepAlive: both define Connect-MgGraph, Get-MgContext and Disconnect-MgGraph, and the
    # module imported last wins. Cheap enough for every call (Get-Module: tens of microseconds).
    param([System.Management.Automation.PSCmdlet] $Cmdlet)
    if ([AppDomain]::CurrentDomain.GetData('MgKeepAlive.CoexistenceWarned')) { return }
    $official = Get-Module -Name Microsoft.Graph.Authentication
    if (-not $official) { return }
    [AppDomain]::CurrentDomain.SetData('MgKeepAlive.CoexistenceWarned', $true)
    # Which Connect-MgGraph the caller's command lookup finds; during MgKeepAlive's import, its
    # own (it is being imported last).
    $inEffect = 'MgKeepAlive'
    if ($Cmdlet) {
        # Resolved in the caller's session state ($PSCmdlet.SessionState), not the module's.
        $lookup = [scriptblock]::Create('Get-Command -Name Connect-MgGraph -CommandType Function, Cmdlet -ErrorAction Ignore | Select-Object -First 1')
        $resolved = $Cmdlet.SessionState.InvokeCommand.InvokeScript($Cmdlet.SessionState, $lookup, @())
        if ($resolved -and $resolved[0].ModuleName) { $inEffect = $resolved[0].ModuleName }
    }
    $other = if ($inEffect -eq 'MgKeepAlive') { 'Microsoft.Graph.Authentication' } else { 'MgKeepAlive' }
    Write-Warning ("Microsoft.Graph.Authentication $(@($official)[0].Version) is loaded next to MgKeepAlive. Both define Connect-MgGraph, " +
        "Get-MgContext and Disconnect-MgGraph; the module imported last wins, so these names now run $inEffect's commands. " +
        'MgKeepAlive''s keep-alive uses only a connection made with MgKeepAlive\Connect-MgGraph, and Microsoft''s cmdlets only one made ' +
        "with Microsoft.Graph.Authentication\Connect-MgGraph. Use module-qualified names (e.g. $other\Connect-MgGraph) to reach $other's. " +
        '(This warning is shown once per process.)')
}

function ConvertFrom-MgkaSecureString {
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

function Set-MgkaConnectedCloud {
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

function ConvertTo-MgkaContext {
    param([AllowNull()][System.Collections.IDictionary] $Info)
    if ($null -eq $Info) { return }
    [pscustomobject]@{
        PSTypeName            = 'MgKeepAlive.Context'
        ClientId              = $Info['clientId']
        TenantId              = $Info['tenantId']
        Scopes                = [string[]]@($Info['scopes'] | Where-Object { $null -ne $_ })
        AuthType              = $Info['authType']
        TokenCredentialType   = $Info['tokenCredentialType']
        CertificateThumbprint = $Info['certificateThumbprint']
        Environment           = $Info['environment']
        ContextScope          = $Info['contextScope']
        AppName               = $Info['appName']
    }
}

function ConvertTo-MgkaRequestContext {
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

function Set-MgkaRequestContext {
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

function ConvertTo-MgkaEnvironment {
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

#region Public commands ---------------------------------------------------------------------------

function Invoke-MgKeepCommunicationCallAlive {
    <#
    .SYNOPSIS
    Make a request to this API every 15 to 45 minutes to ensure that an ongoing call remains active.
    A call that does not receive this request within 45 minutes is considered inactive and will subsequently end.
    At least one successful request must be made within 45 minutes of the previous request, or the start of the call.
    We recommend that you send a request in shorter time intervals (every 15 minutes).
    Make sure that these requests are successful to prevent the call from timing out and ending.
    Attempting to send a request to a call that has already ended will result in a 404 Not-Found error.
    The resources related to the call should be cleaned up on the application side.
    This API is available in the following national cloud deployments.

    .DESCRIPTION
    Make a request to this API every 15 to 45 minutes to ensure that an ongoing call remains active.
    A call that does not receive this request within 45 minutes is considered inactive and will subsequently end.
    At least one successful request must be made within 45 minutes of the previous request, or the start of the call.
    We recommend that you send a request in shorter time intervals (every 15 minutes).
    Make sure that these requests are successful to prevent the call from timing out and ending.
    Attempting to send a request to a call that has already ended will result in a 404 Not-Found error.
    The resources related to the call should be cleaned up on the application side.
    This API is available in the following national cloud deployments.

    MgKeepAlive sends POST {graph}/v1.0/communications/calls/{call-id}/keepAlive with the call id
    percent-encoded as one path segment; ids that would address another resource ('.', '..',
    control characters, NUL, more than 1 KiB) are refused before anything is sent.

    Throttling (429) and unavailable service (503, 504) answers and connection failures are
    retried as Microsoft Graph asks: Retry-After is honoured (seconds, fractions or an HTTP
    date), else RetryDelay x 2^n, with a Retry-Attempt header; 400, 403 and 404 are never
    retried. ClientTimeout bounds the whole call, retries and waits included. The settings come
    from Set-MgRequestContext (defaults: 3 retries, 3 s, 300 s). Errors carry Attempts and
    AttemptLog on the exception. Ctrl+C cancels a keep-alive at once, also one waiting out a
    Retry-After. -Verbose writes one line per attempt; -Debug writes each HTTP request and
    response (HTTP REQUEST / HTTP RESPONSE), never the Authorization header's value.

    Differences from Microsoft.Graph.CloudCommunications, all compatible with existing scripts:
    -InputObject also accepts objects that carry only Id (such as Get-MgCommunicationCall output)
    and plain call id strings; an identity without CallId or Id is a per-item error and the
    pipeline goes on; -PassThru:$false writes nothing; -ResponseHeadersVariable is set in the
    caller's scope on success and on failure; the error category follows the HTTP status and the
    exception exposes StatusCode, ErrorCode, RequestId, ClientRequestId, Date and ResponseHeaders.

    Piped input is sent concurrently (-ThrottleLimit, default 32 requests in flight), with one
    ShouldProcess and one result or error record per item, in input order.

    .PARAMETER CallId
    The unique identifier of call

    .PARAMETER InputObject
    Identity Parameter
    To construct, see NOTES section for INPUTOBJECT properties and create a hash table.

    Accepts from the pipeline: a hashtable or object with CallId (any case) or, failing that, Id
    (Get-MgCommunicationCall output); a JSON string such as '{"CallId":"..."}' (a string whose
    first non-blank character is '{' must be a valid JSON identity); or any other string, taken
    as the call id itself.

    .PARAMETER PassThru
    Returns true when the command succeeds

    .PARAMETER Headers
    Optional headers that will be added to the request, as a dictionary of name = value. Values
    are sent as text; an array value is sent comma-separated. Authorization, Host and
    Content-Length cannot be set.

    .PARAMETER ResponseHeadersVariable
    Optional Response Headers Variable: the name of a variable, set in the caller's scope, that
    receives the response headers as a case-insensitive dictionary of header name to string[].
    Set on success and on failure (empty when no response was received).

    .PARAMETER Break
    Accepted for compatibility with Microsoft.Graph; ignored.

    .PARAMETER HttpPipelineAppend
    Accepted for compatibility with Microsoft.Graph; not supported (a warning is written).

    .PARAMETER HttpPipelinePrepend
    Accepted for compatibility with Microsoft.Graph; not supported (a warning is written).

    .PARAMETER Proxy
    The URI of an HTTP proxy (http:// or https://, for example http://proxy.contoso.com:3128)
    that every request of this command goes through, instead of the proxy that the HTTPS_PROXY,
    HTTP_PROXY and NO_PROXY environment variables name (which are honoured otherwise, as
    PowerShell sees them in $env:).

    .PARAMETER ProxyCredential
    The user name and password for the -Proxy (sent as Basic Proxy-Authorization). Used only
    with -Proxy. The password is never written to any output stream.

    .PARAMETER ProxyUseDefaultCredentials
    Accepted for compatibility with Microsoft.Graph. MgKeepAlive has no default (integrated
    Windows) credentials to give a proxy: a warning is written once and the request goes to the
    proxy without credentials. Use -ProxyCredential for a proxy that needs a user name and password.

    .PARAMETER ThrottleLimit
    How many keep-alives of piped input are in flight at once (1 to 256, default 32). Piped items
    are collected into chunks (512 items, or 4 x ThrottleLimit when that is more) and each chunk
    is sent concurrently, at most ThrottleLimit requests at a time; the next chunk is sent while
    the results of the previous one are written. Everything else stays per item: one ShouldProcess
    per item, as it arrives (with -WhatIf nothing is sent), and one $true (-PassThru) or one error
    record per item, in input order, items that cannot be resolved included (their errors are not
    moved ahead of earlier items' results). Results therefore arrive in bursts, a chunk at a time.
    -ResponseHeadersVariable holds the headers of the last item written. With -ErrorAction Stop the
    command stops at the first failing item in input order and writes nothing for later items,
    but keep-alives of later items in the same or the next chunk may have been sent already (a
    keep-alive is harmless to repeat): a foreach loop with -CallId sends nothing after a failure.
    The requests themselves go out in no particular order. Ctrl+C cancels every request still in
    flight. A single -CallId, or a pipeline of one item, is sent as before. Long runs
    (more than 500 items) show a progress bar (Write-Progress): items done and keep-alives per
    second. Not in Microsoft.Graph.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Import-Module Microsoft.Graph.CloudCommunications

    Invoke-MgKeepCommunicationCallAlive -CallId $callId

    .EXAMPLE
    'e71f0b00-0a1f-4c29-a0bb-7b2bc9e0d6a4', '2e1a0b00-2db4-4022-9570-243709c565ab' | Invoke-MgKeepCommunicationCallAlive -PassThru

    Keeps two calls alive; call ids can be piped as plain strings. Writes $true for each call
    kept alive.

    .EXAMPLE
    Get-MgCommunicationCall -CallId $callId | Invoke-MgKeepCommunicationCallAlive

    Objects that carry only Id (the output of Get-MgCommunicationCall) are accepted, as are
    hashtables such as @{ CallId = $callId } and JSON strings such as '{"callId":"..."}'.

    .EXAMPLE
    Invoke-MgKeepCommunicationCallAlive -CallId $callId -ResponseHeadersVariable headers
    $headers['request-id']

    Keeps the call alive and shows the request-id that Graph returned; $headers is set in the
    caller's scope, also when the request fails.

    .EXAMPLE
    try {
        Invoke-MgKeepCommunicationCallAlive -CallId $callId -ErrorAction Stop
    } catch {
        if ($_.Exception.StatusCode -eq 404) {
            Write-Warning "Call $callId has ended (request-id $($_.Exception.RequestId)); cleaning up."
        } else { throw }
    }

    Stops on the first error and tells an ended call (404, ErrorCode itemNotFound) from other
    failures without parsing text.

    .EXAMPLE
    Invoke-MgKeepCommunicationCallAlive -CallId $callId -Proxy http://proxy.contoso.com:3128 -ProxyCredential (Get-Credential) -Verbose

    Goes through an authenticating proxy and shows each attempt (status, time, any Retry-After
    wait). Add -Debug to see the HTTP requests and responses.

    .EXAMPLE
    while ($true) {
        Invoke-MgKeepCommunicationCallAlive -CallId $callId -ErrorAction Stop
        Start-Sleep -Seconds (15 * 60)
    }

    Keeps a call alive every 15 minutes, as Microsoft recommends, until it ends (a 404 then
    stops the loop).

    .EXAMPLE
    $callIds | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit 32 -PassThru -ErrorVariable failed -ErrorAction SilentlyContinue

    Keeps thousands of calls alive, 32 requests at a time. The output has one $true per call kept
    alive and $failed one error record per call that was not (404 for an ended call), both in the
    order of $callIds; -WhatIf would send nothing.

    .INPUTS
    Microsoft.Graph.PowerShell.Models.ICloudCommunicationsIdentity

    Any object with a CallId or Id property, a hashtable, a JSON identity string or a call id string.

    .OUTPUTS
    System.Boolean

    With -PassThru, $true for each call kept alive. Without it, nothing.

    .NOTES
    COMPLEX PARAMETER PROPERTIES

    To create the parameters described below, construct a hash table containing the appropriate properties. For information on hash tables, run Get-Help about_Hash_Tables.

    INPUTOBJECT <ICloudCommunicationsIdentity>: Identity Parameter
      [CallId <String>]: The unique identifier of call
      (the other identity properties are accepted and ignored)

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.cloudcommunications/invoke-mgkeepcommunicationcallalive

    .LINK
    https://learn.microsoft.com/graph/api/call-keepalive

    .LINK
    Invoke-MgBetaKeepCommunicationCallAlive

    .LINK
    Connect-MgGraph
    #>
    [CmdletBinding(DefaultParameterSetName = 'Keep', SupportsShouldProcess, ConfirmImpact = 'Medium', PositionalBinding = $false)]
    [OutputType([bool])]
    param(
        [Parameter(Mandatory, ParameterSetName = 'Keep')]
        [string] $CallId,

        [Parameter(Mandatory, ParameterSetName = 'KeepViaIdentity', ValueFromPipeline)]
        [object] $InputObject,

        [Parameter()]
        [switch] $PassThru,

        [Parameter()]
        [System.Collections.IDictionary] $Headers,

        [Parameter()]
        [Alias('RHV')]
        [string] $ResponseHeadersVariable,

        [Parameter(DontShow)]
        [switch] $Break,

        [Parameter(DontShow)]
        [object[]] $HttpPipelineAppend,

        [Parameter(DontShow)]
        [object[]] $HttpPipelinePrepend,

        [Parameter(DontShow)]
        [uri] $Proxy,

        [Parameter(DontShow)]
        [pscredential] $ProxyCredential,

        [Parameter(DontShow)]
        [switch] $ProxyUseDefaultCredentials,

        [Parameter()]
        [ValidateRange(1, 256)]
        [int] $ThrottleLimit = 32
    )

    begin { $state = $null; $state = Initialize-MgkaKeepAlive -Cmdlet $PSCmdlet -ApiVersion 'v1.0' -ThrottleLimit $ThrottleLimit }
    process {
        if (-not $state.Bulk) {
            if ($PSCmdlet.ShouldProcess($CallId, 'Keep alive')) { Invoke-MgkaSingleKeepAlive -State $state -By Id -Value $CallId -DisplayId $CallId -Target $CallId }
            return
        }
        # Piped input, inline for the common case (a function call per item costs more than the
        # rest): a plain call id string. Everything else goes through Add-MgkaBulkItem.
        $pending = $state.Pending; $chunkSize = $state.ChunkSize
        foreach ($item in $InputObject) {
            if ($item -is [string] -and $item.Length -gt 0 -and ($first = [int]$item[0]) -gt 32 -and $first -lt 127 -and $first -ne 123 -and $first -ne 91) {
                if ($PSCmdlet.ShouldProcess($item, 'Keep alive')) {
                    $pending.Add($item)
                    if ($pending.Count -ge $chunkSize) { Send-MgkaBulkChunk -State $state }
                }
            } else { Add-MgkaBulkItem -State $state -Item $item }
        }
    }
    end { if ($state.Bulk) { Complete-MgkaBulk -State $state } }
    clean { if ($state -and $state.Bulk) { Stop-MgkaBulk -State $state } }
}

function Invoke-MgBetaKeepCommunicationCallAlive {
    <#
    .SYNOPSIS
    Make a request to this API every 15 to 45 minutes to ensure that an ongoing call remains active.
    A call that does not receive this request within 45 minutes is considered inactive and will subsequently end.
    At least one successful request must be made within 45 minutes of the previous request, or the start of the call.
    We recommend that you send a request in shorter time intervals (every 15 minutes).
    Make sure that these requests are successful to prevent the call from timing out and ending.
    Attempting to send a request to a call that has already ended will result in a 404 Not-Found error.
    The resources related to the call should be cleaned up on the application side.
    This API is available in the following national cloud deployments.

    .DESCRIPTION
    Make a request to this API every 15 to 45 minutes to ensure that an ongoing call remains active.
    A call that does not receive this request within 45 minutes is considered inactive and will subsequently end.
    At least one successful request must be made within 45 minutes of the previous request, or the start of the call.
    We recommend that you send a request in shorter time intervals (every 15 minutes).
    Make sure that these requests are successful to prevent the call from timing out and ending.
    Attempting to send a request to a call that has already ended will result in a 404 Not-Found error.
    The resources related to the call should be cleaned up on the application side.
    This API is available in the following national cloud deployments.

    This is the beta version of Invoke-MgKeepCommunicationCallAlive (Microsoft.Graph.Beta.CloudCommunications):
    the same parameters and behaviour, against the Microsoft Graph beta endpoint. MgKeepAlive sends
    POST {graph}/beta/communications/calls/{call-id}/keepAlive with the call id percent-encoded as
    one path segment; ids that would address another resource ('.', '..', control characters) are
    refused before anything is sent. APIs under /beta are subject to change; use
    Invoke-MgKeepCommunicationCallAlive (v1.0) in production. Retries, timeouts (Set-MgRequestContext),
    proxies, -Verbose and -Debug work as for Invoke-MgKeepCommunicationCallAlive.

    Microsoft documents the beta keepAlive in the Global cloud only. Connected to another cloud
    (USGov, USGovDoD, China), the request is sent anyway and a warning is written once per process.

    Differences from Microsoft.Graph.Beta.CloudCommunications, all compatible with existing scripts:
    -InputObject also accepts objects that carry only Id (such as Get-MgCommunicationCall output)
    and plain call id strings; an identity without CallId or Id is a per-item error and the
    pipeline goes on; -PassThru:$false writes nothing; -ResponseHeadersVariable is set in the
    caller's scope on success and on failure; the error category follows the HTTP status and the
    exception exposes StatusCode, ErrorCode, RequestId, ClientRequestId, Date and ResponseHeaders.

    Piped input is sent concurrently (-ThrottleLimit, default 32 requests in flight), with one
    ShouldProcess and one result or error record per item, in input order.

    .PARAMETER CallId
    The unique identifier of call

    .PARAMETER InputObject
    Identity Parameter
    To construct, see NOTES section for INPUTOBJECT properties and create a hash table.

    Accepts from the pipeline: a hashtable or object with CallId (any case) or, failing that, Id
    (Get-MgCommunicationCall output); a JSON string such as '{"CallId":"..."}' (a string whose
    first non-blank character is '{' must be a valid JSON identity); or any other string, taken
    as the call id itself.

    .PARAMETER PassThru
    Returns true when the command succeeds

    .PARAMETER Headers
    Optional headers that will be added to the request, as a dictionary of name = value. Values
    are sent as text; an array value is sent comma-separated. Authorization, Host and
    Content-Length cannot be set.

    .PARAMETER ResponseHeadersVariable
    Optional Response Headers Variable: the name of a variable, set in the caller's scope, that
    receives the response headers as a case-insensitive dictionary of header name to string[].
    Set on success and on failure (empty when no response was received).

    .PARAMETER Break
    Accepted for compatibility with Microsoft.Graph; ignored.

    .PARAMETER HttpPipelineAppend
    Accepted for compatibility with Microsoft.Graph; not supported (a warning is written).

    .PARAMETER HttpPipelinePrepend
    Accepted for compatibility with Microsoft.Graph; not supported (a warning is written).

    .PARAMETER Proxy
    The URI of an HTTP proxy (http:// or https://, for example http://proxy.contoso.com:3128)
    that every request of this command goes through, instead of the proxy that the HTTPS_PROXY,
    HTTP_PROXY and NO_PROXY environment variables name (which are honoured otherwise, as
    PowerShell sees them in $env:).

    .PARAMETER ProxyCredential
    The user name and password for the -Proxy (sent as Basic Proxy-Authorization). Used only
    with -Proxy. The password is never written to any output stream.

    .PARAMETER ProxyUseDefaultCredentials
    Accepted for compatibility with Microsoft.Graph. MgKeepAlive has no default (integrated
    Windows) credentials to give a proxy: a warning is written once and the request goes to the
    proxy without credentials. Use -ProxyCredential for a proxy that needs a user name and password.

    .PARAMETER ThrottleLimit
    How many keep-alives of piped input are in flight at once (1 to 256, default 32). Piped items
    are collected into chunks (512 items, or 4 x ThrottleLimit when that is more) and each chunk
    is sent concurrently, at most ThrottleLimit requests at a time; the next chunk is sent while
    the results of the previous one are written. Everything else stays per item: one ShouldProcess
    per item, as it arrives (with -WhatIf nothing is sent), and one $true (-PassThru) or one error
    record per item, in input order, items that cannot be resolved included (their errors are not
    moved ahead of earlier items' results). Results therefore arrive in bursts, a chunk at a time.
    -ResponseHeadersVariable holds the headers of the last item written. With -ErrorAction Stop the
    command stops at the first failing item in input order and writes nothing for later items,
    but keep-alives of later items in the same or the next chunk may have been sent already (a
    keep-alive is harmless to repeat): a foreach loop with -CallId sends nothing after a failure.
    The requests themselves go out in no particular order. Ctrl+C cancels every request still in
    flight. A single -CallId, or a pipeline of one item, is sent as before. Long runs
    (more than 500 items) show a progress bar (Write-Progress): items done and keep-alives per
    second. Not in Microsoft.Graph.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Import-Module Microsoft.Graph.Beta.CloudCommunications

    Invoke-MgBetaKeepCommunicationCallAlive -CallId $callId

    .EXAMPLE
    'e71f0b00-0a1f-4c29-a0bb-7b2bc9e0d6a4', '2e1a0b00-2db4-4022-9570-243709c565ab' | Invoke-MgBetaKeepCommunicationCallAlive -PassThru

    Keeps two calls alive; call ids can be piped as plain strings. Writes $true for each call
    kept alive.

    .EXAMPLE
    Get-MgBetaCommunicationCall -CallId $callId | Invoke-MgBetaKeepCommunicationCallAlive

    Objects that carry only Id (the output of Get-MgCommunicationCall) are accepted, as are
    hashtables such as @{ CallId = $callId } and JSON strings such as '{"callId":"..."}'.

    .EXAMPLE
    Invoke-MgBetaKeepCommunicationCallAlive -CallId $callId -ResponseHeadersVariable headers
    $headers['request-id']

    Keeps the call alive and shows the request-id that Graph returned; $headers is set in the
    caller's scope, also when the request fails.

    .EXAMPLE
    try {
        Invoke-MgBetaKeepCommunicationCallAlive -CallId $callId -ErrorAction Stop
    } catch {
        if ($_.Exception.StatusCode -eq 404) {
            Write-Warning "Call $callId has ended (request-id $($_.Exception.RequestId)); cleaning up."
        } else { throw }
    }

    Stops on the first error and tells an ended call (404, ErrorCode itemNotFound) from other
    failures without parsing text.

    .EXAMPLE
    while ($true) {
        Invoke-MgBetaKeepCommunicationCallAlive -CallId $callId -ErrorAction Stop
        Start-Sleep -Seconds (15 * 60)
    }

    Keeps a call alive every 15 minutes, as Microsoft recommends, until it ends (a 404 then
    stops the loop).

    .EXAMPLE
    $callIds | Invoke-MgBetaKeepCommunicationCallAlive -ThrottleLimit 32 -PassThru -ErrorVariable failed -ErrorAction SilentlyContinue

    Keeps thousands of calls alive, 32 requests at a time. The output has one $true per call kept
    alive and $failed one error record per call that was not (404 for an ended call), both in the
    order of $callIds; -WhatIf would send nothing.

    .INPUTS
    Microsoft.Graph.PowerShell.Models.ICloudCommunicationsIdentity

    Any object with a CallId or Id property, a hashtable, a JSON identity string or a call id string.

    .OUTPUTS
    System.Boolean

    With -PassThru, $true for each call kept alive. Without it, nothing.

    .NOTES
    COMPLEX PARAMETER PROPERTIES

    To create the parameters described below, construct a hash table containing the appropriate properties. For information on hash tables, run Get-Help about_Hash_Tables.

    INPUTOBJECT <ICloudCommunicationsIdentity>: Identity Parameter
      [CallId <String>]: The unique identifier of call
      (the other identity properties are accepted and ignored)

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.beta.cloudcommunications/invoke-mgbetakeepcommunicationcallalive

    .LINK
    https://learn.microsoft.com/graph/api/call-keepalive?view=graph-rest-beta

    .LINK
    Invoke-MgKeepCommunicationCallAlive

    .LINK
    Connect-MgGraph
    #>
    [CmdletBinding(DefaultParameterSetName = 'Keep', SupportsShouldProcess, ConfirmImpact = 'Medium', PositionalBinding = $false)]
    [OutputType([bool])]
    param(
        [Parameter(Mandatory, ParameterSetName = 'Keep')]
        [string] $CallId,

        [Parameter(Mandatory, ParameterSetName = 'KeepViaIdentity', ValueFromPipeline)]
        [object] $InputObject,

        [Parameter()]
        [switch] $PassThru,

        [Parameter()]
        [System.Collections.IDictionary] $Headers,

        [Parameter()]
        [Alias('RHV')]
        [string] $ResponseHeadersVariable,

        [Parameter(DontShow)]
        [switch] $Break,

        [Parameter(DontShow)]
        [object[]] $HttpPipelineAppend,

        [Parameter(DontShow)]
        [object[]] $HttpPipelinePrepend,

        [Parameter(DontShow)]
        [uri] $Proxy,

        [Parameter(DontShow)]
        [pscredential] $ProxyCredential,

        [Parameter(DontShow)]
        [switch] $ProxyUseDefaultCredentials,

        [Parameter()]
        [ValidateRange(1, 256)]
        [int] $ThrottleLimit = 32
    )

    begin { $state = $null; $state = Initialize-MgkaKeepAlive -Cmdlet $PSCmdlet -ApiVersion 'beta' -ThrottleLimit $ThrottleLimit }
    process {
        if (-not $state.Bulk) {
            if ($PSCmdlet.ShouldProcess($CallId, 'Keep alive')) { Invoke-MgkaSingleKeepAlive -State $state -By Id -Value $CallId -DisplayId $CallId -Target $CallId }
            return
        }
        # Piped input, inline for the common case (a function call per item costs more than the
        # rest): a plain call id string. Everything else goes through Add-MgkaBulkItem.
        $pending = $state.Pending; $chunkSize = $state.ChunkSize
        foreach ($item in $InputObject) {
            if ($item -is [string] -and $item.Length -gt 0 -and ($first = [int]$item[0]) -gt 32 -and $first -lt 127 -and $first -ne 123 -and $first -ne 91) {
                if ($PSCmdlet.ShouldProcess($item, 'Keep alive')) {
                    $pending.Add($item)
                    if ($pending.Count -ge $chunkSize) { Send-MgkaBulkChunk -State $state }
                }
            } else { Add-MgkaBulkItem -State $state -Item $item }
        }
    }
    end { if ($state.Bulk) { Complete-MgkaBulk -State $state } }
    clean { if ($state -and $state.Bulk) { Stop-MgkaBulk -State $state } }
}

function Connect-MgGraph {
    <#
    .SYNOPSIS
    Connects MgKeepAlive to Microsoft Graph.

    .DESCRIPTION
    Connects to Microsoft Graph as an application, with the parameter sets and names of
    Microsoft.Graph.Authentication's Connect-MgGraph, so an existing script's Connect-MgGraph line
    works unchanged. Call keep-alive is an application-only API (application permission
    Calls.Initiate.All or Calls.AccessMedia.All), so the app-only sign-ins are supported:

      -ClientId -TenantId -ClientSecretCredential      a client secret (the credential's password)
      -ClientId -TenantId -CertificateThumbprint       a certificate in the CurrentUser\My store
      -ClientId -TenantId -CertificateSubjectName      the same, found by subject name
      -ClientId -TenantId -Certificate                 an X509Certificate2 with its private key
      -ClientId -TenantId -CertificatePath             a PFX or PEM file (MgKeepAlive extension)
      -EnvironmentVariable                             AZURE_TENANT_ID, AZURE_CLIENT_ID, ... (below)
      -Identity [-ClientId]                            an Azure managed identity
      -AccessToken                                     a token you already have (not renewed)

    Delegated sign-in (-Scopes, -UseDeviceCode, or no credential at all) is refused with an
    error: keep-alive cannot be called with a user's token.

    The first token is requested right away, so a wrong secret, app, tenant, cloud or certificate
    fails here with a terminating AuthenticationError whose ErrorId is the AADSTS code (for
    example AADSTS7000215) and whose exception has Error, ErrorCodes, TraceId, CorrelationId and
    HttpStatus. Afterwards the native library renews the token five minutes before it expires
    and once on a Graph 401. The connection is kept for the process and shared by every runspace.

    Secrets and private keys are handed to the native library as bytes; the copies made on the
    way are zeroed, and they are never written to any output stream. Certificates sign the
    client assertion with PS256 (header x5t#S256); the private key must be RSA and exportable.

    -EnvironmentVariable reads, from the PowerShell process environment ($env:):
    AZURE_TENANT_ID and AZURE_CLIENT_ID, and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH
    (PFX or PEM; AZURE_CLIENT_CERTIFICATE_PASSWORD; AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true
    sends the chain). A secret wins over a certificate. AZURE_USERNAME/AZURE_PASSWORD (a user
    sign-in) cannot call keep-alive and are refused.

    Token requests go through the proxy that HTTPS_PROXY, HTTP_PROXY and NO_PROXY name (read
    from $env:, upper-case names first).

    -Identity uses the App Service / Functions / Container Apps endpoint when IDENTITY_ENDPOINT
    and IDENTITY_HEADER are set, else the VM instance metadata service (IMDS,
    http://169.254.169.254). For tests and diagnostics, MGKEEPALIVE_IMDS_ENDPOINT replaces the
    IMDS base URL.

    .PARAMETER Scopes
    Delegated permissions. Not supported: keep-alive needs application permissions, so
    Connect-MgGraph fails with an error that names the app-only alternatives.

    .PARAMETER ClientId
    The application (client) id of your app registration. With -Identity: the client id of a
    user-assigned managed identity (omit it for the system-assigned identity). With
    -ClientSecretCredential it may be omitted: the credential's user name is then the client id.

    .PARAMETER TenantId
    The tenant to sign in to: its id (GUID) or a verified domain such as contoso.onmicrosoft.com.

    .PARAMETER CertificateSubjectName
    The subject of a certificate in the CurrentUser\My store, for example 'CN=KeepAliveApp'
    (a distinguished name, or a part of the subject). Among several matches, the valid one with
    a private key that expires last is used.

    .PARAMETER CertificateThumbprint
    The thumbprint (SHA-1, 40 hex digits) of a certificate in the CurrentUser\My store. .NET
    provides that store on Linux and macOS too (~/.dotnet/corefx/cryptography/x509stores/my).

    .PARAMETER Certificate
    An X509Certificate2 with an exportable RSA private key.

    .PARAMETER CertificatePath
    MgKeepAlive extension: the path of a certificate file with its private key, PFX/PKCS#12
    (.pfx, .p12) or PEM (certificate and PKCS#8 or RSA key in one file), for systems without a
    certificate store.

    .PARAMETER CertificatePassword
    MgKeepAlive extension: the password of the -CertificatePath file (PFX, or an encrypted PEM key).

    .PARAMETER SendCertificateChain
    Sends the certificate and its chain (x5c) in the client assertion, for subject name/issuer
    authentication (certificate rollover without re-registering). The chain is built without a
    revocation check.

    .PARAMETER ClientSecretCredential
    A PSCredential whose password is the client secret (its user name is the client id when
    -ClientId is not given), for example Get-Credential -UserName $appId.

    .PARAMETER AccessToken
    An access token for Microsoft Graph, as a SecureString. It is used as is and not renewed.

    .PARAMETER EnvironmentVariable
    Signs in with the AZURE_* environment variables (see the description).

    .PARAMETER Identity
    Signs in with the managed identity of the Azure resource this runs on (see the description).

    .PARAMETER UseDeviceCode
    Delegated device-code sign-in. Not supported (see -Scopes).

    .PARAMETER ContextScope
    Accepted for compatibility. MgKeepAlive keeps connections for the process only (Process);
    CurrentUser writes a warning.

    .PARAMETER Environment
    The name of the cloud environment to connect to (Global, USGov, USGovDoD, China or one added
    with Add-MgEnvironment). Default: Global. Tokens are requested from that cloud's login
    endpoint for its Graph endpoint ({graph}/.default).

    .PARAMETER ClientTimeout
    The HTTP client timeout in seconds: sets ClientTimeout of the request context (see
    Set-MgRequestContext and Get-MgRequestContext), which bounds the token requests of this
    connect and every keep-alive, retries included. Default: 300.

    .PARAMETER NoWelcome
    Hides the welcome message.

    .PARAMETER Break
    Accepted for compatibility with Microsoft.Graph; ignored.

    .EXAMPLE
    $credential = Get-Credential -UserName $appId -Message 'Client secret'
    Connect-MgGraph -TenantId contoso.onmicrosoft.com -ClientSecretCredential $credential -NoWelcome

    Signs in with a client secret; the credential's user name is the client id.

    .EXAMPLE
    Connect-MgGraph -ClientId $appId -TenantId $tenantId -CertificateThumbprint 0123456789ABCDEF0123456789ABCDEF01234567

    Signs in with a certificate from the CurrentUser\My store.

    .EXAMPLE
    Connect-MgGraph -ClientId $appId -TenantId $tenantId -CertificatePath ./keepalive.pfx -CertificatePassword (Read-Host -AsSecureString)

    Signs in with a certificate file (an MgKeepAlive extension for systems without a store).

    .EXAMPLE
    Connect-MgGraph -EnvironmentVariable -NoWelcome

    Signs in with AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate).

    .EXAMPLE
    Connect-MgGraph -Identity -ClientId $userAssignedIdentityClientId

    Signs in with a user-assigned managed identity (omit -ClientId for the system-assigned one).

    .EXAMPLE
    try {
        Connect-MgGraph -ClientId $appId -TenantId $tenantId -ClientSecretCredential $credential -ErrorAction Stop
    } catch {
        "$($_.FullyQualifiedErrorId): trace id $($_.Exception.TraceId)"
    }

    Shows, for example, 'AADSTS7000215,Connect-MgGraph: trace id ...' for a wrong secret.

    .EXAMPLE
    $token = ConvertTo-SecureString $env:GRAPH_TOKEN -AsPlainText -Force
    Connect-MgGraph -AccessToken $token -Environment USGov -NoWelcome

    Connects to the US Government cloud with an access token you already have.

    .INPUTS
    None

    .OUTPUTS
    None

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/connect-mggraph

    .LINK
    Get-MgContext

    .LINK
    Disconnect-MgGraph

    .LINK
    Get-MgEnvironment
    #>
    [CmdletBinding(DefaultParameterSetName = 'UserParameterSet', PositionalBinding = $false)]
    [OutputType([void])]
    [Alias('Connect-Graph')]
    param(
        [Parameter(ParameterSetName = 'UserParameterSet', Position = 0)]
        [string[]] $Scopes,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet', Mandatory, Position = 0)]
        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet')]
        [Parameter(ParameterSetName = 'UserParameterSet')]
        [Parameter(ParameterSetName = 'IdentityParameterSet')]
        [Alias('AppId', 'ApplicationId')]
        [ValidateNotNullOrEmpty()]
        [string] $ClientId,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet', Position = 1)]
        [Alias('CertificateSubject', 'CertificateName')]
        [ValidateNotNullOrEmpty()]
        [string] $CertificateSubjectName,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet', Position = 2)]
        [ValidateNotNullOrEmpty()]
        [string] $CertificateThumbprint,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [bool] $SendCertificateChain,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [System.Security.Cryptography.X509Certificates.X509Certificate2] $Certificate,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [ValidateNotNullOrEmpty()]
        [string] $CertificatePath,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [securestring] $CertificatePassword,

        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet', Mandatory)]
        [Alias('SecretCredential', 'Credential')]
        [pscredential] $ClientSecretCredential,

        [Parameter(ParameterSetName = 'AccessTokenParameterSet', Mandatory, Position = 0)]
        [securestring] $AccessToken,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet')]
        [Parameter(ParameterSetName = 'UserParameterSet', Position = 1)]
        [Alias('Audience', 'Tenant')]
        [ValidateNotNullOrEmpty()]
        [string] $TenantId,

        [Parameter(ParameterSetName = 'AppCertificateParameterSet')]
        [Parameter(ParameterSetName = 'AppSecretCredentialParameterSet')]
        [Parameter(ParameterSetName = 'UserParameterSet')]
        [Parameter(ParameterSetName = 'IdentityParameterSet')]
        [Parameter(ParameterSetName = 'EnvironmentVariableParameterSet')]
        [ValidateSet('Process', 'CurrentUser')]
        [string] $ContextScope,

        [Parameter(ParameterSetName = 'EnvironmentVariableParameterSet', Mandatory)]
        [switch] $EnvironmentVariable,

        [Parameter(ParameterSetName = 'IdentityParameterSet', Mandatory)]
        [Alias('ManagedIdentity', 'ManagedServiceIdentity', 'MSI')]
        [switch] $Identity,

        [Parameter(ParameterSetName = 'UserParameterSet')]
        [Alias('UseDeviceAuthentication', 'DeviceCode', 'DeviceAuth', 'Device')]
        [switch] $UseDeviceCode,

        [Parameter()]
        [Alias('EnvironmentName', 'NationalCloud')]
        [ValidateNotNullOrEmpty()]
        [string] $Environment,

        [Parameter()]
        [ValidateRange(1, 2147483)]
        [double] $ClientTimeout,

        [Parameter()]
        [switch] $NoWelcome,

        [Parameter(DontShow)]
        [switch] $Break
    )

    Test-MgkaCoexistence -Cmdlet $PSCmdlet
    $set = $PSCmdlet.ParameterSetName
    if ($set -eq 'UserParameterSet') {
        $how = if ($UseDeviceCode) { 'Device-code sign-in (-UseDeviceCode)' } elseif ($Scopes) { 'Delegated sign-in (-Scopes)' } else { 'Interactive (delegated) sign-in' }
        $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                [System.NotSupportedException]::new(("$how cannot keep calls alive: call keep-alive needs an application permission " +
                    '(Calls.Initiate.All or Calls.AccessMedia.All) and an app-only token. Sign in as the application instead: ' +
                    '-ClientId -TenantId -ClientSecretCredential, -ClientId -TenantId -CertificateThumbprint (or -CertificateSubjectName, ' +
                    '-Certificate, -CertificatePath), -Identity (managed identity), -EnvironmentVariable, or -AccessToken with an app-only token.')),
                'DelegatedAuthenticationNotSupported', [System.Management.Automation.ErrorCategory]::InvalidOperation, $null))
    }
    if ($ContextScope -eq 'CurrentUser') {
        Write-Warning 'MgKeepAlive keeps connections for this process only (ContextScope Process); nothing is cached for the current user.'
    }
    if ($PSBoundParameters.ContainsKey('ClientTimeout')) {
        # Like Microsoft.Graph: -ClientTimeout sets the request context's ClientTimeout (process-wide,
        # Get-MgRequestContext), which bounds this connect's token requests and every keep-alive.
        $null = Set-MgkaRequestContext -Cmdlet $PSCmdlet -Settings ([ordered]@{ ClientTimeout = $ClientTimeout }) -Terminating
    }

    if ($set -in 'AppSecretCredentialParameterSet', 'AppCertificateParameterSet', 'EnvironmentVariableParameterSet' -and -not $script:AuthHelpersLoaded) {
        # Loaded on first use (see MgKeepAlive.Auth.ps1); defines its functions in script scope.
        . "$PSScriptRoot/MgKeepAlive.Auth.ps1"
        $script:AuthHelpersLoaded = $true
    }
    $request = [ordered]@{ authType = $null }
    if ($Environment) { $request['environment'] = $Environment }
    $secret = $null
    $start = $null
    try {
        switch ($set) {
            'AccessTokenParameterSet' {
                $request['authType'] = 'AccessToken'
                $secret = ConvertFrom-MgkaSecureString -Cmdlet $PSCmdlet -SecureString $AccessToken -Parameter 'AccessToken'
            }
            'AppSecretCredentialParameterSet' {
                $request['authType'] = 'ClientSecret'
                $request['tenantId'] = $TenantId
                $request['clientId'] = if ($ClientId) { $ClientId } else { $ClientSecretCredential.UserName }
                Assert-MgkaAppIdentity -Cmdlet $PSCmdlet -Request $request -ClientIdSource 'ClientId (or the user name of -ClientSecretCredential)' -TenantIdSource 'TenantId'
                $secret = ConvertFrom-MgkaSecureString -Cmdlet $PSCmdlet -SecureString $ClientSecretCredential.Password -Parameter 'ClientSecretCredential'
            }
            'AppCertificateParameterSet' {
                $request['authType'] = 'ClientCertificate'
                $request['tenantId'] = $TenantId
                $request['clientId'] = $ClientId
                Assert-MgkaAppIdentity -Cmdlet $PSCmdlet -Request $request -ClientIdSource 'ClientId' -TenantIdSource 'TenantId'
                $sources = @('Certificate', 'CertificateThumbprint', 'CertificateSubjectName', 'CertificatePath').Where({ $PSBoundParameters.ContainsKey($_) })
                if ($sources.Count -ne 1) {
                    $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                            [System.ArgumentException]::new("Give exactly one of -CertificateThumbprint, -CertificateSubjectName, -Certificate or -CertificatePath$(if ($sources.Count) { " (given: -$($sources -join ', -'))" })."),
                            'CertificateParameterMissing', [System.Management.Automation.ErrorCategory]::InvalidArgument, $null))
                }
                $owned = $null
                try {
                    $cert = switch ($sources[0]) {
                        'Certificate' { $Certificate }
                        'CertificateThumbprint' { $owned = Find-MgkaCertificate -Cmdlet $PSCmdlet -Thumbprint $CertificateThumbprint; $owned }
                        'CertificateSubjectName' { $owned = Find-MgkaCertificate -Cmdlet $PSCmdlet -SubjectName $CertificateSubjectName; $owned }
                        'CertificatePath' {
                            $owned = Import-MgkaCertificateFile -Cmdlet $PSCmdlet -Path $PSCmdlet.GetUnresolvedProviderPathFromPSPath($CertificatePath) -Password $CertificatePassword
                            $owned
                        }
                    }
                    $request['certificate'] = New-MgkaCertificateRequest -Certificate $cert -SendChain $SendCertificateChain
                    $secret = Export-MgkaPrivateKey -Cmdlet $PSCmdlet -Certificate $cert
                } finally {
                    if ($owned) { $owned.Dispose() }
                }
            }
            'EnvironmentVariableParameterSet' {
                $secret = Read-MgkaEnvironmentCredential -Cmdlet $PSCmdlet -Request $request
            }
            'IdentityParameterSet' {
                $request['authType'] = 'ManagedIdentity'
                if ($ClientId) { $request['clientId'] = $ClientId }
                $managed = [ordered]@{}
                $identityEndpoint = [Environment]::GetEnvironmentVariable('IDENTITY_ENDPOINT')
                $identityHeader = [Environment]::GetEnvironmentVariable('IDENTITY_HEADER')
                if ($identityEndpoint -and $identityHeader) {
                    Write-Verbose "Managed identity: App Service style endpoint $identityEndpoint (IDENTITY_ENDPOINT)."
                    $managed['identityEndpoint'] = $identityEndpoint
                    $secret = [byte[]]::new($script:Utf8.GetByteCount($identityHeader))
                    [void]$script:Utf8.GetBytes($identityHeader, 0, $identityHeader.Length, $secret, 0)
                } else {
                    $imds = [Environment]::GetEnvironmentVariable('MGKEEPALIVE_IMDS_ENDPOINT')
                    if ($imds) { $managed['imdsEndpoint'] = $imds }
                    Write-Verbose "Managed identity: instance metadata service $(if ($imds) { "$imds (MGKEEPALIVE_IMDS_ENDPOINT)" } else { 'http://169.254.169.254' })."
                }
                $request['managedIdentity'] = $managed
            }
        }
        # Token requests go through the proxy the host's variables name, as keep-alives do.
        $request['environmentProxy'] = Get-MgkaEnvironmentProxy
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['Environment'] = ConvertTo-Json -InputObject $request -Compress -Depth 5
        if ($DebugPreference -ne 'SilentlyContinue') {
            # The request holds no secret; certificates are shown by thumbprint, not in full.
            $shown = [ordered]@{}
            foreach ($entry in $request.GetEnumerator()) { $shown[$entry.Key] = $entry.Value }
            # A proxy URL may carry a user name and password: shown without them.
            $proxies = [ordered]@{}
            foreach ($entry in $request['environmentProxy'].GetEnumerator()) {
                $proxies[$entry.Key] = $entry.Value -replace '(?<=://)[^/@]*@', '***@'
            }
            $shown['environmentProxy'] = $proxies
            if ($request['certificate']) {
                $der = [Convert]::FromBase64String($request['certificate']['der'])
                $shown['certificate'] = [ordered]@{
                    thumbprint = [Convert]::ToHexString([System.Security.Cryptography.SHA1]::HashData($der))
                    chain      = $request['certificate']['chain'].Count
                    sendChain  = $request['certificate']['sendChain']
                }
            }
            Write-Debug "Connect request: $(ConvertTo-Json -InputObject $shown -Compress -Depth 5)"
        }
        $start = Invoke-MgkaNative ConnectStart -Text $text -Secret $secret
    } finally {
        # The library copied the secret before mgka_connect_start returned.
        if ($null -ne $secret) { [Array]::Clear($secret) }
    }

    $result = if ($start.Status -eq $script:MGKA_OK) { Wait-MgkaOperation -Operation $start.Operation } else { $start }
    if ($result.Status -ne $script:MGKA_OK) {
        $info = ConvertFrom-MgkaJson $result.Json
        if ($info -and $info['kind'] -eq 'Cancelled') { throw [System.Management.Automation.PipelineStoppedException]::new() }
        $record = New-MgkaErrorRecord -Status $result.Status -Info $info -TargetObject $Environment -Activity 'Connect-MgGraph'
        if ($info -and $info['kind'] -eq 'AuthError') {
            Write-Verbose "Token request failed: $($info['error']) (HTTP $($info['httpStatus'])) at $($info['tokenEndpoint']); trace id $($info['traceId']), correlation id $($info['correlationId'])."
        }
        $PSCmdlet.ThrowTerminatingError($record)
    }
    $info = ConvertFrom-MgkaJson $result.Json
    $context = ConvertTo-MgkaContext $info
    Set-MgkaConnectedCloud -EnvironmentName $context.Environment
    Write-Verbose "Connected to Microsoft Graph ($($context.Environment)) with $($context.AuthType) ($($context.TokenCredentialType))."
    if (-not $NoWelcome) {
        $via = switch ($context.AuthType) {
            'AppOnly' { "apponly access using $($context.ClientId)" }
            'ManagedIdentity' { "managed identity$(if ($context.ClientId) { " $($context.ClientId)" })" }
            default { 'a user-provided access token' }
        }
        $informationAction = if ($PSBoundParameters.ContainsKey('InformationAction')) { $PSBoundParameters['InformationAction'] } else { 'Continue' }
        Write-Information -InformationAction $informationAction -MessageData ("Welcome to Microsoft Graph!`n`n" +
            "Connected via $via (MgKeepAlive $script:ModuleVersion, environment $($context.Environment))`n`n" +
            'NOTE: You can use the -NoWelcome parameter to suppress this message.')
    }
}

function Disconnect-MgGraph {
    <#
    .SYNOPSIS
    Disconnects MgKeepAlive from Microsoft Graph.

    .DESCRIPTION
    Ends the current Microsoft Graph connection of the process: the native library forgets and
    zeroes its credential (secret, private key or token) and its cached tokens.
    Also stops the background keeper: every call kept with Start-MgCommunicationCallKeepAlive is
    stopped and forgotten.
    Returns the context of the connection that was closed (see Get-MgContext). When there is no
    connection, writes a non-terminating error.

    .EXAMPLE
    Disconnect-MgGraph

    Signs out and shows the context that was closed.

    .EXAMPLE
    Disconnect-MgGraph -ErrorAction SilentlyContinue | Out-Null

    Signs out if connected, silently.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.Context

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/disconnect-mggraph

    .LINK
    Connect-MgGraph
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.Context')]
    [Alias('Disconnect-Graph')]
    param()

    $result = Invoke-MgkaNative Disconnect
    if ($result.Status -ne $script:MGKA_OK) {
        $PSCmdlet.WriteError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -Activity 'Disconnect-MgGraph'))
        return
    }
    $context = ConvertTo-MgkaContext (ConvertFrom-MgkaJson $result.Json)
    Set-MgkaConnectedCloud -EnvironmentName $null
    if ($null -eq $context) {
        $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new(
                [System.InvalidOperationException]::new('No application to sign out from.'),
                'NotConnected', [System.Management.Automation.ErrorCategory]::InvalidOperation, $null))
        return
    }
    $context
}

function Get-MgContext {
    <#
    .SYNOPSIS
    Gets the current Microsoft Graph connection of MgKeepAlive.

    .DESCRIPTION
    Returns the context of the current connection: ClientId, TenantId, Scopes, AuthType,
    TokenCredentialType, CertificateThumbprint, Environment, ContextScope and AppName. Returns
    nothing ($null) when not connected, so scripts can test 'if (-not (Get-MgContext))'.
    Never returns the token.

    .EXAMPLE
    Get-MgContext

    Shows the current connection.

    .EXAMPLE
    if (-not (Get-MgContext)) { Connect-MgGraph -AccessToken $token -NoWelcome }

    Connects only when not connected yet.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.Context

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/get-mgcontext

    .LINK
    Connect-MgGraph
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.Context')]
    param()

    Test-MgkaCoexistence -Cmdlet $PSCmdlet
    $result = Invoke-MgkaNative Context
    if ($result.Status -ne $script:MGKA_OK) {
        $PSCmdlet.WriteError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -Activity 'Get-MgContext'))
        return
    }
    ConvertTo-MgkaContext (ConvertFrom-MgkaJson $result.Json)
}

function Set-MgRequestContext {
    <#
    .SYNOPSIS
    Sets the retry and timeout settings of Microsoft Graph requests.

    .DESCRIPTION
    Changes the request settings that every keep-alive uses, with the parameters of
    Microsoft.Graph.Authentication's Set-MgRequestContext. A setting not given keeps its value.
    The settings belong to the process: they apply to keep-alives started afterwards in every
    runspace (ForEach-Object -Parallel, jobs in this process), like the connection. Returns the
    settings now in force (see Get-MgRequestContext).

    Keep-alives are retried after 429 (Too Many Requests), 503 and 504 answers and after
    connection failures, honouring Retry-After (seconds, fractions of seconds or an HTTP date);
    without Retry-After the waits are RetryDelay x 2^n seconds (3, 6, 12, ...), each at most
    180 s. Retries carry a Retry-Attempt header. 400, 403 and 404 answers are never retried.

    .PARAMETER RetryDelay
    The waiting time in seconds before retrying a request when the server gives no Retry-After,
    doubled for each further retry, with a maximum value of 180 seconds. Default: 3.

    .PARAMETER MaxRetry
    The maximum number of retries for a request, with a maximum value of 10. Default: 3.
    0 turns retries off.

    .PARAMETER RetriesTimeLimit
    The maximum time in seconds that the retries of one request may spend waiting. Default: 0
    (no limit other than ClientTimeout). A retry that would wait beyond it is not made.

    .PARAMETER ClientTimeout
    The HTTP client timeout in seconds: it bounds a whole keep-alive, its retries and waits
    included, so a hung server never holds a call longer than this. Default: 300.
    Connect-MgGraph -ClientTimeout sets it too.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Set-MgRequestContext -MaxRetry 5 -RetryDelay 2

    Retries throttled or unavailable requests up to 5 times, waiting 2, 4, 8, 16 and 32 seconds
    when Graph does not say how long (Retry-After).

    .EXAMPLE
    Set-MgRequestContext -ClientTimeout 30 -RetriesTimeLimit 20

    Gives up on a keep-alive after 30 seconds at most, and stops retrying once the retries
    would wait more than 20 seconds in all.

    .EXAMPLE
    Set-MgRequestContext -MaxRetry 0

    Turns retries off: every keep-alive is sent once.

    .INPUTS
    None

    Objects with RetryDelay, MaxRetry, RetriesTimeLimit or ClientTimeout properties bind by
    property name.

    .OUTPUTS
    MgKeepAlive.RequestContext

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/set-mgrequestcontext

    .LINK
    Get-MgRequestContext
    #>
    [CmdletBinding(SupportsShouldProcess)]
    [OutputType('MgKeepAlive.RequestContext')]
    param(
        [Parameter(ValueFromPipelineByPropertyName)]
        [ValidateRange(0, 180)]
        [int] $RetryDelay,

        [Parameter(ValueFromPipelineByPropertyName)]
        [ValidateRange(0, 10)]
        [int] $MaxRetry,

        [Parameter(ValueFromPipelineByPropertyName)]
        [ValidateRange(0, [int]::MaxValue)]
        [int] $RetriesTimeLimit,

        [Parameter(ValueFromPipelineByPropertyName)]
        [ValidateRange(1, [int]::MaxValue)]
        [int] $ClientTimeout
    )

    process {
        $settings = [ordered]@{}
        foreach ($name in 'RetryDelay', 'MaxRetry', 'RetriesTimeLimit', 'ClientTimeout') {
            if ($PSBoundParameters.ContainsKey($name)) { $settings[$name] = $PSBoundParameters[$name] }
        }
        if ($settings.Count -gt 0) {
            $what = ($settings.GetEnumerator() | ForEach-Object { "$($_.Key) $($_.Value)" }) -join ', '
            if (-not $PSCmdlet.ShouldProcess('request context (this process)', "Set $what")) { return }
        }
        Set-MgkaRequestContext -Cmdlet $PSCmdlet -Settings $settings
    }
}

function Get-MgRequestContext {
    <#
    .SYNOPSIS
    Gets the retry and timeout settings of Microsoft Graph requests.

    .DESCRIPTION
    Returns the request settings of the process that every keep-alive uses (see
    Set-MgRequestContext): RetryDelay and MaxRetry as numbers, RetriesTimeLimit and
    ClientTimeout as TimeSpans, like Microsoft.Graph.Authentication. Defaults: RetryDelay 3,
    MaxRetry 3, RetriesTimeLimit 00:00:00 (no limit), ClientTimeout 00:05:00.

    .EXAMPLE
    Get-MgRequestContext

    Shows the settings in force.

    .EXAMPLE
    (Get-MgRequestContext).ClientTimeout.TotalSeconds

    The client timeout in seconds.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.RequestContext

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/get-mgrequestcontext

    .LINK
    Set-MgRequestContext
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.RequestContext')]
    param()

    Set-MgkaRequestContext -Cmdlet $PSCmdlet
}

function Get-MgEnvironment {
    <#
    .SYNOPSIS
    Gets the Microsoft Graph cloud environments.

    .DESCRIPTION
    Lists the environments Connect-MgGraph -Environment accepts: the built-in clouds Global,
    USGov, USGovDoD and China, and those added with Add-MgEnvironment (Type User-defined). Each
    has Name, AzureADEndpoint, GraphEndpoint and Type. Environments live for the process.

    .PARAMETER Name
    The name of the environment to get (case-insensitive; wildcards allowed). An unknown name
    without wildcards is a non-terminating ObjectNotFound error.

    .EXAMPLE
    Get-MgEnvironment

    Lists all environments.

    .EXAMPLE
    Get-MgEnvironment -Name USGov

    Shows the endpoints of the US Government L4 cloud.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.Environment

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/get-mgenvironment

    .LINK
    Add-MgEnvironment
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Position = 0)]
        [ValidateNotNullOrEmpty()]
        [string] $Name
    )

    $result = Invoke-MgkaNative EnvironmentList
    if ($result.Status -ne $script:MGKA_OK) {
        $PSCmdlet.WriteError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -Activity 'Get-MgEnvironment'))
        return
    }
    $environments = foreach ($entry in (ConvertFrom-MgkaJson $result.Json)) { ConvertTo-MgkaEnvironment $entry }
    if (-not $PSBoundParameters.ContainsKey('Name')) { return $environments }

    $pattern = [WildcardPattern]::new($Name, [System.Management.Automation.WildcardOptions]::IgnoreCase)
    $found = @($environments | Where-Object { $pattern.IsMatch($_.Name) })
    if ($found.Count -eq 0 -and -not [WildcardPattern]::ContainsWildcardCharacters($Name)) {
        $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new(
                [System.Management.Automation.ItemNotFoundException]::new("Environment '$Name' was not found. Known environments: $(($environments.Name) -join ', ')."),
                'EnvironmentNotFound', [System.Management.Automation.ErrorCategory]::ObjectNotFound, $Name))
        return
    }
    $found
}

function Add-MgEnvironment {
    <#
    .SYNOPSIS
    Adds a Microsoft Graph cloud environment.

    .DESCRIPTION
    Defines a user-defined environment (Type User-defined) that Connect-MgGraph -Environment
    can use, for example a private cloud or the project's Graph emulator. Adding a name that
    exists as a user-defined environment replaces it; built-in environments cannot be redefined.
    Endpoints must be https, except http to a loopback host (127.0.0.1, ::1, localhost).
    Environments live for the process. Returns the environment.

    .PARAMETER Name
    The name of the environment.

    .PARAMETER AzureADEndpoint
    The login endpoint (Microsoft Entra ID authority host), for example https://login.microsoftonline.com.
    Tokens are requested from {AzureADEndpoint}/{tenant}/oauth2/v2.0/token.

    .PARAMETER GraphEndpoint
    The Microsoft Graph endpoint, for example https://graph.microsoft.com. The token scope is
    {GraphEndpoint}/.default.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Add-MgEnvironment -Name Emulator -AzureADEndpoint http://127.0.0.1:5555 -GraphEndpoint http://127.0.0.1:5555

    Defines an environment for a Graph emulator on this machine.

    .INPUTS
    None

    .OUTPUTS
    MgKeepAlive.Environment

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/add-mgenvironment

    .LINK
    Get-MgEnvironment

    .LINK
    Set-MgEnvironment

    .LINK
    Remove-MgEnvironment
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Low')]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)]
        [ValidateNotNullOrEmpty()]
        [string] $Name,

        [Parameter(Mandatory, Position = 1, ValueFromPipelineByPropertyName)]
        [Alias('AzureADUrl')]
        [ValidateNotNullOrEmpty()]
        [string] $AzureADEndpoint,

        [Parameter(Mandatory, Position = 2, ValueFromPipelineByPropertyName)]
        [Alias('GraphUrl')]
        [ValidateNotNullOrEmpty()]
        [string] $GraphEndpoint
    )

    process {
        if (-not $PSCmdlet.ShouldProcess($Name, 'Add environment')) { return }
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['Environment'] = ConvertTo-Json -Compress -InputObject ([ordered]@{
                name = $Name; azureADEndpoint = $AzureADEndpoint; graphEndpoint = $GraphEndpoint })
        $result = Invoke-MgkaNative EnvironmentAdd -Text $text
        if ($result.Status -ne $script:MGKA_OK) {
            $PSCmdlet.WriteError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -TargetObject $Name -Activity 'Add-MgEnvironment'))
            return
        }
        ConvertTo-MgkaEnvironment (ConvertFrom-MgkaJson $result.Json)
    }
}


function Set-MgEnvironment {
    <#
    .SYNOPSIS
    Changes a user-defined Microsoft Graph cloud environment.

    .DESCRIPTION
    Changes the endpoints of an environment added with Add-MgEnvironment; an endpoint not given
    keeps its value. The built-in environments (Global, USGov, USGovDoD, China) cannot be
    changed, and an unknown name is an ObjectNotFound error (use Add-MgEnvironment to add one).
    A connection already made keeps the endpoints it was made with; connect again to use the new
    ones. Returns the changed environment.

    .PARAMETER Name
    The name of the user-defined environment to change.

    .PARAMETER AzureADEndpoint
    The new login endpoint (Microsoft Entra ID authority host).

    .PARAMETER GraphEndpoint
    The new Microsoft Graph endpoint.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Set-MgEnvironment -Name Emulator -GraphEndpoint http://127.0.0.1:5556

    Points the Emulator environment at another port.

    .INPUTS
    System.String

    Objects with Name, AzureADEndpoint and GraphEndpoint properties bind by property name.

    .OUTPUTS
    MgKeepAlive.Environment

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/set-mgenvironment

    .LINK
    Add-MgEnvironment

    .LINK
    Get-MgEnvironment
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Low')]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)]
        [ValidateNotNullOrEmpty()]
        [string] $Name,

        [Parameter(Position = 1, ValueFromPipelineByPropertyName)]
        [Alias('AzureADUrl')]
        [ValidateNotNullOrEmpty()]
        [string] $AzureADEndpoint,

        [Parameter(Position = 2, ValueFromPipelineByPropertyName)]
        [Alias('GraphUrl')]
        [ValidateNotNullOrEmpty()]
        [string] $GraphEndpoint
    )

    process {
        $list = Invoke-MgkaNative EnvironmentList
        if ($list.Status -ne $script:MGKA_OK) {
            $PSCmdlet.WriteError((New-MgkaErrorRecord -Status $list.Status -Info (ConvertFrom-MgkaJson $list.Json) -TargetObject $Name -Activity 'Set-MgEnvironment'))
            return
        }
        $current = $null
        foreach ($entry in (ConvertFrom-MgkaJson $list.Json)) {
            if ([string]::Equals($entry['name'], $Name, [StringComparison]::OrdinalIgnoreCase)) { $current = $entry; break }
        }
        if ($null -eq $current) {
            $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new(
                    [System.Management.Automation.ItemNotFoundException]::new("Environment '$Name' was not found; add it with Add-MgEnvironment."),
                    'EnvironmentNotFound', [System.Management.Automation.ErrorCategory]::ObjectNotFound, $Name))
            return
        }
        if ($current['type'] -eq 'Built-in') {
            $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new(
                    [System.ArgumentException]::new("'$($current['name'])' is a built-in environment and cannot be changed; add a user-defined one with Add-MgEnvironment."),
                    'BuiltInEnvironment', [System.Management.Automation.ErrorCategory]::InvalidArgument, $Name))
            return
        }
        $login = if ($AzureADEndpoint) { $AzureADEndpoint } else { $current['azureADEndpoint'] }
        $graph = if ($GraphEndpoint) { $GraphEndpoint } else { $current['graphEndpoint'] }
        if (-not $PSCmdlet.ShouldProcess($current['name'], "Set environment (AzureADEndpoint $login, GraphEndpoint $graph)")) { return }
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['Environment'] = ConvertTo-Json -Compress -InputObject ([ordered]@{
                name = $current['name']; azureADEndpoint = $login; graphEndpoint = $graph })
        $result = Invoke-MgkaNative EnvironmentAdd -Text $text
        if ($result.Status -ne $script:MGKA_OK) {
            $PSCmdlet.WriteError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -TargetObject $Name -Activity 'Set-MgEnvironment'))
            return
        }
        ConvertTo-MgkaEnvironment (ConvertFrom-MgkaJson $result.Json)
    }
}

function Remove-MgEnvironment {
    <#
    .SYNOPSIS
    Removes a user-defined Microsoft Graph cloud environment.

    .DESCRIPTION
    Removes an environment added with Add-MgEnvironment and returns it. The built-in
    environments cannot be removed, nor the environment of the current connection (disconnect
    first); an unknown name is an ObjectNotFound error.

    .PARAMETER Name
    The name of the user-defined environment to remove.

    .PARAMETER WhatIf
    Shows what would happen if the cmdlet runs.
    The cmdlet is not run.

    .PARAMETER Confirm
    Prompts you for confirmation before running the cmdlet.

    .EXAMPLE
    Remove-MgEnvironment -Name Emulator

    Removes the Emulator environment.

    .EXAMPLE
    Get-MgEnvironment | Where-Object Type -EQ 'User-defined' | Remove-MgEnvironment -WhatIf

    Shows which user-defined environments would be removed.

    .INPUTS
    System.String

    Objects with a Name property bind by property name.

    .OUTPUTS
    MgKeepAlive.Environment

    .LINK
    https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/remove-mgenvironment

    .LINK
    Add-MgEnvironment

    .LINK
    Get-MgEnvironment
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Mandatory, Position = 0, ValueFromPipelineByPropertyName)]
        [ValidateNotNullOrEmpty()]
        [string] $Name
    )

    process {
        if (-not $PSCmdlet.ShouldProcess($Name, 'Remove environment')) { return }
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['Name'] = $Name
        $result = Invoke-MgkaNative EnvironmentRemove -Text $text
        if ($result.Status -ne $script:MGKA_OK) {
            $PSCmdlet.WriteError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -TargetObject $Name -Activity 'Remove-MgEnvironment'))
            return
        }
        ConvertTo-MgkaEnvironment (ConvertFrom-MgkaJson $result.Json)
    }
}

#endregion

#region Keeper ------------------------------------------------------------------------------------
# The background keeper (Start/Get/Stop/Wait-MgCommunicationCallKeepAlive) runs in the native
# library and is process-wide: every runspace sees the same kept calls. Its four exports are bound
# on first use (Initialize-MgkaKeeper), so the import does no more work than before.

$script:KeeperNative = $null
# Ids per mgka_keeper_start / mgka_keeper_stop request.
$script:KeeperBatchSize = 1000
# Longest native wait of Wait-MgCommunicationCallKeepAlive (how soon Ctrl+C is honoured).
$script:KeeperWaitSliceMs = 200

function Initialize-MgkaKeeper {
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

function Invoke-MgkaKeeper {
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

function ConvertTo-MgkaJsonArray {
    # string list -> JSON array text (ids were checked for lone surrogates, which the serializer
    # would replace silently).
    param([System.Collections.Generic.IEnumerable[string]] $Items)
    [System.Text.Json.JsonSerializer]::Serialize([string[]]@($Items), [string[]])
}

function ConvertFrom-MgkaKeeperStates {
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

function Get-MgkaKeeperStates {
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

function Test-MgkaKeeperCallId {
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

function Resolve-MgkaKeeperItem {
    # A pipeline item of Start-/Stop-MgCommunicationCallKeepAlive -> its call id, or $null after
    # writing the item's error. The keep-alive commands' rules (Resolve-MgkaCallIdentity); a JSON
    # identity is then read as the library reads one (mgka_keep_alive_by_identity): the first
    # non-null of CallId and Id (any case) names the call and must be a JSON string.
    # (The callers resolve the common cases inline first: a function call per item costs more
    # than everything else they do.)
    param([System.Management.Automation.PSCmdlet] $Cmdlet, $Item)
    $resolved = Resolve-MgkaCallIdentity -Cmdlet $Cmdlet -Item $Item
    if ($null -eq $resolved) { return }
    if ($resolved.By -eq 'Id') { return [string]$resolved.CallId }
    $document = [System.Text.Json.JsonDocument]::Parse([string]$resolved.Value)
    try {
        foreach ($name in 'CallId', 'Id') {
            foreach ($property in $document.RootElement.EnumerateObject()) {
                if (-not [string]::Equals($property.Name, $name, [StringComparison]::OrdinalIgnoreCase) -or $property.Value.ValueKind -eq 'Null') { continue }
                if ($property.Value.ValueKind -eq 'String') { return $property.Value.GetString() }
                $type = switch ($property.Value.ValueKind) { 'Number' { 'a number' } 'Array' { 'an array' } 'Object' { 'an object' } default { 'a boolean' } }
                $Cmdlet.WriteError((New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -TargetObject $Item -Info ([ordered]@{
                                kind = 'InvalidArgument'; parameter = 'InputObject'; message = "InputObject.CallId must be a string, not $type." })))
                return
            }
        }
    } finally { $document.Dispose() }
    [string]$resolved.CallId
}

function Send-MgkaKeeperStart {
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

function Send-MgkaKeeperStop {
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

function New-MgkaCallNotKeptError {
    param([string] $CallId)
    [System.Management.Automation.ErrorRecord]::new(
        [System.Management.Automation.ItemNotFoundException]::new("Call '$CallId' is not kept alive by MgKeepAlive (see Start-MgCommunicationCallKeepAlive)."),
        'CallNotKept', [System.Management.Automation.ErrorCategory]::ObjectNotFound, $CallId)
}

function Start-MgCommunicationCallKeepAlive {
    <#
    .SYNOPSIS
    Keeps calls alive in the background until they end: a keep-alive every -Interval (15 minutes by default) for each call.

    .DESCRIPTION
    Registers calls with the background keeper of the MgKeepAlive library and returns at once,
    writing one state object (MgKeepAlive.CallKeepAliveState) per call. The keeper then works on
    its own while the session runs other commands: each call's first keep-alive goes out at once
    (so a wrong id shows up within a second), then one every -Interval, with up to ±10 % jitter so
    that calls do not fire in lock-step.

    Graph ends a call that has had no successful keep-alive for 45 minutes. The keeper retries
    throttling (429, honouring Retry-After for the whole app), server errors, network errors and
    "not connected" with back-off, always scheduled before the call's 45-minute deadline; a 401
    renews the token. When Graph answers 404 the call has ended: its state becomes Ended and it
    gets no more requests. A 403, 400 or 405 makes it Failed (no more requests either). Ended and
    Failed calls stay listed by Get-MgCommunicationCallKeepAlive, and are reported by
    Wait-MgCommunicationCallKeepAlive, until Stop-MgCommunicationCallKeepAlive removes them.

    Starting a call that is already kept changes its interval (from its next keep-alive on) and
    writes its current state; starting an Ended or Failed call again keeps it anew.

    The keeper is one per process: kept calls are shared by every runspace (ForEach-Object
    -Parallel, jobs in threads), use the process's Connect-MgGraph connection, and are stopped by
    Disconnect-MgGraph, by removing the module (Remove-Module MgKeepAlive, Import-Module -Force) in
    any runspace, and when the process exits (which never waits for the keeper).

    Ids are registered in batches of 1,000, so piping 100,000 ids is quick. Items without a call
    id are reported as they come; the state objects and the errors for refused ids are written
    batch by batch, in input order within a batch.

    .PARAMETER CallId
    The ids of the calls to keep alive. Each string is taken as the call id itself.

    .PARAMETER InputObject
    Calls from the pipeline, with the rules of Invoke-MgKeepCommunicationCallAlive's -InputObject:
    a hashtable or object with CallId (any case) or, failing that, Id (such as
    Get-MgCommunicationCall output or this command's state objects); a JSON identity string such
    as '{"CallId":"..."}'; or any other string, taken as the call id. An item without a call id is
    a non-terminating error (InputObjectCallIdMissing) and the pipeline goes on.

    .PARAMETER Interval
    How often each call is kept alive, as a TimeSpan: at least 1 second, 15 minutes by default (as
    Microsoft recommends). Above 45 minutes a warning is written, because Graph ends a call after
    45 minutes without a keep-alive. Give a TimeSpan or a string such as '00:10:00'; a bare
    number is a count of ticks (100 ns), so use New-TimeSpan -Minutes 10 or [TimeSpan]::FromMinutes(10).

    .PARAMETER WhatIf
    Shows which calls would be kept alive. Nothing is registered.

    .PARAMETER Confirm
    Prompts for confirmation before each call is registered.

    .EXAMPLE
    Start-MgCommunicationCallKeepAlive -CallId $callId

    Keeps one call alive every 15 minutes (about) until it ends or is stopped; returns at once.

    .EXAMPLE
    Get-MgCommunicationCall -All | Start-MgCommunicationCallKeepAlive -Interval (New-TimeSpan -Minutes 10) | Out-Null

    Starts keeping every call the bot currently holds alive every 10 minutes. Objects with Id
    (Get-MgCommunicationCall output), hashtables with CallId, JSON identities and plain id strings
    can be piped.

    .EXAMPLE
    $ids = Get-Content ./calls.txt
    $ids | Start-MgCommunicationCallKeepAlive -ErrorAction SilentlyContinue -ErrorVariable refused | Out-Null
    $refused | ForEach-Object { "not kept: $($_.TargetObject) ($($_.Exception.Message))" }

    Registers thousands of ids in batches and lists the ids the library refused (ErrorId
    InvalidCallId, TargetObject the id).

    .EXAMPLE
    Start-MgCommunicationCallKeepAlive -CallId $callIds | Out-Null
    Wait-MgCommunicationCallKeepAlive -Any | ForEach-Object {
        Write-Warning "Call $($_.CallId) is $($_.State): $($_.LastError)"
        $_ | Stop-MgCommunicationCallKeepAlive
    }

    Keeps calls alive, then blocks until one of them ends or fails, reports it and cleans it up.

    .INPUTS
    System.String

    System.Object

    Call id strings, JSON identity strings, hashtables or objects with a CallId or Id property.

    .OUTPUTS
    MgKeepAlive.CallKeepAliveState

    One per registered call: CallId, State, LastSuccess, NextDue, Deadline, Interval, Attempts,
    ConsecutiveFailures, LastError (times as local [datetime]; see Get-MgCommunicationCallKeepAlive).

    .NOTES
    The keeper sends keep-alives to Graph v1.0 with the connection of Connect-MgGraph. Calls kept
    before Connect-MgGraph (or after a failed token renewal) are retried until a connection is
    made, within their 45-minute deadline.

    .LINK
    Get-MgCommunicationCallKeepAlive

    .LINK
    Stop-MgCommunicationCallKeepAlive

    .LINK
    Wait-MgCommunicationCallKeepAlive

    .LINK
    Invoke-MgKeepCommunicationCallAlive

    .LINK
    https://learn.microsoft.com/graph/api/call-keepalive
    #>
    [CmdletBinding(DefaultParameterSetName = 'CallId', SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('MgKeepAlive.CallKeepAliveState')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'CallId')]
        [AllowEmptyString()]
        [string[]] $CallId,

        [Parameter(Mandatory, ValueFromPipeline, ParameterSetName = 'InputObject')]
        [object] $InputObject,

        [Parameter()]
        [ValidateScript({ $_ -ge [TimeSpan]::FromSeconds(1) }, ErrorMessage = 'The interval must be at least 1 second; {0} is shorter.')]
        [TimeSpan] $Interval = [TimeSpan]::FromMinutes(15)
    )

    begin {
        # Graph ends a call that had no successful keep-alive for 45 minutes.
        if ($Interval.TotalMinutes -gt 45) {
            Write-Warning ("The interval $Interval is longer than 45 minutes: Graph ends a call that gets no keep-alive for 45 minutes, " +
                'so calls kept at this interval are likely to end. Microsoft recommends 15 minutes (the default).')
        }
        Test-MgkaCoexistence -Cmdlet $PSCmdlet
        Test-MgkaCloudAvailability -ApiVersion 'v1.0'
        Initialize-MgkaKeeper
        $intervalMs = [long][Math]::Ceiling($Interval.TotalMilliseconds)
        $batch = [System.Collections.Generic.List[string]]::new()
        $checkedConnection = $false
        $byCallId = $PSCmdlet.ParameterSetName -eq 'CallId'
    }

    process {
        $items = if ($byCallId) { $CallId } else { @($InputObject) }
        foreach ($item in $items) {
            # Inline, with the same answers as Resolve-MgkaKeeperItem: a plain id string, or a
            # non-empty string CallId of a hashtable or an object (such as a state object).
            # Anything else, and strings that may be JSON, go through the full rules.
            $id = $null
            $base = if ($item -is [psobject]) { $item.PSObject.BaseObject } else { $item }
            if ($byCallId) {
                $id = [string]$item
            } elseif ($base -is [string]) {
                if ($base.Length -gt 0 -and $base[0] -ne '{' -and $base[0] -ne '[' -and -not [char]::IsWhiteSpace($base[0])) { $id = $base }
            } elseif ($base -is [hashtable]) {
                $value = $base['CallId']
                if ($value -is [string] -and $value.Length -gt 0) { $id = $value }
            } elseif ($base -isnot [System.Collections.IDictionary]) {
                $property = $item.PSObject.Properties['CallId']
                if ($property -and $property.Value -is [string] -and $property.Value.Length -gt 0) { $id = $property.Value }
            }
            if ($null -eq $id) {
                $id = Resolve-MgkaKeeperItem -Cmdlet $PSCmdlet -Item $item
                if ($null -eq $id) { continue }
            }
            if ($id -match '[\ud800-\udfff]') {
                $invalid = Test-MgkaKeeperCallId $id
                if ($invalid) { $PSCmdlet.WriteError($invalid); continue }
            }
            if (-not $PSCmdlet.ShouldProcess($id, 'Start keeping alive')) { continue }
            if (-not $checkedConnection) {
                $checkedConnection = $true
                $context = Invoke-MgkaNative Context
                if ($context.Status -eq $script:MGKA_OK -and $context.Json -eq 'null') {
                    Write-Warning ('Not connected: the keeper retries these calls until Connect-MgGraph connects the process, within their ' +
                        '45-minute deadline. Connect first to keep them alive from the start.')
                }
            }
            $batch.Add($id)
            if ($batch.Count -ge $script:KeeperBatchSize) { Send-MgkaKeeperStart -Cmdlet $PSCmdlet -Batch $batch -IntervalMs $intervalMs }
        }
    }

    end { Send-MgkaKeeperStart -Cmdlet $PSCmdlet -Batch $batch -IntervalMs $intervalMs }
}

function Get-MgCommunicationCallKeepAlive {
    <#
    .SYNOPSIS
    Gets the calls that the background keeper keeps alive, with their state.

    .DESCRIPTION
    Lists the calls registered with Start-MgCommunicationCallKeepAlive in this process (from any
    runspace), sorted by call id, as MgKeepAlive.CallKeepAliveState objects:

    CallId               the call id
    State                Active (kept; the last keep-alive succeeded or the first is under way),
                         Retrying (the last keep-alive failed transiently; retried before the
                         deadline), Ended (Graph answered 404: the call is over), Failed (Graph
                         refused for good, e.g. 403). Ended and Failed calls get no more requests
                         and stay listed until Stop-MgCommunicationCallKeepAlive removes them.
    LastSuccess          when the last keep-alive succeeded ($null before the first)
    NextDue              when the next keep-alive is due ($null while one is under way, or when
                         the call is Ended or Failed)
    Deadline             when Graph would end the call: the last success (or the registration)
                         plus 45 minutes
    Interval             the keep-alive interval ([TimeSpan])
    Attempts             keep-alives sent for the call so far
    ConsecutiveFailures  failed keep-alives since the last success
    LastError            the last failure's message, $null after a success

    Times are local [datetime] values (Kind Local), so they compare directly with Get-Date; use
    .ToUniversalTime() for UTC. The default view is a table; Format-List shows every property.

    .PARAMETER CallId
    Only these calls. A named call that is not kept is a non-terminating error (CallNotKept).
    Accepts ids, and objects with a CallId property (such as state objects), from the pipeline.

    .PARAMETER State
    Only calls in these states: Active, Retrying, Ended, Failed.

    .EXAMPLE
    Get-MgCommunicationCallKeepAlive

    Shows every kept call as a table: CallId, State, LastSuccess, NextDue, Deadline, Attempts and
    the start of LastError.

    .EXAMPLE
    Get-MgCommunicationCallKeepAlive -State Ended, Failed | Stop-MgCommunicationCallKeepAlive -PassThru

    Finds the calls that have ended or failed and removes them from the keeper.

    .EXAMPLE
    Get-MgCommunicationCallKeepAlive -State Retrying | Where-Object Deadline -LT (Get-Date).AddMinutes(5)

    Calls whose keep-alives keep failing and that Graph would end within 5 minutes.

    .INPUTS
    System.String

    Call ids, or objects with a CallId property.

    .OUTPUTS
    MgKeepAlive.CallKeepAliveState

    .LINK
    Start-MgCommunicationCallKeepAlive

    .LINK
    Stop-MgCommunicationCallKeepAlive

    .LINK
    Wait-MgCommunicationCallKeepAlive
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.CallKeepAliveState')]
    param(
        [Parameter(Position = 0, ValueFromPipeline, ValueFromPipelineByPropertyName)]
        [string[]] $CallId,

        [Parameter()]
        [ValidateSet('Active', 'Retrying', 'Ended', 'Failed')]
        [string[]] $State
    )

    begin {
        Initialize-MgkaKeeper
        $named = [System.Collections.Generic.List[string]]::new()
        $anyNamed = $false
    }

    process {
        if ($PSBoundParameters.ContainsKey('CallId')) {
            $anyNamed = $true
            foreach ($id in $CallId) { if ($null -ne $id) { $named.Add($id) } }
        }
    }

    end {
        if (-not $anyNamed) {
            Get-MgkaKeeperStates -Cmdlet $PSCmdlet -State $State
            return
        }
        $valid = [System.Collections.Generic.List[string]]::new()
        foreach ($id in $named) {
            $invalid = if ($id -match '[\ud800-\udfff]') { Test-MgkaKeeperCallId $id }
            if ($invalid) { $PSCmdlet.WriteError($invalid) } else { $valid.Add($id) }
        }
        $found = [System.Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
        foreach ($entry in Get-MgkaKeeperStates -Cmdlet $PSCmdlet -CallId $valid) {
            [void]$found.Add($entry.CallId)
            if (-not $State -or $State -contains $entry.State) { $entry }
        }
        foreach ($id in $valid) {
            if (-not $found.Contains($id)) { $PSCmdlet.WriteError((New-MgkaCallNotKeptError -CallId $id)); [void]$found.Add($id) }
        }
    }
}

function Stop-MgCommunicationCallKeepAlive {
    <#
    .SYNOPSIS
    Stops keeping calls alive and removes them from the background keeper.

    .DESCRIPTION
    Stops sending keep-alives for the given calls (or, with -All, for every kept call of the
    process) and forgets them: they no longer appear in Get-MgCommunicationCallKeepAlive. This is
    also how Ended and Failed calls are cleaned up once a script has seen them.

    A call that is not kept is a non-terminating error (CallNotKept); use -ErrorAction Ignore to
    stop calls that may already be gone. Returns nothing unless -PassThru is given, then the
    stopped calls' last states (State Stopped).

    Disconnect-MgGraph and removing the module also stop every kept call.

    .PARAMETER CallId
    The ids of the calls to stop keeping alive.

    .PARAMETER InputObject
    Calls from the pipeline: state objects (Get-MgCommunicationCallKeepAlive,
    Start-MgCommunicationCallKeepAlive, Wait-MgCommunicationCallKeepAlive; by their CallId), and
    anything Start-MgCommunicationCallKeepAlive accepts (objects with CallId or Id, hashtables,
    JSON identity strings, call id strings).

    .PARAMETER All
    Stops every kept call of the process, in every state.

    .PARAMETER PassThru
    Writes the stopped calls' states (State Stopped). By default nothing is written.

    .PARAMETER WhatIf
    Shows which calls would be stopped. Nothing is stopped.

    .PARAMETER Confirm
    Prompts for confirmation before each call (or, with -All, once) is stopped.

    .EXAMPLE
    Stop-MgCommunicationCallKeepAlive -All

    Stops keeping every call alive.

    .EXAMPLE
    Stop-MgCommunicationCallKeepAlive -CallId $callId

    Stops keeping one call alive, for example when the bot hangs up.

    .EXAMPLE
    Get-MgCommunicationCallKeepAlive -State Ended, Failed | Stop-MgCommunicationCallKeepAlive -PassThru

    Removes the calls that have ended or failed and shows them.

    .INPUTS
    MgKeepAlive.CallKeepAliveState

    System.String

    System.Object

    .OUTPUTS
    None

    MgKeepAlive.CallKeepAliveState

    With -PassThru, the stopped calls' states.

    .LINK
    Start-MgCommunicationCallKeepAlive

    .LINK
    Get-MgCommunicationCallKeepAlive

    .LINK
    Wait-MgCommunicationCallKeepAlive
    #>
    [CmdletBinding(DefaultParameterSetName = 'CallId', SupportsShouldProcess, ConfirmImpact = 'Medium')]
    [OutputType('MgKeepAlive.CallKeepAliveState')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'CallId')]
        [string[]] $CallId,

        [Parameter(Mandatory, ValueFromPipeline, ParameterSetName = 'InputObject')]
        [object] $InputObject,

        [Parameter(Mandatory, ParameterSetName = 'All')]
        [switch] $All,

        [Parameter()]
        [switch] $PassThru
    )

    begin {
        Initialize-MgkaKeeper
        $batch = [System.Collections.Generic.List[string]]::new()
        $byCallId = $PSCmdlet.ParameterSetName -eq 'CallId'
    }

    process {
        if ($PSCmdlet.ParameterSetName -eq 'All') { return }
        $items = if ($byCallId) { $CallId } else { @($InputObject) }
        foreach ($item in $items) {
            # Inline, with the same answers as Resolve-MgkaKeeperItem: a plain id string, or a
            # non-empty string CallId of a hashtable or an object (such as a state object).
            # Anything else, and strings that may be JSON, go through the full rules.
            $id = $null
            $base = if ($item -is [psobject]) { $item.PSObject.BaseObject } else { $item }
            if ($byCallId) {
                $id = [string]$item
            } elseif ($base -is [string]) {
                if ($base.Length -gt 0 -and $base[0] -ne '{' -and $base[0] -ne '[' -and -not [char]::IsWhiteSpace($base[0])) { $id = $base }
            } elseif ($base -is [hashtable]) {
                $value = $base['CallId']
                if ($value -is [string] -and $value.Length -gt 0) { $id = $value }
            } elseif ($base -isnot [System.Collections.IDictionary]) {
                $property = $item.PSObject.Properties['CallId']
                if ($property -and $property.Value -is [string] -and $property.Value.Length -gt 0) { $id = $property.Value }
            }
            if ($null -eq $id) {
                $id = Resolve-MgkaKeeperItem -Cmdlet $PSCmdlet -Item $item
                if ($null -eq $id) { continue }
            }
            if ($id -match '[\ud800-\udfff]') {
                $invalid = Test-MgkaKeeperCallId $id
                if ($invalid) { $PSCmdlet.WriteError($invalid); continue }
            }
            if (-not $PSCmdlet.ShouldProcess($id, 'Stop keeping alive')) { continue }
            $batch.Add($id)
            if ($batch.Count -ge $script:KeeperBatchSize) { Send-MgkaKeeperStop -Cmdlet $PSCmdlet -Batch $batch -PassThru $PassThru }
        }
    }

    end {
        if ($PSCmdlet.ParameterSetName -eq 'All') {
            if (-not $PSCmdlet.ShouldProcess('all kept calls', 'Stop keeping alive')) { return }
            $json = Invoke-MgkaKeeper -Cmdlet $PSCmdlet -Function KeeperStop -RequestJson '{"all":true}'
            if ($PassThru) { ConvertFrom-MgkaKeeperStates $json }
            return
        }
        Send-MgkaKeeperStop -Cmdlet $PSCmdlet -Batch $batch -PassThru $PassThru
    }
}

function Wait-MgCommunicationCallKeepAlive {
    <#
    .SYNOPSIS
    Waits until kept calls end or fail, and writes their states.

    .DESCRIPTION
    Blocks until the given calls (by default every call the keeper keeps when the command starts)
    have ended (Graph answered 404) or failed (Graph refused for good, e.g. 403), or, with -Any,
    until one of them has. Writes the state object of each such call as soon as it is seen, so a
    pipeline can clean up while the others are still kept. Calls that have already ended or failed
    are written at once.

    The keeper goes on working in the background; this command only watches it, polling the
    library's event queue in slices of at most 200 ms, so Ctrl+C stops the wait promptly (the
    calls stay kept). Calls stopped meanwhile (Stop-MgCommunicationCallKeepAlive in another
    runspace, Disconnect-MgGraph) are no longer waited for. A named call that is not kept is a
    non-terminating error (CallNotKept).

    On -Timeout, writes a non-terminating error (ErrorId WaitTimeout, TargetObject the ids still
    kept) and returns.

    .PARAMETER CallId
    The calls to wait for (default: every kept call). Accepts ids, and objects with a CallId
    property (such as the output of Start-MgCommunicationCallKeepAlive), from the pipeline.

    .PARAMETER Any
    Returns as soon as one of the calls has ended or failed (all that have are written).

    .PARAMETER Timeout
    How long to wait at most, as a TimeSpan (e.g. (New-TimeSpan -Minutes 5) or '00:05:00'). By
    default the wait does not time out.

    .EXAMPLE
    Wait-MgCommunicationCallKeepAlive -Any -Timeout '00:01:00' | Stop-MgCommunicationCallKeepAlive -PassThru

    Waits up to a minute for any kept call to end, then removes the calls that did.

    .EXAMPLE
    Start-MgCommunicationCallKeepAlive -CallId $callIds | Wait-MgCommunicationCallKeepAlive | ForEach-Object {
        Write-Warning "Call $($_.CallId) is over ($($_.State)); cleaning up."
        Remove-CallResources $_.CallId
        $_ | Stop-MgCommunicationCallKeepAlive
    }

    Keeps calls alive and cleans each one up as it ends; returns when all are over.

    .EXAMPLE
    while ($true) {
        Wait-MgCommunicationCallKeepAlive -Any -Timeout '00:00:30' -ErrorAction SilentlyContinue |
            Stop-MgCommunicationCallKeepAlive -PassThru | ForEach-Object { "ended: $($_.CallId)" }
        if (-not (Get-MgCommunicationCallKeepAlive)) { break }
    }

    A watch loop: reports ended calls as they come, and stops when nothing is kept any more.

    .INPUTS
    System.String

    Call ids, or objects with a CallId property.

    .OUTPUTS
    MgKeepAlive.CallKeepAliveState

    The states (Ended or Failed) of the calls that ended or failed.

    .LINK
    Start-MgCommunicationCallKeepAlive

    .LINK
    Get-MgCommunicationCallKeepAlive

    .LINK
    Stop-MgCommunicationCallKeepAlive
    #>
    [CmdletBinding()]
    [OutputType('MgKeepAlive.CallKeepAliveState')]
    param(
        [Parameter(Position = 0, ValueFromPipeline, ValueFromPipelineByPropertyName)]
        [string[]] $CallId,

        [Parameter()]
        [switch] $Any,

        [Parameter()]
        [ValidateScript({ $_ -ge [TimeSpan]::Zero }, ErrorMessage = 'The timeout must not be negative; it is {0}.')]
        [TimeSpan] $Timeout
    )

    begin {
        Initialize-MgkaKeeper
        $named = [System.Collections.Generic.List[string]]::new()
        $anyNamed = $false
    }

    process {
        if ($PSBoundParameters.ContainsKey('CallId')) {
            $anyNamed = $true
            foreach ($id in $CallId) { if ($null -ne $id) { $named.Add($id) } }
        }
    }

    end {
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        $limitMs = if ($PSBoundParameters.ContainsKey('Timeout')) { $Timeout.TotalMilliseconds } else { [double]::PositiveInfinity }
        # Events after this sequence number are new; taken before the list, so nothing is missed.
        $events = Invoke-MgkaNative KeeperEvents -Operation ([uint64]::MaxValue) -TimeoutMs 0
        $lastSeq = [uint64](ConvertFrom-MgkaJson $events.Json)['lastSeq']

        $pending = [System.Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
        $done = $false
        $check = {
            # Lists the pending calls: writes those that ended or failed, forgets those no longer kept.
            param([string[]] $Ids)
            $seen = [System.Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
            foreach ($entry in Get-MgkaKeeperStates -Cmdlet $PSCmdlet -CallId $Ids) {
                [void]$seen.Add($entry.CallId)
                if ($entry.State -eq 'Ended' -or $entry.State -eq 'Failed') {
                    if ($pending.Remove($entry.CallId)) { $entry; if ($Any) { $done = $true } }
                }
            }
            foreach ($id in $Ids) {
                if (-not $seen.Contains($id) -and $pending.Remove($id)) { Write-Verbose "Call '$id' is no longer kept; not waiting for it." }
            }
        }

        $ids = [System.Collections.Generic.List[string]]::new()
        if ($anyNamed) {
            $unique = [System.Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
            foreach ($id in $named) {
                $invalid = if ($id -match '[\ud800-\udfff]') { Test-MgkaKeeperCallId $id }
                if ($invalid) { $PSCmdlet.WriteError($invalid) } elseif ($unique.Add($id)) { $ids.Add($id) }
            }
            $listed = if ($ids.Count -gt 0) { Get-MgkaKeeperStates -Cmdlet $PSCmdlet -CallId $ids }
        } else {
            $listed = Get-MgkaKeeperStates -Cmdlet $PSCmdlet
        }
        $found = [System.Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
        foreach ($entry in $listed) {
            [void]$found.Add($entry.CallId)
            if ($entry.State -eq 'Ended' -or $entry.State -eq 'Failed') { $entry; if ($Any) { $done = $true } }
            else { [void]$pending.Add($entry.CallId) }
        }
        foreach ($id in $ids) {
            if (-not $found.Contains($id)) { $PSCmdlet.WriteError((New-MgkaCallNotKeptError -CallId $id)) }
        }

        $lastCheck = $stopwatch.ElapsedMilliseconds
        while (-not $done -and $pending.Count -gt 0) {
            $remaining = $limitMs - $stopwatch.ElapsedMilliseconds
            if ($remaining -le 0) {
                $left = [string[]]@($pending)
                $shown = ($left | Select-Object -First 5) -join ', '
                if ($left.Count -gt 5) { $shown += ", ... ($($left.Count) calls)" }
                $PSCmdlet.WriteError([System.Management.Automation.ErrorRecord]::new(
                        [System.TimeoutException]::new("Timed out after $Timeout waiting for kept calls to end or fail; still kept: $shown."),
                        'WaitTimeout', [System.Management.Automation.ErrorCategory]::OperationTimeout, $left))
                return
            }
            $slice = [uint32][Math]::Max(0, [Math]::Min($script:KeeperWaitSliceMs, $remaining))
            $result = Invoke-MgkaNative KeeperEvents -Operation $lastSeq -TimeoutMs $slice
            if ($result.Status -ne $script:MGKA_OK) {
                $PSCmdlet.ThrowTerminatingError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -Activity 'Wait'))
            }
            $answer = ConvertFrom-MgkaJson $result.Json
            $ended = [System.Collections.Generic.List[string]]::new()
            $gap = $false
            $first = $true
            foreach ($event in @($answer['events'])) {
                if ($null -eq $event) { continue }
                if ($first) { $gap = [uint64]$event['seq'] -gt $lastSeq + 1; $first = $false }
                if ($pending.Contains([string]$event['callId'])) { $ended.Add([string]$event['callId']) }
            }
            $lastSeq = [uint64]$answer['lastSeq']
            if ($ended.Count -gt 0) { . $check $ended.ToArray() }
            # Now and then (and when events were dropped) look at the list itself: calls stopped
            # meanwhile raise no event.
            $every = [Math]::Max(1000, $pending.Count / 10)
            if ($gap -or $stopwatch.ElapsedMilliseconds - $lastCheck -ge $every) {
                if ($pending.Count -gt 0 -and -not $done) { . $check ([string[]]@($pending)) }
                $lastCheck = $stopwatch.ElapsedMilliseconds
            }
        }
    }
}

# Removing the module (Remove-Module, Import-Module -Force) stops the keeper: every kept call of
# the process, whichever runspace started it. Nothing to do when no runspace has used the keeper.
if ($ExecutionContext.SessionState.Module) {
    $ExecutionContext.SessionState.Module.OnRemove = {
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

#region Import ------------------------------------------------------------------------------------
# Straight-line code on purpose: import time is a feature (a first call of any PowerShell
# function or .NET method costs milliseconds of JIT), so this region calls as little as it can.

# The module's version: the manifest's ModuleVersion, written here too because reading the
# manifest at import costs more than the rest of the import (Module.Tests.ps1 checks they agree).
$script:ModuleVersion = '0.1.0'

# The native library is found, loaded and its version checked on the first native call
# (Initialize-MgkaNative), not here: each .NET call at import costs milliseconds of start-up.
$script:LibraryPath = $null
$script:Native = $null

# Microsoft's Graph SDK loaded already? (Connect-MgGraph, Get-MgContext and a keep-alive that
# finds no connection check again, for an import after this one.) A first Get-Module call costs several ms,
# so only a Connect-MgGraph cmdlet (Microsoft's is a binary cmdlet) or a global function of that
# name makes Test-MgkaCoexistence look at the modules.
if ($ExecutionContext.InvokeCommand.GetCmdlet('Connect-MgGraph') -or ${function:global:Connect-MgGraph}) { Test-MgkaCoexistence }

#endregion
