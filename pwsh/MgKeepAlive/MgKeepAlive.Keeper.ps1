# MgKeepAlive: the background keeper's helpers (Start/Get/Stop/Wait-MgCommunicationCallKeepAlive).
# Dot-sourced into the module's script scope by Import-MgkaKeeper (MgKeepAlive.Private.ps1) when
# one of those commands first runs, not by the first command of a session. The keeper runs in the
# native library and is process-wide: every runspace sees the same kept calls. The library answers
# every request in one shape (call states, and per-id errors: InvalidCallId, CallNotKept); these
# helpers only turn it into objects and error records.

# Ids per mgka_keeper_start / mgka_keeper_stop request.
$script:KeeperBatchSize = 1000

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
    # For the module's OnRemove in any runspace: this process has used the keeper.
    [AppDomain]::CurrentDomain.SetData("MgKeepAlive.KeeperUsed|$script:LibraryPath", $true)
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
