// The exporter itself: when it is down, cannot load its configuration or stopped probing,
// every other alert is silent for its host. flow_step `exporter`: no step of the flowchart.
local a = import '../lib/alerting.libsonnet';

{
  local c = a.promqlConfig($._config),
  local sel(metric, extra='') = a.series(c, metric, extra),

  local rule(name, expr, forDuration, severity, summary, description, step='exporter') = {
    alert: name,
    expr: expr,
    'for': forDuration,
    labels: { severity: severity, flow_step: step },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: a.runbook(c, 'exporter#' + std.asciiLower(name)),
    } + a.overviewDashboard(c),
  } + a.keepFiring(c),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'appproxy.exporter',
        rules: [
          rule(
            'AppProxyExporterDown',
            'avg_over_time(%s[%s]) < %s\nor\nabsent(%s)\n' % [sel('up'), c.hostWindow, c.failingRatio, sel('up')],
            '5m',
            c.severities.ticket,
            'appproxy_exporter is down or not scraped; its connector host is not watched.',
            '{{ if $labels.instance }}Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for most of %s{{ else }}Prometheus has no target for %s{{ end }}: no step of the flowchart is judged for that connector host.' % [c.hostWindow, std.strReplace(c.selector, '"', "'")],
          ),
          rule(
            'AppProxyConfigReloadFailed',
            '%s == 0\n' % sel('appproxy_exporter_config_last_reload_successful'),
            '5m',
            c.severities.ticket,
            'appproxy_exporter could not load its changed configuration; it runs on the old one.',
            "The last reload of {{ $labels.instance }}'s configuration failed (its log and the answer to POST /-/reload say where, by file, line and column). It goes on with the configuration it had.",
          ),
          rule(
            'AppProxyProbesStale',
            '(time() - %s) > %d\n' % [sel('appproxy_probe_last_round_timestamp_seconds', 'kind!="inventory"'), c.probesStaleSeconds],
            '5m',
            c.severities.ticket,
            'appproxy_exporter stopped probing; its verdicts are old.',
            "{{ $labels.instance }}'s last {{ $labels.kind }} round ended {{ $value | humanizeDuration }} ago: the steps it judges are reported from old results. (The inventory's own limit is AppProxyInventoryStale's.)",
            step='{{ if eq $labels.kind "endpoints" }}required_endpoints{{ else if eq $labels.kind "proxy" }}forward_proxy{{ else }}internal_url{{ end }}',
          ),
        ],
      },
    ],
  },
}
