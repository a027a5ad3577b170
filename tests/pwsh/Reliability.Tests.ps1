#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# Issue 4 as PowerShell users see it, against the emulator's fault scripting: retries and the
# request context, timeouts, Ctrl+C, proxies, hostile input, broken servers, concurrency, secrets.
# Each case asserts the number of requests the emulator saw and, where it matters, the waits: as the
# library decided them (-Verbose, AttemptLog) and as the emulator saw them (the time between the
# arrivals of the attempts, a lower bound only). No wall-clock upper bounds: the runner is loaded.

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    Import-Module $ManifestPath -Force -ErrorAction Stop
    Connect-TestGraph

    function Set-FastRetry {
        # Retries without back-off waits (RetryDelay 0): the tests that time waits use Retry-After.
        $null = Set-MgRequestContext -MaxRetry 3 -RetryDelay 0 -RetriesTimeLimit 0 -ClientTimeout 30
    }

    function Add-Fault {
        param([string] $CallId, [object[]] $Responses, [int] $Count)
        $script = [ordered]@{ callId = $CallId; responses = $Responses }
        if ($Count) { $script['count'] = $Count }
        $null = Invoke-Emulator POST faults $script
    }

    function Get-CallRequest {
        # This call's keep-alives in the emulator log.
        param([string] $CallId)
        @(Get-EmulatorRequest | Where-Object { $_.kind -eq 'keepAlive' -and $_.callId -ceq $CallId })
    }

    function Invoke-Timed {
        # Runs $Script with -Verbose output merged; returns @{ Output; Waits; Ms }: Waits are the
        # "waiting N ms" of its verbose attempt lines (the waits the library decided), Ms the
        # elapsed time for the fault matrix (never asserted).
        param([scriptblock] $Script)
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        $all = @(& $Script 4>&1)
        $stopwatch.Stop()
        $verbose = @($all | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })
        @{
            Output = @($all | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] })
            Waits  = @($verbose | ForEach-Object { if ($_.Message -match '; waiting (\d+) ms') { [int]$Matches[1] } })
            Ms     = $stopwatch.ElapsedMilliseconds
        }
    }

    function Assert-Waited {
        # The emulator saw each attempt at least the given milliseconds after the one before
        # (the arrivals are logged to the millisecond, so 1 ms of rounding is allowed).
        param([object[]] $Requests, [int[]] $AtLeastMs)
        $gaps = @(Get-EmulatorRequestGapMs $Requests)
        $gaps.Count | Should -Be $AtLeastMs.Count
        for ($i = 0; $i -lt $gaps.Count; $i++) {
            $gaps[$i] | Should -BeGreaterOrEqual ($AtLeastMs[$i] - 1) -Because "attempt $($i + 2) must wait $($AtLeastMs[$i]) ms after attempt $($i + 1)"
        }
    }

    Set-FastRetry
    $script:Matrix = [System.Collections.Generic.List[string]]::new()
    function Add-MatrixRow {
        param([string] $Case, [string] $Outcome, [int] $Requests, [long] $Ms)
        $script:Matrix.Add(('{0,-52} {1,-38} {2,3} req {3,6} ms' -f $Case, $Outcome, $Requests, $Ms))
    }
}

AfterAll {
    # The request context is process-wide: back to the official defaults for the other files.
    $null = Set-MgRequestContext -MaxRetry 3 -RetryDelay 3 -RetriesTimeLimit 0 -ClientTimeout 300
    if ($script:Matrix.Count) {
        Write-Host "`nFault matrix (case, outcome, requests the emulator saw, elapsed):"
        $script:Matrix | ForEach-Object { Write-Host "  $_" }
    }
    Stop-TestEmulator $Emulator
}

Describe 'Set-MgRequestContext and Get-MgRequestContext' {
    AfterAll { Set-FastRetry }

    It 'has the official parameters: -<Name> <Type>, by property name' -TestCases @(
        @{ Name = 'RetryDelay' }, @{ Name = 'MaxRetry' }, @{ Name = 'RetriesTimeLimit' }, @{ Name = 'ClientTimeout' }
    ) {
        $parameter = (Get-Command Set-MgRequestContext).Parameters[$Name]
        $parameter.ParameterType | Should -Be ([int])
        $parameter.Attributes.Where({ $_ -is [System.Management.Automation.ParameterAttribute] })[0].ValueFromPipelineByPropertyName | Should -BeTrue
        (Get-Command Set-MgRequestContext).Parameters.Keys | Should -Contain 'WhatIf'
    }

    It 'starts with the official defaults: 3 retries, 3 s, no retries time limit, 300 s' {
        $result = Invoke-TestPwsh -Command "Import-Module '$ManifestPath'; `$c = Get-MgRequestContext; '{0}|{1}|{2}|{3}|{4}|{5}' -f `$c.MaxRetry, `$c.RetryDelay, `$c.RetriesTimeLimit, `$c.ClientTimeout, `$c.ClientTimeout.GetType().Name, `$c.PSObject.TypeNames[0]"
        $result.Output | Should -Be '3|3|00:00:00|00:05:00|TimeSpan|MgKeepAlive.RequestContext'
    }

    It 'sets only the values given and returns the settings in force' {
        $null = Set-MgRequestContext -MaxRetry 5 -RetryDelay 2 -RetriesTimeLimit 60 -ClientTimeout 100
        $after = Set-MgRequestContext -MaxRetry 7
        $after.MaxRetry | Should -Be 7
        $after.RetryDelay | Should -Be 2
        $after.RetriesTimeLimit | Should -Be ([timespan]::FromSeconds(60))
        $after.ClientTimeout | Should -Be ([timespan]::FromSeconds(100))
        (Get-MgRequestContext).MaxRetry | Should -Be 7
    }

    It 'refuses <Case> (the caps) and changes nothing' -TestCases @(
        @{ Case = '-MaxRetry 11'; Splat = @{ MaxRetry = 11 } }
        @{ Case = '-RetryDelay 181'; Splat = @{ RetryDelay = 181 } }
        @{ Case = '-MaxRetry -1'; Splat = @{ MaxRetry = -1 } }
        @{ Case = '-ClientTimeout 0'; Splat = @{ ClientTimeout = 0 } }
        @{ Case = '-RetriesTimeLimit -1'; Splat = @{ RetriesTimeLimit = -1 } }
    ) {
        $null = Set-MgRequestContext -MaxRetry 4 -RetryDelay 1 -RetriesTimeLimit 0 -ClientTimeout 30
        { Set-MgRequestContext @Splat } | Should -Throw -ErrorId 'ParameterArgumentValidationError,Set-MgRequestContext'
        $context = Get-MgRequestContext
        $context.MaxRetry, $context.RetryDelay, $context.ClientTimeout.TotalSeconds | Should -Be @(4, 1, 30)
    }

    It 'accepts the caps: -MaxRetry 10 -RetryDelay 180' {
        $context = Set-MgRequestContext -MaxRetry 10 -RetryDelay 180
        $context.MaxRetry, $context.RetryDelay | Should -Be @(10, 180)
    }

    It '-WhatIf changes nothing' {
        $null = Set-MgRequestContext -MaxRetry 2
        Set-MgRequestContext -MaxRetry 9 -WhatIf
        (Get-MgRequestContext).MaxRetry | Should -Be 2
    }

    It 'is shared by every runspace of the process' {
        $powershell = [powershell]::Create()
        try {
            $null = $powershell.AddScript("Import-Module '$ManifestPath'; `$null = Set-MgRequestContext -MaxRetry 6")
            $null = $powershell.Invoke()
        } finally { $powershell.Dispose() }
        (Get-MgRequestContext).MaxRetry | Should -Be 6
    }

    It 'Connect-MgGraph -ClientTimeout sets ClientTimeout' {
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 'test-token' -AsPlainText -Force) -Environment Emulator -ClientTimeout 42 -NoWelcome
        (Get-MgRequestContext).ClientTimeout | Should -Be ([timespan]::FromSeconds(42))
    }
}

