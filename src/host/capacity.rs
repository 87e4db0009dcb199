//! Connector capacity: whether this connector host has room for its traffic. Microsoft's
//! concept-connectors.md ("Specifications and Sizing Requirements"): "Ensure that your
//! connectors are less than 70% for peak memory utilization and peak CPU utilization. If your
//! CPU or memory utilization is above the suggested maximum, you may want to consider adding
//! more connectors to distribute your workloads effectively." Every connection the connector
//! opens to the service and to a backend also takes an ephemeral port from Windows' dynamic port
//! range (49152-65535, 16,384 ports, by default since Windows Server 2008: Microsoft KB 929851),
//! so a busy host can run out of them before CPU or memory shows it.
//!
//! [`check_capacity`] reads, through [`crate::platform`]: the connector service's process (its
//! id from the Service Control Manager) for its CPU time, working set and private bytes; the
//! host's CPU times and physical memory; its TCP connections by state; and the dynamic port
//! range. [`judge`] weighs them: above 70% CPU (between two rounds) or memory, or 90% of the
//! dynamic range in use, is a warning whose evidence names the remedy. It never fails a step:
//! the alerts (a ticket for a sustained 70%, a page for the ports) carry the urgency.
//!
//! What cannot be read here is not evaluated, with why: everything off Windows; the
//! connector's process where its service does not run; the CPU until a second reading; and the
//! connector's own performance counters, always ([`PERFORMANCE_COUNTERS`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Verdict;
use crate::platform::process::ProcessFigures;
use crate::platform::registry::{Hive, Registry};
use crate::platform::services;
use crate::platform::system::{CpuTimes, SystemFigures};
use crate::platform::tcp::{TcpRow, TcpState, TcpTable};

/// concept-connectors.md: peak CPU and memory under 70%.
pub const PEAK_UTILISATION: f64 = 0.70;
/// The share of the dynamic port range in use at which new connections are about to fail.
pub const PORTS_EXHAUSTED: f64 = 0.90;
/// The connector's service (the same name before and after the 2024 rename; its executable
/// is `MicrosoftEntraPrivateNetworkConnectorService.exe`, before it
/// `ApplicationProxyConnectorService.exe`).
pub const CONNECTOR_SERVICE: &str = "WAPCSvc";
/// The legacy upper bound of the dynamic range (Microsoft KB 196271).
pub const TCPIP_PARAMETERS: &str = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters";

/// Why the connector's own performance counters are not read.
pub const PERFORMANCE_COUNTERS: &str = "Microsoft says a connector host can be watched with \"Windows performance counters\" (concept-connectors.md, \"Under the hood\") but publishes no name of the connector's counter set or counters; reading them would need PDH and a real connector host, so they are not read: watch them in Performance Monitor";

/// Something read, or why it was not.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Reading<T> {
    Read { value: T },
    NotEvaluated { reason: String },
}

impl<T> Reading<T> {
    pub fn not_evaluated(reason: impl Into<String>) -> Self {
        Reading::NotEvaluated {
            reason: reason.into(),
        }
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Reading::Read { value } => Some(value),
            Reading::NotEvaluated { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Reading::Read { .. } => None,
            Reading::NotEvaluated { reason } => Some(reason),
        }
    }
}

/// The connector service's process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorProcess {
    pub pid: u32,
    pub cpu_seconds: f64,
    pub working_set_bytes: f64,
    pub private_bytes: f64,
}

/// The host's CPU: its times since boot and, from the second reading, the share busy since
/// the previous one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostCpu {
    pub idle_seconds: f64,
    /// Kernel time without the idle time Windows counts in it.
    pub system_seconds: f64,
    pub user_seconds: f64,
    pub utilisation: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostMemory {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// Where the dynamic port range came from (the `source` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeSource {
    /// No `MaxUserPort`: the range `netsh int ipv4 show dynamicport tcp` shows on a host
    /// nobody changed.
    WindowsDefault,
    /// The legacy `MaxUserPort` registry value.
    MaxUserPort,
}

impl RangeSource {
    pub fn label(self) -> &'static str {
        match self {
            RangeSource::WindowsDefault => "windows_default",
            RangeSource::MaxUserPort => "max_user_port",
        }
    }
}

/// A dynamic port range: `start` and the number of ports, as netsh shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange {
    pub start: u16,
    pub ports: u32,
    pub source: RangeSource,
}

impl PortRange {
    /// KB 929851: "The new default start port is 49152, and the default end port is 65535".
    pub const WINDOWS_DEFAULT: PortRange = PortRange {
        start: 49_152,
        ports: 16_384,
        source: RangeSource::WindowsDefault,
    };

