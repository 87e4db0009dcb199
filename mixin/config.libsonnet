// The settings a user of the mixin may change: override any of them with
//   (import 'mixin.libsonnet') + { _config+:: { selector: 'job="connectors"' } }
{
  _config+:: {
    // Every selector of the rules and dashboards starts with this: the scrape job(s) of the
    // exporters. The default matches the examples' job `appproxy` and the job the Prometheus
    // Operator names after the Kubernetes Service `appproxy-exporter`.
    selector: 'job=~"appproxy|appproxy-exporter"',

    // The target labels that tell one exporter (one connector host) from another. Tenant-wide
    // facts are aggregated without them, so N exporters raise one alert; per-app alerts keep them.
    hostLabels: ['instance', 'pod'],

    // Where alerts link: %s is a step_name (with an optional #section) or `exporter`. The
    // exporter serves these pages at /runbooks/<name>; set its --web.external-url and put it here.
    runbookURLPattern: 'https://appproxy-exporter.example.com/runbooks/%s',

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
}
