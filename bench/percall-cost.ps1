#Requires -Version 7.4
<#
.SYNOPSIS
    Where a warm single keep-alive's time goes: binding an empty advanced function with the cmdlet's
    param block, the begin block (Initialize-MgkaKeepAlive), the keep-alive itself
    (Invoke-MgkaSingleKeepAlive: the native round trip and its result), a piped item, the whole cmdlet and
    Invoke-RestMethod. Medians of 2,000.
      bash bench/pwsh-bench.sh percall-cost.ps1
#>
param([Parameter(Mandatory)][string] $EmulatorUrl)
$m = Import-Module (Join-Path $PSScriptRoot ".." "pwsh" "MgKeepAlive") -Force -PassThru
$null = Add-MgEnvironment -Name Bench -AzureADEndpoint $EmulatorUrl -GraphEndpoint $EmulatorUrl
Connect-MgGraph -AccessToken (ConvertTo-SecureString 'bench-token' -AsPlainText -Force) -Environment Bench -NoWelcome
function Test-Empty {
    [CmdletBinding(DefaultParameterSetName = 'Keep', SupportsShouldProcess, ConfirmImpact = 'Medium', PositionalBinding = $false)]
    [OutputType([bool])]
    param([Parameter(Mandatory, ParameterSetName = 'Keep')][string] $CallId,
        [Parameter(Mandatory, ParameterSetName = 'KeepViaIdentity', ValueFromPipeline)][object] $InputObject,
        [switch] $PassThru, [System.Collections.IDictionary] $Headers, [Alias('RHV')][string] $ResponseHeadersVariable,
        [Parameter(DontShow)][switch] $Break, [Parameter(DontShow)][object[]] $HttpPipelineAppend, [Parameter(DontShow)][object[]] $HttpPipelinePrepend,
        [Parameter(DontShow)][uri] $Proxy, [Parameter(DontShow)][pscredential] $ProxyCredential, [Parameter(DontShow)][switch] $ProxyUseDefaultCredentials)
    begin { } process { }
}
$ids = (Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls" -ContentType application/json -Body '{"count":4000}').ids
$tick = 1000.0 / [Diagnostics.Stopwatch]::Frequency
function Med($a) { $s = [double[]]$a; [array]::Sort($s); $s[[int]($s.Length/2)] }
$e = [double[]]::new(2000); $c = [double[]]::new(2000); $x=[double[]]::new(2000)
for ($i=0; $i -lt 2000; $i++) {
  $t=[Diagnostics.Stopwatch]::GetTimestamp(); $null = Test-Empty -CallId $ids[$i]; $e[$i]=([Diagnostics.Stopwatch]::GetTimestamp()-$t)*$tick
  $t=[Diagnostics.Stopwatch]::GetTimestamp(); $null = Invoke-MgKeepCommunicationCallAlive -CallId $ids[$i]; $c[$i]=([Diagnostics.Stopwatch]::GetTimestamp()-$t)*$tick
  $t=[Diagnostics.Stopwatch]::GetTimestamp(); $null = Invoke-RestMethod -Method Post -Uri "$EmulatorUrl/v1.0/communications/calls/$($ids[$i+2000])/keepAlive" -Headers @{Authorization='Bearer x'}; $x[$i]=([Diagnostics.Stopwatch]::GetTimestamp()-$t)*$tick
}
'empty advanced function with the same param block: {0:N3} ms; cmdlet {1:N3} ms; IRM {2:N3} ms' -f (Med $e), (Med $c), (Med $x)
$t = [Diagnostics.Stopwatch]::StartNew(); $null = $ids[0..1999] | Test-Empty; 'empty function, 2000 piped: {0:N3} ms/item' -f ($t.Elapsed.TotalMilliseconds/2000)
$t = [Diagnostics.Stopwatch]::StartNew(); $null = $ids[2000..3999] | Invoke-MgKeepCommunicationCallAlive; 'cmdlet, 2000 piped: {0:N3} ms/item' -f ($t.Elapsed.TotalMilliseconds/2000)
& $m {
  function Probe { [CmdletBinding()] param() $PSCmdlet }
  $c = Probe
  $tick = 1000.0 / [Diagnostics.Stopwatch]::Frequency
  $state = Initialize-MgkaKeepAlive -Cmdlet $c -ApiVersion 'v1.0'
  $calls = (Invoke-RestMethod -Method Post "$EmulatorUrl/_emulator/calls" -ContentType application/json -Body '{"count":2000}').ids
  foreach ($name in 'Initialize', 'SingleKeepAlive') {
    $a = [double[]]::new(2000)
    for ($i=0; $i -lt 2000; $i++) {
      $t=[Diagnostics.Stopwatch]::GetTimestamp()
      if ($name -eq 'Initialize') { $null = Initialize-MgkaKeepAlive -Cmdlet $c -ApiVersion 'v1.0' }
      else { Invoke-MgkaSingleKeepAlive -State $state -By Id -Value $calls[$i] -DisplayId $calls[$i] -Target $calls[$i] }
      $a[$i]=([Diagnostics.Stopwatch]::GetTimestamp()-$t)*$tick
    }
    [array]::Sort($a); '{0,-16} median {1:N3} ms' -f $name, $a[1000]
  }
}