Describe 'Retries' {
    BeforeEach {
        Set-FastRetry
        $null = Invoke-Emulator DELETE faults
        Clear-EmulatorRequest
    }

    It 'rides out 429 with Retry-After "1" (integer seconds): $true, 2 requests, waits ~1 s, Retry-Attempt: 1' {
        New-EmulatorCall 'r-429'
        Add-Fault 'r-429' @(@{ status = 429; headers = @{ 'Retry-After' = '1' } })
        $run = Invoke-Timed { Invoke-MgKeepCommunicationCallAlive -CallId r-429 -PassThru -Verbose }
        $run.Output | Should -Be @($true)
        $requests = Get-CallRequest 'r-429'
        $requests.Count | Should -Be 2
        $requests[0].headers.PSObject.Properties['retry-attempt'] | Should -BeNullOrEmpty
        $requests[1].headers.'retry-attempt' | Should -Be '1'
        $run.Waits | Should -Be @(1000)
        Assert-Waited $requests 1000
        Add-MatrixRow '429 Retry-After: 1, then 200' '$true' $requests.Count $run.Ms
    }

    It 'honours fractional Retry-After "0.5" twice: $true, 3 requests, ~1 s, Retry-Attempt 1 and 2' {
        New-EmulatorCall 'r-frac'
        Add-Fault 'r-frac' @(@{ status = 429; headers = @{ 'Retry-After' = '0.5' } }, @{ status = 429; headers = @{ 'Retry-After' = '0.5' } })
        $run = Invoke-Timed { Invoke-MgKeepCommunicationCallAlive -CallId r-frac -PassThru -Verbose }
        $run.Output | Should -Be @($true)
        $requests = Get-CallRequest 'r-frac'
        $requests.Count | Should -Be 3
        $requests[1].headers.'retry-attempt', $requests[2].headers.'retry-attempt' | Should -Be @('1', '2')
        $run.Waits | Should -Be @(500, 500)
        Assert-Waited $requests 500, 500
        Add-MatrixRow '429 Retry-After: 0.5 x2, then 200' '$true' $requests.Count $run.Ms
    }

    It 'waits RetryDelay x 2^n without Retry-After (RetryDelay 1: 1 s, then 2 s)' {
        $null = Set-MgRequestContext -RetryDelay 1
        New-EmulatorCall 'r-backoff'
        Add-Fault 'r-backoff' @(@{ status = 503 }, @{ status = 503 })
        $run = Invoke-Timed { Invoke-MgKeepCommunicationCallAlive -CallId r-backoff -PassThru -Verbose }
        $run.Output | Should -Be @($true)
        $requests = Get-CallRequest 'r-backoff'
        $requests.Count | Should -Be 3
        $run.Waits | Should -Be @(1000, 2000)
        Assert-Waited $requests 1000, 2000
        Add-MatrixRow '503, 503 (no Retry-After, RetryDelay 1), then 200' '$true' 3 $run.Ms
    }

    It 'retries <Status> and succeeds: $true, 2 requests' -TestCases @(@{ Status = 503 }, @{ Status = 504 }, @{ Status = 429 }) {
        $id = "r-$Status"
        New-EmulatorCall $id
        Add-Fault $id @(@{ status = $Status })
        $run = Invoke-Timed { Invoke-MgKeepCommunicationCallAlive -CallId $id -PassThru }
        $run.Output | Should -Be @($true)
        (Get-CallRequest $id).Count | Should -Be 2
        Add-MatrixRow "$Status once, then 200" '$true' 2 $run.Ms
    }

    It 'never retries <Status>: one request, error <ErrorId> (<Category>)' -TestCases @(
        @{ Status = 400; ErrorId = 'BadRequest'; Category = 'InvalidOperation' }
        @{ Status = 403; ErrorId = 'Forbidden'; Category = 'InvalidOperation' }
        @{ Status = 404; ErrorId = 'itemNotFound'; Category = 'InvalidOperation' }
    ) {
        $id = "nr-$Status"
        New-EmulatorCall $id
        Add-Fault $id @(@{ status = $Status }) -Count 5
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-MgKeepCommunicationCallAlive -CallId $id -ErrorVariable errors -ErrorAction SilentlyContinue
        $stopwatch.Stop()
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be "$ErrorId,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep"
        $errors[0].CategoryInfo.Category | Should -Be $Category
        $errors[0].Exception.Attempts | Should -Be 1
        $errors[0].ErrorDetails.Message | Should -Not -Match 'Attempts:'
        (Get-CallRequest $id).Count | Should -Be 1
        Add-MatrixRow "$Status always" "error $ErrorId" 1 $stopwatch.ElapsedMilliseconds
    }

    It 'gives up after MaxRetry: error with Attempts 3 and AttemptLog (ErrorDetails stay Microsoft''s), 3 requests' {
        $null = Set-MgRequestContext -MaxRetry 2
        New-EmulatorCall 'r-exhaust'
        Add-Fault 'r-exhaust' @(@{ status = 503 }) -Count 10
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-MgKeepCommunicationCallAlive -CallId r-exhaust -ErrorVariable errors -ErrorAction SilentlyContinue
        $stopwatch.Stop()
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'ServiceUnavailable,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        $errors[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        $errors[0].Exception.StatusCode | Should -Be 503
        $errors[0].Exception.Attempts | Should -Be 3
        $errors[0].Exception.AttemptLog.Count | Should -Be 3
        $errors[0].Exception.AttemptLog.Status | Should -Be @(503, 503, 503)
        $errors[0].ErrorDetails.Message | Should -Not -Match 'Attempts:'
        (Get-CallRequest 'r-exhaust').Count | Should -Be 3
        Add-MatrixRow '503 always, MaxRetry 2' 'error ServiceUnavailable, Attempts 3' 3 $stopwatch.ElapsedMilliseconds
    }

    It 'MaxRetry 0 sends once' {
        $null = Set-MgRequestContext -MaxRetry 0
        New-EmulatorCall 'r-none'
        Add-Fault 'r-none' @(@{ status = 503 })
        Invoke-MgKeepCommunicationCallAlive -CallId r-none -ErrorAction SilentlyContinue
        (Get-CallRequest 'r-none').Count | Should -Be 1
    }

    It 'RetriesTimeLimit: a Retry-After beyond the limit is not waited for (1 request, at once)' {
        $null = Set-MgRequestContext -RetriesTimeLimit 1
        New-EmulatorCall 'r-limit'
        Add-Fault 'r-limit' @(@{ status = 429; headers = @{ 'Retry-After' = '5' } }) -Count 5
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-MgKeepCommunicationCallAlive -CallId r-limit -ErrorVariable errors -ErrorAction SilentlyContinue
        $stopwatch.Stop()
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'TooManyRequests,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        (Get-CallRequest 'r-limit').Count | Should -Be 1
        # The library gave up without a wait (a wait would be recorded on the attempt).
        $errors[0].Exception.AttemptLog.Count | Should -Be 1
        $errors[0].Exception.AttemptLog[0].RetryAfter | Should -Be '5'
        $errors[0].Exception.AttemptLog[0].WaitMs | Should -BeNullOrEmpty
        Add-MatrixRow '429 Retry-After: 5, RetriesTimeLimit 1' 'error TooManyRequests' 1 $stopwatch.ElapsedMilliseconds
    }

    It 'RetriesTimeLimit: retries stop once their waits would pass the limit' {
        $null = Set-MgRequestContext -RetriesTimeLimit 1
        New-EmulatorCall 'r-limit2'
        Add-Fault 'r-limit2' @(@{ status = 429; headers = @{ 'Retry-After' = '0.4' } }) -Count 10
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-MgKeepCommunicationCallAlive -CallId r-limit2 -ErrorVariable errors -ErrorAction SilentlyContinue
        $stopwatch.Stop()
        $requests = Get-CallRequest 'r-limit2'
        $requests.Count | Should -Be 3   # waits 0.4 + 0.4; a third would pass 1 s
        $errors[0].Exception.Attempts | Should -Be 3
        $log = $errors[0].Exception.AttemptLog
        $log[0].WaitMs, $log[1].WaitMs | Should -Be @(400, 400)
        $log[2].WaitMs | Should -BeNullOrEmpty -Because 'a third wait would pass the limit'
        Assert-Waited $requests 400, 400
        Add-MatrixRow '429 Retry-After: 0.4 always, RetriesTimeLimit 1' 'error TooManyRequests, Attempts 3' $requests.Count $stopwatch.ElapsedMilliseconds
    }

    It 'ClientTimeout bounds a hung server: Timeout error (OperationTimeout) within the bound, 1 request' {
        $null = Set-MgRequestContext -ClientTimeout 1
        New-EmulatorCall 'r-hung'
        Add-Fault 'r-hung' @(@{ status = 200; delayMs = 10000 }) -Count 5
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-MgKeepCommunicationCallAlive -CallId r-hung -ErrorVariable errors -ErrorAction SilentlyContinue
        $stopwatch.Stop()
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'Timeout,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        $errors[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $errors[0].Exception | Should -BeOfType [System.TimeoutException]
        $stopwatch.ElapsedMilliseconds | Should -BeGreaterOrEqual 950 -Because 'the client timeout is 1 s'
        $requests = Get-CallRequest 'r-hung'
        $requests.Count | Should -Be 1
        # The server holds its answer for 10 s: the client gave up before it came.
        $requests[0].status | Should -BeNullOrEmpty -Because 'the error came before the server answered'
        Add-MatrixRow 'hung server (delayMs 10000), ClientTimeout 1' 'error Timeout' 1 $stopwatch.ElapsedMilliseconds
    }

    It 'ClientTimeout includes the waits: a Retry-After past the timeout returns the 429 at once' {
        $null = Set-MgRequestContext -ClientTimeout 2
        New-EmulatorCall 'r-late'
        Add-Fault 'r-late' @(@{ status = 429; headers = @{ 'Retry-After' = '30' } }) -Count 5
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-MgKeepCommunicationCallAlive -CallId r-late -ErrorVariable errors -ErrorAction SilentlyContinue
        $stopwatch.Stop()
        # Not a Timeout error: the library did not sit out the client timeout, and it recorded no wait.
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'TooManyRequests,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        $errors[0].Exception.AttemptLog.Count | Should -Be 1
        $errors[0].Exception.AttemptLog[0].WaitMs | Should -BeNullOrEmpty
        (Get-CallRequest 'r-late').Count | Should -Be 1
        Add-MatrixRow '429 Retry-After: 30, ClientTimeout 2' 'error TooManyRequests' 1 $stopwatch.ElapsedMilliseconds
    }

    It 'retries a dropped connection: $true, 2 requests' {
        New-EmulatorCall 'r-drop'
        Add-Fault 'r-drop' @(@{ drop = $true })
        $run = Invoke-Timed { Invoke-MgKeepCommunicationCallAlive -CallId r-drop -PassThru }
        $run.Output | Should -Be @($true)
        (Get-CallRequest 'r-drop').Count | Should -Be 2
        Add-MatrixRow 'dropped connection, then 200' '$true' 2 $run.Ms
    }

    It 'a connection that keeps dropping: TransportError (ConnectionError) with Attempts, non-terminating' {
        $null = Set-MgRequestContext -MaxRetry 1
        New-EmulatorCall 'r-drops', 'r-after'
        Add-Fault 'r-drops' @(@{ drop = $true }) -Count 5
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        $output = 'r-drops', 'r-after' | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorVariable errors -ErrorAction SilentlyContinue
        $stopwatch.Stop()
        $output | Should -Be @($true)
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'TransportError,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_KeepViaIdentity'
        $errors[0].CategoryInfo.Category | Should -Be 'ConnectionError'
        $errors[0].Exception.Attempts | Should -Be 2
        $errors[0].Exception.AttemptLog.Count | Should -Be 2
        $errors[0].Exception.Message | Should -Match 'after 2 attempts'
        (Get-CallRequest 'r-drops').Count | Should -Be 2
        Add-MatrixRow 'dropped connection always, MaxRetry 1' 'error TransportError, Attempts 2' 2 $stopwatch.ElapsedMilliseconds
    }

    It 'a timeout is non-terminating: the next pipeline item is kept alive' {
        $null = Set-MgRequestContext -ClientTimeout 1
        New-EmulatorCall 'r-slow', 'r-next'
        # It hangs in the JSON batch and again when sent singly; r-next is kept alive singly.
        Add-Fault 'r-slow' @(@{ status = 200; delayMs = 5000 }) -Count 2
        $output = 'r-slow', 'r-next' | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorVariable errors -ErrorAction SilentlyContinue
        $output | Should -Be @($true)
        $errors[0].FullyQualifiedErrorId | Should -Be 'Timeout,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_KeepViaIdentity'
    }

    It '-Verbose writes one line per attempt: number, status, elapsed, the wait and Retry-After' {
        New-EmulatorCall 'r-verbose'
        Add-Fault 'r-verbose' @(@{ status = 429; headers = @{ 'Retry-After' = '0.2' } }, @{ status = 503 })
        $verbose = @(Invoke-MgKeepCommunicationCallAlive -CallId r-verbose -Verbose 4>&1 |
                Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'Keep alive call*' }).Message
        $verbose.Count | Should -Be 3
        $verbose[0] | Should -Match "^Keep alive call 'r-verbose', attempt 1 of 3: 429 TooManyRequests in \d+ ms; waiting 200 ms \(Retry-After: 0\.2\) before attempt 2$"
        $verbose[1] | Should -Match "^Keep alive call 'r-verbose', attempt 2 of 3: 503 ServiceUnavailable in \d+ ms; waiting 0 ms before attempt 3$"
        $verbose[2] | Should -Match "^Keep alive call 'r-verbose': 200 in \d+ ms \(attempt 3 of 3\)$"
    }

    It '-Debug writes HTTP REQUEST / HTTP RESPONSE blocks per attempt, Authorization filtered' {
        New-EmulatorCall 'r-debug'
        Add-Fault 'r-debug' @(@{ status = 429; headers = @{ 'Retry-After' = '0' } })
        $debug = @(Invoke-MgKeepCommunicationCallAlive -CallId r-debug -Debug 5>&1 |
                Where-Object { $_ -is [System.Management.Automation.DebugRecord] }).Message
        $requests = @($debug | Where-Object { $_ -like '============================ HTTP REQUEST ============================*' })
        $responses = @($debug | Where-Object { $_ -like '============================ HTTP RESPONSE ============================*' })
        $requests.Count | Should -Be 2
        $responses.Count | Should -Be 2
        $requests[0] | Should -Match '(?s)HTTP Method:\r?\nPOST\r?\n\r?\nAbsolute Uri:\r?\nhttp://127\.0\.0\.1:\d+/v1\.0/communications/calls/r-debug/keepAlive\r?\n\r?\nHeaders:\r?\nAuthorization\s+: \[Filtered\]\r?\n'
        $requests[0] | Should -Match 'user-agent\s+: MgKeepAlive/\d'
        $requests[0] | Should -Match 'client-request-id\s+: [0-9a-f-]{36}'
        $requests[1] | Should -Match 'retry-attempt\s+: 1'
        $responses[0] | Should -Match '(?s)Status Code:\r?\nTooManyRequests \(429\).*Headers:.*retry-after\s+: 0.*Body:\r?\n\{"error":\{"code":"TooManyRequests"'
        $responses[1] | Should -Match 'Status Code:\r?\nOK \(200\)'
        ($debug -join "`n") | Should -Not -Match 'test-token'
    }
}

