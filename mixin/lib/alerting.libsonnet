// Helpers for the alert rules: selectors, the fleet's identities, the split of per-app alerts
// into a page for the fleet and tickets per host, and annotations that look the varying detail
// up instead of carrying it in labels.
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

  // What a fleet-wide alert is about, plus the labels the fleet splits by (_config.fleetLabels):
  // `by (connector_group, app)`. Every other label (instance, job, site, replica ...) is dropped.
  identity(config, labels):: labels + config.fleetLabels,
  by(config, labels):: 'by (%s)' % std.join(', ', self.identity(config, labels)),
  on(config, labels):: 'on (%s)' % std.join(', ', self.identity(config, labels)),

  // The recording rule of timeout risk (rules.libsonnet), which alerts and dashboards read.
  latencyRecord(config):: 'instance_app:appproxy_backend_latency_ratio:avg%s' % config.timeoutRiskWindow,

  // The runbook of `name` (a step_name, `exporter`, or either with a #section).
  runbook(config, name)::
    local parts = std.splitLimit(name, '#', 1);
    (config.runbookURLPattern % parts[0]) + (if std.length(parts) > 1 then '#' + parts[1] else ''),

  // `keep_firing_for`, unless the config renders for a ruler older than Prometheus 2.42.
  keepFiring(config):: if config.keepFiringFor == '' then {} else { keep_firing_for: config.keepFiringFor },

  // A query's first result in an annotation: `format` uses `.` (the sample), or `default`.
  lookup(query, format, default):: '{{ with query %s }}{{ with . | first }}%s{{ end }}{{ else }}%s{{ end }}' % [query, format, default],

  // Every result of a query, sorted by label `by` and comma-separated: `format` uses `.` (each
  // sample), or `default`.
  lookupAll(query, by, format, default):: '{{ with query %s }}{{ range $i, $s := . | sortByLabel "%s" }}{{ if $i }}, {{ end }}%s{{ end }}{{ else }}%s{{ end }}' % [query, by, format, default],

  // A label of the alert as a PromQL string's content: ' and \ escaped (app names are free text).
  local quoted(label) = '(reReplaceAll "([\'\\\\\\\\])" "\\\\$1" $labels.%s)' % label,

  // printf of a query on the exporters' series that carry the alert's own `labels` (those of
  // `by` among them) with `extra`: `metric{<selector>,connector_group='...',app='...'}`, or that
  // series inside `outer` (a format with one %s, `count by (x) (%s)`).
  keyed(config, metric, labels, extra='', outer='%s'):: '(printf "%s" %s)' % [
    outer % ('%s{%s%s%s}' % [
               metric,
               std.strReplace(config.selector, '"', "'"),
               std.join('', [",%s='%%s'" % l for l in labels]),
               if extra == '' then '' else ',' + extra,
             ]),
    std.join(' ', [quoted(l) for l in labels]),
  ],

  // A per-app alert as two rules: one page for the fleet where every connector host that walks
  // the app fails it (its users are cut off), by what it is about; a ticket per host where only
  // some do (App Proxy serves it from the others). `perHost` is the failing hosts' series;
  // `fleet` the page's expression over all of them, by `labels`; `everyHost` and `someHosts`
  // the annotations of each; `ticketFor` the ticket's own `for` where it differs.
  fleetSplit(config, rule, labels, perHost, fleet, everyHost, someHosts, ticketFor='')::
    [
      rule {
        expr: fleet + '\n',
        labels+: { severity: config.severities.page },
        annotations+: everyHost,
      },
      rule {
        // In parentheses: `and` and `unless` bind alike, left to right.
        expr: '%s\nunless %s (\n%s\n)\n' % [perHost, $.on(config, labels), fleet],
        labels+: { severity: config.severities.ticket },
        annotations+: someHosts,
      } + (if ticketFor == '' then {} else { 'for': ticketFor }),
    ],

  // Adds dashboard_url (the app dashboard of the alert's app) where Grafana's URL is set.
  appDashboard(config):: if config.grafanaURL == '' then {} else {
    dashboard_url: '%s/d/%s?var-connector_group={{ $labels.connector_group }}&var-app={{ $labels.app }}' % [config.grafanaURL, config.dashboardUIDs.app],
  },
  overviewDashboard(config):: if config.grafanaURL == '' then {} else {
    dashboard_url: '%s/d/%s' % [config.grafanaURL, config.dashboardUIDs.overview],
  },
}
