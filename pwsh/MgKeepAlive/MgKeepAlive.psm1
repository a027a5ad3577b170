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

# Strict UTF-8: a lone surrogate is an error, never silently replaced.
$script:Utf8 = [System.Text.UTF8Encoding]::new($false, $true)

# Client timeout for one keep-alive (Connect-MgGraph -ClientTimeout); Graph SDK default is 300 s.
$script:ClientTimeoutMs = 300000
# Wait slice: how long one native wait may block, i.e. how soon Ctrl+C is honoured.
$script:WaitSliceMs = [uint32]100

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
    # A simple (not advanced) function on purpose: it is called at import and per request.
    param(
        # Version, EnvironmentList, EnvironmentAdd, Connect, Disconnect, Context,
        # KeepAliveByIdStart, KeepAliveByIdentityStart, OperationWait or OperationCancel.
        [string] $Function,

        # Input strings in native argument order; each key is the user-facing parameter name
        # used in error messages. A $null value is passed as a NULL pointer.
        [System.Collections.Specialized.OrderedDictionary] $Text,

        # Secret bytes (mgka_connect). The caller owns and zeroes them.
        [byte[]] $Secret,

        [uint64] $Operation,

        [uint32] $TimeoutMs
    )

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
            'Connect' {
                $length = if ($Secret) { [UIntPtr]::new([uint64]$Secret.Length) } else { [UIntPtr]::Zero }
                $status = $N::mgka_connect($encoded[0], $Secret, $length, [ref]$out)
            }
            'Disconnect' { $status = $N::mgka_disconnect([ref]$out) }
            'Context' { $status = $N::mgka_context([ref]$out) }
            'KeepAliveByIdStart' { $status = $N::mgka_keep_alive_by_id_start($encoded[0], $encoded[1], [ref]$op) }
            'KeepAliveByIdentityStart' { $status = $N::mgka_keep_alive_by_identity_start($encoded[0], $encoded[1], [ref]$op) }
            'OperationWait' { $status = $N::mgka_operation_wait($Operation, $TimeoutMs, [ref]$out) }
            'OperationCancel' { $status = $N::mgka_operation_cancel($Operation) }
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

