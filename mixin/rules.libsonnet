// Recording rules: the one definition of timeout risk. The exporter's
// appproxy_backend_latency_ratio is the ratio the walk judges step 9 with (the median of an
// app's last three requests divided by its backend timeout); averaged over a window, it feeds
// both tiers of AppProxyBackendTimeoutRisk and the dashboards' "closest to their timeout".
local a = import 'lib/alerting.libsonnet';

{
  local c = $._config,
  prometheusRules+:: {
    groups+: [
      {
        name: 'appproxy.rules',
        rules: [
          {
            record: a.latencyRecord(c),
            expr: 'avg_over_time(%s[%s])\n' % [a.series(c, 'appproxy_backend_latency_ratio'), c.timeoutRiskWindow],
          },
        ],
      },
    ],
  },
}
