// Steps 3-6, judged once per connector host: each failure explains every app's failure on
// that host, so Alertmanager lets these inhibit the per-app alerts of the same instance
// (deploy/alertmanager/alertmanager.yml).
local a = import '../lib/alerting.libsonnet';

{
  local c = a.promqlConfig($._config),
  local sel(metric, extra='') = a.series(c, metric, extra),
  // A 0/1 health series failing most of the host window.
  local failing(series) = 'avg_over_time(%s[%s]) < %s\n' % [series, c.hostWindow, c.failingRatio],

  local hostAlert(name, expr, severity, step, summary, description, forDuration='5m') = {
    alert: name,
    expr: expr,
    'for': forDuration,
    keep_firing_for: '10m',
    labels: { severity: severity, flow_step: step },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: a.runbook(c, step),
    } + a.overviewDashboard(c),
  },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'appproxy.connector-host',
        rules: [
          hostAlert(
            'AppProxyPortBlocked',
            failing(sel('appproxy_port_open')),
            c.severities.page,
            'port_test',
            'Outbound port blocked on an App Proxy connector host.',
            'Port {{ $labels.port }} has been closed from {{ $labels.instance }} for most of %s: no required endpoint accepts a TCP connection on it by any route, so every app served from this host fails at step 3 (port_test).' % c.hostWindow,
          ),
          hostAlert(
            'AppProxyRequiredEndpointUnreachable',
            'max without (route) (avg_over_time(%s[%s])) < %s\n' % [sel('appproxy_endpoint_up'), c.hostWindow, c.failingRatio],
            c.severities.ticket,
            'required_endpoints',
            'A Microsoft endpoint the connector needs is unreachable.',
            '{{ $labels.host }}:{{ $labels.port }} ({{ $labels.purpose }}) has not resolved, connected or presented a genuine TLS chain from {{ $labels.instance }} by any route for most of %s: step 4 (required_endpoints) fails.' % c.hostWindow,
            forDuration='10m',
          ),
          hostAlert(
            'AppProxyTlsIntercepted',
            'avg_over_time(%s[%s]) >= %s\n' % [sel('appproxy_endpoint_tls_intercepted'), c.hostWindow, c.failingRatio],
            c.severities.page,
            'required_endpoints',
            'TLS to a Microsoft endpoint is intercepted; the connector cannot work through it.',
            "The certificate chain {{ $labels.host }} presents to {{ $labels.instance }} is not issued by an expected organisation: TLS inspection breaks the connector's client certificate (ConnectorError:Unauthorized). Step 4 (required_endpoints) fails.",
          ),
          hostAlert(
            'AppProxyForwardProxyDown',
            failing(sel('appproxy_forward_proxy_up')),
            c.severities.page,
            'forward_proxy',
            'The forward proxy the connector uses does not work.',
            '{{ $labels.proxy_url }}, used from {{ $labels.instance }}, has been unreachable or refused CONNECT for most of %s (last answer %s): step 5 (forward_proxy) fails.' % [
              c.hostWindow,
              a.lookup(a.keyed('appproxy_forward_proxy_connect_status_code', ['instance', 'proxy_url']), '{{ .Value }}', 'none'),
            ],
          ),
          hostAlert(
            'AppProxyConnectorConfigInvalid',
            'max_over_time(%s[%s]) == 0\n' % [sel('appproxy_connector_config_valid'), c.hostWindow],
            c.severities.ticket,
            'forward_proxy',
            "A connector service's .exe.config cannot be read.",
            "{{ $labels.file }} ({{ $labels.connector_service }}) on {{ $labels.instance }} is unreadable or malformed; its proxy setting is unknown and the service may not start. Step 5 (forward_proxy) fails; the exporter's log has the line and column.",
          ),
          hostAlert(
            'AppProxyForwardProxyMismatch',
            'avg_over_time(%s[10m]) < %s\n' % [sel('appproxy_forward_proxy_consistent'), c.failingRatio],
            c.severities.ticket,
            'proxy_consistency',
            "Connector and updater disagree on the proxy, or the connector's route does not work.",
            'On {{ $labels.instance }} the connector and the updater use different proxies (%s), or the connector is set for a route (direct or proxy) that does not get out while the other does: step 6 (proxy_consistency) fails.' % a.lookupAll(
              a.keyed('appproxy_forward_proxy_info', ['instance']),
              'connector_service',
              '{{ .Labels.connector_service }} {{ .Labels.proxy_url }}',
              'unknown'
            ),
            forDuration='10m',
          ),
        ],
      },
    ],
  },
}
