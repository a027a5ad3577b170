#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# The background keeper (Start/Get/Stop/Wait-MgCommunicationCallKeepAlive) against the emulator at
# compressed time: calls end after 3 s without a keep-alive, and are kept every second.

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    Import-Module $ManifestPath -Force -ErrorAction Stop
    Connect-TestGraph
    # Before any call is created: the timeout applies to new calls.
    $null = Invoke-Emulator PUT config @{ callTimeoutSecs = 3 }
    $OneSecond = [TimeSpan]::FromSeconds(1)

    function New-TestCall {
        # Creates calls in the emulator; returns their ids.
        param([int] $Count = 1, [string] $Prefix = 'keeper')
        $ids = [string[]]@(1..$Count | ForEach-Object { "$Prefix-$([guid]::NewGuid().ToString('N').Substring(0, 12))" })
        New-EmulatorCall -Id $ids
        , $ids
    }

    function Get-EmulatorCallState {
        param([string] $Id)
        (Invoke-Emulator GET "calls/$([uri]::EscapeDataString($Id))").state
    }

    function Get-KeepAliveCount {
        # Keep-alive requests the emulator received (for one call, or all).
        param([string] $Id)
        $path = if ($Id) { "requests?kind=keepAlive&callId=$([uri]::EscapeDataString($Id))" } else { 'requests?kind=keepAlive' }
        @(Invoke-Emulator GET $path | ForEach-Object { $_ }).Count
    }

}

AfterAll {
    Stop-MgCommunicationCallKeepAlive -All -ErrorAction Ignore
    Stop-TestEmulator $Emulator
}

Describe 'Signatures' {
    BeforeEach { Stop-MgCommunicationCallKeepAlive -All }

    It '<Name> supports ShouldProcess with ConfirmImpact Medium' -TestCases @(
        @{ Name = 'Start-MgCommunicationCallKeepAlive' }
        @{ Name = 'Stop-MgCommunicationCallKeepAlive' }
    ) {
        param($Name)
        $binding = (Get-Command $Name -Module MgKeepAlive).ScriptBlock.Attributes | Where-Object { $_ -is [System.Management.Automation.CmdletBindingAttribute] }
        $binding.SupportsShouldProcess | Should -BeTrue
        $binding.ConfirmImpact | Should -Be 'Medium'
    }

    It 'Start takes -CallId (string[]) at position 0, -InputObject from the pipeline and -Interval (TimeSpan)' {
        $command = Get-Command Start-MgCommunicationCallKeepAlive -Module MgKeepAlive
        $command.Parameters['CallId'].ParameterType | Should -Be ([string[]])
        ($command.ParameterSets | Where-Object Name -EQ 'CallId').Parameters.Where({ $_.Name -eq 'CallId' }).Position | Should -Be 0
        ($command.ParameterSets | Where-Object Name -EQ 'InputObject').Parameters.Where({ $_.Name -eq 'InputObject' }).ValueFromPipeline | Should -BeTrue
        $command.Parameters['Interval'].ParameterType | Should -Be ([TimeSpan])
    }

    It 'Get takes -State Active, Retrying, Ended, Failed' {
        $set = (Get-Command Get-MgCommunicationCallKeepAlive -Module MgKeepAlive).Parameters['State'].Attributes |
            Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] }
        $set.ValidValues | Should -Be @('Active', 'Retrying', 'Ended', 'Failed')
    }
}