function Format-MgkaErrorDetails {
    # The text the official cmdlet shows for an HTTP error.
    param([System.Collections.IDictionary] $Info, [string] $Code)
    $builder = [System.Text.StringBuilder]::new()
    $message = if ($Info['graphMessage']) { [string]$Info['graphMessage'] } else { [string]$Info['message'] }
    [void]$builder.AppendLine($message).AppendLine()
    $reason = if ($Info['reason']) { $Info['reason'] } else { [Enum]::ToObject([System.Net.HttpStatusCode], [int]$Info['httpStatus']).ToString() }
    [void]$builder.AppendLine("Status: $($Info['httpStatus']) ($reason)")
    [void]$builder.AppendLine("ErrorCode: $Code")
    [void]$builder.AppendLine("Date: $($Info['date'])")
    if ($Info['requestId']) { [void]$builder.AppendLine("RequestId: $($Info['requestId'])") }
    if ($Info['clientRequestId']) { [void]$builder.AppendLine("ClientRequestId: $($Info['clientRequestId'])") }
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
    ResponseBody, Attempts and CallId.
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
        }
        'TransportError' {
            $exception = [System.Net.Http.HttpRequestException]::new($message)
            $errorId = 'TransportError'
            $category = [System.Management.Automation.ErrorCategory]::ConnectionError
        }
        'AuthError' {
            $exception = [System.Security.Authentication.AuthenticationException]::new($message)
            $errorId = 'AuthError'
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
    # Returns the call id of an identity (CallId first, then Id; names case-insensitive) or $null.
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

function Invoke-MgkaKeepAliveOperation {
    # Starts one keep-alive and waits for it in short slices so that a pipeline stop (Ctrl+C)
    # is honoured within one slice; an unfinished operation is cancelled in finally.
    # Returns @{ Status; Json }.
    param(
        [string] $By,           # Id or Identity
        [string] $Value,        # the call id, or the identity JSON
        [string] $OptionsJson
    )
    $text = [System.Collections.Specialized.OrderedDictionary]::new()
    if ($By -eq 'Id') {
        $text['CallId'] = $Value; $text['Headers'] = $OptionsJson
        $start = Invoke-MgkaNative KeepAliveByIdStart -Text $text
    } else {
        $text['InputObject'] = $Value; $text['Headers'] = $OptionsJson
        $start = Invoke-MgkaNative KeepAliveByIdentityStart -Text $text
    }
    if ($start.Status -ne $script:MGKA_OK) {
        return @{ Status = $start.Status; Json = $start.Json }
    }
    $operation = $start.Operation
    $finished = $false
    try {
        while ($true) {
            $wait = Invoke-MgkaNative OperationWait -Operation $operation -TimeoutMs $script:WaitSliceMs
            if ($wait.Status -ne $script:MGKA_PENDING) {
                $finished = $true
                return @{ Status = $wait.Status; Json = $wait.Json }
            }
        }
    } finally {
        if (-not $finished) {
            # Runs on pipeline stop too. A direct method call: commands may refuse to run
            # while the pipeline is stopping, a .NET call always runs.
            [void]$script:Native::mgka_operation_cancel($operation)
        }
    }
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
    control characters) are refused before anything is sent.

    Differences from Microsoft.Graph.CloudCommunications, all compatible with existing scripts:
    -InputObject also accepts objects that carry only Id (such as Get-MgCommunicationCall output)
    and plain call id strings; an identity without CallId or Id is a per-item error and the
    pipeline goes on; -PassThru:$false writes nothing; -ResponseHeadersVariable is set in the
    caller's scope on success and on failure; the error category follows the HTTP status and the
    exception exposes StatusCode, ErrorCode, RequestId, ClientRequestId, Date and ResponseHeaders.

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
    Accepted for compatibility with Microsoft.Graph; not supported yet (a warning is written).

    .PARAMETER ProxyCredential
    Accepted for compatibility with Microsoft.Graph; not supported yet (a warning is written).

    .PARAMETER ProxyUseDefaultCredentials
    Accepted for compatibility with Microsoft.Graph; not supported yet (a warning is written).

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
    while ($true) {
        Invoke-MgKeepCommunicationCallAlive -CallId $callId -ErrorAction Stop
        Start-Sleep -Seconds (15 * 60)
    }

    Keeps a call alive every 15 minutes, as Microsoft recommends, until it ends (a 404 then
    stops the loop).

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
        [switch] $ProxyUseDefaultCredentials
    )

    begin {
        foreach ($ignored in 'HttpPipelineAppend', 'HttpPipelinePrepend', 'Proxy', 'ProxyCredential', 'ProxyUseDefaultCredentials') {
            if ($PSBoundParameters.ContainsKey($ignored)) {
                Write-Warning "MgKeepAlive does not support -$ignored yet; the request is sent without it."
            }
        }
        if ($Headers -and $Headers.Count -gt 0) {
            $extra = [ordered]@{}
            foreach ($entry in $Headers.GetEnumerator()) {
                $extra[[string]$entry.Key] = (@($entry.Value) | ForEach-Object { [string]$_ }) -join ', '
            }
            $optionsJson = ConvertTo-Json -Compress -Depth 3 -InputObject ([ordered]@{
                    apiVersion = 'v1.0'; timeoutMs = $script:ClientTimeoutMs; headers = $extra })
        } else {
            # The common case, kept cheap: called every 15 minutes per call, or in bulk.
            $optionsJson = '{"apiVersion":"v1.0","timeoutMs":' + $script:ClientTimeoutMs + '}'
        }
        $setHeaders = $PSBoundParameters.ContainsKey('ResponseHeadersVariable') -and $ResponseHeadersVariable
        # Success details are parsed only when someone will see them.
        $wantDetails = $setHeaders -or $VerbosePreference -ne 'SilentlyContinue' -or $DebugPreference -ne 'SilentlyContinue'
    }

    process {
        $items = if ($PSCmdlet.ParameterSetName -eq 'Keep') { , $CallId } else { @($InputObject) }
        foreach ($item in $items) {
            $target = $item
            $base = if ($item -is [psobject]) { $item.PSObject.BaseObject } else { $item }
            $by = 'Id'
            if ($PSCmdlet.ParameterSetName -eq 'Keep') {
                $value = $CallId; $displayId = $CallId
            } elseif ($base -is [string]) {
                if ($base.TrimStart().StartsWith('{')) {
                    $parsed = Get-MgkaJsonIdentityCallId -Json $base
                    if (-not $parsed.Ok) {
                        $record = New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -TargetObject $item -Info ([ordered]@{
                                kind = 'InvalidArgument'; parameter = 'InputObject'; message = $parsed.Error })
                        $PSCmdlet.WriteError($record)
                        continue
                    }
                    if ($null -eq $parsed.CallId) {
                        $PSCmdlet.WriteError((New-MgkaMissingCallIdError -TargetObject $item))
                        continue
                    }
                    $by = 'Identity'; $value = $base; $displayId = $parsed.CallId
                } else {
                    $value = $base; $displayId = $base
                }
            } else {
                $value = Get-MgkaIdentityCallId -Identity $base
                if ($null -eq $value -and $base -isnot [System.Collections.IDictionary]) {
                    $value = Get-MgkaIdentityCallId -Identity $item
                }
                if ($null -eq $value) {
                    $PSCmdlet.WriteError((New-MgkaMissingCallIdError -TargetObject $item))
                    continue
                }
                $displayId = $value
            }

            if (-not $PSCmdlet.ShouldProcess($displayId, 'Keep alive')) { continue }

            $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
            $result = Invoke-MgkaKeepAliveOperation -By $by -Value $value -OptionsJson $optionsJson
            $stopwatch.Stop()
            if ($result.Status -eq $script:MGKA_OK -and -not $wantDetails) {
                if ($PassThru) { $true }
                continue
            }
            $info = ConvertFrom-MgkaJson $result.Json
            if ($null -eq $info) { $info = [ordered]@{} }
            $elapsed = if ($null -ne $info['elapsedMs']) { $info['elapsedMs'] } else { $stopwatch.ElapsedMilliseconds }

            if ($setHeaders) {
                $PSCmdlet.SessionState.PSVariable.Set($ResponseHeadersVariable, (New-MgkaHeaderDictionary $info['headers']))
            }

            if ($result.Status -eq $script:MGKA_OK) {
                Write-Verbose "Keep alive call '$displayId': $($info['httpStatus']) in $elapsed ms"
                Write-Debug ("Keep alive response: POST $($info['uri']) -> $($info['httpStatus']); request-id: $($info['requestId'])" +
                    "; client-request-id: $($info['clientRequestId']); date: $($info['date']); attempts: $($info['attempts'])")
                if ($PassThru) { $true }
                continue
            }

            $kind = if ($info['kind']) { $info['kind'] } else { Get-MgkaStatusName $result.Status }
            if ($kind -eq 'Cancelled') {
                throw [System.Management.Automation.PipelineStoppedException]::new()
            }
            $statusText = if ($info['httpStatus']) { "$($info['httpStatus']) $($info['code'])" } else { $kind }
            Write-Verbose "Keep alive call '$displayId': $statusText in $elapsed ms"
            $record = New-MgkaErrorRecord -Status $result.Status -Info $info -TargetObject $target -Activity 'Keep alive'
            if ($record.ErrorDetails) { Write-Debug "Keep alive error response:`n$($record.ErrorDetails.Message)" }
            $PSCmdlet.WriteError($record)
        }
    }
}

