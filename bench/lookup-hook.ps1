#Requires -Version 7.4
<#
.SYNOPSIS
    What MgKeepAlive's command-lookup hook costs each command a session runs.
.DESCRIPTION
    MgKeepAlive's first command installs a PostCommandLookupAction handler (it notices Microsoft's
    Graph modules; see MgKeepAlive.Private.ps1). PowerShell calls it on every command lookup of the
    runspace. This measures, in one process, a loop of calls to an empty function and to a
    cmdlet (Get-Date) with the handler installed and with it removed, alternating rounds so that
    background load hits both alike, and prints the minimum and median microseconds per call of
    each and the difference; and the one-time cost of the first command that installs it.
        pwsh -NoProfile -File bench/lookup-hook.ps1 [-Calls 5000] [-Rounds 9]
#>
param([int] $Calls = 5000, [int] $Rounds = 9)

$module = Join-Path $PSScriptRoot '..' 'pwsh' 'MgKeepAlive'
Import-Module $module
$first = Measure-Command { $null = Get-MgRequestContext }   # loads the helpers and installs the hook
$hook = $ExecutionContext.InvokeCommand.PostCommandLookupAction
if (-not $hook) { throw 'MgKeepAlive installed no command-lookup handler.' }
function Test-Empty { }

$times = [ordered]@{}
foreach ($case in 'function, hook', 'function, none', 'cmdlet, hook', 'cmdlet, none') { $times[$case] = [System.Collections.Generic.List[double]]::new() }
foreach ($round in 1..$Rounds) {
    foreach ($installed in $true, $false) {
        $ExecutionContext.InvokeCommand.PostCommandLookupAction = if ($installed) { $hook } else { $null }
        $suffix = if ($installed) { 'hook' } else { 'none' }
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        foreach ($i in 1..$Calls) { Test-Empty }
        $times["function, $suffix"].Add($watch.Elapsed.TotalMilliseconds * 1000 / $Calls)
        $watch.Restart()
        foreach ($i in 1..$Calls) { $null = Get-Date }
        $times["cmdlet, $suffix"].Add($watch.Elapsed.TotalMilliseconds * 1000 / $Calls)
    }
}
$ExecutionContext.InvokeCommand.PostCommandLookupAction = $hook

"first MgKeepAlive command (helpers, library, hook): {0:N1} ms" -f $first.TotalMilliseconds
foreach ($case in $times.Keys) {
    $sorted = @($times[$case] | Sort-Object)
    '{0,-16} min {1,7:N1} us/call   median {2,7:N1} us/call' -f $case, $sorted[0], $sorted[[int][Math]::Floor($sorted.Count / 2)]
}
foreach ($kind in 'function', 'cmdlet') {
    $with = @($times["$kind, hook"] | Sort-Object)[0]; $without = @($times["$kind, none"] | Sort-Object)[0]
    'hook cost per {0} call (difference of minima): {1:N1} us' -f $kind, ($with - $without)
}
