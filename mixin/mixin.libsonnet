// appproxy_exporter's monitoring mixin: prometheusAlerts, prometheusRules, grafanaDashboards
// and the Alertmanager configuration that goes with them (alertmanagerConfig)
// from one _config (config.libsonnet). render.jsonnet writes the files the project ships.
(import 'config.libsonnet')
+ (import 'alerts.libsonnet')
+ (import 'rules.libsonnet')
+ (import 'dashboards.libsonnet')
+ (import 'alertmanager.libsonnet')
