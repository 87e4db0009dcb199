// The settings a user of the mixin may change: override any of them with
//   (import 'mixin.libsonnet') + { _config+:: { selector: 'job="connectors"' } }
// or render the shipped files for your own settings with scripts/mixin --config FILE --out DIR,
// which refuses a key that is not one of these (render.jsonnet).
{
  _config+:: {
    // Every selector of the rules and dashboards starts with this: the scrape job(s) of the
    // exporters. The default matches the examples' job `appproxy` and the job the Prometheus
    // Operator names after the Kubernetes Service `appproxy-exporter`.
    selector: 'job=~"appproxy|appproxy-exporter"',

    // The labels that split the fleet for alerting, beyond what identifies the thing that fails.
    // Pages for a whole fleet (a connector group without an active connector, an app that every
    // connector host fails, a step that every host of a group fails) aggregate by what they are
    // about (`connector_group`, `app`, the step) and drop every other label, so target labels a
    // fleet adds (`site`, `region`, `cluster`, an HA `replica`) neither duplicate nor split a
    // page. List labels here to page per value instead: with ['site'], an app that every host of
    // site ams fails pages for ams even while the hosts of nyc serve it.
    fleetLabels: [],

    // `keep_firing_for` on every alert: a failure that clears for a moment does not resolve and
    // page again. It needs Prometheus 2.42 or newer (and an Operator whose PrometheusRule CRD
    // knows it); older rulers refuse the whole group. Set '' to render without it.
    keepFiringFor: '10m',

    // Where alerts and dashboards link: %s is a step_name or `exporter`; a section (#...) is
    // appended after it. The default is this project's runbooks (docs/runbooks/) on GitHub. The
    // exporter serves the same pages at /runbooks/<name>: with its --web.external-url, set
    // 'https://appproxy.corp.example/runbooks/%s'.
    runbookURLPattern: 'https://github.com/appproxy-exporter/appproxy_exporter/blob/main/docs/runbooks/%s.md',

    // Grafana's root URL, for the links between dashboards and the alerts' dashboard_url.
    // Empty: dashboards link relatively (/d/<uid>) and alerts carry no dashboard_url.
    grafanaURL: '',

    // Keep equal to the exporter's probes.backend.timeout_risk_ratio: the walk fails step 9 at
    // this share of an app's backend timeout, and AppProxyBackendTimeoutRisk pages at it.
    timeoutRiskRatio: 0.8,
    // The early tier: a ticket when the ratio stays above this for timeoutWarningFor.
    timeoutWarningRatio: 0.5,
    timeoutWarningFor: '30m',
    // The window the latency ratio is averaged over (the recording rule).
    timeoutRiskWindow: '10m',

    // A failure that comes and goes alerts when it holds this share of the window: a backend
    // down two minutes out of three is down.
    failingRatio: 0.5,
    backendWindow: '5m',
    walkWindow: '10m',
    hostWindow: '5m',

    // Endpoint, proxy and backend rounds older than this are stale (the inventory has its own
    // limit: three refresh intervals). Above the longest default interval and Long timeout (180 s).
    probesStaleSeconds: 600,

    // The connector host's capacity (concept-connectors.md: peak CPU and memory under 70%): a
    // ticket when CPU (averaged over cpuWindow) or memory stays above `utilisation` for `for`;
    // a page when the ephemeral ports in use stay above `ports` of the dynamic range for portsFor.
    capacity: {
      utilisation: 0.7,
      cpuWindow: '5m',
      'for': '30m',
      ports: 0.9,
      portsFor: '5m',
    },

    severities: {
      page: 'critical',
      ticket: 'warning',
    },

    dashboardUIDs: {
      overview: 'appproxy-overview',
      app: 'appproxy-app',
    },
    dashboardTags: ['appproxy', 'app-proxy', 'entra'],
    // Apps in the dashboards' "worst first" tables (1,000 apps stay readable).
    dashboardTopApps: 25,
  },

  // Settings no rule could work with are refused when the mixin is rendered, naming the key.
  local c = self._config,
  // std.all is newer than Debian's jsonnet 0.18.
  local all(checks) = std.length(std.filter(function(ok) !ok, checks)) == 0,
  local labelName(l) = std.isString(l) && std.length(l) > 0
                       && all([std.member('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789', ch) for ch in std.stringChars(l)])
                       && !std.member('0123456789', l[0]),
  assert std.isString(c.selector) && std.length(std.stripChars(c.selector, ' \t\n')) > 0
         : '_config.selector is empty: it must select the exporters\' scrape job(s), e.g. job="appproxy"',
  assert std.isArray(c.fleetLabels) && all([labelName(l) for l in c.fleetLabels])
         : '_config.fleetLabels must be a list of label names, got %s' % std.manifestJsonMinified(c.fleetLabels),
  assert std.length(std.setInter(std.set(c.fleetLabels), std.set(['connector_group', 'app', 'step', 'step_name', 'flow_step', 'severity', 'instance']))) == 0
         : '_config.fleetLabels must not name a label the alerts already key on or the scrape address (instance): %s' % std.manifestJsonMinified(c.fleetLabels),
  assert std.isString(c.keepFiringFor) : "_config.keepFiringFor must be a duration such as '10m', or '' for none",
  assert std.isString(c.runbookURLPattern) && std.length(std.findSubstr('%s', c.runbookURLPattern)) == 1
         : '_config.runbookURLPattern must hold %%s exactly once (where the runbook name goes), got %s' % c.runbookURLPattern,
  assert all([std.isNumber(c[k]) && c[k] > 0 && c[k] <= 1 for k in ['timeoutRiskRatio', 'timeoutWarningRatio', 'failingRatio']])
         : '_config.timeoutRiskRatio, timeoutWarningRatio and failingRatio are shares between 0 and 1',
}