Describe 'Start-MgCommunicationCallKeepAlive' {
    BeforeEach { Stop-MgCommunicationCallKeepAlive -All }

    It 'returns without waiting for Graph, and sends the first keep-alive at once, not after the interval' {
        $id = (New-TestCall)[0]
        # The server holds the first keep-alive for 20 s: Start returning while it is unanswered
        # did not wait for it. The interval is 15 minutes: a keep-alive that arrives is the first.
        $null = Invoke-Emulator POST faults @{ callId = $id; responses = @(@{ status = 200; delayMs = 20000 }) }
        $state = Start-MgCommunicationCallKeepAlive -CallId $id
        $state.State | Should -Be 'Active'
        @(Invoke-Emulator GET "requests?kind=keepAlive&callId=$id" | ForEach-Object { $_ } | Where-Object { $null -ne $_.status }).Count |
            Should -Be 0 -Because 'Start does not wait for an answer'
        Wait-Until { (Get-KeepAliveCount $id) -ge 1 } | Should -BeTrue -Because 'the first keep-alive goes out at once'
        Stop-MgCommunicationCallKeepAlive -All
        $null = Invoke-Emulator DELETE faults
    }

    It 'writes one Active state per call and keeps every call past the call timeout' {
        $ids = New-TestCall -Count 10
        $states = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        $states.Count | Should -Be 10
        $states.CallId | Should -Be $ids
        $states | ForEach-Object {
            $_.PSObject.TypeNames[0] | Should -Be 'MgKeepAlive.CallKeepAliveState'
            $_.State | Should -Be 'Active'
            $_.Interval | Should -Be $OneSecond
            $_.Deadline | Should -BeOfType [datetime]
        }
        Wait-Until { @($ids | Where-Object { (Get-KeepAliveCount $_) -ge 1 }).Count -eq 10 } | Should -BeTrue

        # The session goes on with other work while the keeper keeps the calls (timeout 3 s).
        Start-Sleep -Seconds 6
        foreach ($id in $ids) {
            Get-EmulatorCallState $id | Should -Be 'Active' -Because "$id is kept every second"
            Get-KeepAliveCount $id | Should -BeGreaterOrEqual 5
        }
        $kept = Get-MgCommunicationCallKeepAlive -CallId $ids
        $kept.State | Sort-Object -Unique | Should -Be 'Active'
        $first = $kept[0]
        $first.LastSuccess.Kind | Should -Be 'Local'
        $first.LastSuccess | Should -BeGreaterThan (Get-Date).AddSeconds(-3)
        ($first.Deadline - $first.LastSuccess) | Should -Be ([TimeSpan]::FromMinutes(45))
        $first.Attempts | Should -BeGreaterOrEqual 5
        $first.ConsecutiveFailures | Should -Be 0
        $first.LastError | Should -BeNullOrEmpty
    }

    It 'accepts pipeline input of every kind, with a per-item error for an item without an id or a refused id' {
        $ids = New-TestCall -Count 6
        $items = @(
            $ids[0]                                             # a plain id string
            @{ CallId = $ids[1] }                               # a hashtable with CallId
            @{ id = $ids[2] }                                   # a hashtable with Id (any case)
            [pscustomobject]@{ Id = $ids[3]; Subject = 'x' }     # Get-MgCommunicationCall output
            "{`"callId`":`"$($ids[4])`"}"                        # a JSON identity
            @{ Subject = 'no id' }                              # no id: an error, and on
            '..'                                                # refused by the library
            '{"CallId": 42}'                                    # as the keep-alive cmdlet: InvalidIdentity
            $ids[5]
        )
        $errors = $null
        $states = $items | Start-MgCommunicationCallKeepAlive -Interval $OneSecond -ErrorAction SilentlyContinue -ErrorVariable errors
        $states.CallId | Should -Be $ids
        $errors.Count | Should -Be 3
        $byId = @{}; $errors | ForEach-Object { $byId[$_.FullyQualifiedErrorId.Split(',')[0]] = $_ }
        $byId['InputObjectCallIdMissing'].TargetObject.Subject | Should -Be 'no id'
        $byId['InvalidCallId'].TargetObject | Should -Be '..'
        $byId['InvalidCallId'].CategoryInfo.Category | Should -Be 'InvalidArgument'
        $byId['InvalidIdentity'] | Should -Not -BeNullOrEmpty
        (Get-MgCommunicationCallKeepAlive).CallId | Should -Be ($ids | Sort-Object)
        # State objects go back in too (here: a new interval for the calls).
        $again = Get-MgCommunicationCallKeepAlive | Start-MgCommunicationCallKeepAlive -Interval '00:00:02'
        $again.CallId | Should -Be ($ids | Sort-Object)
        $again.Interval | Sort-Object -Unique | Should -Be ([TimeSpan]::FromSeconds(2))
    }

    It 'updates the interval of a call that is already kept' {
        $id = (New-TestCall)[0]
        (Start-MgCommunicationCallKeepAlive $id -Interval $OneSecond).Interval | Should -Be $OneSecond
        $state = Start-MgCommunicationCallKeepAlive $id -Interval '00:00:07'
        $state.Interval | Should -Be ([TimeSpan]::FromSeconds(7))
        $state.State | Should -Be 'Active'
        @(Get-MgCommunicationCallKeepAlive).Count | Should -Be 1
        (Get-MgCommunicationCallKeepAlive $id).Interval | Should -Be ([TimeSpan]::FromSeconds(7))
    }

    It 'starts nothing with -WhatIf' {
        $ids = New-TestCall -Count 3
        Clear-EmulatorRequest
        $ids | Start-MgCommunicationCallKeepAlive -Interval $OneSecond -WhatIf | Should -BeNullOrEmpty
        Start-MgCommunicationCallKeepAlive -CallId $ids -WhatIf | Should -BeNullOrEmpty
        Get-MgCommunicationCallKeepAlive | Should -BeNullOrEmpty
        Start-Sleep -Milliseconds 300
        Get-KeepAliveCount | Should -Be 0
    }

    It 'refuses an interval under 1 second with a parameter error' -TestCases @(
        @{ Value = '00:00:00.999' }, @{ Value = [TimeSpan]::Zero }, @{ Value = 5 }
    ) {
        param($Value)
        { Start-MgCommunicationCallKeepAlive -CallId 'x' -Interval $Value } |
            Should -Throw -ExceptionType ([System.Management.Automation.ParameterBindingException]) -ExpectedMessage '*Interval*at least 1 second*'
        Get-MgCommunicationCallKeepAlive | Should -BeNullOrEmpty
    }

    It 'defaults to 15 minutes and warns above 45 minutes' {
        $id = (New-TestCall)[0]
        $warnings = $null
        (Start-MgCommunicationCallKeepAlive $id -WarningVariable warnings).Interval | Should -Be ([TimeSpan]::FromMinutes(15))
        $warnings | Should -BeNullOrEmpty
        (Start-MgCommunicationCallKeepAlive $id -Interval '00:45:00' -WarningVariable warnings).Interval | Should -Be ([TimeSpan]::FromMinutes(45))
        $warnings | Should -BeNullOrEmpty
        (Start-MgCommunicationCallKeepAlive $id -Interval '00:46:00' -WarningVariable warnings -WarningAction SilentlyContinue).Interval | Should -Be ([TimeSpan]::FromMinutes(46))
        "$warnings" | Should -BeLike '*longer than 45 minutes*'
    }
}