function Connect-MgGraph {
    <#
    .SYNOPSIS
    Connects MgKeepAlive to Microsoft Graph.

    .DESCRIPTION
    Connects to Microsoft Graph with an access token you already have (app-only, with the
    Calls.Initiate.All or Calls.AccessMedia.All application permission). The connection is kept
    for the process and shared by every runspace, like Microsoft.Graph's.

    The token is handed to the native library as bytes; the copies made on the way are zeroed
    and the token is never written to any output stream.

    -Environment selects the cloud (see Get-MgEnvironment); Add-MgEnvironment defines others,
    for example the project's Graph emulator.

    .PARAMETER AccessToken
    An access token for Microsoft Graph, as a SecureString.

    .PARAMETER Environment
    The name of the cloud environment to connect to (Global, USGov, USGovDoD, China or one added
    with Add-MgEnvironment). Default: Global.

    .PARAMETER ClientTimeout
    The timeout of one Graph request, in seconds. Default: 300.

    .PARAMETER NoWelcome
    Hides the welcome message.

    .EXAMPLE
    $token = ConvertTo-SecureString $env:GRAPH_TOKEN -AsPlainText -Force
    Connect-MgGraph -AccessToken $token -NoWelcome

    Connects to the global cloud with an access token.

    .EXAMPLE
    Add-MgEnvironment -Name Emulator -AzureADEndpoint http://127.0.0.1:5555 -GraphEndpoint http://127.0.0.1:5555
    Connect-MgGraph -AccessToken (ConvertTo-SecureString 'test-token' -AsPlainText -Force) -Environment Emulator

    Connects to a local Graph emulator.

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
    #>
    [CmdletBinding(DefaultParameterSetName = 'AccessTokenParameterSet', PositionalBinding = $false)]
    [OutputType([void])]
    [Alias('Connect-Graph')]
    param(
        [Parameter(Mandatory, ParameterSetName = 'AccessTokenParameterSet')]
        [securestring] $AccessToken,

        [Parameter()]
        [Alias('EnvironmentName', 'NationalCloud')]
        [ValidateNotNullOrEmpty()]
        [string] $Environment,

        [Parameter()]
        [ValidateRange(1, 2147483)]
        [double] $ClientTimeout,

        [Parameter()]
        [switch] $NoWelcome
    )

    $request = [ordered]@{ authType = 'AccessToken' }
    if ($Environment) { $request['environment'] = $Environment }
    $text = [System.Collections.Specialized.OrderedDictionary]::new()
    $text['Environment'] = ConvertTo-Json -InputObject $request -Compress

    $unicode = [IntPtr]::Zero
    $chars = $null
    $secret = $null
    try {
        $unicode = [System.Runtime.InteropServices.Marshal]::SecureStringToGlobalAllocUnicode($AccessToken)
        $chars = [char[]]::new($AccessToken.Length)
        [System.Runtime.InteropServices.Marshal]::Copy($unicode, $chars, 0, $chars.Length)
        $secret = [byte[]]::new($script:Utf8.GetByteCount($chars))
        [void]$script:Utf8.GetBytes($chars, 0, $chars.Length, $secret, 0)
        $result = Invoke-MgkaNative Connect -Text $text -Secret $secret
    } catch [System.Text.EncoderFallbackException] {
        $PSCmdlet.ThrowTerminatingError((New-MgkaErrorRecord -Status $script:MGKA_INVALID_ARGUMENT -Info ([ordered]@{
                        kind = 'InvalidArgument'; parameter = 'AccessToken'; message = 'AccessToken is not valid Unicode text.' })))
    } finally {
        if ($null -ne $secret) { [Array]::Clear($secret) }
        if ($null -ne $chars) { [Array]::Clear($chars) }
        if ($unicode -ne [IntPtr]::Zero) { [System.Runtime.InteropServices.Marshal]::ZeroFreeGlobalAllocUnicode($unicode) }
    }

    if ($result.Status -ne $script:MGKA_OK) {
        $PSCmdlet.ThrowTerminatingError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -TargetObject $Environment -Activity 'Connect-MgGraph'))
    }
    # Like Microsoft.Graph: the timeout belongs to the connection (default 300 s).
    $script:ClientTimeoutMs = if ($PSBoundParameters.ContainsKey('ClientTimeout')) { [int][Math]::Ceiling($ClientTimeout * 1000) } else { 300000 }
    $context = ConvertTo-MgkaContext (ConvertFrom-MgkaJson $result.Json)
    Write-Verbose "Connected to Microsoft Graph ($($context.Environment)) with $($context.AuthType)."
    if (-not $NoWelcome) {
        $informationAction = if ($PSBoundParameters.ContainsKey('InformationAction')) { $PSBoundParameters['InformationAction'] } else { 'Continue' }
        Write-Information -MessageData "Welcome to Microsoft Graph! (MgKeepAlive $script:ModuleVersion, environment $($context.Environment))`nTo hide this message, use -NoWelcome." -InformationAction $informationAction
    }
}

