// Tenant-wide facts (steps 1-2 and the inventory): every exporter reads them from the same
// Graph tenant, so they are aggregated by what they are about (a connector group, an app) and
// fire once for the fleet, whatever labels the scrape adds to each host.
local a = import '../lib/alerting.libsonnet';

{
  local c = a.promqlConfig($._config),
  local sel(metric, extra='') = a.series(c, metric, extra),

  // An app fails `step` as every connector host walks it (most of the window, on each).
  local everyHostFails(step) = 'min %s (\n%s\n) >= %s' % [a.by(c, ['connector_group', 'app']), $.walkShare('step="%d"' % step), c.failingRatio],

  local walkStep(step, name, summary, cause) = {
    alert: 'AppProxyFlowStepFailing',
    expr: everyHostFails(step),
    'for': '5m',
    labels: { severity: c.severities.page, flow_step: name },
    annotations: {
      summary: summary,
      description: 'App {{ $labels.app }} (connector group {{ if $labels.connector_group }}{{ $labels.connector_group }}{{ else }}none{{ end }}) fails step %d (%s) as every connector host walks it (%s): its users cannot reach it.' % [step, name, cause],
      runbook_url: a.runbook(c, name),
    } + a.appDashboard(c),
  } + a.keepFiring(c),

  // The custom-domain certificate App Proxy presents for an app (Graph's metadata, the same on
  // every exporter): a ticket a month ahead, a page in the last week; the two are disjoint.
  local certificateLeft = '(\n  min %s (%s)\n  - time()\n)' % [a.by(c, ['connector_group', 'app']), sel('appproxy_custom_domain_certificate_expiry_timestamp_seconds')],
  local certificateExpiring(severity, expr, summary) = {
    alert: 'AppProxyCustomDomainCertificateExpiring',
    expr: expr,
    'for': '10m',
    labels: { severity: severity, flow_step: 'escalate_app_flow' },
    annotations: {
      summary: summary,
      description: "The certificate App Proxy presents on the custom domain of app {{ $labels.app }} (connector group {{ $labels.connector_group }}) {{ if lt $value 0.0 }}has expired{{ else }}expires in {{ $value | humanizeDuration }}{{ end }} (Graph: onPremisesPublishing.verifiedCustomDomainCertificatesMetadata.expiryDate): users then get a certificate error on its external URL. Renew it and upload the new certificate to the app's Application proxy settings.",
      runbook_url: a.runbook(c, 'escalate_app_flow#custom-domain-certificate'),
    } + a.appDashboard(c),
  } + a.keepFiring(c),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'appproxy.tenant',
        rules: [
          {
            alert: 'AppProxyNoActiveConnector',
            expr: 'max %s (avg_over_time(%s[10m])) < %s\n' % [a.by(c, ['connector_group']), sel('appproxy_connector_group_active_connectors'), c.failingRatio],
            'for': '5m',
            labels: { severity: c.severities.page, flow_step: 'connector_installed' },
            annotations: {
              summary: 'A connector group has no active connector.',
              description: 'Connector group {{ $labels.connector_group }} has had no active connector for most of 10 minutes (its connectors: %s), so none of its apps can be reached: step 2 (connector_installed) fails for each of them.' % a.lookupAll(
                a.keyed(c, 'appproxy_connector_info', a.identity(c, ['connector_group']), outer='count by (machine_name) (%s)'),
                'machine_name',
                '{{ .Labels.machine_name }}',
                'none registered'
              ),
              runbook_url: a.runbook(c, 'connector_installed'),
            } + a.overviewDashboard(c),
          } + a.keepFiring(c),
          certificateExpiring(c.severities.ticket, '%s < %d >= %d\n' % [certificateLeft, 30 * 86400, 7 * 86400], "An App Proxy app's custom-domain certificate expires within 30 days."),
          certificateExpiring(c.severities.page, '%s < %d\n' % [certificateLeft, 7 * 86400], "An App Proxy app's custom-domain certificate expires within 7 days, or has expired."),
          walkStep(1, 'connector_group_assigned', 'An App Proxy app has no connector group, or its group is unknown.', 'no group, or a group the tenant does not have'),
          walkStep(2, 'connector_installed', "An App Proxy app's connector group has no working connector.", 'no connector of its group is active, or none runs its service'),
          {
            alert: 'AppProxyInventoryStale',
            expr: |||
              count %s (
                %s == 0
                or
                (time() - %s) > 3 * %s
              )
            ||| % [a.by(c, []), sel('appproxy_inventory_up'), sel('appproxy_inventory_last_success_timestamp_seconds'), sel('appproxy_inventory_refresh_interval_seconds')],
            'for': '10m',
            labels: { severity: c.severities.ticket, flow_step: 'connector_group_assigned' },
            annotations: {
              summary: 'The App Proxy inventory is stale; steps 1-2 judge from old data.',
              description: '{{ $value }} exporter(s) could not refresh the inventory of connector groups, connectors and apps (Microsoft Graph refused or failed, see their logs), or their last success is older than three refresh intervals. Steps 1 and 2 use the last good inventory meanwhile.',
              runbook_url: a.runbook(c, 'connector_group_assigned'),
            } + a.overviewDashboard(c),
          } + a.keepFiring(c),
        ],
      },
    ],
  },
}
