@{
    RootModule           = 'MgKeepAlive.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '6f0e3c52-7d4b-4a8e-9b1e-2c5d8a4f3e71'
    Author               = 'MgKeepAlive contributors'
    CompanyName          = 'MgKeepAlive'
    Copyright            = '(c) MgKeepAlive contributors. MIT License.'
    Description          = 'Keeps Microsoft Graph calls alive. A drop-in replacement for Invoke-MgKeepCommunicationCallAlive (Microsoft.Graph.CloudCommunications) backed by a small native library: imports in milliseconds, no .NET assembly conflicts.'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @('MgKeepAlive.Format.ps1xml')
    FunctionsToExport    = @(
        'Invoke-MgKeepCommunicationCallAlive'
        'Invoke-MgBetaKeepCommunicationCallAlive'
        'Connect-MgGraph'
        'Disconnect-MgGraph'
        'Get-MgContext'
        'Get-MgEnvironment'
        'Add-MgEnvironment'
        'Set-MgEnvironment'
        'Remove-MgEnvironment'
        'Start-MgCommunicationCallKeepAlive'
        'Get-MgCommunicationCallKeepAlive'
        'Stop-MgCommunicationCallKeepAlive'
        'Wait-MgCommunicationCallKeepAlive'
        'Set-MgRequestContext'
        'Get-MgRequestContext'
    )
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @('Connect-Graph', 'Disconnect-Graph')
    PrivateData          = @{
        PSData = @{
            Tags         = @('PSEdition_Core', 'Linux', 'MacOS', 'Windows', 'MicrosoftGraph', 'Graph', 'Teams', 'Calls', 'CloudCommunications', 'KeepAlive')
            ProjectUri   = 'https://github.com/mgkeepalive/MgKeepAlive'
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ReleaseNotes = '0.1.0: first release. Drop-in Invoke-MgKeepCommunicationCallAlive and Invoke-MgBetaKeepCommunicationCallAlive, app-only Connect-MgGraph (secret, certificate, managed identity, environment variables, access token), national clouds, Set-MgRequestContext retries and timeouts, concurrent keep-alive of piped calls, and a background keeper for many calls (Start-, Get-, Stop-, Wait-MgCommunicationCallKeepAlive).'
        }
    }
}
