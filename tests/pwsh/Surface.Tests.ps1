#Requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.5.0' }
# MgKeepAlive's observable surface against Microsoft's own modules (2.38.1, from ../shared/peers):
# the parameter metadata of every command both define, Get-MgContext, the welcome of
# Connect-MgGraph, and the error records of the keep-alive. SurfaceProbe.ps1 records each module
# in a fresh pwsh against the emulator; this file compares. Every deliberate difference is in
# $Deliberate below, and the README lists them ("Deliberate differences"). Without
# ../shared/peers (a user's clone) every test here is skipped, saying why.

BeforeDiscovery {
    $SharedCommands = @('Connect-MgGraph', 'Disconnect-MgGraph', 'Get-MgContext', 'Get-MgEnvironment', 'Add-MgEnvironment',
        'Set-MgEnvironment', 'Remove-MgEnvironment', 'Get-MgRequestContext', 'Set-MgRequestContext',
        'Invoke-MgKeepCommunicationCallAlive', 'Invoke-MgBetaKeepCommunicationCallAlive') | ForEach-Object { @{ Name = $_ } }
}

BeforeAll {
    . $PSScriptRoot/TestHelpers.ps1
    $PeersTarball = [System.IO.Path]::GetFullPath((Join-Path $RepoRoot '..' 'shared' 'peers' 'microsoft-graph-powershell-2.38.1.tar.gz'))
    $SkipReason = "Microsoft's modules are not at $PeersTarball (a clone without ../shared/peers): there is nothing to compare with."

    # The deliberate differences, as "<command> -<parameter> <aspect>" = why. The README's
    # "Deliberate differences" lists the same. Anything else that differs fails a test.
    $Deliberate = [ordered]@{
        'Connect-MgGraph -CertificatePath added'                           = 'MgKeepAlive extension: a PFX or PEM file, for hosts without a certificate store'
        'Connect-MgGraph -CertificatePassword added'                       = 'MgKeepAlive extension: the password of -CertificatePath'
        'Connect-MgGraph -ContextScope type'                               = 'a string limited to Process and CurrentUser (Microsoft''s enum type is compiled; MgKeepAlive has no C#)'
        'Invoke-MgKeepCommunicationCallAlive -InputObject type'            = 'any object: also call id strings, objects with only Id, JSON identities'
        'Invoke-MgKeepCommunicationCallAlive -HttpPipelineAppend type'     = 'object[]: Microsoft''s SendAsyncStep is a compiled delegate type; not supported (a warning says so)'
        'Invoke-MgKeepCommunicationCallAlive -HttpPipelinePrepend type'    = 'object[]: as -HttpPipelineAppend'
        'Invoke-MgKeepCommunicationCallAlive -Headers pipeline'            = 'no pipeline input: Microsoft''s binds a piped hashtable identity to -Headers as well and sends its keys (CallId) as HTTP headers'
        'Invoke-MgKeepCommunicationCallAlive -ThrottleLimit added'         = 'MgKeepAlive extension: how many piped keep-alives are in flight'
        'Invoke-MgBetaKeepCommunicationCallAlive -InputObject type'        = 'as Invoke-MgKeepCommunicationCallAlive'
        'Invoke-MgBetaKeepCommunicationCallAlive -HttpPipelineAppend type' = 'as Invoke-MgKeepCommunicationCallAlive'
        'Invoke-MgBetaKeepCommunicationCallAlive -HttpPipelinePrepend type' = 'as Invoke-MgKeepCommunicationCallAlive'
        'Invoke-MgBetaKeepCommunicationCallAlive -Headers pipeline'        = 'as Invoke-MgKeepCommunicationCallAlive'
        'Invoke-MgBetaKeepCommunicationCallAlive -ThrottleLimit added'     = 'as Invoke-MgKeepCommunicationCallAlive'
    }

    function Compare-CommandSurface {
        # The differences between Microsoft's and MgKeepAlive's metadata of one command, as
        # "<command> -<parameter> <aspect>" lines with both values.
        param([string] $Name, $Theirs, $Ours)
        $label = $Name
        $differences = [System.Collections.Generic.List[string]]::new()
        foreach ($aspect in 'DefaultParameterSet', 'WhatIf') {
            if ("$($Theirs.$aspect)" -ne "$($Ours.$aspect)") { $differences.Add("$label $aspect : Microsoft '$($Theirs.$aspect)', MgKeepAlive '$($Ours.$aspect)'") }
        }
        if (($Theirs.ParameterSets -join ',') -ne ($Ours.ParameterSets -join ',')) {
            $differences.Add("$label parameter sets : Microsoft '$($Theirs.ParameterSets -join ',')', MgKeepAlive '$($Ours.ParameterSets -join ',')'")
        }
        $theirNames = @($Theirs.Parameters.PSObject.Properties.Name)
        $ourNames = @($Ours.Parameters.PSObject.Properties.Name)
        foreach ($parameter in $theirNames) {
            if ($parameter -notin $ourNames) { $differences.Add("$label -$parameter missing"); continue }
            $their = $Theirs.Parameters.$parameter
            $our = $Ours.Parameters.$parameter
            if ($their.Type -ne $our.Type) { $differences.Add("$label -$parameter type : Microsoft '$($their.Type)', MgKeepAlive '$($our.Type)'") }
            if (($their.Aliases -join ',') -ne ($our.Aliases -join ',')) { $differences.Add("$label -$parameter aliases : Microsoft '$($their.Aliases -join ',')', MgKeepAlive '$($our.Aliases -join ',')'") }
            $theirSets = @($their.Sets.PSObject.Properties.Name | Sort-Object)
            $ourSets = @($our.Sets.PSObject.Properties.Name | Sort-Object)
            if (($theirSets -join ',') -ne ($ourSets -join ',')) { $differences.Add("$label -$parameter sets : Microsoft '$($theirSets -join ',')', MgKeepAlive '$($ourSets -join ',')'"); continue }
            foreach ($set in $theirSets) {
                foreach ($field in 'Mandatory', 'Position', 'ValueFromPipelineByPropertyName', 'ValueFromRemainingArguments', 'DontShow') {
                    $a = $their.Sets.$set.$field; $b = $our.Sets.$set.$field
                    if ("$a" -ne "$b") { $differences.Add("$label -$parameter [$set] $field : Microsoft '$a', MgKeepAlive '$b'") }
                }
                if ("$($their.Sets.$set.ValueFromPipeline)" -ne "$($our.Sets.$set.ValueFromPipeline)") { $differences.Add("$label -$parameter pipeline : [$set] Microsoft '$($their.Sets.$set.ValueFromPipeline)', MgKeepAlive '$($our.Sets.$set.ValueFromPipeline)'") }
            }
        }
        foreach ($parameter in $ourNames) { if ($parameter -notin $theirNames) { $differences.Add("$label -$parameter added") } }
        $differences
    }

    function Test-Deliberate {
        # A difference line is deliberate when its "<command> -<parameter> <aspect>" key is listed.
        param([string] $Difference)
        foreach ($key in $Deliberate.Keys) { if ($Difference -eq $key -or $Difference.StartsWith("$key ")) { return $true } }
        $false
    }

    if (Test-Path -LiteralPath $PeersTarball) {
        $PeersDirectory = Join-Path ([System.IO.Path]::GetTempPath()) "mgkeepalive-peers-$PID-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $null = New-Item -ItemType Directory -Path $PeersDirectory
        tar xzf $PeersTarball -C $PeersDirectory
        if ($LASTEXITCODE -ne 0) { throw "tar could not extract $PeersTarball" }
        $Emulator = Start-TestEmulator
        $token = New-TestJwt -Claims ([ordered]@{ tid = '11111111-2222-3333-4444-555555555555'; appid = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'; app_displayname = 'Probe App'; roles = @('Calls.Initiate.All') })
        $probe = Join-Path $PSScriptRoot 'SurfaceProbe.ps1'
        $Probes = @{}
        foreach ($side in @(
                @{ Name = 'Microsoft'; Module = 'Microsoft.Graph.CloudCommunications'; Path = "$PeersDirectory$([System.IO.Path]::PathSeparator)$env:PSModulePath" }
                @{ Name = 'MgKeepAlive'; Module = $ManifestPath; Path = $env:PSModulePath })) {
            $outFile = Join-Path $PeersDirectory "$($side.Name).json"
            $command = "& '$probe' -Module '$($side.Module)' -Url '$($Emulator.Url)' -OutFile '$outFile' -Token '$token'"
            $run = Invoke-TestPwsh -Command $command -Environment @{ PSModulePath = $side.Path }
            if ($run.ExitCode -ne 0 -or -not (Test-Path $outFile)) { throw "The $($side.Name) probe failed ($($run.ExitCode)): $($run.Output)" }
            $Probes[$side.Name] = Get-Content -LiteralPath $outFile -Raw | ConvertFrom-Json
        }
        $Microsoft = $Probes['Microsoft']
        $Ours = $Probes['MgKeepAlive']
    }
}

AfterAll {
    if ($Emulator) { Stop-TestEmulator $Emulator }
    if ($PeersDirectory -and (Test-Path $PeersDirectory)) { Remove-Item -LiteralPath $PeersDirectory -Recurse -Force }
}

Describe 'Parameter metadata, compared with Microsoft''s 2.38.1' {
    It '<Name> has Microsoft''s parameters, sets, positions and pipeline binding, but for the listed deliberate differences' -ForEach $SharedCommands {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        # Microsoft's beta module is not among the peers: the beta command has v1.0's shape.
        $theirs = if ($Microsoft.Commands.$Name) { $Microsoft.Commands.$Name } else { $Microsoft.Commands.'Invoke-MgKeepCommunicationCallAlive' }
        $ours = $Ours.Commands.$Name
        $ours | Should -Not -BeNullOrEmpty -Because "MgKeepAlive defines $Name"
        $differences = @(Compare-CommandSurface -Name $Name -Theirs $theirs -Ours $ours)
        $unlisted = @($differences | Where-Object { -not (Test-Deliberate $_) })
        $unlisted | Should -BeNullOrEmpty -Because 'every difference from Microsoft''s must be deliberate and listed (README: Deliberate differences)'
    }

    It 'lists no deliberate difference that is not there any more' {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        $all = foreach ($name in $Ours.Commands.PSObject.Properties.Name) {
            $theirs = if ($Microsoft.Commands.$name) { $Microsoft.Commands.$name } else { $Microsoft.Commands.'Invoke-MgKeepCommunicationCallAlive' }
            Compare-CommandSurface -Name $name -Theirs $theirs -Ours $Ours.Commands.$name
        }
        $stale = @($Deliberate.Keys | Where-Object { $key = $_; -not ($all | Where-Object { $_ -eq $key -or $_.StartsWith("$key ") }) })
        $stale | Should -BeNullOrEmpty
    }

    It 'the README lists every deliberate difference' {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        $readme = Get-Content -LiteralPath (Join-Path $RepoRoot 'README.md') -Raw
        foreach ($key in $Deliberate.Keys) {
            $command, $parameter = $key.Split(' ')[0, 1]
            $readme | Should -Match ([regex]::Escape("``$parameter``")) -Because "README's Deliberate differences names $parameter ($key)"
        }
    }
}

Describe 'Get-MgContext and the welcome, compared with Microsoft''s' {
    It 'has the properties of Microsoft''s AuthContext in the same order' {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        @($Ours.ContextProperties | Select-Object -First $Microsoft.ContextProperties.Count) | Should -Be @($Microsoft.ContextProperties)
    }

    It 'formats exactly as Microsoft''s for the same access token (list and table)' {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        $Ours.ContextText | Should -BeExactly $Microsoft.ContextText
        $Ours.ContextTable | Should -BeExactly $Microsoft.ContextTable
    }

    It 'Connect-MgGraph writes Microsoft''s welcome, as one string on the output stream and nothing else' {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        @($Microsoft.WelcomeOutput).Count | Should -Be 1
        @($Ours.WelcomeOutput).Count | Should -Be 1
        $Ours.WelcomeOutput[0].Type | Should -Be $Microsoft.WelcomeOutput[0].Type
        $Ours.WelcomeOutput[0].Text | Should -BeExactly $Microsoft.WelcomeOutput[0].Text
        @($Ours.WelcomeInformation).Count | Should -Be @($Microsoft.WelcomeInformation).Count
    }
}

Describe 'Error records, compared with Microsoft''s' {
    BeforeAll {
        function Get-DetailsShape {
            # ErrorDetails without what differs from answer to answer (date, ids) and the header
            # order (the library keeps headers by name): the lines, and the header names sorted.
            param([string] $Details)
            $head, $headers = $Details -split '(?m)^Headers:\r?\n', 2
            @{
                Head    = $head -replace '(?m)^Date: .*$', 'Date: <date>'
                Headers = @($headers -split '\r?\n' | Where-Object { $_ -match '^\S' } | ForEach-Object { ($_ -split ':', 2)[0] } | Sort-Object)
            }
        }
    }

    It 'not connected: <Field> as Microsoft''s' -ForEach @(
        @{ Field = 'FullyQualifiedErrorId' }, @{ Field = 'Category' }, @{ Field = 'Activity' }, @{ Field = 'Reason' }, @{ Field = 'Message' }) {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        $Ours.NotConnected.$Field | Should -BeExactly $Microsoft.NotConnected.$Field
    }

    It 'Disconnect-MgGraph when not connected: <Field> as Microsoft''s' -ForEach @(
        @{ Field = 'FullyQualifiedErrorId' }, @{ Field = 'Category' }, @{ Field = 'Activity' }, @{ Field = 'Reason' }, @{ Field = 'Message' }) {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        $Ours.DisconnectNotConnected.$Field | Should -BeExactly $Microsoft.DisconnectNotConnected.$Field
    }

    It '404 by -CallId: <Field> as Microsoft''s' -ForEach @(
        @{ Field = 'FullyQualifiedErrorId' }, @{ Field = 'Category' }, @{ Field = 'Activity' }, @{ Field = 'Reason' },
        @{ Field = 'TargetName' }, @{ Field = 'TargetType' }, @{ Field = 'Message' }, @{ Field = 'IsException' },
        @{ Field = 'RecommendedAction' }, @{ Field = 'Caught' }) {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        $Ours.NotFoundById.$Field | Should -BeExactly $Microsoft.NotFoundById.$Field
    }

    # Not TargetName: Microsoft's also binds the piped hashtable to -Headers and names it there
    # ("{ Headers = System.Collections.Hashtable }"); see the deliberate "-Headers pipeline".
    It '404 by identity: <Field> as Microsoft''s' -ForEach @(
        @{ Field = 'FullyQualifiedErrorId' }, @{ Field = 'Category' }, @{ Field = 'Activity' }, @{ Field = 'Reason' },
        @{ Field = 'TargetType' }, @{ Field = 'Message' }, @{ Field = 'RecommendedAction' }) {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        $Ours.NotFoundByIdentity.$Field | Should -BeExactly $Microsoft.NotFoundByIdentity.$Field
    }

    It '404: ErrorDetails has Microsoft''s lines and the same response headers' {
        if (-not (Test-Path -LiteralPath $PeersTarball)) { Set-ItResult -Skipped -Because $SkipReason; return }
        $theirs = Get-DetailsShape $Microsoft.NotFoundById.Details
        $ours = Get-DetailsShape $Ours.NotFoundById.Details
        $ours.Head | Should -BeExactly $theirs.Head
        $ours.Headers | Should -Be $theirs.Headers
    }
}
