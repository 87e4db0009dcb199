// Steps 3-6, judged once per connector host. One host that fails them is a ticket for that
// host: its connector stops serving and App Proxy sends the group's users to the others. A step
// (2-6) that fails on every connector host of a group is one page for the group
// (AppProxyConnectorGroupStepFailing): none of its connectors works. Each explains the per-app
// alerts of that step, on that host or in that group, which Alertmanager keeps quiet meanwhile
// (alertmanager.libsonnet).
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
    labels: { severity: severity, flow_step: step },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: a.runbook(c, step),
    } + a.overviewDashboard(c),
  } + a.keepFiring(c),

  // The groups each host walks: step 2 is judged once per group it serves.
  local groupsOfHost = 'group without (step, step_name) (%s)' % sel('appproxy_flow_step_ok', 'app="",connector_group!="",step="2"'),
  // A host's share of the window that step `step` passed, once per group it serves: step 2 is
  // the group's own; steps 3-6 the host's, joined to each of its groups.
  local stepShare(step) =
    if step == 2 then
      'avg_over_time(%s[%s])' % [sel('appproxy_flow_step_ok', 'app="",connector_group!="",step="2"'), c.hostWindow]
    else
      'avg_over_time(%s[%s])\n  * ignoring (connector_group, step, step_name) group_right (step, step_name)\n  %s' % [
        sel('appproxy_flow_step_ok', 'app="",connector_group="",step="%d"' % step),
        c.hostWindow,
        groupsOfHost,
      ],
  local group = ['connector_group'],

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'appproxy.connector-host',
        rules: [
          {
            alert: 'AppProxyConnectorGroupStepFailing',
            expr: 'max %s (\n    %s\n) < %s\n' % [
              a.by(c, group + ['step', 'step_name']),
              std.join('\n  or\n    ', [stepShare(step) for step in [2, 3, 4, 5, 6]]),
              c.failingRatio,
            ],
            'for': '5m',
            labels: { severity: c.severities.page, flow_step: '{{ $labels.step_name }}' },
            annotations: {
              summary: 'Every connector host of a connector group fails the same step; none of its connectors works.',
              description: "Every connector host that serves connector group {{ $labels.connector_group }} (%s) has failed step {{ $labels.step }} ({{ $labels.step_name }}) for most of %s: no connector of the group can serve its apps, and each of them fails at that step. The evidence and the remedy are on each exporter's page and in its /api/v1/diagnosis." % [
                a.lookupAll(a.keyed(c, 'appproxy_flow_step_ok', a.identity(c, group), "app='',step='2'"), 'instance', '{{ .Labels.instance }}', 'none reporting'),
                c.hostWindow,
              ],
              runbook_url: a.runbook(c, '{{ $labels.step_name }}'),
            } + a.overviewDashboard(c),
          } + a.keepFiring(c),
          hostAlert(
            'AppProxyPortBlocked',
            failing(sel('appproxy_port_open')),
            c.severities.ticket,
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
            c.severities.ticket,
            'required_endpoints',
            'TLS to a Microsoft endpoint is intercepted; the connector cannot work through it.',
            "The certificate chain {{ $labels.host }} presents to {{ $labels.instance }} is not issued by an expected organisation: TLS inspection breaks the connector's client certificate (ConnectorError:Unauthorized). Step 4 (required_endpoints) fails.",
          ),
          hostAlert(
            'AppProxyForwardProxyDown',
            failing(sel('appproxy_forward_proxy_up')),
            c.severities.ticket,
            'forward_proxy',
            'The forward proxy the connector uses does not work.',
            '{{ $labels.proxy_url }}, used from {{ $labels.instance }}, has been unreachable or refused CONNECT for most of %s (last answer %s): step 5 (forward_proxy) fails.' % [
              c.hostWindow,
              a.lookup(a.keyed(c, 'appproxy_forward_proxy_connect_status_code', ['instance', 'proxy_url']), '{{ .Value }}', 'none'),
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
              a.keyed(c, 'appproxy_forward_proxy_info', ['instance']),
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
