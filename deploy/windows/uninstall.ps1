<#
.SYNOPSIS
Removes appproxy_exporter: the service, its firewall rule, its event log source and its binary.

.DESCRIPTION
Stops and deletes the service "appproxy_exporter", removes the firewall rule and the event log
source "appproxy_exporter" (events already written stay in the Application log, shown without
their text), and deletes "$env:ProgramFiles\appproxy_exporter". The configuration and state in
"$env:ProgramData\appproxy_exporter" are kept unless -RemoveData is given. Each part that is
already gone is skipped, so it can be run again.

.PARAMETER RemoveData
Also delete "$env:ProgramData\appproxy_exporter" (the configuration, and any Graph secret or
token cache kept there).

.EXAMPLE
.\uninstall.ps1

.EXAMPLE
.\uninstall.ps1 -RemoveData
#>
#Requires -Version 5.1
#Requires -PSEdition Desktop
#Requires -RunAsAdministrator
[CmdletBinding()]
param(
    [switch]$RemoveData
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'appproxy_exporter'
$InstallDir = Join-Path $env:ProgramFiles 'appproxy_exporter'
$DataDir = Join-Path $env:ProgramData 'appproxy_exporter'

$service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
if ($null -ne $service) {
    if ($service.Status -ne 'Stopped') {
        Stop-Service -Name $ServiceName -Force
        $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(30))
    }
    # Windows PowerShell turns a native program's stderr into terminating errors under 'Stop'.
    $ErrorActionPreference = 'Continue'
    $output = & sc.exe delete $ServiceName 2>&1 | ForEach-Object { "$_" }
    $ErrorActionPreference = 'Stop'
    if ($LASTEXITCODE -ne 0) {
        throw "sc.exe delete $ServiceName failed with exit code ${LASTEXITCODE}: $($output -join ' ')"
    }
    $deadline = (Get-Date).AddSeconds(30)
    while ($null -ne (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue)) {
        if ((Get-Date) -gt $deadline) {
            Write-Warning "The service $ServiceName is marked for deletion and goes once the Services console (services.msc) and Event Viewer are closed."
            break
        }
        Start-Sleep -Milliseconds 500
    }
    Write-Host "Removed the service $ServiceName"
}

$rule = Get-NetFirewallRule -Name $ServiceName -ErrorAction SilentlyContinue
if ($null -ne $rule) {
    $rule | Remove-NetFirewallRule
    Write-Host "Removed the firewall rule $ServiceName"
}

if ([System.Diagnostics.EventLog]::SourceExists($ServiceName)) {
    Remove-EventLog -Source $ServiceName
    Write-Host "Removed the event log source $ServiceName"
}

if (Test-Path -LiteralPath $InstallDir) {
    Remove-Item -LiteralPath $InstallDir -Recurse -Force
    Write-Host "Removed $InstallDir"
}

if ($RemoveData) {
    if (Test-Path -LiteralPath $DataDir) {
        Remove-Item -LiteralPath $DataDir -Recurse -Force
        Write-Host "Removed $DataDir"
    }
} elseif (Test-Path -LiteralPath $DataDir) {
    Write-Host "Kept $DataDir (its configuration); -RemoveData deletes it"
}
