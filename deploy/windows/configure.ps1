<#
.SYNOPSIS
Changes appproxy_exporter's configuration safely: checks it, then restarts the service.

.DESCRIPTION
The service reads "$env:ProgramData\appproxy_exporter\appproxy_exporter.yml". This script
puts a new version in place only after "appproxy_exporter.exe check-config" accepts it, so a
mistake never reaches the running service, and then restarts the service.

  -Edit        opens a copy of the file in Notepad; when Notepad closes, the copy is checked and,
               when valid, replaces the file.
  -From FILE   checks FILE and, when valid, copies it over the file.
  (neither)    checks the file as it is and restarts the service (after editing it by hand).

An invalid file is reported with its line, column and key, and nothing changes. The file is
saved as UTF-8 (the exporter does not read UTF-16, which Windows PowerShell's ">" and Out-File
write).

.PARAMETER Edit
Edit a copy in Notepad, then check and apply it.

.PARAMETER From
A configuration file to check and install.

.PARAMETER NoRestart
Check and install, but do not restart the service.

.EXAMPLE
.\configure.ps1 -Edit

.EXAMPLE
.\configure.ps1 -From \\fileserver\monitoring\appproxy_exporter.yml

.EXAMPLE
.\configure.ps1

Checks the file after a manual edit and restarts the service.

.NOTES
The exporter also re-reads its file on POST http://localhost:9869/-/reload without a restart;
a file that does not load is refused there, and the running configuration stays.
#>
#Requires -Version 5.1
#Requires -RunAsAdministrator
[CmdletBinding(DefaultParameterSetName = 'Check')]
param(
    [Parameter(ParameterSetName = 'Edit')]
    [switch]$Edit,

    [Parameter(ParameterSetName = 'From', Mandatory)]
    [string]$From,

    [switch]$NoRestart
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'appproxy_exporter'
$Exe = Join-Path (Join-Path $env:ProgramFiles 'appproxy_exporter') 'appproxy_exporter.exe'
$ConfigFile = Join-Path (Join-Path $env:ProgramData 'appproxy_exporter') 'appproxy_exporter.yml'
# The candidate sits beside the file, so relative paths in it mean the same.
$Candidate = "$ConfigFile.new"

if (-not (Test-Path -LiteralPath $Exe)) {
    throw "$Exe is not installed: run install.ps1 first."
}

# Runs check-config on a file; returns $true when valid, printing its verdict either way.
function Test-ExporterConfig {
    param([Parameter(Mandatory)][string]$Path)
    # Windows PowerShell turns a native program's stderr into terminating errors under 'Stop'.
    $ErrorActionPreference = 'Continue'
    $output = & $Exe check-config "--config.file=$Path" 2>&1 | ForEach-Object { "$_" }
    $valid = ($LASTEXITCODE -eq 0)
    foreach ($line in $output) {
        if ($valid) { Write-Host $line } else { Write-Warning $line }
    }
    $valid
}

# Copies a file to the candidate as UTF-8 without a byte order mark, whatever its encoding
# (.NET detects UTF-16 and UTF-8 by their byte order marks; anything else is read as UTF-8).
function Copy-AsUtf8 {
    param([Parameter(Mandatory)][string]$Source, [Parameter(Mandatory)][string]$Destination)
    $text = [System.IO.File]::ReadAllText($Source)
    [System.IO.File]::WriteAllText($Destination, $text, (New-Object System.Text.UTF8Encoding $false))
}

try {
    switch ($PSCmdlet.ParameterSetName) {
        'Edit' {
            if (Test-Path -LiteralPath $ConfigFile) {
                Copy-Item -LiteralPath $ConfigFile -Destination $Candidate -Force
            } else {
                New-Item -ItemType File -Path $Candidate -Force | Out-Null
            }
            while ($true) {
                Start-Process -FilePath notepad.exe -ArgumentList "`"$Candidate`"" -Wait
                Copy-AsUtf8 -Source $Candidate -Destination $Candidate
                if (Test-ExporterConfig -Path $Candidate) { break }
                $answer = Read-Host 'The file is not valid. Edit it again? [Y/n]'
                if ($answer -match '^[nN]') {
                    throw "Nothing changed: $ConfigFile is as it was."
                }
            }
            Move-Item -LiteralPath $Candidate -Destination $ConfigFile -Force
            Write-Host "Updated $ConfigFile"
        }
        'From' {
            $source = (Resolve-Path -LiteralPath $From).ProviderPath
            Copy-AsUtf8 -Source $source -Destination $Candidate
            if (-not (Test-ExporterConfig -Path $Candidate)) {
                throw "$From is not valid (see above): nothing changed."
            }
            Move-Item -LiteralPath $Candidate -Destination $ConfigFile -Force
            Write-Host "Installed $From as $ConfigFile"
        }
        'Check' {
            if (-not (Test-ExporterConfig -Path $ConfigFile)) {
                throw "$ConfigFile is not valid (see above): the service was not restarted."
            }
        }
    }
} finally {
    if (Test-Path -LiteralPath $Candidate) { Remove-Item -LiteralPath $Candidate -Force }
}

if ($NoRestart) {
    Write-Host "Not restarted: restart the service $ServiceName (or POST /-/reload) to apply it."
    return
}
try {
    Restart-Service -Name $ServiceName -Force
    (Get-Service -Name $ServiceName).WaitForStatus('Running', [TimeSpan]::FromSeconds(30))
} catch {
    throw "The service $ServiceName did not restart ($($_.Exception.Message)): the Application event log, source $ServiceName, says why."
}
Write-Host "Restarted the service $ServiceName with the new configuration."