    pub fn contains(self, port: u16) -> bool {
        let port = u32::from(port);
        port >= u32::from(self.start) && port < u32::from(self.start) + self.ports
    }

    pub fn last(self) -> u32 {
        u32::from(self.start) + self.ports - 1
    }
}

/// The TCP connections and the ephemeral ports they hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpUse {
    /// Connections by state; every documented state, 0 where none.
    pub by_state: BTreeMap<&'static str, u64>,
    pub ports: Reading<PortUse>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortUse {
    pub range: PortRange,
    pub in_use: u32,
}

impl PortUse {
    pub fn ratio(&self) -> f64 {
        f64::from(self.in_use) / f64::from(self.range.ports)
    }
}

/// What the capacity check found in one round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityState {
    pub verdict: Verdict,
    pub connector: Reading<ConnectorProcess>,
    pub cpu: Reading<HostCpu>,
    pub memory: Reading<HostMemory>,
    pub tcp: Reading<TcpUse>,
    pub performance_counters: Reading<()>,
}

/// The dynamic range from the registry's `MaxUserPort`: absent, Windows' default. Microsoft
/// documents the value for Windows Server 2003 (KB 196271: "Valid Range: 5000-65534",
/// ephemeral ports from 1025 up to it, KB 929851); where it is set, it is taken as the range.
/// A value outside the documented range is an error, never a guess.
pub fn port_range(max_user_port: Option<u32>) -> Result<PortRange, String> {
    match max_user_port {
        None => Ok(PortRange::WINDOWS_DEFAULT),
        Some(max @ 5_000..=65_534) => Ok(PortRange {
            start: 1_025,
            ports: max - 1_024,
            source: RangeSource::MaxUserPort,
        }),
        Some(other) => Err(format!(
            "HKLM\\{TCPIP_PARAMETERS}\\MaxUserPort is {other}, outside the 5000-65534 Microsoft documents (KB 196271): the dynamic port range is unknown"
        )),
    }
}

/// The ephemeral ports in use: the distinct local ports within `range` held by a connection
/// in any state but CLOSED (a TIME_WAIT connection still holds its port, and so does a
/// listener in the range). Distinct ports, so a lower bound where sockets share one.
pub fn ephemeral_in_use(rows: &[TcpRow], range: PortRange) -> u32 {
    let ports: std::collections::BTreeSet<u16> = rows
        .iter()
        .filter(|r| r.state != TcpState::Closed && range.contains(r.local_port))
        .map(|r| r.local_port)
        .collect();
    ports.len() as u32
}

/// Connections by state, every documented state present.
pub fn by_state(rows: &[TcpRow]) -> BTreeMap<&'static str, u64> {
    let mut counts: BTreeMap<&'static str, u64> = TcpState::ALL
        .iter()
        .filter(|s| **s != TcpState::Unknown)
        .map(|s| (s.label(), 0))
        .collect();
    for row in rows {
        *counts.entry(row.state.label()).or_default() += 1;
    }
    counts
}

/// The share of CPU time busy between two readings of `GetSystemTimes` (whose kernel time
/// includes the idle time): `None` when no time passed or the counters went back (a reboot
/// between readings is not a measurement).
pub fn cpu_utilisation(previous: CpuTimes, now: CpuTimes) -> Option<f64> {
    let total = |t: CpuTimes| t.kernel_seconds + t.user_seconds;
    let elapsed = total(now) - total(previous);
    let idle = now.idle_seconds - previous.idle_seconds;
    // NaN compares false, so only a finite, positive span passes.
    let span = elapsed.is_finite() && elapsed > 0.0;
    if !span || idle < 0.0 || idle > elapsed {
        return None;
    }
    Some((elapsed - idle) / elapsed)
}

/// The share of physical memory in use; `None` for figures that cannot be a host's.
pub fn memory_utilisation(memory: &HostMemory) -> Option<f64> {
    (memory.total_bytes > 0 && memory.available_bytes <= memory.total_bytes)
        .then(|| 1.0 - memory.available_bytes as f64 / memory.total_bytes as f64)
}

/// The remedy for a host short of capacity (concept-connectors.md).
pub const REMEDY_LOAD: &str = "add a connector to this connector group to share the load (concept-connectors.md: keep peak CPU and memory under 70%)";

