// Steps 7-10 and the walk, per app and connector host. Each alert keys on a series that is
// always there (appproxy_backend_up, appproxy_flow_failing_step, the latency ratio) averaged
// over a window, so a failure that comes and goes, or changes its phase, keeps one alert; the
// phase, status code and step are looked up for the annotation.
local a = import '../lib/alerting.libsonnet';

{
  local c = a.promqlConfig($._config),
  local sel(metric, extra='') = a.series(c, metric, extra),
  local without = a.withoutHosts(c),
  local appLabels = ['instance', 'connector_group', 'app'],

  // Share of the window the internal URL did not load for a reason of steps 7-8: a timeout
  // (connected, no answer in time) is step 9's, judged by the latency ratio.
  local backendDownShare = std.stripChars(|||
    (
      1 - avg_over_time(%(up)s[%(w)s])
      - (
        sum without (phase, code) (count_over_time(%(timeout)s[%(w)s])) / count_over_time(%(up)s[%(w)s])
        or
        0 * avg_over_time(%(up)s[%(w)s])
      )
    )
  ||| % {
    up: sel('appproxy_backend_up'),
    timeout: sel('appproxy_backend_failure_info', 'phase="timeout"'),
    w: c.backendWindow,
  }, '\n'),

  // Share of the window the walk of an app failed at a step matching `steps` (every host that
  // walks the app has a value, 0 where it passed).
  walkShare(steps='')::
    local info = sel('appproxy_flow_failing_step_info', steps);
    local walk = sel('appproxy_flow_failing_step');
    '  (\n    sum without (step, step_name) (count_over_time(%s[%s]))\n    or\n    0 * count_over_time(%s[%s])\n  )\n  / count_over_time(%s[%s])' % [info, c.walkWindow, walk, c.walkWindow, walk, c.walkWindow],

  local latency = a.latencyRecord(c),
  local latencySel = '%s{%s}' % [latency, c.selector],

  local lastFailure = a.lookup(
    a.keyed('appproxy_backend_failure_info', appLabels),
    '{{ .Labels.phase }}{{ if .Labels.code }} {{ .Labels.code }}{{ end }}',
    'none at the moment'
  ),
  local backendStep = a.lookup(
    a.keyed('appproxy_flow_failing_step_info', appLabels, "step=~'7|8'"),
    '{{ .Labels.step_name }}',
    'internal_url'
  ),
  local timeoutSetting = a.lookup(
    a.keyed('appproxy_app_info', ['connector_group', 'app']),
    '{{ .Labels.backend_timeout }}',
    'unknown'
  ),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'appproxy.apps',
        rules:
          a.fleetSplit(c, {
            alert: 'AppProxyBackendDown',
            'for': '5m',
            keep_firing_for: '10m',
            labels: { flow_step: 'internal_url' },
            annotations: {
              summary: "An app's internal URL does not load from a connector host.",
              description: 'App {{ $labels.app }} (connector group {{ $labels.connector_group }}) failed to load from {{ $labels.instance }} in {{ $value | humanizePercentage }} of the requests over %s (last failure: %s), so its walk stops at step 7 (internal_url) or 8 (internal_network).' % [c.backendWindow, lastFailure],
              runbook_url: a.runbook(c, backendStep),
            } + a.appDashboard(c),
          }, perHost='%s >= %s' % [backendDownShare, c.failingRatio], allFail='min %s %s >= %s' % [without, backendDownShare, c.failingRatio], everyHost='Every connector host that serves it fails: its users cannot reach it.', someHosts='Other connector hosts still load it.')
          + [
            // The page: every host that walks the app sees it at the risk ratio.
            {
              alert: 'AppProxyBackendTimeoutRisk',
              expr: '%s >= %s\nand ignoring (%s)\nmin %s (%s) >= %s\n' % [latencySel, c.timeoutRiskRatio, std.join(', ', c.hostLabels), without, latencySel, c.timeoutRiskRatio],
              'for': '10m',
              keep_firing_for: '10m',
              labels: { severity: c.severities.page, flow_step: 'backend_timeout' },
              annotations: {
                summary: "An app's backend answers close to its App Proxy timeout; users will see Backend Timeout.",
                description: 'App {{ $labels.app }} (connector group {{ $labels.connector_group }}, backend timeout %s) answers {{ $labels.instance }} in {{ $value | humanizePercentage }} of its timeout (the median of its last three requests, averaged over %s), and every other connector host that serves it sees the same: at %s the walk stops at step 9 (backend_timeout).' % [timeoutSetting, c.timeoutRiskWindow, a.percent($._config.timeoutRiskRatio)],
                runbook_url: a.runbook(c, 'backend_timeout'),
              } + a.appDashboard(c),
            },
          ]
          + [
            // The ticket: slow for long, well before the page, or past the risk ratio from
            // some hosts only.
            {
              alert: 'AppProxyBackendTimeoutRisk',
              expr: '%s > %s\nunless ignoring (%s)\nmin %s (%s) >= %s\n' % [latencySel, c.timeoutWarningRatio, std.join(', ', c.hostLabels), without, latencySel, c.timeoutRiskRatio],
              'for': c.timeoutWarningFor,
              keep_firing_for: '10m',
              labels: { severity: c.severities.ticket, flow_step: 'backend_timeout' },
              annotations: {
                summary: "An app's backend has been slow for a long time; it is heading for its App Proxy timeout.",
                description: 'App {{ $labels.app }} (connector group {{ $labels.connector_group }}, backend timeout %s) has answered {{ $labels.instance }} in {{ $value | humanizePercentage }} of its timeout for %s (the median of its last three requests, averaged over %s); above %s the walk stops at step 9 (backend_timeout).' % [timeoutSetting, c.timeoutWarningFor, c.timeoutRiskWindow, a.percent($._config.timeoutRiskRatio)],
                runbook_url: a.runbook(c, 'backend_timeout'),
              } + a.appDashboard(c),
            },
          ]
          + a.fleetSplit(c, {
            alert: 'AppProxyFlowStepFailing',
            'for': '5m',
            keep_firing_for: '10m',
            labels: { flow_step: '{{ $labels.step_name }}' },
            annotations: {
              summary: 'An App Proxy app fails a step of the connector troubleshooting flowchart.',
              description: "App {{ $labels.app }} (connector group {{ $labels.connector_group }}) failed step {{ $labels.step }} ({{ $labels.step_name }}) from {{ $labels.instance }} in {{ $value | humanizePercentage }} of the walks over %s. The evidence and the remedy are on that exporter's page and in its /api/v1/diagnosis." % c.walkWindow,
              runbook_url: a.runbook(c, '{{ $labels.step_name }}'),
            } + a.appDashboard(c),
          }, perHost='count_over_time(%s[%s])\n/ ignoring (step, step_name) group_left\ncount_over_time(%s[%s])\n>= %s' % [sel('appproxy_flow_failing_step_info', 'step!~"1|2"'), c.walkWindow, sel('appproxy_flow_failing_step'), c.walkWindow, c.failingRatio], allFail='min %s (\n%s\n) >= %s' % [without, $.walkShare(), c.failingRatio], everyHost='Every connector host that serves it fails it: its users cannot reach it.', someHosts='Other connector hosts still pass it.', ignoring=['step', 'step_name']),
      },
    ],
  },
}
