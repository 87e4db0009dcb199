<#
.SYNOPSIS
Installs appproxy_exporter as a Windows service on an App Proxy connector host.

.DESCRIPTION
Copies appproxy_exporter.exe to "$env:ProgramFiles\appproxy_exporter", creates
"$env:ProgramData\appproxy_exporter\appproxy_exporter.yml" when there is none (an existing one is
kept), checks it, registers the event log source "appproxy_exporter" (Application log), creates
the service "appproxy_exporter" (automatic, delayed start, restarted on failure, running as
NT AUTHORITY\NetworkService or a gMSA), opens inbound TCP 9869 in Windows Firewall, and starts
the service. Running it again upgrades in place: the service is stopped, re-created with the
new settings, and started; the configuration file is left as it is.

The service account needs no administrative rights: it reads the connector's .exe.config files
(readable by Users), the registry under HKLM\SOFTWARE, and the state of the WAPCSvc and
WAPCUpdaterSvc services, and opens sockets.

Requires Windows Server 2016 or newer and Windows PowerShell 5.1 (powershell.exe): the event
log cmdlets it uses are not in PowerShell 7.

.PARAMETER BinaryPath
The appproxy_exporter.exe to install. Default: the one beside this script.

.PARAMETER Port
The TCP port to serve on (all interfaces). Default: 9869.

.PARAMETER ScrapeFrom
The addresses allowed to connect to the port, as Windows Firewall accepts them (IP addresses,
subnets such as 10.1.2.0/24, ranges): your Prometheus servers. Default: any address.

.PARAMETER ServiceAccount
A group managed service account to run as, such as 'CONTOSO\appproxy-exp$'. It must be
installed on this host (Install-ADServiceAccount) and hold "Log on as a service".
Default: NT AUTHORITY\NetworkService.

.EXAMPLE
.\install.ps1 -ScrapeFrom 10.20.0.15, 10.20.0.16

Installs from the .exe beside the script; only the two Prometheus servers may scrape.

.EXAMPLE
.\install.ps1 -BinaryPath C:\Temp\appproxy_exporter.exe -ServiceAccount 'CONTOSO\appproxy-exp$'

.NOTES
Undo with uninstall.ps1; change the configuration with configure.ps1. See README.md.
#>
#Requires -Version 5.1
#Requires -PSEdition Desktop
#Requires -RunAsAdministrator
[CmdletBinding()]
param(
    [string]$BinaryPath = (Join-Path $PSScriptRoot 'appproxy_exporter.exe'),

    [ValidateRange(1, 65535)]
    [int]$Port = 9869,

    [string[]]$ScrapeFrom = @('Any'),

    [ValidatePattern('^[^\\]+\\[^\\]+\$$')]
    [string]$ServiceAccount
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'appproxy_exporter'
$DisplayName = 'App Proxy connector exporter'
$InstallDir = Join-Path $env:ProgramFiles 'appproxy_exporter'
$Exe = Join-Path $InstallDir 'appproxy_exporter.exe'
$DataDir = Join-Path $env:ProgramData 'appproxy_exporter'
$StateDir = Join-Path $DataDir 'state'
$ConfigFile = Join-Path $DataDir 'appproxy_exporter.yml'

# Runs a native program; throws with its output when it exits non-zero.
function Invoke-Native {
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @()
    )
    # Windows PowerShell turns a native program's stderr into terminating errors under 'Stop'.
    $ErrorActionPreference = 'Continue'
    $output = & $FilePath @ArgumentList 2>&1 | ForEach-Object { "$_" }
    if ($LASTEXITCODE -ne 0) {
        throw "$FilePath $($ArgumentList -join ' ') failed with exit code ${LASTEXITCODE}: $($output -join [Environment]::NewLine)"
    }
    $output
}

function Remove-ExporterService {
    $service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if ($null -eq $service) { return }
    if ($service.Status -ne 'Stopped') {
        Write-Host "Stopping the service $ServiceName"
        Stop-Service -Name $ServiceName -Force
        $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(30))
    }
    Invoke-Native sc.exe @('delete', $ServiceName) | Out-Null
    # The service is gone once every handle to it is closed (close the Services console).
    $deadline = (Get-Date).AddSeconds(30)
    while ($null -ne (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue)) {
        if ((Get-Date) -gt $deadline) {
            throw "The service $ServiceName is marked for deletion but still exists: close the Services console (services.msc) and Event Viewer, then run this script again."
        }
        Start-Sleep -Milliseconds 500
    }
}

$BinaryPath = (Resolve-Path -LiteralPath $BinaryPath).ProviderPath
if ($ScrapeFrom.Count -eq 0) { $ScrapeFrom = @('Any') }

# --- the binary ------------------------------------------------------------------------------
# An installed service keeps its .exe open: stop and remove it first (re-created below).
Remove-ExporterService
New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
if ($BinaryPath -ne $Exe) {
    Copy-Item -LiteralPath $BinaryPath -Destination $Exe -Force
}
Write-Host "Installed $Exe ($((Invoke-Native $Exe @('--version')) -join ' '))"

