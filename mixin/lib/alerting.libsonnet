// Helpers for the alert rules: selectors, the fleet split of per-app alerts, and annotations
// that look the varying detail up instead of carrying it in labels.
{
  // The config with its ratios as PromQL writes them (0.8, not 0.80000000000000004).
  promqlConfig(config):: config {
    failingRatio: '%g' % config.failingRatio,
    timeoutRiskRatio: '%g' % config.timeoutRiskRatio,
    timeoutWarningRatio: '%g' % config.timeoutWarningRatio,
  },
  percent(ratio):: '%g%%' % (100 * ratio),

  // `metric{<selector>,extra}`.
  series(config, metric, extra=''):: '%s{%s%s}' % [metric, config.selector, if extra == '' then '' else ',' + extra],

  // `without (instance, pod)` and `ignoring (instance, pod)`.
  withoutHosts(config):: 'without (%s)' % std.join(', ', config.hostLabels),
  ignoringHosts(config):: 'ignoring (%s)' % std.join(', ', config.hostLabels),

  // The recording rule of timeout risk (rules.libsonnet), which alerts and dashboards read.
  latencyRecord(config):: 'instance_app:appproxy_backend_latency_ratio:avg%s' % config.timeoutRiskWindow,

  runbook(config, name):: config.runbookURLPattern % name,

  // A query's first result in an annotation: `format` uses `.` (the sample), or `default`.
  lookup(query, format, default):: '{{ with query %s }}{{ with . | first }}%s{{ end }}{{ else }}%s{{ end }}' % [query, format, default],

  // Every result of a query, sorted by label `by` and comma-separated: `format` uses `.` (each
  // sample), or `default`.
  lookupAll(query, by, format, default):: '{{ with query %s }}{{ range $i, $s := . | sortByLabel "%s" }}{{ if $i }}, {{ end }}%s{{ end }}{{ else }}%s{{ end }}' % [query, by, format, default],

  // printf of a query keyed on the alert's own labels (job and the given ones).
  keyed(metric, labels, extra=''):: '(printf "%s{%s%s}" %s)' % [
    metric,
    std.join(',', ["%s='%%s'" % l for l in ['job'] + labels]),
    if extra == '' then '' else ',' + extra,
    std.join(' ', ['$labels.' + l for l in ['job'] + labels]),
  ],

  // A per-app alert, per connector host, as two rules: critical where every host that walks
  // the app fails it (its users are cut off), a ticket where only some do (App Proxy serves
  // from the others). `perHost` selects the failing hosts' series; `allFail` is true, without
  // the host labels, where every host fails; `ignoring` lists labels `perHost` has beyond those.
  fleetSplit(config, rule, perHost, allFail, everyHost, someHosts, ignoring=[])::
    local on = 'ignoring (%s)' % std.join(', ', config.hostLabels + ignoring);
    [
      rule {
        expr: '%s\nand %s\n%s\n' % [perHost, on, allFail],
        labels+: { severity: config.severities.page },
        annotations+: { description: rule.annotations.description + ' ' + everyHost },
      },
      rule {
        expr: '%s\nunless %s\n%s\n' % [perHost, on, allFail],
        labels+: { severity: config.severities.ticket },
        annotations+: { description: rule.annotations.description + ' ' + someHosts },
      },
    ],

  // Adds dashboard_url (the app dashboard of the alert's app) where Grafana's URL is set.
  appDashboard(config):: if config.grafanaURL == '' then {} else {
    dashboard_url: '%s/d/%s?var-connector_group={{ $labels.connector_group }}&var-app={{ $labels.app }}' % [config.grafanaURL, config.dashboardUIDs.app],
  },
  overviewDashboard(config):: if config.grafanaURL == '' then {} else {
    dashboard_url: '%s/d/%s' % [config.grafanaURL, config.dashboardUIDs.overview],
  },
}
