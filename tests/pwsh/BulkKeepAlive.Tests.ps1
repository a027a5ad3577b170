#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# Piped input to Invoke-MgKeepCommunicationCallAlive is sent concurrently (-ThrottleLimit, chunks
# through mgka_keep_alive_bulk_start) with per-item semantics: one ShouldProcess, one $true or one
# error record per item, in input order. The per-item tests run against a Graph that accepts
# keep-alives inside $batch and against one that refuses them (the emulator's refusing mode).
# What was sent is counted from the emulator (its request log and its in-flight gauge).

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    Import-Module $ManifestPath -Force -ErrorAction Stop
    Connect-TestGraph

    function New-BulkCall {
        # $Count fresh calls on the emulator; returns their ids.
        param([int] $Count)
        [string[]](Invoke-Emulator POST calls @{ count = $Count }).ids
    }

    function New-DelayedBatchFault {
        # A fault script for $Count $batch requests: each answered after 300 ms with 200 for its
        # requests "1" to "20" (a scripted answer: the calls' state is not touched).
        param([int] $Count)
        $responses = foreach ($n in 1..20) { @{ id = "$n"; status = 200; headers = @{}; body = $null } }
        @{ path = 'batch'; count = $Count; responses = @(@{ status = 200; delayMs = 300; json = @{ responses = @($responses) } }) }
    }

    function Get-KeptAliveCount {
        # How many keep-alives the emulator accepted (answered 200) per call id, single or batched:
        # @{ id = count } for $Id (0 for an id never kept alive).
        param([string[]] $Id)
        $counts = @{}
        foreach ($callId in $Id) { $counts[$callId] = 0 }
        foreach ($request in Get-EmulatorKeepAlive) {
            if ($request.status -eq 200 -and $counts.ContainsKey([string]$request.callId)) { $counts[[string]$request.callId]++ }
        }
        $counts
    }

    function Assert-KeptAliveOnce {
        # Each of $Id was kept alive exactly once since the request log was cleared.
        param([string[]] $Id)
        $counts = Get-KeptAliveCount $Id
        $wrong = @($Id | Where-Object { $counts[$_] -ne 1 } | ForEach-Object { "$_ x $($counts[$_])" })
        $wrong | Should -BeNullOrEmpty -Because 'each call is kept alive exactly once'
    }

    function Get-EmulatorInFlight {
        # The emulator's gauge: @{ inFlight; maxInFlight } (requests being answered; most at once).
        Invoke-Emulator GET in-flight
    }

    function Reset-EmulatorInFlight { $null = Invoke-Emulator DELETE in-flight }

    function ConvertTo-Outcome {
        # Output and error records (2>&1) -> 'ok' or the error's FullyQualifiedErrorId prefix.
        process {
            if ($_ -is [System.Management.Automation.ErrorRecord]) { $_.FullyQualifiedErrorId -replace ',.*$' }
            elseif ($_ -is [bool]) { if ($_) { 'ok' } else { 'false' } }
            else { "unexpected: $_" }
        }
    }
}

AfterAll {
    Stop-TestEmulator $Emulator
}

Describe '-ThrottleLimit' {
    It '<Command> has -ThrottleLimit <int> in both sets, 1 to 256, not mandatory' -TestCases @(
        @{ Command = 'Invoke-MgKeepCommunicationCallAlive' }
        @{ Command = 'Invoke-MgBetaKeepCommunicationCallAlive' }
    ) {
        param($Command)
        $parameter = (Get-Command $Command).Parameters['ThrottleLimit']
        $parameter.ParameterType | Should -Be ([int])
        $parameter.ParameterSets.Keys | Should -Contain '__AllParameterSets'
        $parameter.ParameterSets['__AllParameterSets'].IsMandatory | Should -BeFalse
        $range = $parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateRangeAttribute] }
        $range.MinRange | Should -Be 1
        $range.MaxRange | Should -Be 256
    }

    It 'refuses -ThrottleLimit <_> before sending anything' -TestCases @(0, -1, 257) {
        Clear-EmulatorRequest
        { 'x', 'y' | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit $_ } | Should -Throw -ErrorId 'ParameterArgumentValidationError,Invoke-MgKeepCommunicationCallAlive'
        (Get-EmulatorRequest).Count | Should -Be 0
    }

    It 'accepts -ThrottleLimit <_>' -TestCases @(1, 256) {
        $ids = New-BulkCall 20
        Clear-EmulatorRequest
        $output = @($ids | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit $_ -PassThru)
        $output.Count | Should -Be 20
        Assert-KeptAliveOnce $ids
    }

    It 'is accepted (and harmless) with -CallId' {
        $id = @(New-BulkCall 1)
        Clear-EmulatorRequest
        Invoke-MgKeepCommunicationCallAlive -CallId $id[0] -ThrottleLimit 4 -PassThru | Should -BeTrue
        @(Get-EmulatorRequest).kind | Should -Be @('keepAlive')
        Assert-KeptAliveOnce $id
    }
}