function Disconnect-MgGraph {
    <#
    .SYNOPSIS
    Disconnects MgKeepAlive from Microsoft Graph.

    .DESCRIPTION
    Ends the current Microsoft Graph connection of the process and forgets its credential.
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

    $result = Invoke-MgkaNative Context
    if ($result.Status -ne $script:MGKA_OK) {
        $PSCmdlet.WriteError((New-MgkaErrorRecord -Status $result.Status -Info (ConvertFrom-MgkaJson $result.Json) -Activity 'Get-MgContext'))
        return
    }
    ConvertTo-MgkaContext (ConvertFrom-MgkaJson $result.Json)
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

    .PARAMETER GraphEndpoint
    The Microsoft Graph endpoint, for example https://graph.microsoft.com.

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
    #>
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Low')]
    [OutputType('MgKeepAlive.Environment')]
    param(
        [Parameter(Mandatory, Position = 0)]
        [ValidateNotNullOrEmpty()]
        [string] $Name,

        [Parameter(Mandatory)]
        [ValidateNotNullOrEmpty()]
        [string] $AzureADEndpoint,

        [Parameter(Mandatory)]
        [ValidateNotNullOrEmpty()]
        [string] $GraphEndpoint
    )

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

#endregion

#region Import ------------------------------------------------------------------------------------
# Straight-line code on purpose: import time is a feature (a first call of any PowerShell
# function or .NET method costs milliseconds of JIT), so this region calls as little as it can.

# The manifest's ModuleVersion. (During Import-Module the module's Version is not set yet, and a
# regex or Import-PowerShellDataFile would cost more than the rest of the import.)
$manifestText = [System.IO.File]::ReadAllText("$PSScriptRoot/MgKeepAlive.psd1")
$versionStart = $manifestText.IndexOf("'", $manifestText.IndexOf('ModuleVersion')) + 1
$script:ModuleVersion = $manifestText.Substring($versionStart, $manifestText.IndexOf("'", $versionStart) - $versionStart)

# Library resolution: MGKEEPALIVE_LIBRARY (absolute path), else <module>/<rid>/, else the source
# tree's target/release, then target/debug.
$script:LibraryPath = [Environment]::GetEnvironmentVariable('MGKEEPALIVE_LIBRARY')
if ($script:LibraryPath) {
    if (-not [System.IO.Path]::IsPathFullyQualified($script:LibraryPath)) {
        throw "MgKeepAlive: MGKEEPALIVE_LIBRARY must be an absolute path to the native library; it is '$script:LibraryPath'."
    }
    if (-not [System.IO.File]::Exists($script:LibraryPath)) {
        throw "MgKeepAlive: MGKEEPALIVE_LIBRARY points to '$script:LibraryPath', which does not exist."
    }
} else {
    $libraryName = if ($IsWindows) { 'mgkeepalive.dll' } elseif ($IsMacOS) { 'libmgkeepalive.dylib' } else { 'libmgkeepalive.so' }
    $rid = $(if ($IsWindows) { 'win-' } elseif ($IsMacOS) { 'osx-' } else { 'linux-' }) +
        [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()
    $sourceTree = [System.IO.Path]::GetDirectoryName([System.IO.Path]::GetDirectoryName($PSScriptRoot))
    $candidates = "$PSScriptRoot/$rid/$libraryName", "$sourceTree/target/release/$libraryName", "$sourceTree/target/debug/$libraryName"
    foreach ($candidate in $candidates) {
        if ([System.IO.File]::Exists($candidate)) { $script:LibraryPath = $candidate; break }
    }
    if (-not $script:LibraryPath) {
        throw ("MgKeepAlive: cannot find the native library $libraryName for $rid. Looked in:`n  " + ($candidates -join "`n  ") +
            "`nBuild it with 'cargo build --release' in the source tree, import a packaged module (pwsh/build-module.ps1)," +
            " or set MGKEEPALIVE_LIBRARY to the library's absolute path.")
    }
}

# Interop: a static class of P/Invoke methods emitted with System.Reflection.Emit and bound to
# the library's absolute path (no C# is compiled). Cached per path in the AppDomain, so a
# re-import, or an import in another runspace, reuses it: a native library is loaded once per
# process and never unloaded.
$script:Native = [AppDomain]::CurrentDomain.GetData("MgKeepAlive.Native|$script:LibraryPath")
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
            , @('mgka_connect', [uint32], [type[]]@($bytes, $bytes, [UIntPtr], $ptrOut))
            , @('mgka_disconnect', [uint32], [type[]]@($ptrOut))
            , @('mgka_context', [uint32], [type[]]@($ptrOut))
            , @('mgka_keep_alive_by_id_start', [uint32], [type[]]@($bytes, $bytes, $u64Out))
            , @('mgka_keep_alive_by_identity_start', [uint32], [type[]]@($bytes, $bytes, $u64Out))
            , @('mgka_operation_wait', [uint32], [type[]]@([uint64], [uint32], $ptrOut))
            , @('mgka_operation_cancel', [uint32], [type[]]@([uint64]))
        )) {
        $typeBuilder.DefinePInvokeMethod($signature[0], $script:LibraryPath, 'Public, Static, PinvokeImpl, HideBySig', 'Standard',
            $signature[1], $signature[2], 'Cdecl', 'Ansi').SetImplementationFlags('PreserveSig')
    }
    $script:Native = $typeBuilder.CreateType()
    [AppDomain]::CurrentDomain.SetData("MgKeepAlive.Native|$script:LibraryPath", $script:Native)
}

try {
    $libraryVersion = Invoke-MgkaNative Version
} catch {
    $reason = if ($_.Exception.InnerException) { $_.Exception.InnerException.Message } else { $_.Exception.Message }
    throw "MgKeepAlive: cannot load the native library '$script:LibraryPath': $reason"
}
if ($libraryVersion -ne $script:ModuleVersion) {
    throw ("MgKeepAlive $script:ModuleVersion needs libmgkeepalive $script:ModuleVersion, but '$script:LibraryPath' is version '$libraryVersion'." +
        " Rebuild the library ('cargo build --release'), reinstall the module, or point MGKEEPALIVE_LIBRARY at a matching build.")
}

#endregion
