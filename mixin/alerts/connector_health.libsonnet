// The connector host's own health (src/host): what breaks a connector before users complain.
// Its series come from a Windows connector host only. A host whose check fails is a ticket for
// that host: its step then fails there, and where it fails on every host of a group the group's
// page is AppProxyConnectorGroupStepFailing (host.libsonnet). The exceptions look ahead: a trust
// certificate about to expire pages while there is time to renew it.
local a = import '../lib/alerting.libsonnet';

{
  local c = a.promqlConfig($._config),
  local sel(metric, extra='') = a.series(c, metric, extra),

  local rule(name, expr, forDuration, severity, step, summary, description, runbook) = {
    alert: name,
    expr: expr,
    labels: { severity: severity, flow_step: step },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: a.runbook(c, runbook),
    } + a.overviewDashboard(c),
  } + (if forDuration == '' then {} else { 'for': forDuration }),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'appproxy.connector-health',
        rules: [
          rule(
            'AppProxyConnectorServiceStopped',
            'avg_over_time(%s[%s]) < %s\n' % [sel('appproxy_connector_service_running'), c.hostWindow, c.failingRatio],
            '5m',
            c.severities.ticket,
            'connector_installed',
            'A connector service is stopped on its host; this host serves no app.',
            'The {{ $labels.connector_service }} service ({{ if eq $labels.connector_service "updater" }}WAPCUpdaterSvc{{ else }}WAPCSvc{{ end }}) on {{ $labels.instance }} has been stopped for most of %s: step 2 (connector_installed) fails for every app this host serves.' % c.hostWindow,
            'connector_installed',
          ) + a.keepFiring(c),
          rule(
            'AppProxyConnectorCertificateExpiring',
            '%s - time() < 21 * 86400\n' % sel('appproxy_connector_certificate_expiry_timestamp_seconds'),
            '1h',
            c.severities.ticket,
            'connector_installed',
            "The connector's trust certificate expires within three weeks and has not been renewed.",
            'The trust certificate of the connector on {{ $labels.instance }} ends in {{ $value | humanizeDuration }}. The connector renews it by itself while it reaches the service; once expired it "failed to download the configuration" and step 2 (connector_installed) fails for this host.',
            'connector_installed#host-check-certificate',
          ),
          rule(
            'AppProxyConnectorCertificateExpiring',
            '%s - time() < 3 * 86400\n' % sel('appproxy_connector_certificate_expiry_timestamp_seconds'),
            '10m',
            c.severities.page,
            'connector_installed',
            "The connector's trust certificate expires within three days, or has expired.",
            'The trust certificate of the connector on {{ $labels.instance }} ends in {{ $value | humanizeDuration }} (negative: expired). Register the connector again (Register-MicrosoftEntraPrivateNetworkConnector -EnvironmentName AzureCloud; Register-AppProxyConnector before 1.5.3829.0) once it reaches the internet; expired, it fails step 2 (connector_installed) for this host.',
            'connector_installed#host-check-certificate',
          ),
          rule(
            'AppProxyConnectorEventLogErrors',
            'sum without (level) (increase(%s[15m])) > 0\n' % sel('appproxy_connector_events_total', 'level=~"critical|error"'),
            '',
            c.severities.ticket,
            '{{ $labels.step_name }}',
            'The connector logged errors in its event logs.',
            '{{ if eq $labels.channel "application" }}Windows Logs\\Application on {{ $labels.instance }} recorded {{ $value | humanize }} registration error(s) of the connector in 15 minutes, which explain step {{ $labels.step_name }} (messages: docs/eventlog.md; read them with Get-EventLog application -source "Microsoft Entra private network connector" -EntryType Error -Newest 5).{{ else }}The {{ $labels.channel }} Admin log on {{ $labels.instance }} recorded {{ $value | humanize }} error(s) with event id {{ $labels.event_id }} in 15 minutes, which explain step {{ $labels.step_name }} (ids: docs/eventlog.md).{{ end }}',
            '{{ $labels.step_name }}',
          ),
          // Behind the newest release that updates automatically (Microsoft's release history,
          // src/host/releases.rs), not behind the group: a connector upgraded by hand warns no
          // other, and a group that stopped updating together warns on every host. Releases
          // offered only on the download page never fire it. The release it should have reached
          // comes along as a label from appproxy_connector_release_list_info. `for` rides out an exporter
          // upgraded the day Microsoft ships a release, while its updaters roll it out.
          rule(
            'AppProxyConnectorOutdated',
            '(%s == 1)\n* ignoring (latest, latest_auto_update, source) group_left (latest_auto_update)\n  %s\n' % [sel('appproxy_connector_behind_auto_update_release'), sel('appproxy_connector_release_list_info')],
            '6h',
            c.severities.ticket,
            'connector_installed',
            'A connector is older than the newest release that updates automatically; it stopped updating.',
            'The connector on {{ $labels.instance }} is older than the newest connector release that updates by itself ({{ $labels.latest_auto_update }}), so its updater (WAPCUpdaterSvc) has not installed it. The page and diagnose say whether the updater runs and when its log last recorded activity.',
            'connector_installed#host-check-version',
          ),
          rule(
            'AppProxyTlsPrerequisiteMissing',
            'max_over_time(%s[%s]) == 0\n' % [sel('appproxy_host_check_ok', 'check="tls"'), c.hostWindow],
            '5m',
            c.severities.ticket,
            'required_endpoints',
            'TLS 1.2 is switched off on a connector host; the connector cannot reach the service.',
            "A registry value on {{ $labels.instance }} switches TLS 1.2 off for clients or .NET's strong cryptography off, which the connector needs: step 4 (required_endpoints) fails for this host.",
            'required_endpoints#host-check-tls',
          ),
        ] + a.fleetSplit(
          c,
          {
            alert: 'AppProxyKerberosDelegationBroken',
            'for': '10m',
            labels: { flow_step: 'internal_url' },
            annotations: { summary: 'Kerberos single sign-on cannot work from a connector host; the page answers, sign-in will not.' },
          } + a.keepFiring(c),
          ['connector_group', 'app'],
          perHost='max_over_time(%s[%s]) == 0' % [sel('appproxy_kerberos_delegation_ok'), c.hostWindow],
          fleet='max %s (max_over_time(%s[%s])) == 0' % [a.by(c, ['connector_group', 'app']), sel('appproxy_kerberos_delegation_ok'), c.hostWindow],
          everyHost={
            description: "App {{ $labels.app }} (connector group {{ $labels.connector_group }}) signs users in with Kerberos, and no connector host that serves it can delegate to its SPN (domain controller unreachable, SPN not delegated, or WinHTTP HTTP/2 on): step 7 (internal_url) fails everywhere, so single sign-on fails for every user. The evidence is on each exporter's page.",
            runbook_url: a.runbook(c, 'internal_url#host-check-kerberos'),
          } + a.appDashboard(c),
          someHosts={
            description: "App {{ $labels.app }} (connector group {{ $labels.connector_group }}) signs users in with Kerberos, and the connector on {{ $labels.instance }} cannot delegate to its SPN (domain controller unreachable, SPN not delegated, or WinHTTP HTTP/2 on): step 7 (internal_url) fails there; users that App Proxy sends through that connector cannot sign in. The evidence is on that exporter's page.",
            runbook_url: a.runbook(c, 'internal_url#host-check-kerberos'),
          } + a.appDashboard(c),
        ),
      },
    ],
  },
}
