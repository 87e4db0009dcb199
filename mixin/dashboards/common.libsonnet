// What both dashboards share: selectors on the variables, links between them, the variables.
local g = import '../lib/grafana.libsonnet';

{
  // `metric{job=~"$job",instance=~"$instance",<extra>}`.
  sel(metric, extra=''):: '%s{job=~"$job",instance=~"$instance"%s}' % [metric, if extra == '' then '' else ',' + extra],

  // A link to a dashboard of the mixin: from Grafana's URL when set, else relative.
  dashboardURL(config, uid):: '%s/d/%s' % [config.grafanaURL, uid],

  // Data links from a row of a table (`__data.fields`) or a series (`__field.labels`).
  appLink(config, from='__data.fields'):: g.link(
    'App detail: ${%s.app}' % from,
    '%s?${datasource:queryparam}&${job:queryparam}&${instance:queryparam}&var-connector_group=${%s.connector_group}&var-app=${%s.app}&${__url_time_range}' % [self.dashboardURL(config, config.dashboardUIDs.app), from, from],
  ),
  runbookLink(config, from='__data.fields'):: g.link('Runbook of this step', (import '../lib/alerting.libsonnet').runbook(config, '${%s.step_name}' % from), true),

  variables(config, appSingle=false):: [
    g.variable('job', 'Job', 'label_values(appproxy_exporter_build_info{%s}, job)' % config.selector),
    g.variable('instance', 'Instance', 'label_values(appproxy_exporter_build_info{job=~"$job"}, instance)'),
    g.variable('connector_group', 'Connector group', 'label_values(appproxy_app_info{job=~"$job",instance=~"$instance"}, connector_group)', allValue='.*'),
    g.variable('app', 'App', 'label_values(appproxy_app_info{job=~"$job",instance=~"$instance",connector_group=~"$connector_group"}, app)', allValue='.*', single=appSingle),
  ],

  // Thresholds at the ticket and page ratios of timeout risk.
  // Time left on a custom-domain certificate: the ticket (30 days) and the page (7 days).
  certificateThresholds:: {
    mode: 'absolute',
    steps: [
      { color: 'red', value: null },
      { color: 'orange', value: 7 * 86400 },
      { color: 'green', value: 30 * 86400 },
    ],
  },

  riskThresholds(config):: {
    mode: 'absolute',
    steps: [
      { color: 'green', value: null },
      { color: 'orange', value: config.timeoutWarningRatio },
      { color: 'red', value: config.timeoutRiskRatio },
    ],
  },

  latencyRecord:: (import '../lib/alerting.libsonnet').latencyRecord,
}
