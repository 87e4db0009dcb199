//! The connector host's capacity (src/host/capacity.rs) as metric families: the connector
//! service's process, the host's CPU and memory, its TCP connections by state and the
//! ephemeral ports in use against the dynamic port range. All per host, none per app. A
//! figure that was not read has no series; `appproxy_host_capacity_evaluated` says which
//! were, and diagnose and the page say why the others were not.

use crate::exposition::Family;
use crate::host::capacity::{CapacityState, Reading};

pub struct CapacityFamilies {
    evaluated: Family,
    process_cpu: Family,
    process_working_set: Family,
    process_private: Family,
    host_cpu: Family,
    memory_total: Family,
    memory_available: Family,
    tcp_connections: Family,
    ephemeral_in_use: Family,
    range_start: Family,
    range_ports: Family,
    range_info: Family,
}

impl CapacityFamilies {
    pub fn new() -> Self {
        Self {
            evaluated: Family::new(
                "appproxy_host_capacity_evaluated",
                "1 when this capacity figure was read on this host, 0 when not (not Windows, no connector service running, the connector's performance counters): diagnose and the page say why.",
                &["reading"],
            ),
            process_cpu: Family::counter(
                "appproxy_connector_process_cpu_seconds_total",
                "CPU time (kernel and user) of the connector service's process (WAPCSvc), from GetProcessTimes.",
                &[],
            ),
            process_working_set: Family::new(
                "appproxy_connector_process_working_set_bytes",
                "The connector service's working set, from GetProcessMemoryInfo.",
                &[],
            ),
            process_private: Family::new(
                "appproxy_connector_process_private_bytes",
                "The connector service's private bytes (PrivateUsage), from GetProcessMemoryInfo.",
                &[],
            ),
            host_cpu: Family::counter(
                "appproxy_host_cpu_seconds_total",
                "CPU time of this host summed over its processors since boot, from GetSystemTimes: idle, system (kernel time without idle) and user. Busy share: 1 - rate(idle) / rate(all modes).",
                &["mode"],
            ),
            memory_total: Family::new(
                "appproxy_host_memory_total_bytes",
                "Physical memory of this host, from GlobalMemoryStatusEx.",
                &[],
            ),
            memory_available: Family::new(
                "appproxy_host_memory_available_bytes",
                "Physical memory available on this host, from GlobalMemoryStatusEx.",
                &[],
            ),
            tcp_connections: Family::new(
                "appproxy_host_tcp_connections",
                "TCP connections (IPv4 and IPv6, every process) of this host by state, from GetExtendedTcpTable.",
                &["state"],
            ),
            ephemeral_in_use: Family::new(
                "appproxy_host_ephemeral_ports_in_use",
                "Distinct local TCP ports within the dynamic port range held by a connection in any state but closed (TIME_WAIT and listeners included).",
                &[],
            ),
            range_start: Family::new(
                "appproxy_host_dynamic_port_range_start",
                "The first port of the TCP dynamic (ephemeral) port range, as `netsh int ipv4 show dynamicport tcp` shows it.",
                &[],
            ),
            range_ports: Family::new(
                "appproxy_host_dynamic_port_range_ports",
                "The number of ports in the TCP dynamic (ephemeral) port range (16384 by default).",
                &[],
            ),
            range_info: Family::new(
                "appproxy_host_dynamic_port_range_info",
                "Where the dynamic port range came from: windows_default (no MaxUserPort in the registry), max_user_port (the registry's legacy MaxUserPort).",
                &["source"],
            ),
        }
    }

    pub fn all(&self) -> [&Family; 12] {
        [
            &self.process_cpu,
            &self.process_private,
            &self.process_working_set,
            &self.evaluated,
            &self.host_cpu,
            &self.range_info,
            &self.range_ports,
            &self.range_start,
            &self.ephemeral_in_use,
            &self.memory_available,
            &self.memory_total,
            &self.tcp_connections,
        ]
    }

