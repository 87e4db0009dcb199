// The few Grafana helpers the dashboards need (in place of grafonnet): a dashboard, its
// variables, panels of each kind, targets, links, and a layout that fills in gridPos.
local datasource = { type: 'prometheus', uid: '${datasource}' };

// A value mapping of the walk's step numbers to their names (0 is OK).
local steps = ['connector_group_assigned', 'connector_installed', 'port_test', 'required_endpoints', 'forward_proxy', 'proxy_consistency', 'internal_url', 'internal_network', 'backend_timeout', 'escalate_app_flow'];

{
  steps:: steps,

  stepMappings:: [{
    type: 'value',
    options: { '0': { text: 'OK', color: 'green', index: 0 } } + {
      [std.toString(i + 1)]: { text: '%d %s' % [i + 1, steps[i]], color: if i >= 8 then 'orange' else 'red', index: i + 1 }
      for i in std.range(0, 9)
    },
  }],
  okMappings(ok='OK', failing='failing'):: [{
    type: 'value',
    options: { '1': { text: ok, color: 'green', index: 0 }, '0': { text: failing, color: 'red', index: 1 } },
  }],

  // A query target; refIds are set by `panel`.
  target(expr, legend='__auto', instant=false, table=false):: {
    datasource: datasource,
    expr: expr,
    legendFormat: legend,
    instant: instant,
    range: !instant,
    format: if table then 'table' else 'time_series',
  },

  link(title, url, blank=false):: { title: title, url: url, targetBlank: blank },

  // A panel: `kind` is Grafana's panel type; `extra` is merged last.
  panel(kind, title, description, unit, targets, w, h, extra={}):: {
    type: kind,
    title: title,
    description: description,
    datasource: datasource,
    targets: [targets[i] { refId: std.char(65 + i) } for i in std.range(0, std.length(targets) - 1)],
    fieldConfig: {
      defaults: {
        unit: unit,
        mappings: [],
        thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
        color: { mode: 'thresholds' },
      },
      overrides: [],
    },
    w:: w,
    h:: h,
  } + extra,

  stat(title, description, unit, targets, w, h, extra={}):: self.panel('stat', title, description, unit, targets, w, h, {
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      orientation: 'auto',
      textMode: 'auto',
      colorMode: 'value',
      graphMode: 'none',
      justifyMode: 'auto',
    },
  } + extra),

  timeseries(title, description, unit, targets, w, h, extra={}):: self.panel('timeseries', title, description, unit, targets, w, h, {
    fieldConfig+: { defaults+: { color: { mode: 'palette-classic' }, custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never', spanNulls: false } } },
    options: {
      legend: { showLegend: true, displayMode: 'list', placement: 'bottom', calcs: [] },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  } + extra),

  // One row of colour per series over time: the walk, an up/down series.
  timeline(title, description, unit, targets, w, h, mappings, extra={}):: self.panel('state-timeline', title, description, unit, targets, w, h, {
    fieldConfig+: { defaults+: { mappings: mappings, custom: { lineWidth: 0, fillOpacity: 80 } } },
    options: { mergeValues: true, showValue: 'auto', alignValue: 'left', rowHeight: 0.9, legend: { showLegend: false }, tooltip: { mode: 'single' } },
  } + extra),

  // A table of instant results; `links` maps a column to its data links, `sortBy` a column.
  table(title, description, unit, targets, w, h, links={}, sortBy=null, desc=true, hide=[], extra={}):: self.panel('table', title, description, unit, targets, w, h, {
    fieldConfig+: {
      defaults+: { custom: { align: 'auto', filterable: true } },
      overrides: [
        { matcher: { id: 'byName', options: column }, properties: [{ id: 'links', value: links[column] }] }
        for column in std.objectFields(links)
      ],
    },
    options: { showHeader: true, cellHeight: 'sm' } + (if sortBy == null then {} else { sortBy: [{ displayName: sortBy, desc: desc }] }),
    transformations: [
      { id: 'merge', options: {} },
      { id: 'organize', options: { excludeByName: { Time: true, __name__: true } + { [c]: true for c in hide } } },
    ],
  } + extra),

  bargauge(title, description, unit, targets, w, h, extra={}):: self.panel('bargauge', title, description, unit, targets, w, h, {
    options: {
      displayMode: 'gradient',
      orientation: 'horizontal',
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      showUnfilled: true,
    },
  } + extra),

  row(title):: { type: 'row', title: title, collapsed: false, panels: [], w:: 24, h:: 1 },

  // Panels laid out left to right, wrapping at 24 columns; a row starts a new line.
  layout(panels)::
    local place(state, p) =
      local wraps = p.type == 'row' || state.x + p.w > 24;
      local x = if wraps then 0 else state.x;
      local y = if wraps then state.y + state.h else state.y;
      {
        x: if p.type == 'row' then 24 else x + p.w,
        y: y,
        h: if wraps then p.h else std.max(state.h, p.h),
        panels: state.panels + [p { id: std.length(state.panels) + 1, gridPos: { x: x, y: y, w: p.w, h: p.h } }],
      };
    std.foldl(place, panels, { x: 0, y: 0, h: 0, panels: [] }).panels,

  // A query variable over label values (multi-select with All, unless `single`).
  variable(name, label, query, allValue='.+', single=false):: {
    name: name,
    label: label,
    type: 'query',
    datasource: datasource,
    definition: query,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
    refresh: 2,
    regex: '',
    sort: 1,
    multi: !single,
    includeAll: !single,
    current: {},
    options: [],
    hide: 0,
    skipUrlSync: false,
  } + (if single then {} else { allValue: allValue }),

  dashboard(uid, title, description, tags, variables, panels, links, annotations):: {
    __inputs: [{ name: 'DS_PROMETHEUS', label: 'Prometheus', description: '', type: 'datasource', pluginId: 'prometheus', pluginName: 'Prometheus' }],
    __requires: [
      { type: 'grafana', id: 'grafana', name: 'Grafana', version: '10.4.0' },
      { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
    ] + [
      { type: 'panel', id: kind, name: kind, version: '' }
      for kind in std.set([p.type for p in panels if p.type != 'row'])
    ],
    uid: uid,
    title: title,
    description: description,
    tags: tags,
    editable: true,
    graphTooltip: 1,
    id: null,
    links: links,
    refresh: '1m',
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: '',
    version: 1,
    annotations: {
      list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      }] + annotations,
    },
    templating: {
      list: [{
        name: 'datasource',
        label: 'Data Source',
        type: 'datasource',
        query: 'prometheus',
        regex: '',
        current: {},
        options: [],
        refresh: 1,
        hide: 0,
        includeAll: false,
        multi: false,
        skipUrlSync: false,
      }] + variables,
    },
    panels: $.layout(panels),
  },

  // Firing alerts as annotations on every time series panel.
  alertAnnotation(name, expr, text):: {
    name: name,
    datasource: datasource,
    enable: true,
    iconColor: 'red',
    expr: expr,
    step: '60s',
    titleFormat: '{{alertname}} ({{severity}})',
    textFormat: text,
    tagKeys: 'severity,flow_step',
    useValueForTime: false,
  },
}
