#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# Invoke-MgKeepCommunicationCallAlive as users see it, against the project's Graph emulator.

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $Emulator = Start-TestEmulator
    Import-Module $ManifestPath -Force -ErrorAction Stop
    Connect-TestGraph
    $Command = Get-Command Invoke-MgKeepCommunicationCallAlive -Module MgKeepAlive

    function Assert-KeepAliveSent {
        # The emulator received exactly -Count keep-alives for the call, each a POST with an empty
        # body to /v1.0/communications/calls/{id}/keepAlive, and kept the call alive with each.
        param([Parameter(Mandatory)][string] $CallId, [int] $Count = 1)
        $requests = Get-EmulatorCallRequest $CallId
        $requests.Count | Should -Be $Count -Because "$Count keep-alive(s) for '$CallId' were expected"
        foreach ($request in $requests) {
            $request.method | Should -Be 'POST'
            $request.rawPath | Should -BeExactly "/v1.0/communications/calls/$([uri]::EscapeDataString($CallId))/keepAlive"
            $request.bodyLength | Should -Be 0
            $request.status | Should -Be 200
        }
        (Invoke-Emulator GET "calls/$([uri]::EscapeDataString($CallId))").keepAliveCount | Should -BeGreaterOrEqual $Count
    }
}

AfterAll {
    Stop-TestEmulator $Emulator
}

Describe 'Invoke-MgKeepCommunicationCallAlive signature (as the seed describes it)' {
    It 'has the parameter sets Keep (default) and KeepViaIdentity' {
        $Command.ParameterSets.Name | Sort-Object | Should -Be @('Keep', 'KeepViaIdentity')
        $Command.DefaultParameterSet | Should -Be 'Keep'
    }

    It 'takes -CallId <string>: Keep only, mandatory, named, not from the pipeline' {
        $keep = $Command.ParameterSets | Where-Object Name -EQ 'Keep'
        $callId = $keep.Parameters | Where-Object Name -EQ 'CallId'
        $callId.ParameterType | Should -Be ([string])
        $callId.IsMandatory | Should -BeTrue
        $callId.Position | Should -BeLessThan 0
        $callId.ValueFromPipeline | Should -BeFalse
        $callId.ValueFromPipelineByPropertyName | Should -BeFalse
        $Command.Parameters['CallId'].ParameterSets.Keys | Should -Be @('Keep')
    }

    It 'takes -InputObject: KeepViaIdentity only, mandatory, from the pipeline by value' {
        $viaIdentity = $Command.ParameterSets | Where-Object Name -EQ 'KeepViaIdentity'
        $inputObject = $viaIdentity.Parameters | Where-Object Name -EQ 'InputObject'
        $inputObject.IsMandatory | Should -BeTrue
        $inputObject.ValueFromPipeline | Should -BeTrue
        $inputObject.Position | Should -BeLessThan 0
        $Command.Parameters['InputObject'].ParameterSets.Keys | Should -Be @('KeepViaIdentity')
    }

    It 'has -<Name> (<Type>) in both sets, optional' -TestCases @(
        @{ Name = 'PassThru'; Type = [switch] }
        @{ Name = 'Headers'; Type = [System.Collections.IDictionary] }
        @{ Name = 'ResponseHeadersVariable'; Type = [string] }
        @{ Name = 'WhatIf'; Type = [switch] }
        @{ Name = 'Confirm'; Type = [switch] }
    ) {
        param($Name, $Type)
        $Command.Parameters[$Name].ParameterType | Should -Be $Type
        foreach ($set in $Command.ParameterSets) {
            $parameter = $set.Parameters | Where-Object Name -EQ $Name
            $parameter | Should -Not -BeNullOrEmpty -Because "-$Name is in set $($set.Name)"
            $parameter.IsMandatory | Should -BeFalse
        }
    }

    It 'has the aliases RHV, cf and wi' {
        $Command.Parameters['ResponseHeadersVariable'].Aliases | Should -Contain 'RHV'
        $Command.Parameters['Confirm'].Aliases | Should -Contain 'cf'
        $Command.Parameters['WhatIf'].Aliases | Should -Contain 'wi'
    }

    It 'declares [OutputType([bool])], SupportsShouldProcess and ConfirmImpact Medium' {
        $Command.OutputType.Type | Should -Be @([bool])
        $binding = $Command.ScriptBlock.Attributes | Where-Object { $_ -is [System.Management.Automation.CmdletBindingAttribute] }
        $binding.SupportsShouldProcess | Should -BeTrue
        $binding.ConfirmImpact | Should -Be ([System.Management.Automation.ConfirmImpact]::Medium)
    }

    It 'accepts (and hides) the official hidden parameters <_>' -TestCases @(
        'Break', 'HttpPipelineAppend', 'HttpPipelinePrepend', 'Proxy', 'ProxyCredential', 'ProxyUseDefaultCredentials'
    ) {
        $Command.Parameters[$_] | Should -Not -BeNullOrEmpty
        $Command.Parameters[$_].Attributes.Where({ $_ -is [System.Management.Automation.ParameterAttribute] })[0].DontShow | Should -BeTrue
    }
}