Describe 'Server answers' {
    BeforeAll { Set-FastRetry }
    BeforeEach { Clear-EmulatorRequest }

    It '<Case>: a clear error with the status, 1 request' -TestCases @(
        @{ Case = 'HTML'; Response = @{ status = 400; body = '<html><body>Bad gateway thing</body></html>'; contentType = 'text/html' }; Match = '<html>' }
        @{ Case = 'empty body'; Response = @{ status = 400; body = ''; contentType = 'text/plain' }; Match = 'empty body' }
        @{ Case = 'truncated JSON'; Response = @{ status = 400; body = '{"error":{"code":"X","mess'; contentType = 'application/json' }; Match = '\{"error"' }
        @{ Case = 'wrong content type'; Response = @{ status = 400; body = '{"error":{"code":"Wrong","message":"typed as text"}}'; contentType = 'text/plain' }; Match = 'Wrong|typed as text' }
        @{ Case = 'JSON without error'; Response = @{ status = 400; json = @{ detail = 'no error member' } }; Match = 'no error member' }
        @{ Case = 'huge (5 MB) body'; Response = @{ status = 400; bodyBytes = 5242880 }; Match = 'xxxx' }
    ) {
        $id = "srv-$($Case -replace '\W', '-')"
        New-EmulatorCall $id
        Add-Fault $id @($Response)
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-MgKeepCommunicationCallAlive -CallId $id -ErrorVariable errors -ErrorAction SilentlyContinue
        $stopwatch.Stop()
        $errors.Count | Should -Be 1
        $errors[0].Exception | Should -BeOfType [System.Net.Http.HttpRequestException]
        [int]$errors[0].Exception.StatusCode | Should -Be 400
        $errors[0].ErrorDetails.Message | Should -Match 'Status: 400 \(BadRequest\)'
        $errors[0].Exception.Message | Should -Match $Match
        $errors[0].Exception.Message.Length | Should -BeLessThan 2200
        (Get-CallRequest $id).Count | Should -Be 1
        Add-MatrixRow "400 with $Case" "error $($errors[0].FullyQualifiedErrorId.Split(',')[0])" 1 $stopwatch.ElapsedMilliseconds
    }

    It 'a 200 with a huge (5 MB) or HTML body is still success' {
        New-EmulatorCall 'srv-200'
        Add-Fault 'srv-200' @(@{ status = 200; bodyBytes = 5242880 }, @{ status = 200; body = '<html/>'; contentType = 'text/html' })
        Invoke-MgKeepCommunicationCallAlive -CallId srv-200 -PassThru | Should -Be $true
        Invoke-MgKeepCommunicationCallAlive -CallId srv-200 -PassThru | Should -Be $true
    }
}