/// The remedy for a host short of ephemeral ports.
pub fn remedy_ports(range: PortRange) -> String {
    format!(
        "add a connector to this connector group, or widen the dynamic port range (now {}-{}) with `netsh int ipv4 set dynamicport tcp start=10000 num=55536` (and the same for ipv6), as an administrator",
        range.start,
        range.last()
    )
}

/// The check's verdict from what was read: a warning for each figure over its threshold, with
/// its remedy; a pass when every figure read is under; not evaluated when none could be read.
pub fn judge(cpu: Option<f64>, memory: Option<f64>, ports: Option<&PortUse>) -> Verdict {
    if cpu.is_none() && memory.is_none() && ports.is_none() {
        return Verdict::not_evaluated("neither CPU, memory nor the TCP table could be read");
    }
    let percent = |ratio: f64| format!("{:.0}%", ratio * 100.0);
    let mut findings = Vec::new();
    if let Some(cpu) = cpu.filter(|c| *c > PEAK_UTILISATION) {
        findings.push(format!("CPU {} busy since the last round", percent(cpu)));
    }
    if let Some(memory) = memory.filter(|m| *m > PEAK_UTILISATION) {
        findings.push(format!("memory {} in use", percent(memory)));
    }
    let load = !findings.is_empty();
    let mut remedies = Vec::new();
    if load {
        remedies.push(REMEDY_LOAD.to_string());
    }
    if let Some(ports) = ports.filter(|p| p.ratio() >= PORTS_EXHAUSTED) {
        findings.push(format!(
            "{} of the {} ports of the dynamic range in use ({})",
            ports.in_use,
            ports.range.ports,
            percent(ports.ratio())
        ));
        remedies.push(remedy_ports(ports.range));
    }
    if findings.is_empty() {
        return Verdict::Pass;
    }
    Verdict::Warning {
        evidence: format!(
            "{}, above what Microsoft advises: {}",
            findings.join(", "),
            remedies.join("; ")
        ),
    }
}

/// The previous CPU reading, kept across rounds to judge the CPU between them.
#[derive(Debug, Default)]
pub struct CapacityMonitor {
    previous: Option<CpuTimes>,
}

impl CapacityMonitor {
    /// Reads this host once and judges it.
    pub fn check_capacity(&mut self) -> CapacityState {
        let system = match SystemFigures::here() {
            Ok(system) => system,
            Err(why) => {
                let why = why.to_string();
                return CapacityState {
                    verdict: Verdict::not_evaluated(why.clone()),
                    connector: Reading::not_evaluated(why.clone()),
                    cpu: Reading::not_evaluated(why.clone()),
                    memory: Reading::not_evaluated(why.clone()),
                    tcp: Reading::not_evaluated(why),
                    performance_counters: Reading::not_evaluated(PERFORMANCE_COUNTERS),
                };
            }
        };
        let cpu = match system.cpu_times() {
            Ok(now) => {
                let utilisation = self.previous.and_then(|p| cpu_utilisation(p, now));
                self.previous = Some(now);
                Reading::Read {
                    value: HostCpu {
                        idle_seconds: now.idle_seconds,
                        system_seconds: (now.kernel_seconds - now.idle_seconds).max(0.0),
                        user_seconds: now.user_seconds,
                        utilisation,
                    },
                }
            }
            Err(error) => Reading::not_evaluated(format!("GetSystemTimes failed: {error}")),
        };
        let memory = match system.memory() {
            Ok(m) => Reading::Read {
                value: HostMemory {
                    total_bytes: m.total_bytes,
                    available_bytes: m.available_bytes,
                },
            },
            Err(error) => Reading::not_evaluated(format!("GlobalMemoryStatusEx failed: {error}")),
        };
        assemble(cpu, memory, read_tcp(), read_connector())
    }
}

/// The check from its readings (pure: the table tests build it from values).
pub fn assemble(
    cpu: Reading<HostCpu>,
    memory: Reading<HostMemory>,
    tcp: Reading<TcpUse>,
    connector: Reading<ConnectorProcess>,
) -> CapacityState {
    let cpu_ratio = cpu.value().and_then(|c| c.utilisation);
    let memory_ratio = memory.value().and_then(memory_utilisation);
    let ports = tcp.value().and_then(|t| t.ports.value());
    let verdict = judge(cpu_ratio, memory_ratio, ports);
    CapacityState {
        verdict,
        connector,
        cpu,
        memory,
        tcp,
        performance_counters: Reading::not_evaluated(PERFORMANCE_COUNTERS),
    }
}

