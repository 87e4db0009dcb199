// The Alertmanager configuration that goes with the rules: routing by severity and the
// inhibition that keeps one failure from paging many times. Rendered to
// deploy/alertmanager/alertmanager.yml; replace its receivers with your own.
//
// Every inhibition mutes only what its source explains (the same host, or the same connector
// group or app, at the step it names) and only alerts of its own severity or lower: a ticket
// never silences a page. Every `equal` carries _config.fleetLabels, so a fleet that pages per
// site inhibits per site.
{
  local c = $._config,
  local sev = c.severities,
  local names(list) = std.join('|', list),
  local equal(labels) = labels + c.fleetLabels,

  // Host-level failures of steps 2-6 on one connector host (tickets): each explains the per-app
  // tickets of its step on that host.
  local hostFailures = [
    'AppProxyConnectorServiceStopped',
    'AppProxyPortBlocked',
    'AppProxyRequiredEndpointUnreachable',
    'AppProxyTlsIntercepted',
    'AppProxyTlsPrerequisiteMissing',
    'AppProxyForwardProxyDown',
    'AppProxyConnectorConfigInvalid',
    'AppProxyForwardProxyMismatch',
  ],
  // Alerts about one app, each a page for the fleet and a ticket per host.
  local perApp = ['AppProxyFlowStepFailing', 'AppProxyBackendDown', 'AppProxyBackendTimeoutRisk', 'AppProxyKerberosDelegationBroken'],

  // An app's specific alert explains the walk's generic one at the steps it covers: a page for
  // the app (no instance) mutes it on every host, a ticket on its own host only.
  local specific(sources, steps, why) = [
    {
      why:: why,
      source_matchers: ['alertname=~"%s"' % names(sources), 'severity="%s"' % sev.page],
      target_matchers: ['alertname="AppProxyFlowStepFailing"', 'flow_step=~"%s"' % names(steps)],
      equal: equal(['connector_group', 'app']),
    },
    {
      why:: '',
      source_matchers: ['alertname=~"%s"' % names(sources), 'severity="%s"' % sev.ticket],
      target_matchers: ['alertname="AppProxyFlowStepFailing"', 'flow_step=~"%s"' % names(steps), 'severity="%s"' % sev.ticket],
      equal: equal(['connector_group', 'app', 'instance']),
    },
  ],

  alertmanagerConfig:: {
    route: {
      receiver: 'tickets',
      why:: |||
        One notification per alert and connector group: the apps and connector hosts it concerns
        are listed in it, so a fleet of hosts or a thousand apps is not a thousand pages.
      |||,
      group_by: ['alertname', 'connector_group'],
      group_wait: '30s',
      group_interval: '5m',
      repeat_interval: '4h',
      routes: [
        { receiver: 'pager', matchers: ['severity="%s"' % sev.page] },
      ],
    },
    receivers: [
      { name: 'tickets', webhook_configs: [{ url: 'http://ticketing.example.invalid/alertmanager' }] },
      { name: 'pager', webhook_configs: [{ url: 'http://pager.example.invalid/alertmanager' }] },
    ],
    inhibit_rules: [
                     {
                       why:: |||
                         Every connector host of a group fails a step of 2-6 (one page for the group): each of its
                         apps fails at that step, on every host; their pages and tickets say nothing more.
                       |||,
                       source_matchers: ['alertname="AppProxyConnectorGroupStepFailing"', 'severity="%s"' % sev.page],
                       target_matchers: ['alertname="AppProxyFlowStepFailing"'],
                       equal: equal(['connector_group', 'flow_step']),
                     },
                     {
                       why:: |||
                         A group without an active connector (Graph's word, one page for the fleet) is why its apps,
                         and the group on every host, fail step 2.
                       |||,
                       source_matchers: ['alertname="AppProxyNoActiveConnector"', 'severity="%s"' % sev.page],
                       target_matchers: ['alertname=~"AppProxyFlowStepFailing|AppProxyConnectorGroupStepFailing"', 'flow_step="connector_installed"'],
                       equal: equal(['connector_group']),
                     },
                     {
                       why:: |||
                         A host-level failure on one host (a ticket) is why that host's walks of every app stop at
                         its step; the per-app tickets of that host and step stay quiet.
                       |||,
                       source_matchers: ['alertname=~"%s"' % names(hostFailures), 'severity="%s"' % sev.ticket],
                       target_matchers: ['alertname="AppProxyFlowStepFailing"', 'severity="%s"' % sev.ticket],
                       equal: equal(['instance', 'flow_step']),
                     },
                   ]
                   + specific(['AppProxyBackendDown', 'AppProxyKerberosDelegationBroken'], ['internal_url', 'internal_network'], |||
                     An app's backend down (or its Kerberos delegation broken) explains its walk stopping at step 7
                     or 8: the page for the app on every host, the ticket on its own host.
                   |||)
                   + specific(['AppProxyBackendTimeoutRisk'], ['backend_timeout'], |||
                     An app close to its backend timeout explains its walk stopping at step 9.
                   |||)
                   + [
                     {
                       why:: |||
                         The page and the ticket of one alert for one app (it failed on one host, then on every
                         host; the ticket keeps firing a while): the page says it all.
                       |||,
                       source_matchers: ['alertname=~"%s"' % names(perApp), 'severity="%s"' % sev.page],
                       target_matchers: ['alertname=~"%s"' % names(perApp), 'severity="%s"' % sev.ticket],
                       equal: equal(['alertname', 'connector_group', 'app', 'flow_step']),
                     },
                     {
                       why:: |||
                         The same for one host's own alert (a certificate that expires in days, then in hours).
                       |||,
                       source_matchers: ['severity="%s"' % sev.page],
                       target_matchers: ['severity="%s"' % sev.ticket],
                       equal: equal(['alertname', 'instance', 'connector_group', 'app']),
                     },
                   ],
  },
}
