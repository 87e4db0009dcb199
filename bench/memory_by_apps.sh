#!/usr/bin/env bash
# Peak RSS against the number of apps (series): every backend refused at once, so no target
# server is needed. Usage: bench/memory_by_apps.sh [BINARY]   (default target/release/appproxy_exporter)
set -euo pipefail
bin=${1:-target/release/appproxy_exporter}
for n in 1000 2500 5000 10000; do  # apps
  cfg=$(mktemp)
  { echo "inventory:"; echo "  static:"; echo "    connector_groups: [{name: G, connectors: [{machine_name: C, status: active}]}]"; echo "    apps:";
    for i in $(seq 1 $n); do echo "      - {name: app$i, connector_group: G, internal_url: \"http://127.0.0.1:1/app$i\"}"; done
    echo "probes:"; echo "  interval: 10s"; echo "  concurrency: 512"; echo "  endpoints: {catalog: none}"; echo "  backend: {interval: 5s}"; } > $cfg
  $bin --config.file=$cfg --web.listen-address=127.0.0.1:19874 --log.level=error &
  pid=$!
  sleep 20
  size=$(curl -s 127.0.0.1:19874/metrics | wc -c); gz=$(curl -s -H "Accept-Encoding: gzip" 127.0.0.1:19874/metrics | wc -c)
  series=$(curl -s 127.0.0.1:19874/metrics | grep -vc '^#')
  hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status); rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
  echo "apps=$n series=$series exposition_bytes=$size gzip_bytes=$gz VmHWM_MiB=$((hwm/1024)) VmRSS_MiB=$((rss/1024)) bytes_per_series_peak=$((hwm*1024/series))"
  kill $pid; wait $pid 2>/dev/null; rm -f $cfg
done