impl CapacityState {
    /// Every figure in one line, each read or why not: what the page and diagnose show.
    pub fn summary(&self) -> String {
        let percent = |ratio: f64| format!("{:.0}%", ratio * 100.0);
        let or_why = |reading: Option<String>, why: Option<&str>| match (reading, why) {
            (Some(text), _) => text,
            (None, why) => format!("not evaluated ({})", why.unwrap_or("not read")),
        };
        let cpu = match self.cpu.value() {
            Some(HostCpu {
                utilisation: Some(u),
                ..
            }) => format!("{} busy since the last round", percent(*u)),
            Some(_) => "not evaluated yet (needs a second reading, a round later)".to_string(),
            None => or_why(None, self.cpu.reason()),
        };
        let memory = or_why(
            self.memory.value().and_then(|m| {
                let used = memory_utilisation(m)?;
                Some(format!(
                    "{} in use ({:.1} of {:.1} GiB)",
                    percent(used),
                    (m.total_bytes - m.available_bytes) as f64 / f64::from(1u32 << 30),
                    m.total_bytes as f64 / f64::from(1u32 << 30)
                ))
            }),
            self.memory.reason(),
        );
        let ports = match self.tcp.value() {
            Some(tcp) => or_why(
                tcp.ports.value().map(|p| {
                    format!(
                        "{} of {} in use ({}-{}, {}; {} established, {} in TIME_WAIT)",
                        p.in_use,
                        p.range.ports,
                        p.range.start,
                        p.range.last(),
                        p.range.source.label(),
                        tcp.by_state.get("established").copied().unwrap_or(0),
                        tcp.by_state.get("time_wait").copied().unwrap_or(0),
                    )
                }),
                tcp.ports.reason(),
            ),
            None => or_why(None, self.tcp.reason()),
        };
        let connector = or_why(
            self.connector.value().map(|c| {
                format!(
                    "process {}, {:.0} s of CPU, working set {:.0} MiB, private bytes {:.0} MiB",
                    c.pid,
                    c.cpu_seconds,
                    c.working_set_bytes / f64::from(1u32 << 20),
                    c.private_bytes / f64::from(1u32 << 20)
                )
            }),
            self.connector.reason(),
        );
        format!(
            "CPU: {cpu} · memory: {memory} · ephemeral ports: {ports} · connector service ({CONNECTOR_SERVICE}): {connector} · the connector's performance counters: {}",
            or_why(None, self.performance_counters.reason())
        )
    }

    /// The same readings under another verdict (a round whose reads did not finish).
    pub fn with_verdict(self, verdict: Verdict) -> CapacityState {
        CapacityState { verdict, ..self }
    }
}

fn read_tcp() -> Reading<TcpUse> {
    let rows = match TcpTable::here()
        .map_err(|e| e.to_string())
        .and_then(|t| t.rows().map_err(|e| e.to_string()))
    {
        Ok(rows) => rows,
        Err(why) => return Reading::not_evaluated(why),
    };
    let range = match Registry::open() {
        Ok(registry) => registry
            .dword(Hive::LocalMachine, TCPIP_PARAMETERS, "MaxUserPort")
            .map_err(|e| e.to_string())
            .and_then(port_range),
        Err(why) => Err(why.to_string()),
    };
    let ports = match range {
        Ok(range) => Reading::Read {
            value: PortUse {
                range,
                in_use: ephemeral_in_use(&rows, range),
            },
        },
        Err(why) => Reading::not_evaluated(why),
    };
    Reading::Read {
        value: TcpUse {
            by_state: by_state(&rows),
            ports,
        },
    }
}

fn read_connector() -> Reading<ConnectorProcess> {
    let pid = match services::running_process_id(&[CONNECTOR_SERVICE]) {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            return Reading::not_evaluated(format!(
                "the connector service ({CONNECTOR_SERVICE}) does not run on this host: no process to measure"
            ));
        }
        Err(error) => return Reading::not_evaluated(error.to_string()),
    };
    let figures = ProcessFigures::here()
        .map_err(|e| e.to_string())
        .and_then(|p| p.read_pid(pid).map_err(|e| e.to_string()));
    match figures {
        Ok(f) => Reading::Read {
            value: ConnectorProcess {
                pid,
                cpu_seconds: f.cpu_seconds,
                working_set_bytes: f.resident_bytes,
                private_bytes: f.virtual_bytes,
            },
        },
        Err(why) => Reading::not_evaluated(format!(
            "{CONNECTOR_SERVICE} runs as process {pid}, which Windows would not let this exporter query: {why}"
        )),
    }
}

#[cfg(test)]
#[path = "capacity_tests.rs"]
mod tests;