Describe 'Bulk keep-alive: order and per-item results, against a Graph <Mode> keep-alives in $batch' -ForEach @(
    @{ Mode = 'accepting' }, @{ Mode = 'refusing' }
) {
    BeforeAll {
        # Refusing: an emulator of its own (a new Graph endpoint: the library remembers per
        # endpoint, for the process's life, that a Graph refuses batched keep-alives).
        $MainEmulator = $Emulator
        if ($Mode -eq 'refusing') {
            $Emulator = Start-TestEmulator
            $null = Invoke-Emulator PUT config @{ refuseBatchedKeepAlive = $true }
            Connect-TestGraph
        }
    }
    AfterAll {
        if ($Mode -eq 'refusing') {
            Stop-TestEmulator $Emulator
            $Emulator = $MainEmulator
            Connect-TestGraph
        }
    }
    BeforeEach {
        Clear-EmulatorRequest
        $null = Invoke-Emulator DELETE faults
    }

    # First in this block: in refusing mode, the process learns here that Graph refuses batches.
    It '200 piped ids give 200 $true and no error; -Verbose says once if Graph refuses batched keep-alives' {
        $ids = New-BulkCall 200
        $records = @($ids | Invoke-MgKeepCommunicationCallAlive -PassThru -Verbose -ErrorVariable failures -ErrorAction SilentlyContinue 4>&1)
        $output = @($records | Where-Object { $_ -is [bool] })
        $output.Count | Should -Be 200
        @($output | Where-Object { $_ -ne $true }).Count | Should -Be 0
        $failures.Count | Should -Be 0
        $notes = @($records | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like '*JSON batch*' })
        $requests = @(Get-EmulatorRequest)
        $batches = @($requests | Where-Object kind -EQ 'batch')
        $singles = @($requests | Where-Object kind -EQ 'keepAlive')
        if ($Mode -eq 'accepting') {
            $notes.Count | Should -Be 0
            ($batches.Count, $singles.Count) | Should -Be @(10, 0)
        } else {
            $notes.Count | Should -Be 1
            $notes[0].Message | Should -BeLike "Microsoft Graph at $($Emulator.Url) (v1.0) answered keep-alives inside a JSON batch*single requests."
            # The refused items were each sent again singly, once, and answered as single requests.
            $batches.Count | Should -BeGreaterThan 0
            $batches | ForEach-Object { $_.items.status | Sort-Object -Unique | Should -Be 400 }
            $singles.Count | Should -Be 200
            ($singles.callId | Sort-Object) | Should -Be ($ids | Sort-Object)
        }
        Assert-KeptAliveOnce $ids
    }

    It 'gives each item the answer of a single request; refusing: sends single requests only, from now on' {
        $ids = New-BulkCall 45
        $ended = New-BulkCall 2
        foreach ($id in $ended) { $null = Invoke-Emulator POST "calls/$id/end" }
        Clear-EmulatorRequest
        $items = @($ids[0..19]) + $ended[0] + @($ids[20..44]) + $ended[1]
        $outcomes = @($items | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorAction Continue 2>&1 | ConvertTo-Outcome)
        $kinds = @(Get-EmulatorRequest).kind
        $expected = foreach ($item in $items) {
            # The same item alone (-CallId: a single request).
            Invoke-MgKeepCommunicationCallAlive -CallId $item -PassThru -ErrorAction Continue 2>&1 | ConvertTo-Outcome
        }
        $outcomes | Should -Be @($expected)
        @($outcomes | Where-Object { $_ -eq 'ok' }).Count | Should -Be 45
        if ($Mode -eq 'accepting') {
            $kinds | Should -Be @('batch', 'batch', 'batch')
        } else {
            $kinds | Should -Be (@('keepAlive') * 47)
        }
        (Get-KeptAliveCount $ids).Values | Sort-Object -Unique | Should -Be 2 -Because 'once in the pipeline, once alone'
    }

    It 'keeps at most -ThrottleLimit requests in flight, and that many: <Limit>' -TestCases @(@{ Limit = 4 }, @{ Limit = 16 }) {
        param($Limit)
        # Every request is answered after 300 ms (batches: a scripted 200 for items 1-20;
        # singles: a scripted 200), so -ThrottleLimit requests are in flight at once.
        $ids = New-BulkCall 400
        if ($Mode -eq 'accepting') { $null = Invoke-Emulator POST faults (New-DelayedBatchFault -Count 20) }
        else { $null = Invoke-Emulator POST faults @{ path = '/keepAlive'; count = 3 * $Limit; responses = @(@{ status = 200; delayMs = 300 }) } }
        Reset-EmulatorInFlight
        $output = @($ids | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit $Limit -PassThru)
        $output.Count | Should -Be 400
        (Get-EmulatorInFlight).maxInFlight | Should -Be $Limit
        $kinds = @(Get-EmulatorRequest).kind | Sort-Object -Unique
        $kinds | Should -Be $(if ($Mode -eq 'accepting') { 'batch' } else { 'keepAlive' })
    }

    It 'writes exactly N booleans with -PassThru, in order, and sends each id exactly once (<Count> items)' -TestCases @(
        @{ Count = 2 }, @{ Count = 37 }, @{ Count = 1500 }
    ) {
        param($Count)
        $ids = New-BulkCall $Count
        $output = @($ids | Invoke-MgKeepCommunicationCallAlive -PassThru -ThrottleLimit 16)
        $output.Count | Should -Be $Count
        $output | ForEach-Object { $_ | Should -BeOfType [bool]; $_ | Should -BeTrue }
        $requests = @(Get-EmulatorKeepAlive)
        $requests.Count | Should -Be $Count -Because 'each id is sent once (refusing: as a single request)'
        $seen = $requests | Group-Object callId
        $seen.Count | Should -Be $Count
        $seen | Where-Object Count -NE 1 | Should -BeNullOrEmpty
        ($requests.callId | Sort-Object) | Should -Be ($ids | Sort-Object)
        Assert-KeptAliveOnce $ids
        foreach ($id in $ids[0], $ids[-1]) { (Invoke-Emulator GET "calls/$id").keepAliveCount | Should -Be 1 }
    }

    It 'writes nothing without -PassThru' {
        $ids = New-BulkCall 50
        @($ids | Invoke-MgKeepCommunicationCallAlive).Count | Should -Be 0
        @(Get-EmulatorKeepAlive).Count | Should -Be 50
        Assert-KeptAliveOnce $ids
        # Sent as JSON batches of at most 20 (refusing: single requests).
        $expected = if ($Mode -eq 'accepting') { @('batch', 'batch', 'batch') } else { @('keepAlive') * 50 }
        @(Get-EmulatorRequest).kind | Should -Be $expected
    }

    It 'keeps results and errors in input order with good, ended, invalid, id-less and malformed items (<Count> items, -ThrottleLimit <Limit>)' -TestCases @(
        @{ Count = 40; Limit = 16 }, @{ Count = 1300; Limit = 64 }, @{ Count = 60; Limit = 1 }
    ) {
        param($Count, $Limit)
        $good = New-BulkCall $Count
        $ended = New-BulkCall 3
        foreach ($id in $ended) { $null = Invoke-Emulator POST "calls/$id/end" }
        Clear-EmulatorRequest
        $items = [System.Collections.Generic.List[object]]::new()
        $expected = [System.Collections.Generic.List[string]]::new()
        $bad = @(
            @{ Item = $ended[0]; Outcome = 'itemNotFound' }
            @{ Item = '..'; Outcome = 'InvalidCallId' }
            @{ Item = @{ Foo = 'bar' }; Outcome = 'InputObjectCallIdMissing' }
            @{ Item = '{"callId": '; Outcome = 'InvalidIdentity' }
            @{ Item = '{"participantId":"p"}'; Outcome = 'InputObjectCallIdMissing' }
            @{ Item = "a`tb"; Outcome = 'InvalidCallId' }
            @{ Item = [pscustomobject]@{ Id = $ended[1] }; Outcome = 'itemNotFound' }
            @{ Item = '{"callId":"' + $ended[2] + '"}'; Outcome = 'itemNotFound' }
            @{ Item = 'never-created'; Outcome = 'itemNotFound' }
            @{ Item = "lone$([char]0xD800)surrogate"; Outcome = 'InvalidCallId' }
        )
        for ($i = 0; $i -lt $good.Count; $i++) {
            # Good items in every form, a bad one every few items (and one first).
            if ($i % 4 -eq 0) {
                $case = $bad[($i / 4) % $bad.Count]
                $items.Add($case.Item); $expected.Add($case.Outcome)
            }
            $form = switch ($i % 3) { 0 { $good[$i] } 1 { @{ CallId = $good[$i] } } 2 { '{"id":"' + $good[$i] + '"}' } }
            $items.Add($form); $expected.Add('ok')
        }
        $outcomes = @($items | Invoke-MgKeepCommunicationCallAlive -PassThru -ThrottleLimit $Limit -ErrorAction Continue 2>&1 | ConvertTo-Outcome)
        $outcomes.Count | Should -Be $expected.Count
        for ($i = 0; $i -lt $expected.Count; $i++) {
            $outcomes[$i] | Should -Be $expected[$i] -Because "item $i ($($items[$i]))"
        }
        # Only resolvable, valid ids reached the emulator, each once.
        $goodSet = [System.Collections.Generic.HashSet[string]]::new([string[]]$good)
        $requests = @(Get-EmulatorKeepAlive)
        $goodRequests = @($requests | Where-Object { $goodSet.Contains([string]$_.callId) })
        $goodRequests.Count | Should -Be $good.Count
        ($goodRequests | Group-Object callId).Count | Should -Be $good.Count
        $requests.callId | Should -Not -Contain '..'
        Assert-KeptAliveOnce $good
        if ($Mode -eq 'refusing') { @(Get-EmulatorRequest | Where-Object kind -EQ 'batch').Count | Should -Be 0 }
    }

    It 'gives every error its fields and the item as TargetObject' {
        $ids = New-BulkCall 5
        $identity = [pscustomobject]@{ Id = 'gone-call' }
        $ids[0], $identity, $ids[1], 'other-gone', $ids[2] | Invoke-MgKeepCommunicationCallAlive -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure.Count | Should -Be 2
        $failure[0].TargetObject | Should -Be $identity
        $failure[0].FullyQualifiedErrorId | Should -BeExactly 'itemNotFound,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_KeepViaIdentity'
        $failure[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        [int]$failure[0].Exception.StatusCode | Should -Be 404
        $failure[0].Exception.ErrorCode | Should -Be 'itemNotFound'
        $failure[0].Exception.CallId | Should -Be 'gone-call'
        $failure[0].Exception.RequestId | Should -Match '^[0-9a-f-]{36}$'
        $failure[0].ErrorDetails.Message | Should -Match '(?m)^Status: 404 \(NotFound\)$'
        $failure[1].TargetObject | Should -BeExactly 'other-gone'
        $failure[1].Exception.CallId | Should -Be 'other-gone'
        # What was sent: each good call kept alive once, each gone one asked once.
        Assert-KeptAliveOnce $ids[0..2]
        foreach ($gone in 'gone-call', 'other-gone') {
            @(Get-EmulatorKeepAlive | Where-Object callId -EQ $gone).status | Should -Be 404
        }
    }

    It 'sets -ResponseHeadersVariable to the headers of the last item' {
        $ids = New-BulkCall 30
        $ids + 'last-is-gone' | Invoke-MgKeepCommunicationCallAlive -RHV bulkHeaders -ErrorVariable failure -ErrorAction SilentlyContinue
        $bulkHeaders | Should -BeOfType ([System.Collections.Generic.Dictionary[string, string[]]])
        $bulkHeaders['request-id'][0] | Should -Be $failure[0].Exception.ResponseHeaders['request-id'][0]
        'gone-first', $ids[0], $ids[1] | Invoke-MgKeepCommunicationCallAlive -RHV bulkHeaders -ErrorAction SilentlyContinue
        $bulkHeaders['request-id'][0] | Should -Match '^[0-9a-f-]{36}$'
        $bulkHeaders['request-id'][0] | Should -Not -Be $failure[0].Exception.ResponseHeaders['request-id'][0]
        (Get-KeptAliveCount $ids[0])[$ids[0]] | Should -Be 2 -Because 'both pipelines sent it'
    }

    It 'reports NotConnected for every item when there is no session' {
        $ids = New-BulkCall 3
        try {
            Disconnect-MgGraph | Out-Null
            $outcomes = @($ids[0], @{ Foo = 1 }, $ids[1], $ids[2] | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorAction Continue 2>&1 | ConvertTo-Outcome)
            # Microsoft's not-connected record has no id of its own: its FullyQualifiedErrorId is the command's.
            $notConnected = 'Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_KeepViaIdentity'
            $outcomes | Should -Be @($notConnected, 'InputObjectCallIdMissing', $notConnected, $notConnected)
            @(Get-EmulatorRequest).Count | Should -Be 0 -Because 'nothing is sent without a session'
        } finally {
            Connect-TestGraph
        }
    }

    It 'writes one verbose line per item, in order' {
        $ids = New-BulkCall 3
        $verbose = $ids | Invoke-MgKeepCommunicationCallAlive -Verbose 4>&1 |
            Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'Keep alive call*' }
        @($verbose).Count | Should -Be 3
        for ($i = 0; $i -lt 3; $i++) { $verbose[$i].Message | Should -Match "^Keep alive call '$($ids[$i])': 200 in \d+ ms$" }
        Assert-KeptAliveOnce $ids
    }

    It 'writes the HTTP traces per item with -Debug' {
        $ids = New-BulkCall 2
        $debug = $ids | Invoke-MgKeepCommunicationCallAlive -Debug 5>&1 |
            Where-Object { $_ -is [System.Management.Automation.DebugRecord] -and $_.Message -like '*HTTP REQUEST*' }
        @($debug).Count | Should -Be 2
        $debug[0].Message | Should -Match ([regex]::Escape($ids[0]))
        $debug[1].Message | Should -Match ([regex]::Escape($ids[1]))
        @(Get-EmulatorRequest).kind | Should -Be @('keepAlive', 'keepAlive')
        Assert-KeptAliveOnce $ids
    }

    It 'sends the beta twin''s items to /beta' {
        $ids = New-BulkCall 3
        @($ids | Invoke-MgBetaKeepCommunicationCallAlive -PassThru).Count | Should -Be 3
        # Refusing: beta is a Graph of its own; its first batch is refused, then each item goes singly.
        $paths = @(Get-EmulatorRequest | ForEach-Object rawPath)
        $paths[0] | Should -Be '/beta/$batch'
        $paths.Count | Should -Be $(if ($Mode -eq 'accepting') { 1 } else { 4 })
        @(Get-EmulatorKeepAlive).rawPath | ForEach-Object { $_ | Should -BeLike '/beta/communications/calls/*/keepAlive' }
        Assert-KeptAliveOnce $ids
    }
}

