# MgKeepAlive: the keep-alive commands' path beyond a lone -CallId that succeeds: piped input,
# answers with details (-Verbose, -Debug, -ResponseHeadersVariable), failures and their error
# records, progress. Dot-sourced into the module's script scope by the first keep-alive that needs
# it (Open-MgkaKeepAlive of MgKeepAlive.Private.ps1, whose stub this file's Open-MgkaKeepAlive
# replaces), not by the first command: a cold job (connect, keep one call alive) does not parse it.

# Microsoft's keep-alive commands are proxies of generated cmdlets (one per parameter set, such
# as InvokeMgKeepCommunicationCallAlive_Keep); their error records are named after those.
$script:KeepAliveCmdletNames = @{
    'v1.0' = @{ Namespace = 'Microsoft.Graph.PowerShell.Cmdlets'; Type = 'InvokeMgKeepCommunicationCallAlive'; Activity = 'Invoke-MgKeepCommunicationCallAlive' }
    'beta' = @{ Namespace = 'Microsoft.Graph.Beta.PowerShell.Cmdlets'; Type = 'InvokeMgBetaKeepCommunicationCallAlive'; Activity = 'Invoke-MgBetaKeepCommunicationCallAlive' }
}

# Piped input: when Write-Progress starts (items done). Chunks and concurrency are the library's
# (mgka_keep_alive_stream_open).
$script:BulkProgressAfter = 500
$script:BulkProgressId = 0x4D474B41

function script:Write-MgkaAttemptLog {
    # The library's text of each attempt (mgka's attempt log): -Verbose, its line for every attempt
    # but the last (the caller writes that); -Debug, its HTTP REQUEST / HTTP RESPONSE blocks, like
    # the official cmdlets (Authorization is sent but never shown).
    param([System.Collections.IDictionary] $Info, [string] $DisplayId, [bool] $Debug)
    foreach ($entry in $Info['attemptLog']) {
        if ($entry['verboseLine']) { Write-Verbose "Keep alive call '$DisplayId', $($entry['verboseLine'])" }
        if ($Debug) { foreach ($text in $entry['debugText']) { Write-Debug $text } }
    }
}

function script:Open-MgkaKeepAlive {
    # The begin block of Invoke-MgKeepCommunicationCallAlive and
    # Invoke-MgBetaKeepCommunicationCallAlive (they differ only in -ApiVersion) but for a lone
    # -CallId with nothing else to pass (the commands open that stream themselves): writes the
    # warnings, opens the keep-alive stream (mgka_keep_alive_stream_open) that -CallId or every
    # piped item is pushed into, and returns the state the other blocks need. -ConstantOptions:
    # Open-MgkaKeepAliveCommand found nothing to pass but the API version ($script:KeepAliveOptions).
    # With -Stream (the commands' own stream, when its one item needs more than a success), only the state.
    param(
        [System.Management.Automation.PSCmdlet] $Cmdlet,
        [string] $ApiVersion,
        [int] $ThrottleLimit,
        [bool] $ConstantOptions,
        [uint64] $Stream
    )
    $bound = $Cmdlet.MyInvocation.BoundParameters
    $variable = [string]$bound['ResponseHeadersVariable']
    $debug = $DebugPreference -ne 'SilentlyContinue' -and $DebugPreference -ne 'Ignore'
    $status = $script:MGKA_OK; $json = $null
    if (-not $Stream) {
        # The library warns (mgka_keep_alive_stream_open): about the ignored compatibility parameters
        # given, and once per process about the connected cloud when keepAlive is not documented there. Microsoft's
        # modules loaded next to MgKeepAlive are checked by Connect-MgGraph and Get-MgContext, and when
        # a keep-alive finds no connection, not here.
        $given = ''
        if ($bound.ContainsKey('HttpPipelineAppend')) { $given += ',"HttpPipelineAppend"' }
        if ($bound.ContainsKey('HttpPipelinePrepend')) { $given += ',"HttpPipelinePrepend"' }
        if ($bound['ProxyCredential'] -and -not $bound['Proxy']) { $given += ',"ProxyCredential"' }
        if ($bound['ProxyUseDefaultCredentials']) { $given += ',"ProxyUseDefaultCredentials"' }

        # Timeout and retries come from the process-wide request context (Set-MgRequestContext).
        $optionsBytes = $script:KeepAliveOptions[$ApiVersion]
        if (-not $ConstantOptions) {
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
            $options['environmentProxy'] = Get-MgkaEnvironmentProxy
            if ($debug) { $options['debug'] = $true }
            try { $optionsBytes = $script:Utf8.GetBytes((ConvertTo-Json -Compress -Depth 4 -InputObject $options) + [char]0) } catch [System.Text.EncoderFallbackException] { $optionsBytes = $null }
        }
        # Success details are parsed only when someone will see them.
        $verbose = $VerbosePreference -ne 'SilentlyContinue' -and $VerbosePreference -ne 'Ignore'
        $details = [bool]$variable -or $debug -or $verbose
        $out = [IntPtr]::Zero
        $settings = '{"concurrency":' + $ThrottleLimit + ',"details":' + $(if ($details) { 'true' } else { 'false' }) + ',"notes":' + $(if ($verbose) { 'true' } else { 'false' })
        if ($given) { $settings += ',"given":[' + $given.Substring(1) + ']' }
        $settings += '}'
        if ($null -eq $script:Native) { $null = Initialize-MgkaNative }
        $status = if ($null -eq $optionsBytes) { $script:MGKA_INVALID_ARGUMENT } else { $script:Native::mgka_keep_alive_stream_open($optionsBytes, $script:Utf8.GetBytes($settings + [char]0), [ref]$Stream, [ref]$out) }
        $json = Write-MgkaKeepAliveWarnings -Status $status -Pointer $out
    }
    $state = @{
        Cmdlet                  = $Cmdlet
        ApiVersion              = $ApiVersion
        ErrorInvocation         = $null # see Write-MgkaKeepAliveError
        PassThru                = [bool]$bound['PassThru']
        ResponseHeadersVariable = $variable
        Debug                   = $debug
        Stream                  = $Stream
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
