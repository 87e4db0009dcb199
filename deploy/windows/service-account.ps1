<#
.SYNOPSIS
After the MSI: locks the configuration folder to the exporter's service, and optionally runs
the service as a group managed service account (gMSA).

.DESCRIPTION
The MSI installs the service as NT AUTHORITY\NetworkService and leaves
"$env:ProgramData\appproxy_exporter" with the permissions it inherits (the Users group may read
it). Before you keep a Graph client secret or a token cache there, run this script once (and
again after an uninstall and reinstall; with -ServiceAccount, after every run of the MSI, which
creates the service anew as NetworkService): it gives the service its own SID
(NT SERVICE\appproxy_exporter), limits the folder to Administrators, SYSTEM and that SID (read),
with a "state" subfolder it may write (the event log bookmarks, and token_cache_file if
you use one), and restarts the service.

wixl, which builds the MSI, cannot set permissions, which is why this is a script (the MSI sets
the service SID type too, with sc.exe, so a later run of the MSI keeps the folder readable).
It has NOT been run where the project is built and tested (there is no Windows or PowerShell
there): read it before you run it.

.PARAMETER ServiceAccount
Run the service as this gMSA (for example 'CONTOSO\appproxy-exp$') instead of NetworkService.
The account must be installed on the host (Install-ADServiceAccount) and hold the "Log on as a
service" right.

.EXAMPLE
.\service-account.ps1

.EXAMPLE
.\service-account.ps1 -ServiceAccount 'CONTOSO\appproxy-exp$'
#>
#Requires -RunAsAdministrator
param([string]$ServiceAccount)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$Name = 'appproxy_exporter'
$Data = Join-Path $env:ProgramData $Name
$State = Join-Path $Data 'state'

function Invoke-Native {
    param([string]$File, [string[]]$Arguments)
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$File $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

Get-Service -Name $Name | Out-Null   # fails when the MSI is not installed
Invoke-Native sc.exe @('sidtype', $Name, 'unrestricted')
if ($ServiceAccount) {
    # A gMSA has no password: sc.exe takes an empty one.
    Invoke-Native sc.exe @('config', $Name, 'obj=', $ServiceAccount, 'password=', '')
}
New-Item -ItemType Directory -Force -Path $State | Out-Null
$reader = if ($ServiceAccount) { $ServiceAccount } else { "NT SERVICE\$Name" }
Invoke-Native icacls.exe @($Data, '/inheritance:r', '/grant:r',
    '*S-1-5-32-544:(OI)(CI)F', '*S-1-5-18:(OI)(CI)F', "${reader}:(OI)(CI)RX")
Invoke-Native icacls.exe @($State, '/grant:r', "${reader}:(OI)(CI)M")
Restart-Service -Name $Name
Write-Host "$Data is now readable by Administrators, SYSTEM and $reader only; $State is writable by $reader."