Describe 'Bulk keep-alive: -WhatIf, -ErrorAction Stop, concurrency, Ctrl+C, progress' {
    BeforeEach {
        Clear-EmulatorRequest
        $null = Invoke-Emulator DELETE faults
    }
    AfterAll {
        $null = Invoke-Emulator DELETE faults
    }

    It '-WhatIf on a piped batch sends nothing and writes nothing, and asks once per item' {
        $ids = New-BulkCall 700
        $output = @($ids | Invoke-MgKeepCommunicationCallAlive -PassThru -WhatIf)
        $output.Count | Should -Be 0
        (Get-EmulatorRequest).Count | Should -Be 0
        $questions = $ids[0..2] | Invoke-MgKeepCommunicationCallAlive -WhatIf:$false -Verbose 4>&1 |
            Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'Performing the operation*' }
        @($questions).Count | Should -Be 3
    }

    It '-ErrorAction Stop stops at the first failing item and writes nothing for later items' {
        $ids = New-BulkCall 40
        $items = @($ids[0..9]) + 'stop-here-gone' + @($ids[10..39])
        $output = [System.Collections.Generic.List[object]]::new()
        { $items | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorAction Stop | ForEach-Object { $output.Add($_) } } |
            Should -Throw -ErrorId 'itemNotFound,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_KeepViaIdentity'
        $output.Count | Should -Be 10
        # The items before it were kept alive once; none twice (the chunk went out as a whole).
        Assert-KeptAliveOnce $ids[0..9]
        $counts = Get-KeptAliveCount $ids
        @($ids | Where-Object { $counts[$_] -gt 1 }) | Should -BeNullOrEmpty
    }

    It 'really sends concurrently: 26 batch requests answered after 300 ms, -ThrottleLimit 16, 16 in flight at once' {
        # 512 items (one chunk) are 26 JSON batches of 19-20; each batch is answered after 300 ms.
        $ids = New-BulkCall 512
        $null = Invoke-Emulator POST faults (New-DelayedBatchFault -Count 26)
        Reset-EmulatorInFlight
        $output = @($ids | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit 16 -PassThru)
        $output.Count | Should -Be 512
        $requests = @(Get-EmulatorRequest)
        $requests.kind | Sort-Object -Unique | Should -Be 'batch'
        $requests.Count | Should -Be 26
        (Get-EmulatorInFlight).maxInFlight | Should -Be 16
    }

    It 'honours -ThrottleLimit as a bound: -ThrottleLimit 4 with 16 batch requests answered after 300 ms, 4 in flight at most' {
        $ids = New-BulkCall 320
        $null = Invoke-Emulator POST faults (New-DelayedBatchFault -Count 16)
        Reset-EmulatorInFlight
        $null = $ids | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit 4
        @(Get-EmulatorRequest).Count | Should -Be 16
        (Get-EmulatorInFlight).maxInFlight | Should -Be 4
    }

    It 'stops within 1 s on Ctrl+C during a bulk chunk and sends nothing after' {
        $ids = New-BulkCall 200
        $null = Invoke-Emulator POST faults @{ path = '/keepAlive'; count = 1000; responses = @(@{ status = 200; delayMs = 8000 }) }
        $powershell = [powershell]::Create()
        try {
            $null = $powershell.AddScript("Import-Module '$ManifestPath'; `$args[0] | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit 16 -PassThru").AddArgument($ids)
            $async = $powershell.BeginInvoke()
            Start-Sleep -Milliseconds 800
            $async.IsCompleted | Should -BeFalse
            $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
            $powershell.Stop()
            $stopwatch.Stop()
            $stopwatch.ElapsedMilliseconds | Should -BeLessThan 1000
            $powershell.InvocationStateInfo.State | Should -Be 'Stopped'
            $sent = (Get-EmulatorRequest).Count
            $sent | Should -BeGreaterThan 0
            $sent | Should -BeLessOrEqual 16
            Start-Sleep -Milliseconds 700
            (Get-EmulatorRequest).Count | Should -Be $sent
        } finally {
            $powershell.Dispose()
            $null = Invoke-Emulator DELETE faults
        }
    }

    It 'shows Write-Progress ("Keeping calls alive") for a long run and completes it' {
        $ids = New-BulkCall 3000
        $powershell = [powershell]::Create()
        try {
            $null = $powershell.AddScript("`$ProgressPreference = 'Continue'; Import-Module '$ManifestPath'; `$args[0] | Invoke-MgKeepCommunicationCallAlive -ThrottleLimit 4 -PassThru").AddArgument($ids)
            $output = $powershell.Invoke()
            $output.Count | Should -Be 3000
            Assert-KeptAliveOnce $ids
            $progress = @($powershell.Streams.Progress | Where-Object Activity -EQ 'Keeping calls alive')
            $progress.Count | Should -BeGreaterThan 0
            $progress[-1].RecordType | Should -Be 'Completed'
            @($progress | Where-Object RecordType -EQ 'Processing')[0].StatusDescription | Should -Match '^[\d,.]+ done, [\d,.]+/s$'
        } finally {
            $powershell.Dispose()
        }
    }

    It 'shows no progress for a short pipeline' {
        $ids = New-BulkCall 100
        $powershell = [powershell]::Create()
        try {
            $null = $powershell.AddScript("`$ProgressPreference = 'Continue'; Import-Module '$ManifestPath'; `$args[0] | Invoke-MgKeepCommunicationCallAlive").AddArgument($ids)
            $null = $powershell.Invoke()
            @($powershell.Streams.Progress | Where-Object Activity -EQ 'Keeping calls alive').Count | Should -Be 0
            Assert-KeptAliveOnce $ids
        } finally {
            $powershell.Dispose()
        }
    }
}
