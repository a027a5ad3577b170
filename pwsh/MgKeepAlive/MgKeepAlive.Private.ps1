# MgKeepAlive: the module's private helpers: native interop, keep-alive and bulk paths, error
# records, the keeper's helpers. Dot-sourced by Import-MgkaPrivate on the first command that runs
# in a session, not at import: import time is a feature, and defining these ~60 functions and the
# .NET objects below costs more than the rest of the import. The functions are defined in the
# module's script scope (function script:...), where the module's Set-StrictMode -Version 3.0
# applies; every native call goes through Invoke-MgkaNative, except the single keep-alive's direct
# path (Invoke-MgkaSingleKeepAlive).

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

# The interop class's AppDomain key (with the library path); its number changes whenever the
# signature list does.
$script:NativeKey = 'MgKeepAlive.Native.5'

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
    $script:Native = [AppDomain]::CurrentDomain.GetData("$script:NativeKey|$script:LibraryPath")
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
                , @('mgka_environment_set', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_keep_alive_warning', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_keeper_start', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_keeper_stop', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_keeper_list', [uint32], [type[]]@($bytes, $ptrOut))
                , @('mgka_keeper_wait_start', [uint32], [type[]]@($bytes, $u64Out))
            )) {
            $typeBuilder.DefinePInvokeMethod($signature[0], $script:LibraryPath, 'Public, Static, PinvokeImpl, HideBySig', 'Standard',
                $signature[1], $signature[2], 'Cdecl', 'Ansi').SetImplementationFlags('PreserveSig')
        }
        $script:Native = $typeBuilder.CreateType()
        [AppDomain]::CurrentDomain.SetData("$script:NativeKey|$script:LibraryPath", $script:Native)
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
        # OperationCancel (waits: Wait-MgkaOperation), RequestContextGet, RequestContextSet,
        # EnvironmentSet, KeepAliveWarning, KeeperStart, KeeperStop, KeeperList or KeeperWaitStart.
        [string] $Function,

        # Input strings in native argument order; each key is the user-facing parameter name
        # used in error messages. A $null value is passed as a NULL pointer.
        [System.Collections.Specialized.OrderedDictionary] $Text,

        # Secret bytes (mgka_connect, mgka_connect_start). The caller owns and zeroes them.
        [byte[]] $Secret,

        # An operation handle.
        [uint64] $Operation
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
            'EnvironmentSet' { $status = $N::mgka_environment_set($encoded[0], [ref]$out) }
            'KeepAliveWarning' { $status = $N::mgka_keep_alive_warning($encoded[0], [ref]$out) }
            'KeeperStart' { $status = $N::mgka_keeper_start($encoded[0], [ref]$out) }
            'KeeperStop' { $status = $N::mgka_keeper_stop($encoded[0], [ref]$out) }
            'KeeperList' { $status = $N::mgka_keeper_list($encoded[0], [ref]$out) }
            'KeeperWaitStart' { $status = $N::mgka_keeper_wait_start($encoded[0], [ref]$op) }
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
    # The library names records whose kind alone does not say their id (CallNotKept, EnvironmentNotFound, ...).
    if ($Info['errorId']) { $errorId = [string]$Info['errorId'] }
    $record = [System.Management.Automation.ErrorRecord]::new($exception, $errorId, $category, $TargetObject)
    if ($details) {
        $record.ErrorDetails = [System.Management.Automation.ErrorDetails]::new($details)
        $record.ErrorDetails.RecommendedAction = $script:GraphErrorRecommendation
    }
    # Only Microsoft's module connected: the record says which Connect-MgGraph line connects both.
    if ($kind -eq 'NotConnected' -and (Get-Module -Name Microsoft.Graph.Authentication)) { Import-MgkaCoexistence; Add-MgkaMicrosoftConnectHint -Record $record }
    $record
}

