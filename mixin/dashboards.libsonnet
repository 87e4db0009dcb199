(import 'dashboards/overview.libsonnet')
+ (import 'dashboards/app.libsonnet')
