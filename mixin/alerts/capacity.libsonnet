// The connector host's capacity (src/host/capacity.rs): Microsoft's concept-connectors.md asks
// for peak CPU and memory under 70%, with "adding more connectors" as the remedy; a host out of
// ephemeral ports cannot open the connections its apps need. Per host (each exporter reads its
// own host), from a Windows connector host only: elsewhere the series do not exist and nothing
// fires. A sustained 70% is a ticket; ports about to run out is a page.
local a = import '../lib/alerting.libsonnet';

{
  local c = a.promqlConfig($._config),
  local cap = $._config.capacity,
  local sel(metric, extra='') = a.series(c, metric, extra),
  local percent(ratio) = a.percent(ratio),

  local rule(name, expr, forDuration, severity, summary, description) = {
    alert: name,
    expr: expr,
    'for': forDuration,
    labels: { severity: severity, flow_step: 'connector_installed' },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: a.runbook(c, 'connector_installed#host-check-capacity'),
    } + a.overviewDashboard(c),
  } + a.keepFiring(c),

  local cpu(extra) = 'sum without (mode) (rate(%s[%s]))' % [sel('appproxy_host_cpu_seconds_total', extra), cap.cpuWindow],

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'appproxy.connector-capacity',
        rules: [
          rule(
            'AppProxyConnectorHostCpuHigh',
            '1 - %s / %s > %g\n' % [cpu('mode="idle"'), cpu(''), cap.utilisation],
            cap['for'],
            c.severities.ticket,
            'A connector host has stayed above the CPU Microsoft advises; add a connector to its group.',
            'The CPU of connector host {{ $labels.instance }} has been {{ $value | humanizePercentage }} busy for %s, above the %s Microsoft advises as peak (concept-connectors.md). Add a connector to its connector group to share the load.' % [cap['for'], percent(cap.utilisation)],
          ),
          rule(
            'AppProxyConnectorHostMemoryHigh',
            '1 - %s / %s > %g\n' % [sel('appproxy_host_memory_available_bytes'), sel('appproxy_host_memory_total_bytes'), cap.utilisation],
            cap['for'],
            c.severities.ticket,
            'A connector host has stayed above the memory use Microsoft advises; add a connector to its group.',
            'Connector host {{ $labels.instance }} has had {{ $value | humanizePercentage }} of its memory in use for %s, above the %s Microsoft advises as peak (concept-connectors.md). Add a connector to its connector group to share the load.' % [cap['for'], percent(cap.utilisation)],
          ),
          rule(
            'AppProxyEphemeralPortsExhausted',
            '%s / %s > %g\n' % [sel('appproxy_host_ephemeral_ports_in_use'), sel('appproxy_host_dynamic_port_range_ports'), cap.ports],
            cap.portsFor,
            c.severities.page,
            'A connector host is running out of ephemeral ports; new connections to the service and the backends will fail.',
            'Connector host {{ $labels.instance }} has {{ $value | humanizePercentage }} of its dynamic (ephemeral) port range in use. Add a connector to its connector group, or widen the range: netsh int ipv4 set dynamicport tcp start=10000 num=55536 (and ipv6), as an administrator.',
          ),
        ],
      },
    ],
  },
}