# --- the configuration -----------------------------------------------------------------------
New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
if (-not (Test-Path -LiteralPath $ConfigFile)) {
    $config = @'
# appproxy_exporter configuration. Every key is optional; unknown keys are errors.
# Every key and its default: README.md, "Configuration" (forward proxy: docs/proxy.md).
# Edit it with configure.ps1 -Edit, which checks it before restarting the service, or check it
# by hand:  & "C:\Program Files\appproxy_exporter\appproxy_exporter.exe" check-config --config.file=<this file>
#
# Microsoft Graph (connector groups and apps) and a static inventory are configured under
# "inventory:". Keep secrets (client_secret_file) and the device-code token cache
# (token_cache_file) in C:\ProgramData\appproxy_exporter\state\, which the service may write.

connector:
  machine_name: auto   # this host's name
  groups: auto         # the connector groups this host serves
  proxy: auto          # read the connector's .exe.config, machine.config and WinHTTP
'@
    # UTF-8 without a byte order mark (Windows PowerShell's Set-Content -Encoding UTF8 adds one).
    [System.IO.File]::WriteAllText($ConfigFile, $config.Replace("`r`n", "`n").Replace("`n", "`r`n"), (New-Object System.Text.UTF8Encoding $false))
    Write-Host "Created $ConfigFile"
} else {
    Write-Host "Kept the existing $ConfigFile"
}
Invoke-Native $Exe @('check-config', "--config.file=$ConfigFile") | Write-Host

# --- the event log source --------------------------------------------------------------------
if (-not [System.Diagnostics.EventLog]::SourceExists($ServiceName)) {
    New-EventLog -LogName Application -Source $ServiceName
    Write-Host "Registered the event log source $ServiceName (Application log)"
}

# --- the service -----------------------------------------------------------------------------
# Global flags go before the subcommand.
$binPath = "`"$Exe`" --web.listen-address=:$Port service --config.file=`"$ConfigFile`""
if ($ServiceAccount) {
    $account = $ServiceAccount
} else {
    $account = 'NT AUTHORITY\NetworkService'
}
New-Service -Name $ServiceName -BinaryPathName $binPath -DisplayName $DisplayName `
    -Description "Prometheus exporter: walks the App Proxy connector troubleshooting flowchart from this host. Metrics and the live flowchart on http://localhost:$Port/" `
    -StartupType Automatic | Out-Null
# The account, set before the first start. The Service Control Manager wants an empty password
# for NetworkService and none at all (NULL: the argument left out) for a gMSA.
$change = @{ StartName = $account }
if (-not $ServiceAccount) { $change.StartPassword = '' }
$result = Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceName'" |
    Invoke-CimMethod -MethodName Change -Arguments $change
if ($result.ReturnValue -ne 0) {
    throw "Could not make the service run as ${account}: Win32_Service.Change returned $($result.ReturnValue) (22: the account is unknown here or may not log on as a service)."
}
Invoke-Native sc.exe @('config', $ServiceName, 'start=', 'delayed-auto') | Out-Null
# Restart after 10 s, 10 s, then 60 s; forget failures after a day. failureflag 1: also when the
# service stops with an error exit code, not only when the process dies.
Invoke-Native sc.exe @('failure', $ServiceName, 'reset=', '86400', 'actions=', 'restart/10000/restart/10000/restart/60000') | Out-Null
Invoke-Native sc.exe @('failureflag', $ServiceName, '1') | Out-Null
# Give the service its own SID (NT SERVICE\appproxy_exporter), so files can be granted to this
# service alone rather than to every service running as NetworkService.
Invoke-Native sc.exe @('sidtype', $ServiceName, 'unrestricted') | Out-Null
Write-Host "Created the service $ServiceName running as $account"

# The data directory: administrators and SYSTEM in full, the service may read it, and write
# only in state\ (the Graph token cache is rewritten when the refresh token rotates).
# SIDs, not names: account names are translated on non-English Windows.
Invoke-Native icacls.exe @($DataDir, '/inheritance:r', '/grant:r',
    '*S-1-5-32-544:(OI)(CI)F', '*S-1-5-18:(OI)(CI)F', "NT SERVICE\${ServiceName}:(OI)(CI)RX") | Out-Null
Invoke-Native icacls.exe @($StateDir, '/grant', "NT SERVICE\${ServiceName}:(OI)(CI)M") | Out-Null

# --- the firewall ----------------------------------------------------------------------------
Get-NetFirewallRule -Name $ServiceName -ErrorAction SilentlyContinue | Remove-NetFirewallRule
New-NetFirewallRule -Name $ServiceName -DisplayName "$DisplayName (TCP $Port)" `
    -Description 'Prometheus scrapes appproxy_exporter' `
    -Direction Inbound -Action Allow -Protocol TCP -LocalPort $Port `
    -Program $Exe -RemoteAddress $ScrapeFrom -Profile Any | Out-Null
Write-Host "Allowed inbound TCP $Port from $($ScrapeFrom -join ', ')"

# --- start -----------------------------------------------------------------------------------
try {
    Start-Service -Name $ServiceName
    (Get-Service -Name $ServiceName).WaitForStatus('Running', [TimeSpan]::FromSeconds(30))
} catch {
    throw "The service $ServiceName did not start ($($_.Exception.Message)): the Application event log, source $ServiceName, says why."
}
Write-Host "The service $ServiceName is running: http://localhost:$Port/ (metrics: /metrics)"
