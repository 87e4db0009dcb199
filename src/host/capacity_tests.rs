//! The capacity check's pure parts, each against what Microsoft documents.

use super::*;

fn times(idle: f64, kernel: f64, user: f64) -> CpuTimes {
    CpuTimes {
        idle_seconds: idle,
        kernel_seconds: kernel,
        user_seconds: user,
    }
}

fn row(state: TcpState, local_port: u16) -> TcpRow {
    TcpRow {
        state,
        local_port,
        owning_pid: 1,
    }
}

/// GetSystemTimes: "lpKernelTime ... This time value also includes the amount of time the
/// system has been idle". 4 processors for 10 s: 40 s of CPU time, 8 s of it idle = 80% busy.
#[test]
fn cpu_utilisation_counts_idle_time_inside_kernel_time_as_getsystemtimes_reports_it() {
    let before = times(100.0, 150.0, 50.0);
    let after = times(108.0, 175.0, 65.0);
    let busy = cpu_utilisation(before, after).unwrap();
    assert!((busy - 0.8).abs() < 1e-9, "{busy}");
    assert_eq!(cpu_utilisation(after, after), None, "no time passed");
    assert_eq!(
        cpu_utilisation(after, before),
        None,
        "counters went back (a reboot)"
    );
}

#[test]
fn memory_utilisation_is_the_share_not_available() {
    let memory = HostMemory {
        total_bytes: 8 << 30,
        available_bytes: 2 << 30,
    };
    assert_eq!(memory_utilisation(&memory), Some(0.75));
    let impossible = HostMemory {
        total_bytes: 0,
        available_bytes: 0,
    };
    assert_eq!(memory_utilisation(&impossible), None);
}

/// KB 929851: the default range starts at 49152 and ends at 65535 (16,384 ports, as
/// `netsh int ipv4 show dynamicport tcp` shows it); KB 196271: MaxUserPort is valid from 5000
/// to 65534, ephemeral ports running from 1025 up to it.
#[test]
fn the_dynamic_range_is_windows_default_unless_max_user_port_sets_it_within_its_documented_bounds()
{
    let default = port_range(None).unwrap();
    assert_eq!(
        (default.start, default.ports, default.last()),
        (49_152, 16_384, 65_535)
    );
    assert!(default.contains(49_152) && default.contains(65_535) && !default.contains(49_151));
    let legacy = port_range(Some(5_000)).unwrap();
    assert_eq!((legacy.start, legacy.last()), (1_025, 5_000));
    assert_eq!(legacy.source, RangeSource::MaxUserPort);
    assert_eq!(port_range(Some(65_534)).unwrap().last(), 65_534);
    for invalid in [0, 4_999, 65_535, u32::MAX] {
        let error = port_range(Some(invalid)).unwrap_err();
        assert!(
            error.contains(&format!("MaxUserPort is {invalid}")),
            "{error}"
        );
    }
}

#[test]
fn ephemeral_ports_are_distinct_local_ports_in_the_range_held_in_any_state_but_closed() {
    let range = PortRange::WINDOWS_DEFAULT;
    let rows = [
        row(TcpState::Established, 50_000),
        row(TcpState::TimeWait, 50_001),
        row(TcpState::Established, 50_001),
        row(TcpState::Listen, 49_664),
        row(TcpState::Closed, 50_002),
        row(TcpState::Established, 443),
        row(TcpState::Listen, 9_869),
    ];
    assert_eq!(ephemeral_in_use(&rows, range), 3);
    let counts = by_state(&rows);
    assert_eq!(counts["established"], 3);
    assert_eq!(counts["time_wait"], 1);
    assert_eq!(counts["syn_sent"], 0, "every documented state is there");
    assert!(!counts.contains_key("unknown"));
}

fn ports(in_use: u32) -> PortUse {
    PortUse {
        range: PortRange::WINDOWS_DEFAULT,
        in_use,
    }
}

#[test]
fn a_healthy_host_passes_and_nothing_read_is_not_evaluated() {
    assert_eq!(
        judge(Some(0.69), Some(0.70), Some(&ports(14_000))),
        Verdict::Pass
    );
    assert_eq!(
        judge(None, Some(0.2), None),
        Verdict::Pass,
        "CPU waits for a second round"
    );
    assert!(matches!(
        judge(None, None, None),
        Verdict::NotEvaluated { .. }
    ));
}

#[test]
fn above_70_percent_warns_with_adding_a_connector_and_ports_at_90_percent_with_netsh() {
    let Verdict::Warning { evidence } = judge(Some(0.85), Some(0.5), None) else {
        panic!("CPU at 85% warns");
    };
    assert!(
        evidence.starts_with("CPU 85% busy since the last round"),
        "{evidence}"
    );
    assert!(evidence.contains("add a connector"), "{evidence}");
    // 90% of 16,384 is 14,745.6: 14,746 ports are over it.
    let Verdict::Warning { evidence } = judge(Some(0.1), Some(0.1), Some(&ports(14_746))) else {
        panic!("90% of the range warns");
    };
    assert!(evidence.contains("14746 of the 16384 ports"), "{evidence}");
    assert!(
        evidence.contains("netsh int ipv4 set dynamicport tcp start=10000 num=55536"),
        "{evidence}"
    );
    assert!(evidence.contains("now 49152-65535"), "{evidence}");
    assert!(!evidence.contains("CPU"), "{evidence}");
    assert_eq!(judge(None, None, Some(&ports(14_745))), Verdict::Pass);
}

#[test]
fn off_windows_every_reading_says_why_and_nothing_passes() {
    let state = CapacityMonitor::default().check_capacity();
    if cfg!(windows) {
        return;
    }
    assert!(matches!(state.verdict, Verdict::NotEvaluated { .. }));
    for reason in [
        state.connector.reason(),
        state.cpu.reason(),
        state.memory.reason(),
        state.tcp.reason(),
    ] {
        assert_eq!(reason, Some(crate::platform::NOT_WINDOWS));
    }
    assert_eq!(
        state.performance_counters.reason(),
        Some(PERFORMANCE_COUNTERS)
    );
}

#[test]
fn a_bad_max_user_port_leaves_the_ports_not_evaluated_and_the_rest_judged() {
    let tcp = Reading::Read {
        value: TcpUse {
            by_state: by_state(&[]),
            ports: Reading::not_evaluated(port_range(Some(70_000)).unwrap_err()),
        },
    };
    let memory = Reading::Read {
        value: HostMemory {
            total_bytes: 100,
            available_bytes: 10,
        },
    };
    let state = assemble(
        Reading::not_evaluated("first round"),
        memory,
        tcp,
        Reading::not_evaluated("no WAPCSvc"),
    );
    assert!(
        matches!(&state.verdict, Verdict::Warning { evidence } if evidence.starts_with("memory 90% in use"))
    );
}