function script:Get-MgkaIdentityCallId {
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

function script:Get-MgkaJsonIdentityCallId {
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

function script:New-MgkaMissingCallIdError {
    param($TargetObject)
    [System.Management.Automation.ErrorRecord]::new(
        [System.ArgumentException]::new('InputObject has null value for InputObject.CallId'),
        'InputObjectCallIdMissing',
        [System.Management.Automation.ErrorCategory]::InvalidArgument,
        $TargetObject)
}

function script:Write-MgkaResolveError {
    # Resolve-MgkaCallIdentity's errors: written through $Cmdlet, or kept in $ErrorList.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.Generic.List[object]] $ErrorList, [System.Management.Automation.ErrorRecord] $Record)
    if ($null -ne $ErrorList) { $ErrorList.Add($Record) } else { $Cmdlet.WriteError($Record) }
}

function script:Resolve-MgkaCallIdentity {
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

function script:Initialize-MgkaKeepAlive {
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
    # Microsoft.Graph.Authentication loaded next to MgKeepAlive is checked by Connect-MgGraph and
    # Get-MgContext, and when a keep-alive finds no connection, not here: with a connection made
    # by MgKeepAlive the keep-alive works whatever else is loaded.
    Test-MgkaCloudAvailability -ApiVersion $ApiVersion

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
    } elseif ($bound['ProxyCredential']) {
        Write-Warning '-ProxyCredential is used only together with -Proxy; it is ignored.'
    }
    if ($bound['ProxyUseDefaultCredentials']) {
        Write-Warning ('MgKeepAlive cannot send default (integrated Windows) credentials to a proxy: -ProxyUseDefaultCredentials is ignored ' +
            'and the request goes to the proxy without credentials. Give -ProxyCredential for a proxy that needs a user name and password.')
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
    # The options as the C string the library takes; $null when they cannot be encoded (a lone
    # surrogate in -Headers), so that the general path reports it.
    $optionsBytes = try { $script:Utf8.GetBytes($optionsJson + [char]0) } catch [System.Text.EncoderFallbackException] { $null }
    $variable = [string]$bound['ResponseHeadersVariable']
    $state = @{
        Cmdlet                  = $Cmdlet
        ApiVersion              = $ApiVersion
        ErrorInvocation         = $null # see Write-MgkaKeepAliveError
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
        $state.NotesWritten = $false # the library's notes (e.g. no JSON batching) are written once
    }
    $state
}

function script:Invoke-MgkaSingleKeepAlive {
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
        $status = if ($By -eq 'Id') { $native::mgka_keep_alive_by_id_start($valueBytes, $State.OptionsBytes, [ref]$operation) }
        else { $native::mgka_keep_alive_by_identity_start($valueBytes, $State.OptionsBytes, [ref]$operation) }
        $json = $null
        if ($status -eq $script:MGKA_OK) {
            $result = Wait-MgkaOperation -Operation $operation -SuccessJson $State.WantDetails
            $status = $result.Status; $json = $result.Json
        }
        if ($status -eq $script:MGKA_OK -and -not $State.WantDetails) {
            if ($State.PassThru) { $true }
            return
        }
    }
    $elapsedMs = [long](([System.Diagnostics.Stopwatch]::GetTimestamp() - $started) * 1000 / [System.Diagnostics.Stopwatch]::Frequency)
    Write-MgkaKeepAliveResult -State $State -Status $status -Info (ConvertFrom-MgkaJson $json) -DisplayId $DisplayId -Target $Target -ElapsedMs $elapsedMs
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
    Write-Verbose "Keep alive call '$DisplayId': $statusText in $elapsed ms$attemptsText"
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

# Bulk keep-alive (piped input). Items are resolved and asked about (ShouldProcess) one by one,
# collected into chunks of $State.ChunkSize, and each chunk is sent with one
# mgka_keep_alive_bulk_start (at most -ThrottleLimit requests in flight). The results are written
# per item, in input order, while the next chunk is under way: one chunk in flight at a time, so
# -ThrottleLimit is a strict bound. A pending entry is a plain call id [string] (the commands'
# inline fast path), an ErrorRecord (an item that could not be resolved; written in its place),
# or @{ By = 'Id'|'Identity'; Value; Target; Display } for any other item.

function script:Add-MgkaBulkItem {
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

function script:Send-MgkaBulkChunk {
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
    $result = @{ Status = $script:MGKA_OK; Json = '{"answers":[],"notes":[]}' }   # a chunk without requests
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

function script:Complete-MgkaBulk {
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
                if ($entry -is [System.Management.Automation.ErrorRecord]) { Write-MgkaKeepAliveError -State $State -Record $entry; continue }
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

function script:Stop-MgkaBulk {
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

function script:ConvertTo-MgkaBulkRequest {
    # The chunk's request JSON: {"items":[{"callId":"..."}|{"identity":"..."}],"concurrency":n,
    # "notes":true}, or $null when it has no request. Counts the chunk's Requests and Errors. A
    # value that is not valid UTF-16 (a lone surrogate) becomes that item's error, as for a single
    # keep-alive.
    param([hashtable] $State, [hashtable] $Chunk)
    $entries = $Chunk.Entries
    $tail = ',"concurrency":' + $State.ThrottleLimit + ',"notes":true' + $(if ($State.WantDetails) { '}' } else { ',"details":false}' })
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

function script:Write-MgkaBulkResults {
    # Writes a chunk's results in input order: the resolution errors in their places, one $true
    # (-PassThru) or one error record per request. $Result: the bulk operation's @{ Status; Json },
    # Json being {"answers":[...],"notes":[...]}; the first notes are written with Write-Verbose.
    param([hashtable] $State, [hashtable] $Chunk, [hashtable] $Result, [long] $ElapsedMs)
    $entries = $Chunk.Entries
    $json = $Result.Json
    $State.Done += $entries.Length
    if (-not $State.NotesWritten -and $Result.Status -eq $script:MGKA_OK -and $json.Contains('"notes":["')) {
        $State.NotesWritten = $true
        $notes = [System.Text.Json.JsonDocument]::Parse($json)
        try {
            foreach ($note in $notes.RootElement.GetProperty('notes').EnumerateArray()) { Write-Verbose $note.GetString() }
        } finally {
            $notes.Dispose()
        }
    }
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
        $answers = $document.RootElement.GetProperty('answers').EnumerateArray()
    } else {
        # The whole request failed (not connected, ...): each item gets that error.
        $failure = ConvertFrom-MgkaJson $json
        if ($null -eq $failure) { $failure = [ordered]@{} }
    }
    try {
        foreach ($entry in $entries) {
            if ($entry -is [System.Management.Automation.ErrorRecord]) { Write-MgkaKeepAliveError -State $State -Record $entry; continue }
            if ($entry -is [string]) { $display = [string]$entry; $target = $entry }
            else { $display = $entry.Display; $target = $entry.Target }
            if ($null -ne $failure) {
                Write-MgkaKeepAliveResult -State $State -Status $Result.Status -Info $failure -DisplayId $display -Target $target -ElapsedMs $ElapsedMs
                continue
            }
            if (-not $answers.MoveNext()) {
                Write-MgkaKeepAliveError -State $State -Record (New-MgkaErrorRecord -Status 12 -TargetObject $target -Activity 'Keep alive' -Info ([ordered]@{
                                kind = 'Panic'; message = 'The bulk keep-alive answered fewer items than it was given.' }))
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

function script:Test-MgkaCloudAvailability {
    # Writes the library's warning when Microsoft does not document keep-alive of $ApiVersion in
    # the connected cloud (the library decides, and says it once per process).
    param([string] $ApiVersion)
    $text = [System.Collections.Specialized.OrderedDictionary]::new()
    $text['ApiVersion'] = $ApiVersion
    $result = Invoke-MgkaNative KeepAliveWarning -Text $text
    if ($result.Status -eq $script:MGKA_OK -and $result.Json -ne 'null') { Write-Warning (ConvertFrom-MgkaJson $result.Json) }
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

function script:Set-MgkaRequestContext {
    # Changes the process-wide request context (mgka_request_context_set; an empty -Settings only
    # reads it) and returns it as Microsoft's IRequestContext shows it. -Settings: Microsoft's
    # parameter names and units (seconds); the library speaks milliseconds. Errors are written
    # (thrown with -Terminating) on -Cmdlet.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.IDictionary] $Settings, [switch] $Terminating)
    $text = $null
    if ($Settings -and $Settings.Count -gt 0) {
        $change = [ordered]@{}
        foreach ($entry in $Settings.GetEnumerator()) {
            if ($entry.Key -eq 'MaxRetry') { $change['maxRetry'] = $entry.Value }
            else { $change[$entry.Key.Substring(0, 1).ToLowerInvariant() + $entry.Key.Substring(1) + 'Ms'] = [uint64]([double]$entry.Value * 1000) }
        }
        $text = [System.Collections.Specialized.OrderedDictionary]::new()
        $text['RequestContext'] = ConvertTo-Json -Compress -InputObject $change
    }
    $result = Invoke-MgkaNative $(if ($text) { 'RequestContextSet' } else { 'RequestContextGet' }) -Text $text
    if (-not (Assert-MgkaResult $Cmdlet $result -Terminating:$Terminating)) { return }
    $info = ConvertFrom-MgkaJson $result.Json
    [pscustomobject]@{
        PSTypeName       = 'MgKeepAlive.RequestContext'
        RetryDelay       = [int][Math]::Round([double]$info['retryDelayMs'] / 1000)
        MaxRetry         = [int]$info['maxRetry']
        RetriesTimeLimit = [timespan]::FromMilliseconds([double]$info['retriesTimeLimitMs'])
        ClientTimeout    = [timespan]::FromMilliseconds([double]$info['clientTimeoutMs'])
    }
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
# library and is process-wide: every runspace sees the same kept calls. The library answers every
# request in one shape (call states, and per-id errors: InvalidCallId, CallNotKept); these helpers
# only turn it into objects and error records.

# Ids per mgka_keeper_start / mgka_keeper_stop request.
$script:KeeperBatchSize = 1000

function script:Assert-MgkaResult {
    # $true when a native call succeeded; else writes its error record on $Cmdlet (with
    # -Terminating: throws it) and returns $false.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, $Result, $TargetObject, [switch] $Terminating)
    if ($Result.Status -eq $script:MGKA_OK) { return $true }
    $record = New-MgkaErrorRecord -Status $Result.Status -Info (ConvertFrom-MgkaJson $Result.Json) -TargetObject $TargetObject -Activity $Cmdlet.MyInvocation.MyCommand.Name
    if ($Terminating) { $Cmdlet.ThrowTerminatingError($record) }
    $Cmdlet.WriteError($record)
    $false
}

function script:ConvertTo-MgkaKeeperJson {
    # A keeper request as JSON text from name, value pairs (string lists, numbers, booleans; $null
    # values are left out). Ids were checked for lone surrogates, which the serializer would replace.
    $request = [System.Collections.Generic.Dictionary[string, object]]::new()
    for ($i = 0; $i -lt $args.Count; $i += 2) { if ($null -ne $args[$i + 1]) { $request.Add($args[$i], $args[$i + 1]) } }
    [System.Text.Json.JsonSerializer]::Serialize($request, [System.Collections.Generic.Dictionary[string, object]])
}

function script:Invoke-MgkaKeeper {
    # One mgka_keeper_* request (a failure of the whole request is a terminating error); writes its
    # answers (see ConvertFrom-MgkaKeeperStates). -Operation: the started operation's handle instead.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string] $Function, [string] $RequestJson, [bool] $Quiet, [switch] $Operation)
    $text = [System.Collections.Specialized.OrderedDictionary]::new()
    $text['Keeper'] = $RequestJson
    $result = Invoke-MgkaNative $Function -Text $text
    $null = Assert-MgkaResult $Cmdlet $result -Terminating
    if ($Operation) { return $result.Operation }
    ConvertFrom-MgkaKeeperStates -Cmdlet $Cmdlet -Json $result.Json -Quiet $Quiet
}

function script:ConvertFrom-MgkaKeeperStates {
    # The keeper's answers (a JSON array, or the array $Property of a JSON object), in order: a call
    # state -> an MgKeepAlive.CallKeepAliveState on the output (not with $Quiet); {"callId","error"}
    # -> its error record on $Cmdlet. One loop, no call per state: Start- may see 100,000 of them.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string] $Json, [string] $Property, [bool] $Quiet)
    $document = [System.Text.Json.JsonDocument]::Parse($Json)
    try {
        $p = [System.Text.Json.JsonElement]::new()
        $root = if ($Property) { $document.RootElement.GetProperty($Property) } else { $document.RootElement }
        foreach ($e in $root.EnumerateArray()) {
            if ($e.TryGetProperty('error', [ref]$p)) {
                $Cmdlet.WriteError((New-MgkaErrorRecord -Status 0 -Info (ConvertFrom-MgkaJsonElement -Element $p) -TargetObject $e.GetProperty('callId').GetString()))
                continue
            }
            if ($Quiet) { continue }
            $lastError = if ($e.TryGetProperty('lastError', [ref]$p) -and $p.ValueKind -eq 'String') { $p.GetString() }
            [pscustomobject]@{
                PSTypeName          = 'MgKeepAlive.CallKeepAliveState'
                CallId              = $e.GetProperty('callId').GetString()
                State               = $e.GetProperty('state').GetString()
                LastSuccess         = if ($e.TryGetProperty('lastSuccessUnixMs', [ref]$p) -and $p.ValueKind -eq 'Number') { [DateTimeOffset]::FromUnixTimeMilliseconds($p.GetInt64()).LocalDateTime }
                # Unix ms beyond 9999-12-31 (an interval of centuries) show as [datetime]::MaxValue.
                NextDue             = if ($e.TryGetProperty('nextDueUnixMs', [ref]$p) -and $p.ValueKind -eq 'Number') { if ($p.GetInt64() -gt 253402300799999) { [datetime]::MaxValue } else { [DateTimeOffset]::FromUnixTimeMilliseconds($p.GetInt64()).LocalDateTime } }
                Deadline            = [DateTimeOffset]::FromUnixTimeMilliseconds($e.GetProperty('deadlineUnixMs').GetInt64()).LocalDateTime
                Interval            = if ($e.GetProperty('intervalMs').GetInt64() -ge [TimeSpan]::MaxValue.TotalMilliseconds) { [TimeSpan]::MaxValue } else { [TimeSpan]::FromMilliseconds($e.GetProperty('intervalMs').GetInt64()) }
                Attempts            = $e.GetProperty('attempts').GetInt32()
                ConsecutiveFailures = $e.GetProperty('consecutiveFailures').GetInt32()
                LastError           = $lastError
            }
        }
    } finally { $document.Dispose() }
}

function script:Test-MgkaKeeperCallId {
    # $true when the id can be sent to the library as JSON text; else writes its error (a lone
    # surrogate cannot be encoded; the library checks everything else and answers per id).
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [string] $CallId)
    for ($i = 0; $i -lt $CallId.Length; $i++) {
        if ([char]::IsHighSurrogate($CallId[$i]) -and $i + 1 -lt $CallId.Length -and [char]::IsLowSurrogate($CallId[$i + 1])) { $i++; continue }
        if ([char]::IsSurrogate($CallId[$i])) {
            $Cmdlet.WriteError((New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -TargetObject $CallId -Info ([ordered]@{
                            kind = 'InvalidArgument'; parameter = 'CallId'; message = 'The call id is not valid Unicode text (it contains a lone surrogate).' })))
            return $false
        }
    }
    $true
}

function script:Select-MgkaKeeperCallId {
    # The ids that can be sent to the library (see Test-MgkaKeeperCallId), as a list.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, [System.Collections.Generic.IEnumerable[string]] $CallId)
    $valid = [System.Collections.Generic.List[string]]::new()
    foreach ($id in $CallId) { if ($id -notmatch '[\ud800-\udfff]' -or (Test-MgkaKeeperCallId $Cmdlet $id)) { $valid.Add($id) } }
    , $valid
}

function script:Add-MgkaKeeperItem {
    # Start-/Stop-MgCommunicationCallKeepAlive: the bound items (-CallId strings with $ById, else
    # piped objects) -> their call ids, each added to $Batch once ShouldProcess($id, $Action)
    # agrees; an item without a usable id gets its error. Sends full batches with $Send.
    param([System.Management.Automation.PSCmdlet] $Cmdlet, $Items, [bool] $ById, [System.Collections.Generic.List[string]] $Batch, [string] $Action, [scriptblock] $Send)
    foreach ($item in $Items) {
        # Inline, with the same answers as Resolve-MgkaKeeperItem: a plain id string, or a
        # non-empty string CallId of a hashtable or an object (such as a state object).
        # Anything else, and strings that may be JSON, go through the full rules.
        $id = $null
        $base = if ($item -is [psobject]) { $item.PSObject.BaseObject } else { $item }
        if ($ById) {
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
            $id = Resolve-MgkaKeeperItem -Cmdlet $Cmdlet -Item $item
            if ($null -eq $id) { continue }
        }
        if ($id -match '[\ud800-\udfff]' -and -not (Test-MgkaKeeperCallId $Cmdlet $id)) { continue }
        if (-not $Cmdlet.ShouldProcess($id, $Action)) { continue }
        $Batch.Add($id)
        if ($Batch.Count -ge $script:KeeperBatchSize) { & $Send }
    }
}

function script:Resolve-MgkaKeeperItem {
    # A pipeline item of Start-/Stop-MgCommunicationCallKeepAlive -> its call id, or $null after
    # writing the item's error. The keep-alive commands' rules (Resolve-MgkaCallIdentity); a JSON
    # identity is then read as the library reads one (mgka_keep_alive_by_identity): the first
    # non-null of CallId and Id (any case) names the call and must be a JSON string.
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

# Removing the module (Remove-Module, Import-Module -Force) stops the keeper: every kept call of
# the process, whichever runspace started it. Nothing to do when no runspace has used the keeper.
# Run by the module's OnRemove (MgKeepAlive.psm1).
if ($ExecutionContext.SessionState.Module) {
    $script:StopKeeperOnRemove = {
        if ($null -eq $script:Native) {
            # Another runspace may have loaded the library in this process: look its interop up by
            # path. Nothing to stop when none has.
            $path = if ($script:LibraryPath) { $script:LibraryPath } else { try { Find-MgkaLibrary } catch { $null } }
            if ($path) { $script:Native = [AppDomain]::CurrentDomain.GetData("$script:NativeKey|$path") }
        }
        if ($script:Native -is [type]) {
            $text = [System.Collections.Specialized.OrderedDictionary]::new()
            $text['Keeper'] = '{"all":true}'
            $null = Invoke-MgkaNative KeeperStop -Text $text
        } else { $script:Native = $null }
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
