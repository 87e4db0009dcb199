// appproxy_exporter's monitoring mixin: prometheusAlerts, prometheusRules and grafanaDashboards
// from one _config (config.libsonnet). render.jsonnet writes the files the project ships.
(import 'config.libsonnet')
+ (import 'alerts.libsonnet')
+ (import 'rules.libsonnet')
+ (import 'dashboards.libsonnet')