    pub fn fill(&self, capacity: Option<&CapacityState>) {
        let Some(capacity) = capacity else {
            for reading in READINGS {
                self.evaluated.with_label_values(&[reading]).set(0.0);
            }
            return;
        };
        let one = |read: bool| if read { 1.0 } else { 0.0 };
        let ports = capacity.tcp.value().map(|t| &t.ports);
        let read = [
            matches!(capacity.connector, Reading::Read { .. }),
            matches!(capacity.cpu, Reading::Read { .. }),
            matches!(capacity.memory, Reading::Read { .. }),
            matches!(capacity.tcp, Reading::Read { .. }),
            matches!(ports, Some(Reading::Read { .. })),
            matches!(capacity.performance_counters, Reading::Read { .. }),
        ];
        for (reading, read) in READINGS.iter().zip(read) {
            self.evaluated.with_label_values(&[reading]).set(one(read));
        }
        if let Some(process) = capacity.connector.value() {
            self.process_cpu.set(process.cpu_seconds);
            self.process_working_set.set(process.working_set_bytes);
            self.process_private.set(process.private_bytes);
        }
        if let Some(cpu) = capacity.cpu.value() {
            for (mode, seconds) in [
                ("idle", cpu.idle_seconds),
                ("system", cpu.system_seconds),
                ("user", cpu.user_seconds),
            ] {
                self.host_cpu.with_label_values(&[mode]).set(seconds);
            }
        }
        if let Some(memory) = capacity.memory.value() {
            self.memory_total.set(memory.total_bytes as f64);
            self.memory_available.set(memory.available_bytes as f64);
        }
        if let Some(tcp) = capacity.tcp.value() {
            for (state, count) in &tcp.by_state {
                self.tcp_connections
                    .with_label_values(&[*state])
                    .set(*count as f64);
            }
            if let Some(ports) = tcp.ports.value() {
                self.ephemeral_in_use.set(f64::from(ports.in_use));
                self.range_start.set(f64::from(ports.range.start));
                self.range_ports.set(f64::from(ports.range.ports));
                self.range_info
                    .with_label_values(&[ports.range.source.label()])
                    .set(1.0);
            }
        }
    }
}

/// The `reading` label's values.
const READINGS: [&str; 6] = [
    "connector_process",
    "host_cpu",
    "host_memory",
    "tcp_connections",
    "dynamic_port_range",
    "performance_counters",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::host::Verdict;
    use crate::host::capacity::{
        ConnectorProcess, HostCpu, HostMemory, PortRange, PortUse, TcpUse, assemble,
    };

    fn render(capacity: Option<&CapacityState>) -> String {
        let families = CapacityFamilies::new();
        families.fill(capacity);
        let mut text = String::new();
        for family in families.all() {
            family.write(&mut text);
        }
        text
    }

    #[test]
    fn nothing_read_writes_only_that_nothing_was_read() {
        let text = render(None);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 6, "{text}");
        assert!(
            samples
                .iter()
                .all(|l| l.starts_with("appproxy_host_capacity_evaluated{") && l.ends_with(" 0"))
        );
        let off_windows = crate::host::capacity::CapacityMonitor::default().check_capacity();
        if !cfg!(windows) {
            assert_eq!(
                render(Some(&off_windows)),
                text,
                "no zero that looks like a reading"
            );
        }
    }

    #[test]
    fn every_figure_read_is_exported_per_host() {
        let state = assemble(
            Reading::Read {
                value: HostCpu {
                    idle_seconds: 10.0,
                    system_seconds: 2.0,
                    user_seconds: 3.0,
                    utilisation: Some(0.5),
                },
            },
            Reading::Read {
                value: HostMemory {
                    total_bytes: 8 << 30,
                    available_bytes: 6 << 30,
                },
            },
            Reading::Read {
                value: TcpUse {
                    by_state: BTreeMap::from([("established", 7), ("time_wait", 2)]),
                    ports: Reading::Read {
                        value: PortUse {
                            range: PortRange::WINDOWS_DEFAULT,
                            in_use: 9,
                        },
                    },
                },
            },
            Reading::Read {
                value: ConnectorProcess {
                    pid: 4242,
                    cpu_seconds: 12.5,
                    working_set_bytes: 1e8,
                    private_bytes: 2e8,
                },
            },
        );
        assert_eq!(state.verdict, Verdict::Pass);
        let text = render(Some(&state));
        for line in [
            "# TYPE appproxy_connector_process_cpu_seconds_total counter",
            "appproxy_connector_process_cpu_seconds_total 12.5",
            "appproxy_connector_process_working_set_bytes 100000000",
            "appproxy_host_cpu_seconds_total{mode=\"idle\"} 10",
            "appproxy_host_memory_available_bytes 6442450944",
            "appproxy_host_tcp_connections{state=\"established\"} 7",
            "appproxy_host_ephemeral_ports_in_use 9",
            "appproxy_host_dynamic_port_range_start 49152",
            "appproxy_host_dynamic_port_range_ports 16384",
            "appproxy_host_dynamic_port_range_info{source=\"windows_default\"} 1",
            "appproxy_host_capacity_evaluated{reading=\"connector_process\"} 1",
            "appproxy_host_capacity_evaluated{reading=\"performance_counters\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