Describe 'Ended calls' {
    BeforeEach { Stop-MgCommunicationCallKeepAlive -All }

    It 'an ended call becomes Ended, gets no more requests, stays listed, and Wait- returns it' {
        $ids = New-TestCall -Count 3
        $null = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        Start-Sleep -Milliseconds 300
        $null = Invoke-Emulator POST "calls/$($ids[1])/end"
        $ended = Wait-MgCommunicationCallKeepAlive -Any -Timeout '00:00:05'
        $ended.CallId | Should -Be $ids[1]
        $ended.State | Should -Be 'Ended'
        $ended.NextDue | Should -BeNullOrEmpty
        $ended.LastError | Should -BeLike '*itemNotFound*'

        $count = Get-KeepAliveCount $ids[1]
        Start-Sleep -Milliseconds 1500
        Get-KeepAliveCount $ids[1] | Should -Be $count -Because 'an ended call gets no more requests'
        (Get-MgCommunicationCallKeepAlive -State Ended).CallId | Should -Be $ids[1]
        (Get-MgCommunicationCallKeepAlive -State Active).CallId | Should -Be ($ids[0], $ids[2] | Sort-Object)
        # Already ended: written at once.
        (Wait-MgCommunicationCallKeepAlive -CallId $ids[1] -Timeout 0).State | Should -Be 'Ended'
        # The table view: the columns, and LastError cut short.
        $table = Get-MgCommunicationCallKeepAlive -CallId $ids[1] | Out-String -Width 250
        $table | Should -Match 'CallId\s+State\s+LastSuccess\s+NextDue\s+Deadline\s+Attempts\s+LastError'
        $table | Should -BeLike '*Ended*itemNotFound*...*'
        # Stopped, it is gone.
        $ended | Stop-MgCommunicationCallKeepAlive
        Get-MgCommunicationCallKeepAlive -CallId $ids[1] -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'Wait- blocks until every given call has ended, writing each as it ends' {
        $ids = New-TestCall -Count 2
        $job = Start-ThreadJob -ArgumentList $Emulator.Url, $ids -ScriptBlock {
            param($url, $ids)
            foreach ($id in $ids) { Start-Sleep -Milliseconds 400; $null = Invoke-RestMethod -Method Post "$url/_emulator/calls/$id/end" }
        }
        $errors = $null
        $ended = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond | Wait-MgCommunicationCallKeepAlive -Timeout '00:00:30' -ErrorVariable errors
        # It returned because the calls ended, not because it timed out (that is a WaitTimeout error).
        $errors.Count | Should -Be 0
        $ended.CallId | Sort-Object | Should -Be ($ids | Sort-Object)
        $ended.State | Sort-Object -Unique | Should -Be 'Ended'
        $job | Wait-Job | Remove-Job
    }

    It 'Wait- times out with a WaitTimeout error naming the calls still kept' {
        $id = (New-TestCall)[0]
        $null = Start-MgCommunicationCallKeepAlive $id -Interval $OneSecond
        $errors = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        Wait-MgCommunicationCallKeepAlive -Timeout '00:00:00.5' -ErrorAction SilentlyContinue -ErrorVariable errors | Should -BeNullOrEmpty
        $stopwatch.Stop()
        $stopwatch.ElapsedMilliseconds | Should -BeGreaterOrEqual 500 -Because 'it waits out its timeout'
        $stopwatch.ElapsedMilliseconds | Should -BeLessThan 15000 -Because 'it does not wait much longer (a guard against hanging: 30x the timeout)'
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'WaitTimeout,*'
        $errors[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $errors[0].TargetObject | Should -Be @($id)
    }

    It 'Wait- stops waiting for a call stopped from another runspace, and reports a call that is not kept' {
        $id = (New-TestCall)[0]
        $null = Start-MgCommunicationCallKeepAlive $id -Interval $OneSecond
        $job = Start-ThreadJob -ArgumentList $ManifestPath, $id -ScriptBlock {
            param($manifest, $id)
            Import-Module $manifest
            Start-Sleep -Milliseconds 300
            Stop-MgCommunicationCallKeepAlive -CallId $id
        }
        $errors = $null
        Wait-MgCommunicationCallKeepAlive -CallId $id, 'never-kept' -Timeout '00:00:30' -ErrorAction SilentlyContinue -ErrorVariable errors | Should -BeNullOrEmpty
        # Only the call that is not kept is reported: the wait ended with the stop, not with a WaitTimeout.
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'CallNotKept,*'
        $errors[0].TargetObject | Should -Be 'never-kept'
        $job | Wait-Job | Receive-Job -ErrorAction Stop
        $job | Remove-Job
    }
}

Describe 'Throttling and server errors' {
    BeforeEach { Stop-MgCommunicationCallKeepAlive -All }

    It 'a storm of 429 and 503 answers loses no call' {
        $ids = New-TestCall -Count 5
        $null = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        Start-Sleep -Milliseconds 500
        # Two failures per call on average. (No Retry-After: its 1 s minimum is a third of the
        # compressed 3 s call timeout, i.e. 15 minutes of Graph's 45; the keeper pauses every call
        # for it.)
        $null = Invoke-Emulator POST faults @{ count = 10; responses = @(@{ status = 429 }, @{ status = 503 }) }
        $sawRetrying = $false
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        while ($stopwatch.Elapsed.TotalSeconds -lt 6) {
            if (Get-MgCommunicationCallKeepAlive -State Retrying) { $sawRetrying = $true }
            Start-Sleep -Milliseconds 100
        }
        $sawRetrying | Should -BeTrue -Because 'the faults were answered'
        @(Invoke-Emulator GET faults | ForEach-Object { $_ }).Count | Should -Be 0 -Because 'the storm is over'
        foreach ($id in $ids) { Get-EmulatorCallState $id | Should -Be 'Active' -Because "$id was kept through the storm" }
        Wait-Until { @(Get-MgCommunicationCallKeepAlive -State Active).Count -eq 5 } -TimeoutMs 3000 | Should -BeTrue
        (Get-MgCommunicationCallKeepAlive).ConsecutiveFailures | Sort-Object -Unique | Should -Be 0
    }
}

Describe 'Stop-MgCommunicationCallKeepAlive' {
    BeforeEach { Stop-MgCommunicationCallKeepAlive -All }

    It '-All halts all traffic and forgets every call' {
        $ids = New-TestCall -Count 5
        $null = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        Start-Sleep -Milliseconds 1200
        Stop-MgCommunicationCallKeepAlive -All | Should -BeNullOrEmpty
        Get-MgCommunicationCallKeepAlive | Should -BeNullOrEmpty
        Start-Sleep -Milliseconds 300   # a keep-alive already under way may still land
        $count = Get-KeepAliveCount
        Start-Sleep -Milliseconds 1500
        Get-KeepAliveCount | Should -Be $count
    }

    It 'stops the given calls (ids, state objects) and writes their Stopped states with -PassThru' {
        $ids = New-TestCall -Count 4
        $null = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        Stop-MgCommunicationCallKeepAlive $ids[0] | Should -BeNullOrEmpty
        $stopped = Get-MgCommunicationCallKeepAlive -CallId $ids[1], $ids[2] | Stop-MgCommunicationCallKeepAlive -PassThru
        $stopped.CallId | Should -Be ($ids[1], $ids[2] | Sort-Object)
        $stopped.State | Sort-Object -Unique | Should -Be 'Stopped'
        (Get-MgCommunicationCallKeepAlive).CallId | Should -Be $ids[3]
        (Stop-MgCommunicationCallKeepAlive -All -PassThru).CallId | Should -Be $ids[3]
    }

    It 'reports a call that is not kept (CallNotKept) and goes on' {
        $ids = New-TestCall -Count 2
        $null = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        $errors = $null
        'not-kept', $ids[0] | Stop-MgCommunicationCallKeepAlive -ErrorAction SilentlyContinue -ErrorVariable errors
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'CallNotKept,*'
        $errors[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        (Get-MgCommunicationCallKeepAlive).CallId | Should -Be $ids[1]
    }

    It 'stops nothing with -WhatIf' {
        $ids = New-TestCall -Count 2
        $null = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        Stop-MgCommunicationCallKeepAlive -All -WhatIf
        $ids | Stop-MgCommunicationCallKeepAlive -WhatIf
        @(Get-MgCommunicationCallKeepAlive).Count | Should -Be 2
    }
}

Describe 'One keeper per process' {
    BeforeEach { Stop-MgCommunicationCallKeepAlive -All }

    It 'is safe under concurrent Start and Stop from several runspaces' {
        # The runspaces import the module before they start keeping: on a loaded runner that can
        # take longer than the compressed 3 s call timeout, which would end calls before their
        # first keep-alive. This test is about the keeper's state, so its calls live 10 minutes.
        $null = Invoke-Emulator PUT config @{ callTimeoutSecs = 600 }
        try { $ids = New-TestCall -Count 160 -Prefix 'parallel' } finally { $null = Invoke-Emulator PUT config @{ callTimeoutSecs = 3 } }
        $groups = 0..3 | ForEach-Object { , $ids[($_ * 40)..($_ * 40 + 39)] }
        $errorCounts = $groups | ForEach-Object -ThrottleLimit 4 -Parallel {
            Import-Module $using:ManifestPath
            $mine = $_
            $errors = @()
            foreach ($round in 1..5) {
                $null = Start-MgCommunicationCallKeepAlive -CallId $mine -Interval '00:00:01' -ErrorVariable +errors
                $null = Get-MgCommunicationCallKeepAlive -ErrorVariable +errors
                Stop-MgCommunicationCallKeepAlive -CallId $mine[0..19] -ErrorVariable +errors
            }
            $errors.Count
        }
        $errorCounts | Should -Be @(0, 0, 0, 0)
        $expected = $groups | ForEach-Object { $_[20..39] } | Sort-Object
        $kept = Get-MgCommunicationCallKeepAlive
        $kept.CallId | Should -Be $expected
        Wait-Until { @(Get-MgCommunicationCallKeepAlive -State Active).Count -eq 80 } | Should -BeTrue
        @(Get-MgCommunicationCallKeepAlive).Count | Should -Be 80
    }

    It 'Disconnect-MgGraph stops the keeper' {
        $ids = New-TestCall -Count 3
        $null = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        Start-Sleep -Milliseconds 300
        $null = Disconnect-MgGraph
        try {
            Get-MgCommunicationCallKeepAlive | Should -BeNullOrEmpty
            Start-Sleep -Milliseconds 300
            $count = Get-KeepAliveCount
            Start-Sleep -Milliseconds 1200
            Get-KeepAliveCount | Should -Be $count
        } finally {
            Connect-TestGraph
        }
    }

    It 'warns when keeping calls without a connection, and keeps them once connected' {
        $id = (New-TestCall)[0]
        $null = Disconnect-MgGraph
        try {
            $warnings = $null
            $null = Start-MgCommunicationCallKeepAlive $id -Interval $OneSecond -WarningVariable warnings -WarningAction SilentlyContinue
            "$warnings" | Should -BeLike '*Not connected*'
            Wait-Until { (Get-MgCommunicationCallKeepAlive $id).State -eq 'Retrying' } | Should -BeTrue
        } finally {
            Connect-TestGraph
        }
        Wait-Until { (Get-MgCommunicationCallKeepAlive $id).State -eq 'Active' -and (Get-KeepAliveCount $id) -gt 0 } | Should -BeTrue
    }

    It 'module removal stops the keeper, and a re-import keeps working' {
        $ids = New-TestCall -Count 2
        $null = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        Import-Module $ManifestPath -Force -ErrorAction Stop
        Get-MgCommunicationCallKeepAlive | Should -BeNullOrEmpty
        $states = Start-MgCommunicationCallKeepAlive -CallId $ids -Interval $OneSecond
        $states.State | Sort-Object -Unique | Should -Be 'Active'
        Wait-Until { @($ids | Where-Object { (Get-KeepAliveCount $_) -gt 0 }).Count -eq 2 } | Should -BeTrue
    }

    It 'binds the keeper on first use only (the import does not), and the process exits by itself while calls are kept' {
        $command = @"
`$before = [AppDomain]::CurrentDomain.GetAssemblies().Where({ `$_.GetName().Name -like 'MgKeepAlive.Keeper*' }).Count
Import-Module '$ManifestPath' -ErrorAction Stop
`$afterImport = [AppDomain]::CurrentDomain.GetAssemblies().Where({ `$_.GetName().Name -like 'MgKeepAlive.Keeper*' }).Count
`$null = Add-MgEnvironment -Name E -AzureADEndpoint '$($Emulator.Url)' -GraphEndpoint '$($Emulator.Url)'
Connect-MgGraph -AccessToken (ConvertTo-SecureString 't' -AsPlainText -Force) -Environment E -NoWelcome
`$states = Start-MgCommunicationCallKeepAlive -CallId (1..500 | ForEach-Object { "exit-`$_" }) -Interval '00:00:01'
Start-Sleep -Milliseconds 300
"`$before `$afterImport `$(`$states.Count)"
"@
        # The keeper's background work must not hold the process: a child still running after 300 s
        # (a hang guard, not a speed bound: a fresh pwsh alone took 19 s on a loaded 2-core runner)
        # is killed and fails the test.
        $result = Invoke-TestPwsh -Command $command -TimeoutSeconds 300
        $result.ExitCode | Should -Be 0
        $result.Output | Should -Be '0 0 500'
    }
}
