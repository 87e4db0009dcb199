// Steps 7-10 and the walk, per app. Each alert keys on a series that is always there
// (appproxy_backend_up, appproxy_flow_failing_step, the latency ratio) averaged over a window,
// so a failure that comes and goes, or changes its phase, keeps one alert; the phase, status
// code and step are looked up for the annotation. Where every connector host that walks an app
// fails it, one page goes out for the app (by connector_group and app, whatever labels the
// scrape adds); where only some do, a ticket per failing host.
local a = import '../lib/alerting.libsonnet';

{
  local c = a.promqlConfig($._config),
  local sel(metric, extra='') = a.series(c, metric, extra),
  local app = ['connector_group', 'app'],
  local byApp = a.by(c, app),
  // The labels a ticket's lookups key on: its host, and the app.
  local hostApp = ['instance'] + a.identity(c, app),

  // Share of the window the internal URL did not load for a reason of steps 7-8: a timeout
  // (connected, no answer in time) is step 9's, judged by the latency ratio; a backend that
  // offers only TLS 1.0/1.1 did not load from the exporter but may from the connector, whose
  // SChannel decides: it counts as down only while the host's walk fails step 7 (SChannel has
  // them off), and is otherwise AppProxyBackendLegacyTls's ticket.
  local backendDownShare = std.stripChars(|||
    (
      1 - avg_over_time(%(up)s[%(w)s])
      - (
        sum without (phase, code) (count_over_time(%(timeout)s[%(w)s])) / count_over_time(%(up)s[%(w)s])
        or
        0 * avg_over_time(%(up)s[%(w)s])
      )
      - (
        (
          sum without (version) (count_over_time(%(legacy)s[%(w)s]))
          unless ignoring (step, step_name)
          %(step7)s
        )
        / count_over_time(%(up)s[%(w)s])
        or
        0 * avg_over_time(%(up)s[%(w)s])
      )
    )
  ||| % {
    up: sel('appproxy_backend_up'),
    timeout: sel('appproxy_backend_failure_info', 'phase="timeout"'),
    legacy: sel('appproxy_backend_tls_version_info', 'version="TLS 1.0/1.1"'),
    step7: sel('appproxy_flow_failing_step_info', 'step="7"'),
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

  local failure(labels, default) = a.lookup(
    a.keyed(c, 'appproxy_backend_failure_info', labels),
    '{{ .Labels.phase }}{{ if .Labels.code }} {{ .Labels.code }}{{ end }}',
    default
  ),
  local failingHosts = a.lookupAll(
    a.keyed(c, 'appproxy_backend_failure_info', a.identity(c, app)),
    'instance',
    '{{ .Labels.instance }} ({{ .Labels.phase }}{{ if .Labels.code }} {{ .Labels.code }}{{ end }})',
    'none at the moment'
  ),
  local backendStep(labels) = a.lookup(
    a.keyed(c, 'appproxy_flow_failing_step_info', labels, "step=~'7|8'"),
    '{{ .Labels.step_name }}',
    'internal_url'
  ),
  local timeoutSetting = a.lookup(
    a.keyed(c, 'appproxy_app_info', a.identity(c, app)),
    '{{ .Labels.backend_timeout }}',
    'unknown'
  ),
  local walkHosts = a.lookupAll(
    a.keyed(c, 'appproxy_flow_failing_step_info', a.identity(c, app)),
    'instance',
    '{{ .Labels.instance }} (step {{ .Labels.step }})',
    'none at the moment'
  ),

  local base(name, flowStep, summary) = {
    alert: name,
    'for': '5m',
    labels: { flow_step: flowStep },
    annotations: { summary: summary },
  } + a.keepFiring(c),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'appproxy.apps',
        rules:
          a.fleetSplit(
            c,
            base('AppProxyBackendDown', 'internal_url', "An app's internal URL does not load from a connector host."),
            app,
            perHost='%s >= %s' % [backendDownShare, c.failingRatio],
            fleet='min %s (\n%s\n) >= %s' % [byApp, backendDownShare, c.failingRatio],
            everyHost={
              description: 'App {{ $labels.app }} (connector group {{ $labels.connector_group }}) does not load from any connector host that serves it (the least affected failed {{ $value | humanizePercentage }} of the requests over %s; failing now: %s), so its walk stops at step 7 (internal_url) or 8 (internal_network): its users cannot reach it.' % [c.backendWindow, failingHosts],
              runbook_url: a.runbook(c, backendStep(a.identity(c, app))),
            } + a.appDashboard(c),
            someHosts={
              description: 'App {{ $labels.app }} (connector group {{ $labels.connector_group }}) failed to load from {{ $labels.instance }} in {{ $value | humanizePercentage }} of the requests over %s (last failure: %s), so its walk stops there at step 7 (internal_url) or 8 (internal_network). Other connector hosts still load it.' % [c.backendWindow, failure(hostApp, 'none at the moment')],
              runbook_url: a.runbook(c, backendStep(hostApp)),
            } + a.appDashboard(c),
          )
          + a.fleetSplit(
            c,
            base('AppProxyBackendTimeoutRisk', 'backend_timeout', "An app's backend answers close to its App Proxy timeout; users will see Backend Timeout.") + { 'for': '10m' },
            app,
            perHost='%s > %s' % [latencySel, c.timeoutWarningRatio],
            fleet='min %s (%s) >= %s' % [byApp, latencySel, c.timeoutRiskRatio],
            everyHost={
              description: 'App {{ $labels.app }} (connector group {{ $labels.connector_group }}, backend timeout %s) answers every connector host that serves it in at least {{ $value | humanizePercentage }} of its timeout (the median of its last three requests, averaged over %s): at %s the walk stops at step 9 (backend_timeout).' % [timeoutSetting, c.timeoutRiskWindow, a.percent($._config.timeoutRiskRatio)],
              runbook_url: a.runbook(c, 'backend_timeout'),
            } + a.appDashboard(c),
            someHosts={
              summary: "An app's backend has been slow for a long time; it is heading for its App Proxy timeout.",
              description: 'App {{ $labels.app }} (connector group {{ $labels.connector_group }}, backend timeout %s) has answered {{ $labels.instance }} in {{ $value | humanizePercentage }} of its timeout for %s (the median of its last three requests, averaged over %s); above %s the walk stops at step 9 (backend_timeout).' % [timeoutSetting, c.timeoutWarningFor, c.timeoutRiskWindow, a.percent($._config.timeoutRiskRatio)],
              runbook_url: a.runbook(c, 'backend_timeout'),
            } + a.appDashboard(c),
            // The ticket is the early tier: slow for long, well before the page.
            ticketFor=c.timeoutWarningFor,
          )
          + a.fleetSplit(
            c,
            base('AppProxyFlowStepFailing', '{{ $labels.step_name }}', 'An App Proxy app fails a step of the connector troubleshooting flowchart.'),
            app,
            perHost='count_over_time(%s[%s])\n/ ignoring (step, step_name) group_left\ncount_over_time(%s[%s])\n>= %s' % [sel('appproxy_flow_failing_step_info', 'step!~"1|2"'), c.walkWindow, sel('appproxy_flow_failing_step'), c.walkWindow, c.failingRatio],
            fleet='max %s (\n  count_over_time(%s[%s])\n  / ignoring (step, step_name) group_left\n  count_over_time(%s[%s])\n  >= %s\n)\nand %s\nmin %s (\n%s\n) >= %s' % [
              a.by(c, app + ['step', 'step_name']),
              sel('appproxy_flow_failing_step_info', 'step!~"1|2"'),
              c.walkWindow,
              sel('appproxy_flow_failing_step'),
              c.walkWindow,
              c.failingRatio,
              a.on(c, app),
              byApp,
              $.walkShare(),
              c.failingRatio,
            ],
            everyHost={
              description: "App {{ $labels.app }} (connector group {{ $labels.connector_group }}) fails on every connector host that serves it, at step {{ $labels.step }} ({{ $labels.step_name }}) in up to {{ $value | humanizePercentage }} of the walks over %s (failing now: %s): its users cannot reach it. The evidence and the remedy are on each exporter's page and in its /api/v1/diagnosis." % [c.walkWindow, walkHosts],
              runbook_url: a.runbook(c, '{{ $labels.step_name }}'),
            } + a.appDashboard(c),
            someHosts={
              description: "App {{ $labels.app }} (connector group {{ $labels.connector_group }}) failed step {{ $labels.step }} ({{ $labels.step_name }}) from {{ $labels.instance }} in {{ $value | humanizePercentage }} of the walks over %s. Other connector hosts still pass it. The evidence and the remedy are on that exporter's page and in its /api/v1/diagnosis." % c.walkWindow,
              runbook_url: a.runbook(c, '{{ $labels.step_name }}'),
            } + a.appDashboard(c),
          )
          + [
            // A fact about the backend, the same from every connector host: one ticket per app.
            {
              alert: 'AppProxyBackendLegacyTls',
              expr: 'max %s (max_over_time(%s[%s])) == 1\n' % [byApp, sel('appproxy_backend_tls_version_info', 'version="TLS 1.0/1.1"'), c.backendWindow],
              'for': '30m',
              labels: { severity: c.severities.ticket, flow_step: 'internal_url' },
              annotations: {
                summary: "An app's backend speaks only TLS 1.0/1.1, which Windows is turning off.",
                description: 'The internal URL of app {{ $labels.app }} (connector group {{ $labels.connector_group }}) offers only TLS 1.0 or 1.1. Connector hosts reach it only while their SChannel allows those versions as a client (on by default on Windows Server 2016-2022, off by default on the Windows releases after September 2023), so it breaks when a host is hardened or replaced. Until then step 7 (internal_url) is not evaluated where SChannel allows them, and fails where it does not. Enable TLS 1.2 on the backend.',
                runbook_url: a.runbook(c, 'internal_url#legacy-tls'),
              } + a.appDashboard(c),
            } + a.keepFiring(c),
          ],
      },
    ],
  },
}
