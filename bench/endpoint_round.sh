#!/usr/bin/env bash
# Benchmark: how long one round of steps 3-4 takes when every endpoint's packets are dropped
# (the worst case: each probe waits its whole timeout). 300 endpoints, timeout 2s, at
# concurrency 64 (the default) and 512, in a network namespace lab. Not a test: it prints.
# Usage: bench/endpoint_round.sh   (as root; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
binary=$PWD/target/release/appproxy_exporter
name=bench-$$
work=$(mktemp -d)
trap 'python3 tests/netns/lab.py down --name $name >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

python3 tests/netns/lab.py up --name "$name" --spec - >/dev/null <<<'{"hosts": {}, "servers": []}'
python3 tests/netns/lab.py firewall --name "$name" --rules '["-p tcp --dport 443 -j DROP"]' >/dev/null

endpoints=""
for i in $(seq 1 300); do
  endpoints+="      - {host: 127.0.$((i / 250 + 1)).$((i % 250 + 1)), port: 443, purpose: registration}"$'\n'
done

for concurrency in 64 512; do
  cat >"$work/c$concurrency.yml" <<YAML
probes:
  interval: 30s
  timeout: 2s
  concurrency: $concurrency
  endpoints:
    replace:
$endpoints
YAML
  ip netns exec "$name" "$binary" --config.file="$work/c$concurrency.yml" --web.listen-address=127.0.0.1:19999 2>/dev/null &
  pid=$!
  seconds=
  for _ in $(seq 200); do
    seconds=$(ip netns exec "$name" curl -s http://127.0.0.1:19999/metrics | sed -n 's/^appproxy_probe_round_duration_seconds{kind="endpoints"} //p')
    [ -n "$seconds" ] && break
    sleep 0.2
  done
  kill $pid; wait $pid 2>/dev/null || true
  printf 'concurrency %4s: 300 dropped endpoints, timeout 2s, round %.2f s\n' "$concurrency" "$seconds"
done