Describe 'Hostile call ids through the cmdlet' {
    BeforeAll {
        Set-FastRetry
        $script:Hostile = [ordered]@{
            'empty'              = ''
            'whitespace'         = '   '
            'tab'                = "a`tb"
            'line feed'          = "a`nb"
            'carriage return'    = "a`rb"
            'NUL'                = "a`0b"
            'DEL'                = "a$([char]0x7f)b"
            '100,001 chars'      = 'x' * 100001
            '1 KiB + 1'          = 'y' * 1025
            '1 KiB'              = 'z' * 1024
            '.'                  = '.'
            '..'                 = '..'
            'a/b'                = 'a/b'
            '../x'               = '../x'
            '?'                  = '?'
            '#'                  = '#'
            'a?b=c#d'            = 'a?b=c#d'
            'spaces'             = 'a call id'
            'percent'            = '100%25 %2e%2e'
            'backslash'          = 'a\..\b'
            'Unicode'            = 'café-日本-😀'
            'URL'                = 'https://evil.example/v1.0/users?$top=1#x'
            '$batch'             = '$batch'
            'keepAlive path'     = 'x/keepAlive'
        }
    }

    # Each id has one right outcome: sent as one segment that decodes back exactly, or refused
    # (control characters, '.', '..', over 1 KiB, empty or only white space) with nothing sent.
    It '<Name>: <Outcome>' -TestCases @(
        @('empty', 'refused'), @('whitespace', 'refused'), @('tab', 'refused'), @('line feed', 'refused'), @('carriage return', 'refused'),
        @('NUL', 'refused'), @('DEL', 'refused'), @('100,001 chars', 'refused'), @('1 KiB + 1', 'refused'), @('1 KiB', 'sent'),
        @('.', 'refused'), @('..', 'refused'), @('a/b', 'sent'), @('../x', 'sent'), @('?', 'sent'), @('#', 'sent'), @('a?b=c#d', 'sent'),
        @('spaces', 'sent'), @('percent', 'sent'), @('backslash', 'sent'), @('Unicode', 'sent'), @('URL', 'sent'), @('$batch', 'sent'),
        @('keepAlive path', 'sent') | ForEach-Object { @{ Name = $_[0]; Outcome = $_[1] } }
    ) {
        $id = $script:Hostile[$Name]
        if ($id.Length -gt 0 -and $id.Length -le 1024 -and -not $id.Contains([char]0)) { New-EmulatorCall $id }
        Clear-EmulatorRequest
        $errors = $null
        # Through the pipeline (an empty -CallId is refused by parameter binding before anything runs).
        $output = @(, $id | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorVariable errors -ErrorAction SilentlyContinue)
        $log = @(Get-EmulatorRequest)
        if ($Outcome -eq 'sent') {
            $output | Should -Be @($true)
            $errors.Count | Should -Be 0
            $log.Count | Should -Be 1
            $log[0].callId | Should -BeExactly $id
            $log[0].rawPath | Should -Match '^/v1\.0/communications/calls/[^/?#]+/keepAlive$'
        } else {
            $output.Count | Should -Be 0
            $log.Count | Should -Be 0 -Because 'a refused id sends nothing'
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Match '^(InvalidCallId|InputObjectCallIdMissing),'
            $errors[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            $errors[0].Exception.Message.Length | Should -BeLessThan 400
        }
    }

    It 'sends <_> by -CallId as one segment' -TestCases @('a/b', '?', '#', 'a?b=c#d', 'spaces', 'percent', 'Unicode', 'URL', '$batch', '1 KiB', 'keepAlive path') {
        $id = $script:Hostile[$_]
        New-EmulatorCall $id
        Clear-EmulatorRequest
        Invoke-MgKeepCommunicationCallAlive -CallId $id -PassThru | Should -Be $true
        (Get-EmulatorRequest).callId | Should -BeExactly $id
    }

    It 'refuses <_> up front' -TestCases @('.', '..', 'tab', 'line feed', 'NUL', '100,001 chars', '1 KiB + 1') {
        Clear-EmulatorRequest
        $errors = $null
        Invoke-MgKeepCommunicationCallAlive -CallId $script:Hostile[$_] -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'InvalidCallId,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        @(Get-EmulatorRequest).Count | Should -Be 0
    }
}

Describe 'Hostile identities through the pipeline' {
    BeforeAll {
        Set-FastRetry
        New-EmulatorCall 'id-ok'
    }

    It '<Case>: a clear per-item error and the pipeline goes on' -TestCases @(
        @{ Case = 'malformed JSON'; Item = '{"CallId": "id-ok"'; ErrorId = 'InvalidIdentity' }
        @{ Case = 'JSON array'; Item = '[{"CallId":"id-ok"}]'; ErrorId = 'InvalidIdentity' }
        @{ Case = 'JSON number CallId'; Item = '{"CallId":42}'; ErrorId = 'InvalidIdentity' }
        @{ Case = 'JSON object CallId'; Item = '{"CallId":{"Id":"id-ok"}}'; ErrorId = 'InvalidIdentity' }
        @{ Case = 'JSON array CallId'; Item = '{"CallId":["id-ok"]}'; ErrorId = 'InvalidIdentity' }
        @{ Case = 'JSON null CallId'; Item = '{"CallId":null}'; ErrorId = 'InputObjectCallIdMissing' }
        @{ Case = 'JSON without CallId'; Item = '{"Other":"x"}'; ErrorId = 'InputObjectCallIdMissing' }
        @{ Case = 'deeply nested JSON'; Item = '{"CallId":"id-ok","n":' + ('[' * 3000) + (']' * 3000) + '}'; ErrorId = 'InvalidIdentity' }
        @{ Case = 'huge (1 MB) JSON'; Item = '{"CallId":"id-ok","pad":"' + ('p' * 1048576) + '"}'; ErrorId = 'InvalidIdentity' }
        @{ Case = 'a number'; Item = 42; ErrorId = 'InputObjectCallIdMissing' }
        @{ Case = 'hashtable with a hashtable CallId'; Item = @{ CallId = @{ a = 1 } }; ErrorId = 'InvalidIdentity' }
        @{ Case = 'hashtable with an array CallId'; Item = @{ CallId = @('id-ok', 'x') }; ErrorId = 'InvalidIdentity' }
        @{ Case = 'object with an object CallId'; Item = [pscustomobject]@{ CallId = [pscustomobject]@{ Id = 'id-ok' } }; ErrorId = 'InvalidIdentity' }
        @{ Case = 'hashtable with null CallId'; Item = @{ CallId = $null }; ErrorId = 'InputObjectCallIdMissing' }
        @{ Case = 'an empty hashtable'; Item = @{}; ErrorId = 'InputObjectCallIdMissing' }
    ) {
        Clear-EmulatorRequest
        $errors = $null
        $output = @((, $Item) + 'id-ok') | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorVariable errors -ErrorAction SilentlyContinue
        $output | Should -Be @($true)
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be "$ErrorId,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_KeepViaIdentity"
        $errors[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        $errors[0].Exception.Message.Length | Should -BeLessThan 400
        $log = @(Get-EmulatorRequest)
        $log.Count | Should -Be 1
        $log[0].callId | Should -Be 'id-ok'
    }
}

Describe 'Proxies' {
    BeforeAll {
        Set-FastRetry
        $null = Set-MgRequestContext -MaxRetry 0 -ClientTimeout 5
        # A Graph endpoint nothing listens on: only a proxy (the emulator, answering absolute-form
        # requests) can reach it.
        $null = Add-MgEnvironment -Name Unreachable -AzureADEndpoint 'http://127.0.0.2:9' -GraphEndpoint 'http://127.0.0.2:9'
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 'proxy-test-token' -AsPlainText -Force) -Environment Unreachable -NoWelcome
        New-EmulatorCall 'px-call'
        $script:ProxyNames = 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'
        $script:SavedProxy = @{}
        foreach ($name in $script:ProxyNames) {
            $script:SavedProxy[$name] = [Environment]::GetEnvironmentVariable($name)
            [Environment]::SetEnvironmentVariable($name, $null)
        }
    }
    AfterAll {
        foreach ($name in $script:ProxyNames) { [Environment]::SetEnvironmentVariable($name, $script:SavedProxy[$name]) }
        Connect-TestGraph
        Set-FastRetry
    }
    BeforeEach { Clear-EmulatorRequest }
    AfterEach { foreach ($name in $script:ProxyNames) { [Environment]::SetEnvironmentVariable($name, $null) } }

    It 'without a proxy the endpoint is unreachable (TransportError)' {
        $errors = $null
        Invoke-MgKeepCommunicationCallAlive -CallId px-call -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'TransportError,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        @(Get-EmulatorRequest).Count | Should -Be 0
    }

    It '-Proxy routes the request through the proxy (absolute-form, Host of the Graph endpoint)' {
        Invoke-MgKeepCommunicationCallAlive -CallId px-call -Proxy $Emulator.Url -PassThru -WarningVariable warnings | Should -Be $true
        $warnings.Count | Should -Be 0
        $log = @(Get-EmulatorRequest)
        $log.Count | Should -Be 1
        $log[0].callId | Should -Be 'px-call'
        $log[0].headers.host | Should -Be '127.0.0.2:9'
        $log[0].headers.PSObject.Properties['proxy-authorization'] | Should -BeNullOrEmpty
    }

    It '-ProxyCredential sends Proxy-Authorization (Basic) and the password appears in no stream' {
        $password = 'proxy-pass-5e1d0c'
        $credential = [pscredential]::new('proxy-user', (ConvertTo-SecureString $password -AsPlainText -Force))
        $text = Invoke-MgBetaKeepCommunicationCallAlive -CallId px-call -Proxy $Emulator.Url -ProxyCredential $credential -PassThru -Verbose -Debug *>&1 |
            Out-String
        $text | Should -Match 'True'
        $text | Should -Not -Match $password
        $log = @(Get-EmulatorRequest)
        $log.Count | Should -Be 1
        $log[0].apiVersion | Should -Be 'beta'
        $log[0].headers.'proxy-authorization' | Should -Be ('Basic ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes("proxy-user:$password")))
    }

    It '-ProxyUseDefaultCredentials warns once and goes on without credentials' {
        $output = 'px-call', 'px-call' | Invoke-MgKeepCommunicationCallAlive -Proxy $Emulator.Url -ProxyUseDefaultCredentials -PassThru -WarningVariable warnings -WarningAction SilentlyContinue
        $output | Should -Be @($true, $true)
        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -Match 'ProxyUseDefaultCredentials is ignored.*without credentials'
        @(Get-EmulatorKeepAlive).Count | Should -Be 2
    }

    It 'refuses a -Proxy that is not an http(s) URI' {
        { Invoke-MgKeepCommunicationCallAlive -CallId px-call -Proxy 'ftp://proxy:21' } | Should -Throw -ErrorId 'InvalidProxy,Invoke-MgKeepCommunicationCallAlive'
        @(Get-EmulatorRequest).Count | Should -Be 0
    }

    It 'honours HTTP_PROXY set with $env:' {
        $env:HTTP_PROXY = $Emulator.Url
        Invoke-MgKeepCommunicationCallAlive -CallId px-call -PassThru | Should -Be $true
        @(Get-EmulatorRequest).Count | Should -Be 1
    }

    It 'honours http_proxy (lower case) too, and the upper-case name wins' -Skip:$IsWindows {
        $env:http_proxy = $Emulator.Url
        Invoke-MgKeepCommunicationCallAlive -CallId px-call -PassThru | Should -Be $true
        $env:HTTP_PROXY = $Emulator.Url
        $env:http_proxy = 'http://127.0.0.3:9'
        Invoke-MgKeepCommunicationCallAlive -CallId px-call -PassThru | Should -Be $true
        @(Get-EmulatorRequest).Count | Should -Be 2
    }

    It 'honours NO_PROXY: the host it names is reached directly (here: unreachable)' {
        $env:HTTP_PROXY = $Emulator.Url
        $env:NO_PROXY = '127.0.0.2'
        Invoke-MgKeepCommunicationCallAlive -CallId px-call -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'TransportError,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        @(Get-EmulatorRequest).Count | Should -Be 0
    }

    It 'honours HTTPS_PROXY for an https endpoint (the proxy sees the CONNECT)' {
        $null = Add-MgEnvironment -Name UnreachableTls -AzureADEndpoint 'https://127.0.0.2:9' -GraphEndpoint 'https://127.0.0.2:9'
        Connect-MgGraph -AccessToken (ConvertTo-SecureString 'proxy-test-token' -AsPlainText -Force) -Environment UnreachableTls -NoWelcome
        try {
            $env:HTTPS_PROXY = $Emulator.Url
            Invoke-MgKeepCommunicationCallAlive -CallId px-call -ErrorAction SilentlyContinue
            $log = @(Get-EmulatorRequest)
            $log.Count | Should -Be 1
            $log[0].method | Should -Be 'CONNECT'
            $log[0].headers.host | Should -Be '127.0.0.2:9'
        } finally {
            Connect-MgGraph -AccessToken (ConvertTo-SecureString 'proxy-test-token' -AsPlainText -Force) -Environment Unreachable -NoWelcome
        }
    }

    It '-Proxy wins over the proxy variables' {
        $env:HTTP_PROXY = 'http://127.0.0.3:9'
        Invoke-MgKeepCommunicationCallAlive -CallId px-call -Proxy $Emulator.Url -PassThru | Should -Be $true
    }
}

Describe 'Cancellation (Ctrl+C: stopping the pipeline from another thread)' {
    BeforeAll {
        Set-FastRetry
        $null = Set-MgRequestContext -ClientTimeout 120
        $script:Latencies = [System.Collections.Generic.List[long]]::new()
    }
    AfterAll {
        $null = Invoke-Emulator DELETE faults
        Set-FastRetry
        if ($script:Latencies.Count) { Write-Host "Ctrl+C latency (PowerShell.Stop()): $($script:Latencies -join ' ms, ') ms" }
    }

    # Evidence from the emulator, not a stopwatch: Stop() returned while the server still held the
    # request (or before the Retry-After was up), and once the server's answer (or the retry) was
    # due, nothing came: the request was cancelled, not left running in the background.
    It 'cancels a keep-alive <Case>: Stopped, 1 request, nothing after, the runspace still works' -TestCases @(
        @{ Case = 'held by the server (delayMs 5000)'; Response = @{ status = 200; delayMs = 5000 }; DueMs = 5000; AnsweredStatus = $null }
        @{ Case = 'waiting out Retry-After: 5 after a 429'; Response = @{ status = 429; headers = @{ 'Retry-After' = '5' } }; DueMs = 5000; AnsweredStatus = 429 }
    ) {
        $id = 'cancel-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
        New-EmulatorCall $id, "$id-fresh"
        Add-Fault $id @($Response) -Count 5
        $powershell = [powershell]::Create()
        try {
            # Another runspace of this process, with the module imported there; the connection
            # is process-wide.
            $null = $powershell.AddScript("Import-Module '$ManifestPath'; Invoke-MgKeepCommunicationCallAlive -CallId '$id' -PassThru")
            $async = $powershell.BeginInvoke()
            # Stop once the first attempt is under way at the server (delayMs) or answered (429).
            Wait-Until { @(Get-CallRequest $id | Where-Object { $_.status -eq $AnsweredStatus }).Count -ge 1 } | Should -BeTrue
            $async.IsCompleted | Should -BeFalse
            $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
            $powershell.Stop()
            $stopwatch.Stop()
            $script:Latencies.Add($stopwatch.ElapsedMilliseconds)
            Add-MatrixRow "Ctrl+C while $Case" 'stopped' 1 $stopwatch.ElapsedMilliseconds
            $powershell.InvocationStateInfo.State | Should -Be 'Stopped'
            $requests = Get-CallRequest $id
            $requests.Count | Should -Be 1
            $requests[0].status | Should -Be $AnsweredStatus -Because 'Stop() returned before the server answered or the retry was due'

            # Past the moment the answer (or the retry) was due: still one request, never answered
            # (the emulator logs no status for a connection the client closed).
            $due = (Get-EmulatorRequestTime $requests[0]).AddMilliseconds($DueMs + 500)
            $left = ($due - [datetime]::UtcNow).TotalMilliseconds
            if ($left -gt 0) { Start-Sleep -Milliseconds ([int][Math]::Ceiling($left)) }
            $requests = Get-CallRequest $id
            $requests.Count | Should -Be 1 -Because 'no retry after cancellation'
            $requests[0].status | Should -Be $AnsweredStatus -Because 'the held request''s connection was dropped'

            $powershell.Commands.Clear()
            $null = $powershell.AddScript("Invoke-MgKeepCommunicationCallAlive -CallId '$id-fresh' -PassThru")
            $again = $powershell.Invoke()
            @($again) | Should -Be @($true)
            (Get-CallRequest "$id-fresh").Count | Should -Be 1
        } finally {
            $powershell.Dispose()
            $null = Invoke-Emulator DELETE faults
        }
    }
}

Describe 'Concurrency' {
    BeforeAll { Set-FastRetry }

    It 'keeps 1,000 calls alive from ForEach-Object -Parallel -ThrottleLimit 8 (each runspace imports the module)' {
        $ids = @((Invoke-Emulator POST calls @{ count = 1000 }).ids)
        $ids.Count | Should -Be 1000
        Clear-EmulatorRequest
        $manifest = $ManifestPath
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        $results = $ids | ForEach-Object -ThrottleLimit 8 -Parallel {
            if (-not (Get-Module MgKeepAlive)) { Import-Module $using:manifest }
            Invoke-MgKeepCommunicationCallAlive -CallId $_ -PassThru
        }
        $stopwatch.Stop()
        @($results).Count | Should -Be 1000
        @($results | Where-Object { $_ -ne $true }).Count | Should -Be 0
        $log = @(Get-EmulatorRequest | Where-Object kind -EQ 'keepAlive')
        $log.Count | Should -Be 1000
        @($log.callId | Sort-Object -Unique).Count | Should -Be 1000
        Add-MatrixRow '1,000 keep-alives, -Parallel -ThrottleLimit 8' 'all $true' $log.Count $stopwatch.ElapsedMilliseconds
    }
}

Describe 'No token, secret or proxy password anywhere, across the failures' {
    It 'holds for every output stream, $Error and the requests the client sent' {
        $token = 'tok-secret-91b2c7e4'
        $password = 'proxy-secret-0f6a2d'
        Set-FastRetry
        $null = Set-MgRequestContext -MaxRetry 1 -ClientTimeout 1
        $credential = [pscredential]::new('proxy-user', (ConvertTo-SecureString $password -AsPlainText -Force))
        $Error.Clear()
        Clear-EmulatorRequest
        $text = & {
            Connect-MgGraph -AccessToken (ConvertTo-SecureString $token -AsPlainText -Force) -Environment Emulator -NoWelcome -Verbose -Debug
            New-EmulatorCall 'sec-1', 'sec-2', 'sec-3', 'sec-4', 'sec-5', 'sec-6'
            Add-Fault 'sec-1' @(@{ status = 429; headers = @{ 'Retry-After' = '0' } }, @{ status = 503 })
            Add-Fault 'sec-2' @(@{ drop = $true }) -Count 3
            Add-Fault 'sec-3' @(@{ status = 200; delayMs = 3000 })
            Add-Fault 'sec-4' @(@{ status = 400; body = '<html>oops</html>'; contentType = 'text/html' })
            Add-Fault 'sec-5' @(@{ status = 401 }) -Count 3
            $common = @{ Verbose = $true; Debug = $true; ErrorAction = 'Continue'; PassThru = $true; RHV = 'headers' }
            'sec-1', 'sec-2', 'sec-3', 'sec-4', 'sec-5', 'no-such-call', "bad`nid", '..' | Invoke-MgKeepCommunicationCallAlive @common
            Invoke-MgKeepCommunicationCallAlive -CallId sec-6 -Proxy $Emulator.Url -ProxyCredential $credential @common
            Invoke-MgKeepCommunicationCallAlive -CallId sec-6 -Proxy 'http://127.0.0.3:9' -ProxyCredential $credential @common
            '{"CallId":', @{ CallId = @{ a = 1 } } | Invoke-MgKeepCommunicationCallAlive @common
            $headers | Out-String
            Get-MgContext | Format-List * | Out-String
            Get-MgRequestContext | Format-List * | Out-String
        } *>&1 | Out-String
        $errorsText = $Error | ForEach-Object {
            $_ | Format-List * -Force | Out-String
            $_.Exception | Format-List * -Force | Out-String
            $_.Exception.AttemptLog | Format-List * | Out-String
        } | Out-String
        foreach ($secret in $token, $password, [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes("proxy-user:$password"))) {
            $text | Should -Not -Match ([regex]::Escape($secret))
            $errorsText | Should -Not -Match ([regex]::Escape($secret))
        }
        $text | Should -Match 'HTTP REQUEST'
        $text | Should -Match 'Authorization\s+: \[Filtered\]'
        # The client sent the token only as the Authorization header, the proxy password only
        # as Proxy-Authorization.
        foreach ($request in Get-EmulatorRequest) {
            $request.rawPath | Should -Not -Match $token
            foreach ($header in $request.headers.PSObject.Properties) {
                if ($header.Name -ne 'authorization') { $header.Value | Should -Not -Match $token }
                if ($header.Name -ne 'proxy-authorization') { $header.Value | Should -Not -Match $password }
            }
        }
        $Error.Clear()
        Connect-TestGraph
        Set-FastRetry
    }
}