Describe 'Keeping calls alive' {
    BeforeAll {
        New-EmulatorCall 'call-1', 'call-2', 'call-3'
    }
    BeforeEach {
        Clear-EmulatorRequest
    }

    Context 'output' {
        It 'writes nothing without -PassThru' {
            $output = @(Invoke-MgKeepCommunicationCallAlive -CallId call-1)
            $output.Count | Should -Be 0
            (Get-EmulatorRequest).Count | Should -Be 1
            Assert-KeepAliveSent call-1
        }

        It 'writes exactly one [bool] $true with -PassThru' {
            $output = @(Invoke-MgKeepCommunicationCallAlive -CallId call-1 -PassThru)
            $output.Count | Should -Be 1
            $output[0] | Should -BeOfType [bool]
            $output[0] | Should -BeTrue
            Assert-KeepAliveSent call-1
        }

        It 'writes nothing with -PassThru:$false (and still keeps the call alive)' {
            @(Invoke-MgKeepCommunicationCallAlive -CallId call-1 -PassThru:$false).Count | Should -Be 0
            Assert-KeepAliveSent call-1
        }

        It 'writes one $true for an answer that takes longer than one wait slice (<_>), sending once' -TestCases @('v1.0', 'beta') {
            # A lone -CallId waits one slice (100 ms) in the library, then reads on as piped items do.
            $null = Invoke-Emulator POST faults @{ callId = 'call-2'; responses = @(@{ status = 200; delayMs = 400 }) }
            $command = if ($_ -eq 'beta') { 'Invoke-MgBetaKeepCommunicationCallAlive' } else { 'Invoke-MgKeepCommunicationCallAlive' }
            $output = @(& $command -CallId call-2 -PassThru)
            $output.Count | Should -Be 1
            $output[0] | Should -BeTrue
            $log = @(Get-EmulatorRequest)
            $log.Count | Should -Be 1
            $log[0].apiVersion | Should -Be $_
        }

        It 'writes one $true per pipeline item' {
            $output = @('call-1', 'call-2', 'call-3' | Invoke-MgKeepCommunicationCallAlive -PassThru)
            $output | Should -Be @($true, $true, $true)
            $sent = @(Get-EmulatorKeepAlive | Sort-Object callId)
            $sent.callId | Should -Be @('call-1', 'call-2', 'call-3')
            $sent.status | Should -Be @(200, 200, 200)
        }
    }

    Context 'the request' {
        It 'POSTs /v1.0/communications/calls/{id}/keepAlive with Bearer auth, an empty body and a client-request-id' {
            Invoke-MgKeepCommunicationCallAlive -CallId call-1
            $request = Get-EmulatorRequest
            $request.Count | Should -Be 1
            $request[0].method | Should -Be 'POST'
            $request[0].rawPath | Should -Be '/v1.0/communications/calls/call-1/keepAlive'
            $request[0].headers.authorization | Should -Be 'Bearer test-token'
            $request[0].bodyLength | Should -Be 0
            $request[0].headers.'client-request-id' | Should -Match '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            $request[0].headers.'user-agent' | Should -Match 'MgKeepAlive'
        }

        It 'sends -Headers as extra request headers' {
            Invoke-MgKeepCommunicationCallAlive -CallId call-1 -Headers @{ 'X-Test-Header' = 'hello'; 'X-Number' = 42 }
            $request = Get-EmulatorRequest
            $request[0].headers.'x-test-header' | Should -Be 'hello'
            $request[0].headers.'x-number' | Should -Be '42'
        }

        It 'refuses an Authorization header in -Headers and sends nothing' {
            Invoke-MgKeepCommunicationCallAlive -CallId call-1 -Headers @{ Authorization = 'Bearer other' } -ErrorVariable failure -ErrorAction SilentlyContinue
            $failure.Count | Should -Be 1
            $failure[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            $failure[0].FullyQualifiedErrorId | Should -BeLike 'InvalidHeaders,*'
            (Get-EmulatorRequest).Count | Should -Be 0
        }
    }

    Context 'call id encoding' {
        It 'sends <Id> as the single path segment <Segment>' -TestCases @(
            @{ Id = 'a/b'; Segment = 'a%2Fb' }
            @{ Id = '../x'; Segment = '..%2Fx' }
            @{ Id = 'a b'; Segment = 'a%20b' }
            @{ Id = 'x?y#z'; Segment = 'x%3Fy%23z' }
            @{ Id = 'caf' + [char]0xE9; Segment = 'caf%C3%A9' }
            @{ Id = '%2e%2e'; Segment = '%252e%252e' }
        ) {
            param($Id, $Segment)
            New-EmulatorCall $Id
            Clear-EmulatorRequest
            Invoke-MgKeepCommunicationCallAlive -CallId $Id -PassThru | Should -BeTrue
            $request = Get-EmulatorRequest
            $request.Count | Should -Be 1
            $request[0].rawPath | Should -BeExactly "/v1.0/communications/calls/$Segment/keepAlive"
            $request[0].callId | Should -BeExactly $Id
        }

        It 'refuses <Name> before sending anything' -TestCases @(
            @{ Name = "'..'"; Id = '..' }
            @{ Name = "'.'"; Id = '.' }
            @{ Name = 'a NUL character'; Id = "a$([char]0)b" }
            @{ Name = 'a line break'; Id = "a`nb" }
            @{ Name = 'a tab'; Id = "a`tb" }
        ) {
            param($Id)
            Invoke-MgKeepCommunicationCallAlive -CallId $Id -ErrorVariable failure -ErrorAction SilentlyContinue
            $failure.Count | Should -Be 1
            $failure[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            $failure[0].FullyQualifiedErrorId | Should -BeLike 'InvalidCallId,*'
            $failure[0].TargetObject | Should -BeExactly $Id
            (Get-EmulatorRequest).Count | Should -Be 0
        }
    }

    Context '-WhatIf and -Confirm' {
        It '-WhatIf sends no request and writes nothing' {
            $output = @('call-1', 'call-2' | Invoke-MgKeepCommunicationCallAlive -PassThru -WhatIf)
            Invoke-MgKeepCommunicationCallAlive -CallId call-3 -PassThru -WhatIf
            $output.Count | Should -Be 0
            (Get-EmulatorRequest).Count | Should -Be 0
        }

        It '-Confirm:$false sends the request' {
            Invoke-MgKeepCommunicationCallAlive -CallId call-1 -Confirm:$false -PassThru | Should -BeTrue
            (Get-EmulatorRequest).Count | Should -Be 1
            Assert-KeepAliveSent call-1
        }

        It 'asks ShouldProcess once per pipeline item, with the call id as target' {
            # -Verbose shows each ShouldProcess question ("Performing the operation ...").
            $messages = 'call-1', @{ CallId = 'call-2' }, '{"id":"call-3"}' |
                Invoke-MgKeepCommunicationCallAlive -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'Performing the operation*' }
            @($messages).Count | Should -Be 3
            $messages[0].Message | Should -BeLike '*"Keep alive"*"call-1"*'
            $messages[1].Message | Should -BeLike '*"call-2"*'
            $messages[2].Message | Should -BeLike '*"call-3"*'
        }
    }

    Context 'pipeline input' {
        It 'accepts <Name>' -TestCases @(
            @{ Name = 'a plain call id string'; Item = 'call-2' }
            @{ Name = 'a hashtable with CallId'; Item = @{ CallId = 'call-2' } }
            @{ Name = 'a hashtable with callid (any case)'; Item = @{ callid = 'call-2' } }
            @{ Name = 'a case-sensitive dictionary with CALLID'; Item = & { $d = [System.Collections.Generic.Dictionary[string, object]]::new(); $d['CALLID'] = 'call-2'; $d } }
            @{ Name = 'an object with only Id (Get-MgCommunicationCall output)'; Item = [pscustomobject]@{ Id = 'call-2'; State = 'established' } }
            @{ Name = 'an object with CallId'; Item = [pscustomobject]@{ CallId = 'call-2'; ParticipantId = 'p' } }
            @{ Name = 'an object with callId and Id (CallId wins)'; Item = [pscustomobject]@{ callId = 'call-2'; Id = 'other' } }
            @{ Name = 'a JSON identity'; Item = '{"CallId":"call-2"}' }
            @{ Name = 'a JSON identity (lower case, leading blanks)'; Item = '  {"callid": "call-2"}' }
            @{ Name = 'a JSON identity with only id'; Item = '{"id":"call-2"}' }
        ) {
            param($Item)
            $output = @(, $Item | Invoke-MgKeepCommunicationCallAlive -PassThru)
            $output | Should -Be @($true)
            $request = Get-EmulatorRequest
            $request.Count | Should -Be 1
            $request[0].callId | Should -Be 'call-2'
        }

        It 'accepts -InputObject given by name' {
            Invoke-MgKeepCommunicationCallAlive -InputObject @{ CallId = 'call-3' } -PassThru | Should -BeTrue
            (Get-EmulatorRequest)[0].callId | Should -Be 'call-3'
        }

        It 'processes mixed pipeline input in order' {
            $output = @('call-1', @{ CallId = 'call-2' }, [pscustomobject]@{ Id = 'call-3' }, '{"callId":"call-1"}' |
                    Invoke-MgKeepCommunicationCallAlive -PassThru)
            $output.Count | Should -Be 4
            # Sent concurrently: the requests go out in no particular order.
            (Get-EmulatorKeepAlive).callId | Sort-Object | Should -Be @('call-1', 'call-1', 'call-2', 'call-3')
        }

        It 'writes an InvalidArgument error for an identity without CallId or Id and goes on with the next item' {
            $output = @(@{ Foo = 'bar' }, 'call-1' | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorVariable failure -ErrorAction SilentlyContinue)
            $output | Should -Be @($true)
            $failure.Count | Should -Be 1
            $failure[0].Exception.Message | Should -BeExactly 'InputObject has null value for InputObject.CallId'
            $failure[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            $failure[0].FullyQualifiedErrorId | Should -BeLike 'InputObjectCallIdMissing,*'
            $failure[0].TargetObject.Foo | Should -Be 'bar'
            (Get-EmulatorRequest).callId | Should -Be @('call-1')
        }

        It 'treats CallId = $null and Id = empty as missing' {
            @{ CallId = $null; Id = '' } | Invoke-MgKeepCommunicationCallAlive -ErrorVariable failure -ErrorAction SilentlyContinue
            $failure.Count | Should -Be 1
            $failure[0].Exception.Message | Should -BeExactly 'InputObject has null value for InputObject.CallId'
            (Get-EmulatorRequest).Count | Should -Be 0
        }

        It 'writes an InvalidArgument error for malformed JSON and goes on' {
            $output = @('{"callId": ', '{not json}', 'call-1' | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorVariable failure -ErrorAction SilentlyContinue)
            $output | Should -Be @($true)
            $failure.Count | Should -Be 2
            $failure | ForEach-Object {
                $_.CategoryInfo.Category | Should -Be 'InvalidArgument'
                $_.FullyQualifiedErrorId | Should -BeLike 'InvalidIdentity,*'
            }
            $failure[0].TargetObject | Should -Be '{"callId": '
            (Get-EmulatorRequest).callId | Should -Be @('call-1')
        }

        It 'writes the missing-CallId error for a JSON identity without callId' {
            '{"participantId":"p"}' | Invoke-MgKeepCommunicationCallAlive -ErrorVariable failure -ErrorAction SilentlyContinue
            $failure[0].Exception.Message | Should -BeExactly 'InputObject has null value for InputObject.CallId'
            (Get-EmulatorRequest).Count | Should -Be 0
        }

        It 'lets the library judge a JSON identity whose callId is not a string' {
            '{"callId": 42}' | Invoke-MgKeepCommunicationCallAlive -ErrorVariable failure -ErrorAction SilentlyContinue
            $failure.Count | Should -Be 1
            $failure[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            (Get-EmulatorRequest).Count | Should -Be 0
        }

        It 'stops at the first error with -ErrorAction Stop' {
            # The second item's keep-alive goes out with the first (one chunk); its result is not written.
            $output = [System.Collections.Generic.List[object]]::new()
            { 'ended-or-unknown', 'call-1' | Invoke-MgKeepCommunicationCallAlive -PassThru -ErrorAction Stop | ForEach-Object { $output.Add($_) } } |
                Should -Throw -ErrorId 'itemNotFound,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_KeepViaIdentity'
            $output.Count | Should -Be 0
            (Get-EmulatorKeepAlive).callId | Should -Contain 'ended-or-unknown'
        }

        It 'stops at the first error with -ErrorAction Stop (-CallId: nothing else is sent)' {
            { Invoke-MgKeepCommunicationCallAlive -CallId 'ended-or-unknown' -ErrorAction Stop; Invoke-MgKeepCommunicationCallAlive -CallId call-1 -ErrorAction Stop } |
                Should -Throw -ErrorId 'itemNotFound,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
            (Get-EmulatorRequest).callId | Should -Be @('ended-or-unknown')
        }

        It 'stops at a missing CallId with -ErrorAction Stop' {
            { @{ Foo = 1 }, 'call-1' | Invoke-MgKeepCommunicationCallAlive -ErrorAction Stop } | Should -Throw 'InputObject has null value for InputObject.CallId'
            (Get-EmulatorRequest).Count | Should -Be 0
        }
    }
}

Describe 'Errors from Graph' {
    BeforeAll {
        New-EmulatorCall 'ended-call', 'live-call'
        $null = Invoke-Emulator POST 'calls/ended-call/end'
    }
    BeforeEach {
        Clear-EmulatorRequest
        $null = Invoke-Emulator DELETE faults
    }

    Context 'an ended call (404)' {
        BeforeAll {
            $failure = $null
            $output = @(Invoke-MgKeepCommunicationCallAlive -CallId ended-call -PassThru -ErrorVariable failure -ErrorAction SilentlyContinue)
            $record = $failure[0]
        }

        It 'is one non-terminating error and no output' {
            # -ErrorVariable sets the variable even when no error is written: a list, here of one.
            , $failure | Should -BeOfType ([System.Collections.ArrayList])
            $failure.Count | Should -Be 1
            $output.Count | Should -Be 0
        }

        It 'has Microsoft''s id, category and activity, and the call id as target' {
            $record.FullyQualifiedErrorId | Should -BeExactly 'itemNotFound,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
            $record.CategoryInfo.Category | Should -Be 'InvalidOperation'
            $record.CategoryInfo.Activity | Should -Be 'Invoke-MgKeepCommunicationCallAlive_Keep'
            $record.CategoryInfo.Reason | Should -Be 'Exception'
            $record.TargetObject | Should -BeExactly 'ended-call'
        }

        It 'has the message "[code] : message"' {
            $record.Exception.Message | Should -BeExactly "[itemNotFound] : Call 'ended-call' was not found or has ended."
        }

        It 'shows status, code, date and headers in ErrorDetails like the official cmdlet' {
            $details = $record.ErrorDetails.Message
            $details | Should -BeLike "Call 'ended-call' was not found or has ended.*"
            $details | Should -Match '(?m)^Status: 404 \(NotFound\)$'
            $details | Should -Match '(?m)^ErrorCode: itemNotFound$'
            $details | Should -Match '(?m)^Date: \S+'
            $details | Should -Match '(?m)^Headers:$'
            $details | Should -Match '(?m)^request-id\s+: [0-9a-f-]{36}$'
            $details | Should -Match '(?m)^Date\s+: \w{3}, '    # .NET's name for the date header
            $details | Should -Not -Match '(?m)^(RequestId|ClientRequestId|Attempts): '
            $record.ErrorDetails.RecommendedAction | Should -BeExactly 'See service error codes: https://learn.microsoft.com/graph/errors'
        }

        It 'exposes the structured fields as exception properties' {
            $exception = $record.Exception
            $exception.StatusCode | Should -Be ([System.Net.HttpStatusCode]::NotFound)
            [int]$exception.StatusCode | Should -Be 404
            $exception.ErrorCode | Should -Be 'itemNotFound'
            $exception.GraphMessage | Should -Be "Call 'ended-call' was not found or has ended."
            $exception.RequestId | Should -Match '^[0-9a-f-]{36}$'
            $exception.ClientRequestId | Should -Match '^[0-9a-f-]{36}$'
            $exception.Date | Should -Not -BeNullOrEmpty
            $exception.CallId | Should -Be 'ended-call'
            $exception.ResponseHeaders['Request-Id'] | Should -Not -BeNullOrEmpty
        }

        It 'keeps the structured fields when caught with -ErrorAction Stop' {
            try {
                Invoke-MgKeepCommunicationCallAlive -CallId ended-call -ErrorAction Stop
                throw 'no error'
            } catch {
                $_.Exception.StatusCode | Should -Be 404
                $_.Exception.ErrorCode | Should -Be 'itemNotFound'
                $_.CategoryInfo.Category | Should -Be 'InvalidOperation'
                $_.FullyQualifiedErrorId | Should -BeExactly 'itemNotFound,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
            }
        }

        It 'sends exactly one request (a 404 is never retried)' {
            Invoke-MgKeepCommunicationCallAlive -CallId ended-call -ErrorAction SilentlyContinue
            (Get-EmulatorRequest).Count | Should -Be 1
        }

        It 'has the identity object as target for identity input' {
            $identity = [pscustomobject]@{ Id = 'ended-call' }
            $identity | Invoke-MgKeepCommunicationCallAlive -ErrorVariable failure -ErrorAction SilentlyContinue
            $failure[0].TargetObject | Should -Be $identity
        }
    }

    It 'gives HTTP <Status> Microsoft''s record: category InvalidOperation, ErrorId <Code>' -TestCases @(
        @{ Status = 400; Code = 'BadRequest' }
        @{ Status = 401; Code = 'InvalidAuthenticationToken' }
        @{ Status = 403; Code = 'Forbidden' }
        @{ Status = 409; Code = 'Conflict' }
        @{ Status = 418; Code = 'UnknownError' }
        @{ Status = 429; Code = 'TooManyRequests' }
        @{ Status = 500; Code = 'InternalServerError' }
        @{ Status = 503; Code = 'ServiceUnavailable' }
    ) {
        param($Status, $Code)
        $null = Invoke-Emulator POST faults @{ callId = 'live-call'; count = 20; responses = @(@{ status = $Status; headers = @{ 'Retry-After' = '0' } }) }
        Invoke-MgKeepCommunicationCallAlive -CallId live-call -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure.Count | Should -Be 1
        $failure[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        $failure[0].FullyQualifiedErrorId | Should -BeExactly "$Code,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep"
        [int]$failure[0].Exception.StatusCode | Should -Be $Status
        $failure[0].ErrorDetails.Message | Should -Match "(?m)^Status: $Status "
    }

    It 'reports a non-JSON (HTML) error body as UnknownError with the raw text' {
        $null = Invoke-Emulator POST faults @{ callId = 'live-call'; responses = @(@{ status = 502; body = '<html>bad gateway</html>'; contentType = 'text/html' }) }
        Invoke-MgKeepCommunicationCallAlive -CallId live-call -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure[0].FullyQualifiedErrorId | Should -BeExactly 'UnknownError,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        $failure[0].Exception.Message | Should -BeLike '`[UnknownError`] : *bad gateway*'
    }

    It 'reports a dropped connection as ConnectionError' {
        $null = Invoke-Emulator POST faults @{ callId = 'live-call'; count = 20; responses = @(@{ drop = $true }) }
        Invoke-MgKeepCommunicationCallAlive -CallId live-call -ErrorVariable failure -ErrorAction SilentlyContinue
        $failure.Count | Should -Be 1
        $failure[0].CategoryInfo.Category | Should -Be 'ConnectionError'
        $failure[0].FullyQualifiedErrorId | Should -BeExactly 'TransportError,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
    }

    It 'reports the client timeout as OperationTimeout' {
        try {
            Connect-MgGraph -AccessToken (ConvertTo-SecureString 'test-token' -AsPlainText -Force) -Environment Emulator -ClientTimeout 1 -NoWelcome
            $null = Invoke-Emulator POST faults @{ callId = 'live-call'; responses = @(@{ status = 200; delayMs = 4000 }) }
            Invoke-MgKeepCommunicationCallAlive -CallId live-call -ErrorVariable failure -ErrorAction SilentlyContinue
            $failure.Count | Should -Be 1
            $failure[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
            $failure[0].FullyQualifiedErrorId | Should -BeExactly 'Timeout,Microsoft.Graph.PowerShell.Cmdlets.InvokeMgKeepCommunicationCallAlive_Keep'
        } finally {
            # -ClientTimeout set the process-wide request context: back to the default.
            $null = Set-MgRequestContext -ClientTimeout 300
            Connect-TestGraph
        }
    }
}

Describe '-ResponseHeadersVariable' {
    BeforeAll {
        New-EmulatorCall 'rhv-call'
    }

    It 'sets the variable in the caller''s scope on success' {
        Clear-EmulatorRequest
        Invoke-MgKeepCommunicationCallAlive -CallId rhv-call -ResponseHeadersVariable headers
        Assert-KeepAliveSent rhv-call
        $headers | Should -BeOfType ([System.Collections.Generic.Dictionary[string, string[]]])
        $headers['request-id'][0] | Should -Match '^[0-9a-f-]{36}$'
        $headers['REQUEST-ID'] | Should -Be $headers['request-id']
        $headers['Date'] | Should -Not -BeNullOrEmpty
    }

    It 'sets the variable on failure too (alias RHV)' {
        Invoke-MgKeepCommunicationCallAlive -CallId unknown-call -RHV failedHeaders -ErrorAction SilentlyContinue
        $failedHeaders['request-id'] | Should -Not -BeNullOrEmpty
        $failedHeaders['content-type'][0] | Should -BeLike 'application/json*'
    }

    It 'sets it in the calling function''s scope, not globally' {
        function Invoke-Inner {
            Invoke-MgKeepCommunicationCallAlive -CallId rhv-call -ResponseHeadersVariable innerHeaders
            $innerHeaders
        }
        $result = Invoke-Inner
        $result['client-request-id'] | Should -Not -BeNullOrEmpty
        Get-Variable innerHeaders -Scope Global -ErrorAction Ignore | Should -BeNullOrEmpty
        Get-Variable innerHeaders -ErrorAction Ignore | Should -BeNullOrEmpty
    }

    It 'is an empty dictionary when no response came (invalid call id)' {
        Remove-Variable noHeaders -ErrorAction Ignore
        Invoke-MgKeepCommunicationCallAlive -CallId '..' -RHV noHeaders -ErrorAction SilentlyContinue
        Get-Variable noHeaders -Scope 0 -ErrorAction Ignore | Should -Not -BeNullOrEmpty -Because 'the variable is set even without a response'
        , $noHeaders | Should -BeOfType ([System.Collections.Generic.Dictionary[string, string[]]])
        $noHeaders.Count | Should -Be 0
    }

    It 'is not set under -WhatIf' {
        $whatIfHeaders = 'untouched'
        Invoke-MgKeepCommunicationCallAlive -CallId rhv-call -RHV whatIfHeaders -WhatIf
        $whatIfHeaders | Should -Be 'untouched'
    }
}

Describe 'Streams' {
    BeforeAll {
        New-EmulatorCall 'stream-call'
    }

    It 'writes one verbose line per request with the call id, status and elapsed ms' {
        Clear-EmulatorRequest
        $verbose = Invoke-MgKeepCommunicationCallAlive -CallId stream-call -Confirm:$false -Verbose 4>&1 |
            Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'Keep alive call*' }
        @($verbose).Count | Should -Be 1
        $verbose.Message | Should -Match "^Keep alive call 'stream-call': 200 in \d+ ms$"
        Assert-KeepAliveSent stream-call
    }

    It 'never writes the token to any stream, even with -Verbose -Debug' {
        $secret = 'do-not-leak-7f3a9c'
        $text = & {
            Connect-MgGraph -AccessToken (ConvertTo-SecureString $secret -AsPlainText -Force) -Environment Emulator -Verbose -Debug
            Get-MgContext | Format-List * | Out-String
            Get-MgContext | ConvertTo-Json
            Invoke-MgKeepCommunicationCallAlive -CallId stream-call -PassThru -Verbose -Debug -RHV h
            $h | Out-String
            Invoke-MgKeepCommunicationCallAlive -CallId no-such-call -Verbose -Debug -ErrorAction Continue
            $Error[0] | Format-List * -Force | Out-String
            $Error[0].Exception | Format-List * -Force | Out-String
            Disconnect-MgGraph | Format-List * | Out-String
        } *>&1 | Out-String
        try {
            $text | Should -Not -BeNullOrEmpty
            $text | Should -Not -Match $secret
            $text | Should -Match 'Keep alive call'
        } finally {
            Connect-TestGraph
        }
    }
}

Describe 'Cancellation' {
    It 'stops a keep-alive the server is still holding when the pipeline is stopped (Ctrl+C)' {
        New-EmulatorCall 'slow-call'
        Clear-EmulatorRequest
        # The server holds the answer for 30 s: a Stop() that returns while the emulator has not
        # answered yet did not wait for the request (Reliability.Tests.ps1 also shows the
        # connection is dropped and nothing is retried).
        $null = Invoke-Emulator POST faults @{ callId = 'slow-call'; responses = @(@{ status = 200; delayMs = 30000 }) }
        $powershell = [powershell]::Create()
        try {
            # A second runspace in this process: imports the module again (the emitted interop
            # type and the connection are shared by the process).
            $null = $powershell.AddScript("Import-Module '$ManifestPath'; Invoke-MgKeepCommunicationCallAlive -CallId slow-call -PassThru")
            $async = $powershell.BeginInvoke()
            Wait-Until { (Get-EmulatorCallRequest slow-call).Count -ge 1 } | Should -BeTrue -Because 'the keep-alive reached the server'
            $async.IsCompleted | Should -BeFalse
            $powershell.Stop()
            $powershell.InvocationStateInfo.State | Should -Be 'Stopped'
            $requests = Get-EmulatorCallRequest slow-call
            $requests.Count | Should -Be 1
            $requests[0].status | Should -BeNullOrEmpty -Because 'Stop() returned before the server answered'
        } finally {
            $powershell.Dispose()
            $null = Invoke-Emulator DELETE faults
        }
    }

    It 'works from ForEach-Object -Parallel runspaces' {
        New-EmulatorCall 'par-1', 'par-2', 'par-3', 'par-4'
        Clear-EmulatorRequest
        $manifest = $ManifestPath
        $results = 'par-1', 'par-2', 'par-3', 'par-4' | ForEach-Object -ThrottleLimit 4 -Parallel {
            Import-Module $using:manifest
            Invoke-MgKeepCommunicationCallAlive -CallId $_ -PassThru
        }
        $results | Should -Be @($true, $true, $true, $true)
        foreach ($id in 'par-1', 'par-2', 'par-3', 'par-4') { Assert-KeepAliveSent $id }
    }
}
