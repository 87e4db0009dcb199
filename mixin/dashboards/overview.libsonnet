// The overview: every connector group and app the selected exporters walk, worst first, so it
// stays readable at a thousand apps (tables and timelines list only apps that failed in the
// range, at most dashboardTopApps of them), and the host-level steps, inventory and exporter.
local g = import '../lib/grafana.libsonnet';
local common = import 'common.libsonnet';

{
  local c = $._config,
  local sel = common.sel,
  local G = 'connector_group=~"$connector_group"',
  local A = 'app=~"$app"',
  local GA = G + ',' + A,
  local top = c.dashboardTopApps,
  local appLinks = { app: [common.appLink(c)], step_name: [common.runbookLink(c)] },

  grafanaDashboards+:: {
    'appproxy-overview.json': g.dashboard(
      c.dashboardUIDs.overview,
      'App Proxy connectors: overview',
      "appproxy_exporter: Microsoft's App Proxy connector troubleshooting flowchart, walked per connector group and app from each connector host, with the host-level steps (ports, endpoints, proxy), worst apps first.",
      c.dashboardTags,
      common.variables(c),
      [
        g.row('Summary: the selected connector groups and apps'),
        g.stat('Apps walked', 'How many apps the selected exporters walk through the flowchart (steps 1-10) in the selected connector groups and apps (with All, apps without a group too).', 'short', [
          g.target('count(count by (connector_group, app) (%s))' % sel('appproxy_flow_failing_step', GA)),
        ], 4, 5),
        g.stat('Apps failing from every host', 'Apps whose walk stops at a step on every connector host that serves them: their users are cut off (these alerts page).', 'short', [
          g.target('count(min by (connector_group, app) (%s) > 0) or vector(0)' % sel('appproxy_flow_failing_step', GA)),
        ], 4, 5, { fieldConfig+: { defaults+: { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }] } } } }),
        g.stat('Apps failing from some host', 'Apps whose walk stops at a step on at least one connector host; App Proxy still serves them from the others where some pass.', 'short', [
          g.target('count(max by (connector_group, app) (%s) > 0) or vector(0)' % sel('appproxy_flow_failing_step', GA)),
        ], 4, 5, { fieldConfig+: { defaults+: { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1 }] } } } }),
        g.bargauge('Where the walks stop', 'How many app walks (app and host) stop at each step now.', 'short', [
          g.target('count by (step, step_name) (%s)' % sel('appproxy_flow_failing_step_info', GA), '{{step}} {{step_name}}', instant=true),
        ], 12, 5),
        g.table('Apps that failed in the range, worst first', 'The %d app walks (app, host and step) that failed the most in the time range: the share of their walks that stopped at that step. Click an app for its detail, a step for its runbook.' % top, 'percentunit', [
          g.target('topk(%d, count_over_time(%s[$__range]) / ignoring (step, step_name) group_left count_over_time(%s[$__range]))' % [top, sel('appproxy_flow_failing_step_info', GA), sel('appproxy_flow_failing_step', GA)], instant=true, table=true),
        ], 24, 8, links=appLinks, sortBy='Value', hide=['job']),

        g.row('The walk of each app'),
        g.timeline('Walk of the apps that failed in the range', 'Each app walk over time (per connector host): OK, or the first failing step of the flowchart (1 connector_group_assigned to 10 escalate_app_flow). Only the %d apps with the highest step reached in the range: healthy apps stay off the chart. Click an app for its detail.' % top, 'none', [
          g.target('%s\nand on (job, instance, connector_group, app)\ntopk(%d, max_over_time(%s[$__range] @ end()) > 0)' % [sel('appproxy_flow_failing_step', GA), top, sel('appproxy_flow_failing_step', GA)], '{{app}} ({{instance}})'),
        ], 24, 10, g.stepMappings, { fieldConfig+: { defaults+: { links: [common.appLink(c, '__field.labels')] } } }),
        g.table('Steps judged once per host (3-6) and per group (2)', 'The port test, required endpoints, forward proxy and proxy consistency of each connector host, and step 2 of each connector group, which every app of the host (or group) shares. Absent where not evaluated.', 'none', [
          g.target(sel('appproxy_flow_step_ok', 'app=""'), instant=true, table=true),
        ], 12, 8, links={ step_name: [common.runbookLink(c)] }, sortBy='Value', desc=false, hide=['job'], extra={ fieldConfig+: { defaults+: { mappings: g.okMappings('pass', 'fail') } } }),
        g.table('Failing cells of the per-app step matrix', 'With metrics.per_step_series: true the exporter also reports every step of every app; here the cells that fail now (empty otherwise: the walk above tells where each app stops).', 'none', [
          g.target('min by (connector_group, app, step, step_name) (%s == 0)' % sel('appproxy_flow_step_ok', GA + ',app!=""'), instant=true, table=true),
        ], 12, 8, links=appLinks, extra={ fieldConfig+: { defaults+: { mappings: g.okMappings('pass', 'fail') } } }),

        g.row('Steps 7-10: the apps, worst first'),
        g.table('Internal URL (steps 7-8): least available in the range', 'The %d apps whose internal URL loaded least often in the time range, per connector host (only apps that failed at least once).' % top, 'percentunit', [
          g.target('bottomk(%d, avg_over_time(%s[$__range]) < 1)' % [top, sel('appproxy_backend_up', GA)], instant=true, table=true),
        ], 12, 8, links=appLinks, sortBy='Value', desc=false, hide=['job']),
        g.table('Internal URL failing now', "Each failing app's failure phase (resolve, connect: step 8; tls, http: step 7; timeout: step 9; proxy: step 5) and the HTTP status where the phase is http.", 'none', [
          g.target(sel('appproxy_backend_failure_info', GA), instant=true, table=true),
        ], 12, 8, links=appLinks, hide=['job', 'Value']),
        g.table('Closest to their timeout (step 9)', 'The %d apps with the highest latency ratio (the median of their last three requests over their backend timeout, averaged over %s): a ticket above %g for %s, a page at %g on every host.' % [top, c.timeoutRiskWindow, c.timeoutWarningRatio, c.timeoutWarningFor, c.timeoutRiskRatio], 'percentunit', [
          g.target('topk(%d, %s{job=~"$job",instance=~"$instance",%s})' % [top, common.latencyRecord(c), GA], instant=true, table=true),
        ], 12, 8, links=appLinks, sortBy='Value', hide=['job'], extra={ fieldConfig+: { defaults+: { thresholds: common.riskThresholds(c), custom+: { cellOptions: { type: 'color-background' } } } } }),
        g.table('External URL (step 10): least available in the range', 'The %d apps whose external URL answered least often as App Proxy should in the time range (only apps that failed at least once; with external probes enabled).' % top, 'percentunit', [
          g.target('bottomk(%d, avg_over_time(%s[$__range]) < 1)' % [top, sel('appproxy_external_up', GA)], instant=true, table=true),
        ], 12, 8, links=appLinks, sortBy='Value', desc=false, hide=['job']),
        g.table('Custom-domain certificates, soonest to expire', "The %d apps on a custom domain whose certificate (Graph's verifiedCustomDomainCertificatesMetadata) expires first: a ticket under 30 days, a page under 7. Whether each external URL presents it is step 10's." % top, 's', [
          g.target('bottomk(%d, min by (connector_group, app) (%s) - time())' % [top, sel('appproxy_custom_domain_certificate_expiry_timestamp_seconds', GA)], instant=true, table=true),
        ], 12, 8, links=appLinks, sortBy='Value', desc=false, extra={ fieldConfig+: { defaults+: { thresholds: common.certificateThresholds, custom+: { cellOptions: { type: 'color-background' } } } } }),
        g.timeseries('Latency / timeout of the slowest apps', 'The latency ratio over time of the 10 apps that came closest to their timeout in the range, against the ticket (%g) and page (%g) ratios.' % [c.timeoutWarningRatio, c.timeoutRiskRatio], 'percentunit', [
          g.target('%s\nand on (job, instance, connector_group, app)\ntopk(10, max_over_time(%s[$__range] @ end()))' % [sel('appproxy_backend_latency_ratio', GA), sel('appproxy_backend_latency_ratio', GA)], '{{app}} ({{instance}})'),
        ], 24, 8, { fieldConfig+: { defaults+: { thresholds: common.riskThresholds(c), custom+: { thresholdsStyle: { mode: 'line' } } } } }),

        g.row('Connector groups'),
        g.stat('Active connectors', 'Active connectors in each selected connector group (Graph status, or the static inventory); none fails step 2 for every app of the group.', 'short', [
          g.target('max by (connector_group) (%s)' % sel('appproxy_connector_group_active_connectors', G), '{{connector_group}}'),
        ], 8, 6, { fieldConfig+: { defaults+: { thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] } } } }),
        g.table('Connectors', 'Every connector of the selected groups and whether it is active.', 'none', [
          g.target('max by (connector_group, machine_name) (%s)' % sel('appproxy_connector_active', G), instant=true, table=true),
        ], 16, 6, extra={ fieldConfig+: { defaults+: { mappings: g.okMappings('active', 'inactive') } } }),

        g.table('Connector version and updates (step 2)', "Each connector host's connector version against the release list (Microsoft's release history built into the exporter, or connector.releases): the value is how many published releases are newer; latest_auto_update is the newest release its updater installs by itself, and a host older than that is not updating (AppProxyConnectorOutdated). Windows connector hosts only.", 'none', [
          g.target(|||
            %s
            * ignoring (version, group_highest) group_left (version) %s
            * ignoring (version, latest, latest_auto_update, source) group_left (latest, latest_auto_update) %s
          ||| % [sel('appproxy_connector_releases_behind'), sel('appproxy_connector_file_version_info'), sel('appproxy_connector_release_list_info')], instant=true, table=true),
        ], 12, 6, sortBy='Value', hide=['job']),
        g.timeseries('Since the updater last acted', "How long ago the updater's Admin log (WAPCUpdaterSvc) last recorded anything, per connector host (read since the exporter started, or since its saved bookmark); whether its service runs is appproxy_connector_service_running{connector_service=\"updater\"}.", 's', [
          g.target('time() - %s' % sel('appproxy_connector_event_last_timestamp_seconds', 'channel="updater"'), 'last activity ({{instance}})'),
        ], 12, 6),

        g.row('Steps 1-2: inventory'),
        g.stat('Inventory refresh', 'Whether the last inventory refresh (Microsoft Graph and the static inventory) succeeded, per exporter.', 'none', [
          g.target(sel('appproxy_inventory_up'), '{{instance}}'),
        ], 4, 7, { fieldConfig+: { defaults+: { mappings: g.okMappings('OK', 'failed') } } }),
        g.stat('Since the last good inventory', 'How old the inventory that steps 1-2 judge from is, per exporter; stale after three refresh intervals.', 's', [
          g.target('time() - %s' % sel('appproxy_inventory_last_success_timestamp_seconds'), '{{instance}}'),
        ], 4, 7),
        g.timeseries('Microsoft Graph requests by answer', 'Requests to Microsoft Graph and its sign-in endpoint per second, by answer (status code, timeout, error).', 'reqps', [
          g.target('sum by (instance, code) (rate(%s[$__rate_interval]))' % sel('appproxy_graph_requests_total'), '{{code}} ({{instance}})'),
        ], 8, 7),
        g.timeseries('Active connectors per group', 'Active connectors of each selected group over time, as each exporter sees them.', 'short', [
          g.target(sel('appproxy_connector_group_active_connectors', G), '{{connector_group}} ({{instance}})'),
        ], 8, 7),

        g.row('Steps 3-4: port test and required endpoints'),
        g.stat('Port test', 'The port test (step 3): outbound TCP 443 and 80 to the service endpoints, per connector host.', 'none', [
          g.target(sel('appproxy_port_open'), 'TCP {{port}} ({{instance}})'),
        ], 6, 6, { fieldConfig+: { defaults+: { mappings: g.okMappings('open', 'blocked') } } }),
        g.stat('Endpoints unreachable by every route', 'Required endpoints (step 4) that neither resolve, connect nor present a genuine chain, directly or through the proxy, per connector host.', 'short', [
          g.target('sum by (instance) (1 - max by (instance, host, port, purpose) (%s))' % sel('appproxy_endpoint_up'), '{{instance}}'),
        ], 6, 6, { fieldConfig+: { defaults+: { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }] } } } }),
        g.table('TLS interception', 'Endpoints whose certificate chain is not issued by an expected organisation (1): TLS inspection, which breaks the connector.', 'none', [
          g.target(sel('appproxy_endpoint_tls_intercepted'), instant=true, table=true),
        ], 12, 6, sortBy='Value', hide=['job']),
        g.table('Required endpoints by route', 'Each required endpoint by route (direct, proxy): 1 reachable, 0 not.', 'none', [
          g.target(sel('appproxy_endpoint_up'), instant=true, table=true),
        ], 12, 10, sortBy='Value', desc=false, hide=['job'], extra={ fieldConfig+: { defaults+: { mappings: g.okMappings('up', 'down') } } }),
        g.timeseries('Slowest endpoint phase by route', 'The slowest resolve, connect, proxy CONNECT and TLS phase among the endpoints, per route and connector host.', 's', [
          g.target('max by (instance, route, phase) (%s)' % sel('appproxy_endpoint_duration_seconds'), '{{route}} {{phase}} ({{instance}})'),
        ], 12, 10),

        g.row('Steps 5-6: forward proxy'),
        g.table('Proxy each service uses', 'The forward proxy the connector and the updater use (direct when none) and where it is set.', 'none', [
          g.target(sel('appproxy_forward_proxy_info'), instant=true, table=true),
        ], 12, 6, hide=['job', 'Value']),
        g.stat('Proxy reachable and CONNECT accepted', 'Step 5: the proxy in use is reachable and accepts CONNECT.', 'none', [
          g.target(sel('appproxy_forward_proxy_up'), '{{proxy_url}} ({{instance}})'),
        ], 4, 6, { fieldConfig+: { defaults+: { mappings: g.okMappings('OK', 'failing') } } }),
        g.stat('Proxy CONNECT answer', "The proxy's last answer to CONNECT (200 accepted; 407 wants credentials; 403, 502 refused).", 'none', [
          g.target(sel('appproxy_forward_proxy_connect_status_code'), '{{proxy_url}} ({{instance}})'),
        ], 4, 6),
        g.stat('Connector and updater agree', "Step 6: connector and updater use the same proxy, and the connector's route works.", 'none', [
          g.target(sel('appproxy_forward_proxy_consistent'), '{{instance}}'),
        ], 4, 6, { fieldConfig+: { defaults+: { mappings: g.okMappings('yes', 'no') } } }),
        g.table('Service config files', "Each service's .exe.config: 1 read, 0 unreadable or malformed (the log has the line and column).", 'none', [
          g.target(sel('appproxy_connector_config_valid'), instant=true, table=true),
        ], 12, 6, sortBy='Value', desc=false, hide=['job']),
        g.timeline('Proxy over time', 'CONNECT through the proxy and the consistency of the route over time.', 'none', [
          g.target(sel('appproxy_forward_proxy_up'), 'CONNECT {{proxy_url}} ({{instance}})'),
          g.target(sel('appproxy_forward_proxy_consistent'), 'consistent ({{instance}})'),
        ], 12, 6, g.okMappings('OK', 'failing')),

        g.row('Connector host capacity'),
        g.timeseries('CPU busy', 'Share of CPU time busy on each connector host (GetSystemTimes), against the %s peak Microsoft advises (concept-connectors.md); above it for %s is a ticket.' % ['%g%%' % (100 * c.capacity.utilisation), c.capacity['for']], 'percentunit', [
          g.target('1 - sum by (instance) (rate(%s[$__rate_interval])) / sum by (instance) (rate(%s[$__rate_interval]))' % [sel('appproxy_host_cpu_seconds_total', 'mode="idle"'), sel('appproxy_host_cpu_seconds_total')], '{{instance}}'),
        ], 8, 8, { fieldConfig+: { defaults+: { min: 0, max: 1, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: c.capacity.utilisation }] } } } }),
        g.timeseries('Memory in use', 'Share of physical memory in use on each connector host (GlobalMemoryStatusEx), against the %s peak Microsoft advises; above it for %s is a ticket.' % ['%g%%' % (100 * c.capacity.utilisation), c.capacity['for']], 'percentunit', [
          g.target('1 - %s / %s' % [sel('appproxy_host_memory_available_bytes'), sel('appproxy_host_memory_total_bytes')], '{{instance}}'),
        ], 8, 8, { fieldConfig+: { defaults+: { min: 0, max: 1, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: c.capacity.utilisation }] } } } }),
        g.timeseries('Ephemeral ports in use', 'Ports of the dynamic (ephemeral) port range in use on each connector host, as a share of the range; above %s pages. Widen the range with netsh int ipv4 set dynamicport tcp, or add a connector.' % '%g%%' % (100 * c.capacity.ports), 'percentunit', [
          g.target('%s / %s' % [sel('appproxy_host_ephemeral_ports_in_use'), sel('appproxy_host_dynamic_port_range_ports')], '{{instance}}'),
        ], 8, 8, { fieldConfig+: { defaults+: { min: 0, max: 1, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: c.capacity.ports }] } } } }),
        g.timeseries('Connector service CPU', "CPU used by the connector service's process (WAPCSvc), in cores, per connector host.", 'short', [
          g.target('rate(%s[$__rate_interval])' % sel('appproxy_connector_process_cpu_seconds_total'), '{{instance}}'),
        ], 8, 8),
        g.timeseries('Connector service memory', "The connector service's working set and private bytes, per connector host.", 'bytes', [
          g.target(sel('appproxy_connector_process_working_set_bytes'), 'working set ({{instance}})'),
          g.target(sel('appproxy_connector_process_private_bytes'), 'private ({{instance}})'),
        ], 8, 8),
        g.timeseries('TCP connections by state', 'TCP connections of each connector host by state (every process; TIME_WAIT still holds its port).', 'short', [
          g.target('sum by (instance, state) (%s) > 0' % sel('appproxy_host_tcp_connections'), '{{state}} ({{instance}})'),
        ], 8, 8),

        g.row('Exporter'),
        g.stat('Scraped', 'Whether Prometheus scrapes each exporter (up).', 'none', [
          g.target(sel('up'), '{{instance}}'),
        ], 4, 6, { fieldConfig+: { defaults+: { mappings: g.okMappings('up', 'down') } } }),
        g.stat('Last config reload', 'Whether the last configuration reload succeeded (a failed one keeps the old configuration).', 'none', [
          g.target(sel('appproxy_exporter_config_last_reload_successful'), '{{instance}}'),
        ], 4, 6, { fieldConfig+: { defaults+: { mappings: g.okMappings('OK', 'failed') } } }),
        g.timeseries('Since the last probe round', 'How long ago each kind of probe round ended, per exporter; endpoints, proxy and backend rounds older than %d s are stale.' % c.probesStaleSeconds, 's', [
          g.target('time() - %s' % sel('appproxy_probe_last_round_timestamp_seconds'), '{{kind}} ({{instance}})'),
        ], 8, 6),
        g.timeseries('Probe round duration', 'How long the last round of each kind took, per exporter.', 's', [
          g.target(sel('appproxy_probe_round_duration_seconds'), '{{kind}} ({{instance}})'),
        ], 8, 6),
        g.table('Exporter version', 'The version and revision of each exporter.', 'none', [
          g.target(sel('appproxy_exporter_build_info'), instant=true, table=true),
        ], 24, 4, hide=['job', 'Value']),
      ],
      [
        {
          title: 'App detail',
          type: 'link',
          url: common.dashboardURL(c, c.dashboardUIDs.app),
          icon: 'dashboard',
          tooltip: 'One app: latency against its timeout, the walk, status codes',
          includeVars: true,
          keepTime: true,
          asDropdown: false,
          targetBlank: false,
          tags: [],
        },
      ],
      [g.alertAnnotation('Firing alerts', 'ALERTS{alertname=~"AppProxy.*",alertstate="firing"}', '{{connector_group}} {{app}} {{instance}}')],
    ),
  },
}
