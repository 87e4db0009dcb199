// One app, from every connector host that walks it: its walk, its internal URL's latency against
// its timeout (the ratio the walk and the alerts use), failures and status codes, its external URL.
local g = import '../lib/grafana.libsonnet';
local common = import 'common.libsonnet';

{
  local c = $._config,
  local sel = common.sel,
  local GA = 'connector_group=~"$connector_group",app="$app"',
  local histogram = 'appproxy_backend_request_duration_seconds',

  grafanaDashboards+:: {
    'appproxy-app.json': g.dashboard(
      c.dashboardUIDs.app,
      'App Proxy connectors: app detail',
      "appproxy_exporter: one app's walk through the connector flowchart from each connector host, its internal URL's latency against its timeout, failures and status codes, and its external URL.",
      c.dashboardTags,
      common.variables(c, appSingle=true),
      [
        g.table('App', "The app as the inventory knows it: id, internal and external URL, backend timeout setting and Graph's application type.", 'none', [
          g.target(sel('appproxy_app_info', GA), instant=true, table=true),
        ], 24, 4, hide=['job', 'Value']),
        g.stat('Walk stops at', 'The step the walk stops at now, per connector host (OK when every evaluated step passes).', 'none', [
          g.target(sel('appproxy_flow_failing_step', GA), '{{instance}}'),
        ], 6, 5, { fieldConfig+: { defaults+: { mappings: g.stepMappings } } }),
        g.stat('Internal URL loads', 'Whether the internal URL loaded at the last request (steps 7-8), per connector host.', 'none', [
          g.target(sel('appproxy_backend_up', GA), '{{instance}}'),
        ], 4, 5, { fieldConfig+: { defaults+: { mappings: g.okMappings('loads', 'fails') } } }),
        g.stat('Internal URL status', "The last answer's HTTP status while the internal URL loads (a failing answer's status is in the failure table below).", 'none', [
          g.target(sel('appproxy_backend_http_status_code', GA), '{{instance}}'),
        ], 4, 5),
        g.stat('Latency / timeout', 'The median of the last three requests over the backend timeout, per connector host: step 9 fails at %g.' % c.timeoutRiskRatio, 'percentunit', [
          g.target(sel('appproxy_backend_latency_ratio', GA), '{{instance}}'),
        ], 5, 5, { fieldConfig+: { defaults+: { thresholds: common.riskThresholds(c) } } }),
        g.stat('External URL', 'Step 10: the external URL answers as App Proxy should (with external probes enabled).', 'none', [
          g.target(sel('appproxy_external_up', GA), '{{instance}}'),
        ], 5, 5, { fieldConfig+: { defaults+: { mappings: g.okMappings('answers', 'fails') } } }),

        g.row('The walk (steps 1-10)'),
        g.timeline('Walk over time', 'The step the walk stops at over time, per connector host.', 'none', [
          g.target(sel('appproxy_flow_failing_step', GA), '{{instance}}'),
        ], 24, 4, g.stepMappings),
        g.timeline('Host and group steps over time', 'The steps this app shares with its host (3-6) and its group (2), per connector host.', 'none', [
          g.target(sel('appproxy_flow_step_ok', 'connector_group=~"$connector_group|",app=""'), '{{step}} {{step_name}} ({{instance}})'),
        ], 24, 7, g.okMappings('pass', 'fail')),
        g.timeline('Every step of this app over time', "Each step of this app's walk, with metrics.per_step_series: true (empty otherwise).", 'none', [
          g.target(sel('appproxy_flow_step_ok', GA), '{{step}} {{step_name}} ({{instance}})'),
        ], 24, 8, g.okMappings('pass', 'fail')),

        g.row('Steps 7-9: the internal URL'),
        g.timeseries('Latency against the timeout', 'The ratio the walk judges step 9 with (the median of the last three requests over the backend timeout) and its average over %s that the alerts use, against the ticket (%g) and page (%g) ratios.' % [c.timeoutRiskWindow, c.timeoutWarningRatio, c.timeoutRiskRatio], 'percentunit', [
          g.target(sel('appproxy_backend_latency_ratio', GA), 'median of the last 3 ({{instance}})'),
          g.target('%s{job=~"$job",instance=~"$instance",%s}' % [common.latencyRecord(c), GA], 'averaged over %s ({{instance}})' % c.timeoutRiskWindow),
        ], 16, 9, { fieldConfig+: { defaults+: { thresholds: common.riskThresholds(c), custom+: { thresholdsStyle: { mode: 'line+area' } } } } }),
        g.timeseries('Mean latency', 'The mean time to the final response head, per connector host, and the backend timeout where the exporter reports it (metrics.per_step_series: true).', 's', [
          g.target('sum by (instance) (rate(%s[$__rate_interval])) / sum by (instance) (rate(%s[$__rate_interval]))' % [sel(histogram + '_sum', GA), sel(histogram + '_count', GA)], 'mean ({{instance}})'),
          g.target(sel('appproxy_backend_timeout_seconds', GA), 'timeout ({{instance}})'),
        ], 8, 9),
        g.timeseries('Requests past the risk threshold and past the timeout', "Requests per second slower than %g of the timeout (the histogram's lower bucket) and slower than the timeout itself (its upper bucket), per connector host." % c.timeoutRiskRatio, 'reqps', [
          g.target('sum by (instance) (rate(%s[$__rate_interval])) - sum by (instance) (min without (le) (rate(%s[$__rate_interval])))' % [sel(histogram + '_count', GA), sel(histogram + '_bucket', GA + ',le!="+Inf"')], 'past the risk threshold ({{instance}})'),
          g.target('sum by (instance) (rate(%s[$__rate_interval])) - sum by (instance) (max without (le) (rate(%s[$__rate_interval])))' % [sel(histogram + '_count', GA), sel(histogram + '_bucket', GA + ',le!="+Inf"')], 'past the timeout ({{instance}})'),
        ], 12, 8),
        g.timeseries('Request phases', 'The last request by phase (resolve, connect, tls, processing, transfer), with metrics.per_step_series: true.', 's', [
          g.target(sel('appproxy_backend_phase_duration_seconds', GA), '{{phase}} ({{instance}})'),
        ], 12, 8),
        g.timeline('Internal URL: loads, or the failure phase', 'Whether the internal URL loads over time, and while it fails, the phase (resolve, connect: step 8; tls, http: step 7; timeout: step 9; proxy: step 5).', 'none', [
          g.target(sel('appproxy_backend_up', GA), 'loads ({{instance}})'),
          g.target(sel('appproxy_backend_failure_info', GA), '{{phase}} {{code}} ({{instance}})'),
        ], 24, 5, g.okMappings('yes', 'no')),
        g.table('Failing now', "The failure phase of the last request and, where it is http, the backend's status code.", 'none', [
          g.target(sel('appproxy_backend_failure_info', GA), instant=true, table=true),
        ], 12, 6, hide=['job', 'Value']),
        g.timeseries('Internal URL status code', "The last passing answer's HTTP status over time.", 'none', [
          g.target(sel('appproxy_backend_http_status_code', GA), '{{instance}}'),
        ], 12, 6),
        g.table('Internal URL TLS version', "The TLS version of the last handshake with the internal URL, per connector host: TLS 1.2 or 1.3, or TLS 1.0/1.1 for a backend that offers nothing newer (step 7 then follows the host's SChannel settings; AppProxyBackendLegacyTls). Empty for an http URL.", 'none', [
          g.target(sel('appproxy_backend_tls_version_info', GA), instant=true, table=true),
        ], 24, 4, hide=['job', 'Value']),

        g.row('Step 10: the external URL'),
        g.timeline('External URL over time', 'Whether the external URL answers as App Proxy should over time (with external probes enabled).', 'none', [
          g.target(sel('appproxy_external_up', GA), '{{instance}}'),
        ], 9, 6, g.okMappings('answers', 'fails')),
        g.timeseries('External URL status code', "The external URL's last status, with metrics.per_step_series: true.", 'none', [
          g.target(sel('appproxy_external_http_status_code', GA), '{{instance}}'),
        ], 9, 6),
        g.stat('Custom-domain certificate expires in', "Time left before the certificate App Proxy presents on the app's custom domain expires (Graph's verifiedCustomDomainCertificatesMetadata; empty for an app on msappproxy.net): a ticket under 30 days, a page under 7. Whether the external URL presents it is step 10's.", 's', [
          g.target('min(%s) - time()' % sel('appproxy_custom_domain_certificate_expiry_timestamp_seconds', GA), 'expires in'),
        ], 6, 6, { fieldConfig+: { defaults+: { thresholds: common.certificateThresholds } } }),
        g.timeseries('Private Access segments (step 8)', "For a Private Access app (nonwebapp, quickaccessapp): the TCP address:port pairs of its Graph segments each connector host probed (ranges and port ranges sampled per probes.segments), and how many did not connect. Which ones, and why, are on the exporter's page.", 'short', [
          g.target(sel('appproxy_segment_targets', GA), 'probed ({{instance}})'),
          g.target(sel('appproxy_segment_failed_targets', GA), 'not connecting ({{instance}})'),
        ], 12, 6),
      ],
      [
        {
          title: 'Overview',
          type: 'link',
          url: common.dashboardURL(c, c.dashboardUIDs.overview),
          icon: 'dashboard',
          tooltip: 'Every connector group and app, ports, endpoints and proxy',
          includeVars: true,
          keepTime: true,
          asDropdown: false,
          targetBlank: false,
          tags: [],
        },
      ],
      [g.alertAnnotation('Firing alerts of this app and its hosts', 'ALERTS{alertname=~"AppProxy.*",alertstate="firing",app=~"$app|"}', '{{connector_group}} {{app}} {{instance}}')],
    ),
  },
}
