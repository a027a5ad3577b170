# Get-MgContext's enums, with the names and values of Microsoft.Graph.PowerShell.Authentication's
# (typed values also format like Microsoft's in tables). Dot-sourced into the module's script
# scope by the first context built (ConvertTo-MgkaContext), which finds them in $script:ContextTypes:
# a type defined in a script is found by name only in that script.
enum AuthenticationType { Delegated = 0; AppOnly = 1; UserProvidedAccessToken = 2; ManagedIdentity = 3; EnvironmentVariable = 4 }
enum TokenCredentialType { InteractiveBrowser = 0; DeviceCode = 1; ClientCertificate = 2; UserProvidedAccessToken = 3; ManagedIdentity = 4; ClientSecret = 5; EnvironmentVariable = 6 }
enum ContextScope { Process = 0; CurrentUser = 1 }

$script:ContextTypes = @{ AuthType = [AuthenticationType]; TokenCredentialType = [TokenCredentialType]; ContextScope = [ContextScope] }
