//! The process's own series, as client_golang names them (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), read from the platform at scrape time: `/proc` on
//! Linux, the process APIs on Windows ([`crate::platform::process`]). Where the platform has
//! none of them, none is written.

use std::fmt::Write;

use crate::exposition::Family;

/// What the platform says of this process.
#[derive(Debug, Clone, Default, PartialEq)]
struct Process {
    cpu_seconds: f64,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    threads: Option<f64>,
}

/// Writes the families, in name order.
pub fn write(out: &mut impl Write) {
    let Some(p) = read() else {
        return;
    };
    let families: [(&'static str, &'static str, Option<f64>); 7] = [
        (
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            Some(p.cpu_seconds),
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            p.max_fds,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            p.open_fds,
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Some(p.resident_bytes),
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Some(p.start_time_seconds),
        ),
        (
            "process_threads",
            "Number of OS threads in the process.",
            p.threads,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Some(p.virtual_bytes),
        ),
    ];
    for (name, help, value) in families {
        let Some(value) = value else { continue };
        let family = if name.ends_with("_total") {
            Family::counter(name, help, &[])
        } else {
            Family::new(name, help, &[])
        };
        family.set(value);
        family.write(out);
    }
}

#[cfg(target_os = "linux")]
fn read() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as f64);
    let max_fds = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft as f64);
    parse_linux(&stat, &status, &boot, open_fds, max_fds)
}

/// Windows' figures as client_golang exports them there: the handles are the open "fds"
/// (Windows' fixed limit the maximum), and private bytes the virtual memory; no thread count.
/// Elsewhere (neither Linux nor Windows) there is no reader, and none is written.
#[cfg(not(target_os = "linux"))]
fn read() -> Option<Process> {
    use crate::platform::process::{MAX_HANDLES, ProcessFigures};
    let figures = ProcessFigures::here().ok()?.read()?;
    Some(Process {
        cpu_seconds: figures.cpu_seconds,
        open_fds: Some(figures.handles),
        max_fds: Some(MAX_HANDLES),
        resident_bytes: figures.resident_bytes,
        virtual_bytes: figures.virtual_bytes,
        start_time_seconds: figures.start_time_seconds,
        threads: None,
    })
}

/// `/proc/self/stat`, `/proc/self/status` and `/proc/stat` (proc(5)). Times in `stat` are in
/// clock ticks, which Linux gives userspace at 100 a second (USER_HZ) on every architecture.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_linux(
    stat: &str,
    status: &str,
    boot: &str,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
) -> Option<Process> {
    const TICKS: f64 = 100.0;
    // The command name is in parentheses and may hold spaces: fields follow the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // proc(5) numbers the fields from 1, the first after the name being field 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v * 1024.0)
    };
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok());
    let booted = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())?;
    Some(Process {
        cpu_seconds: (field(14)? + field(15)?) / TICKS,
        open_fds,
        max_fds,
        resident_bytes: kb("VmRSS:")?,
        virtual_bytes: kb("VmSize:")?,
        start_time_seconds: booted + field(22)? / TICKS,
        threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_figures_are_read_from_proc_as_proc_5_lays_them_out() {
        // A command name with a space and a parenthesis, as a process may be named.
        let stat = "4242 (app (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 7 0 123456 104857600 2048 18446744073709551615";
        let status = "Name:\tapp\nVmSize:\t  102400 kB\nVmRSS:\t    8192 kB\nThreads:\t7\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        let p = parse_linux(stat, status, boot, Some(12.0), Some(1024.0)).unwrap();
        assert_eq!(p.cpu_seconds, 4.0);
        assert_eq!(p.start_time_seconds, 1_700_001_234.56);
        assert_eq!(p.resident_bytes, 8192.0 * 1024.0);
        assert_eq!(p.virtual_bytes, 102_400.0 * 1024.0);
        assert_eq!(p.threads, Some(7.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reports_itself() {
        let mut out = String::new();
        write(&mut out);
        for family in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(
                out.contains(&format!("\n{family} ")),
                "{family} missing:\n{out}"
            );
        }
        let started = read().unwrap().start_time_seconds;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            started <= now && started > now - 86_400.0 * 30.0,
            "{started}"
        );
    }
}
