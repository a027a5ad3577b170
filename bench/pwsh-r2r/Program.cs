// The entry point of pwsh itself (PowerShell's src/powershell/Program.cs, ManagedPSEntry.Main), less
// its check for a login shell (`pwsh -Login`), which the benchmark never uses. $PSHOME is the folder
// of System.Management.Automation.dll, i.e. the publish folder.
return Microsoft.PowerShell.UnmanagedPSEntry.Start(args, args.Length);
