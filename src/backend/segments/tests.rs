use super::plan::{Destination, plan, sample};
use super::*;
use crate::inventory::Segment;

fn settings(max_addresses: u32, max_ports: u32) -> SegmentSettings {
    SegmentSettings {
        enabled: true,
        max_addresses,
        max_ports,
    }
}

fn segment(host: &str, kind: &str, ports: &[&str], protocol: &str) -> Segment {
    Segment {
        destination_host: host.into(),
        destination_type: kind.into(),
        ports: ports.iter().map(|p| p.to_string()).collect(),
        protocol: protocol.into(),
    }
}

fn addresses(plan: &Plan) -> Vec<String> {
    let mut seen: Vec<String> = plan
        .targets
        .iter()
        .map(|t| t.destination.to_string())
        .collect();
    seen.dedup();
    seen
}

#[test]
fn sampling_takes_the_first_the_last_and_evenly_spaced_ones_between() {
    assert_eq!(sample(3, 4), [0, 1, 2], "fewer than the bound: all");
    assert_eq!(sample(65_534, 4), [0, 21_844, 43_688, 65_533]);
    assert_eq!(sample(100, 1), [0]);
    assert_eq!(sample(81, 5), [0, 20, 40, 60, 80]);
}

#[test]
fn a_slash_16_makes_a_bounded_number_of_probes_without_network_or_broadcast() {
    let p = plan(
        &[segment(
            "10.1.0.0/16",
            "ipRangeCidr",
            &["22", "8000-8080"],
            "tcp",
        )],
        &settings(4, 3),
    );
    assert_eq!(
        addresses(&p),
        ["10.1.0.1", "10.1.85.85", "10.1.170.169", "10.1.255.254"]
    );
    let ports: Vec<u16> = p.targets.iter().take(4).map(|t| t.port).collect();
    assert_eq!(ports, [22, 8000, 8040, 8080]);
    assert_eq!(p.targets.len(), 16);
    assert!(p.targets.iter().all(|t| t.sampled_from_range));
}

#[test]
fn microsofts_single_port_ranges_and_a_host_name_are_probed_as_written() {
    // onpremisespublishingprofile-post-applicationsegments: ports "445-445", "3389-3389".
    let p = plan(
        &[segment(
            "test2.com",
            "fqdn",
            &["445-445", "3389-3389"],
            "tcp",
        )],
        &settings(4, 4),
    );
    let pairs: Vec<(Destination, u16)> = p
        .targets
        .iter()
        .map(|t| (t.destination.clone(), t.port))
        .collect();
    assert_eq!(
        pairs,
        [
            (Destination::Name("test2.com".into()), 445),
            (Destination::Name("test2.com".into()), 3389)
        ]
    );
    assert!(!p.targets[0].sampled_from_range);
}

#[test]
fn udp_dns_suffixes_wildcards_and_odd_values_are_not_probed_and_say_why() {
    let p = plan(
        &[
            segment("test.porto", "fqdn", &["20-20"], "udp"),
            segment("corp.example", "dnsSuffix", &["443"], "tcp"),
            segment("*.corp.example", "fqdn", &["443"], "tcp"),
            segment("db.corp.example", "fqdn", &["0", "70000", "9-1"], "tcp"),
            segment("10.0.0.9-10.0.0.1", "ipRange", &["22"], "tcp"),
            segment("10.0.0.0/40", "ipRangeCidr", &["22"], "tcp"),
        ],
        &settings(4, 4),
    );
    assert!(p.targets.is_empty(), "{:?}", p.targets);
    let text = p.not_probed.join("\n");
    for expected in [
        "UDP not evaluated: UDP has no handshake",
        "a DNS suffix names no host",
        "a wildcard names no host",
        "port \"70000\" is not a port",
        "ends before it starts",
        "/40 is longer than an address of 32 bits",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn an_ipv6_range_and_one_address_plan_within_their_bounds() {
    let p = plan(
        &[
            segment("fd00::/64", "ipRangeCidr", &["443"], "tcp"),
            segment("192.0.2.7", "ipAddress", &["22"], "tcp"),
        ],
        &settings(2, 2),
    );
    assert_eq!(
        addresses(&p),
        ["[fd00::1]", "[fd00::ffff:ffff:ffff:ffff]", "192.0.2.7"]
    );
}

#[test]
fn no_app_makes_more_than_the_bound_of_probes() {
    let many: Vec<Segment> = (0..100)
        .map(|i| segment(&format!("10.{i}.0.0/16"), "ipRangeCidr", &["1-1000"], "tcp"))
        .collect();
    let p = plan(&many, &settings(256, 64));
    assert_eq!(p.targets.len(), plan::MAX_PROBES_PER_APP);
    assert!(
        p.not_probed
            .iter()
            .any(|n| n.contains("at most 256 per app"))
    );
}

fn probed(host: &str, ranged: bool, result: Result<(), Failure>) -> Probed {
    Probed {
        target: ProbeTarget {
            segment: format!("{host} tcp 22").into(),
            destination: Destination::Name(host.into()),
            port: 22,
            sampled_from_range: ranged,
        },
        result,
    }
}

#[test]
fn step_8_fails_naming_each_host_that_refuses_or_times_out() {
    let report = SegmentReport {
        probes: vec![
            probed("ok.corp", false, Ok(())),
            probed("refuse.corp", false, Err(Failure::Refused)),
            probed(
                "drop.corp",
                false,
                Err(Failure::Dropped(net::Phase::Connect)),
            ),
        ],
        ..SegmentReport::default()
    };
    let outcome = internal_network(&report);
    let evidence = outcome.evidence().unwrap();
    assert!(
        evidence.starts_with("2 of 3 segment address:port pairs"),
        "{evidence}"
    );
    assert!(evidence.contains("refuse.corp:22 refused"), "{evidence}");
    assert!(evidence.contains("drop.corp:22 timed out"), "{evidence}");
    assert!(!evidence.contains("ok.corp"), "{evidence}");
}

#[test]
fn a_range_passes_when_one_sampled_address_connects_and_is_not_judged_when_none_does() {
    let some = SegmentReport {
        probes: vec![
            probed("r", true, Err(Failure::Refused)),
            probed("r", true, Ok(())),
        ],
        ..SegmentReport::default()
    };
    assert_eq!(internal_network(&some), Outcome::Pass);
    let none = SegmentReport {
        probes: vec![probed("r", true, Err(Failure::Refused))],
        ..SegmentReport::default()
    };
    let outcome = internal_network(&none);
    assert!(
        !outcome.evaluated(),
        "an empty sampled address is no failure: {outcome:?}"
    );
}

#[test]
fn nothing_probed_is_not_evaluated_with_why_never_passed() {
    let report = SegmentReport {
        not_probed: vec!["test.porto udp 20-20: UDP not evaluated".into()],
        ..SegmentReport::default()
    };
    let outcome = internal_network(&report);
    assert!(!outcome.evaluated());
    assert!(format!("{outcome:?}").contains("UDP not evaluated"));
    let steps = Segments {
        report: None,
        why_unprobed: "not probed yet",
    }
    .judge();
    assert!(!steps.get(Step::InternalNetwork).unwrap().evaluated());
    assert!(!steps.get(Step::InternalUrl).unwrap().evaluated());
    assert!(!steps.get(Step::BackendTimeout).unwrap().evaluated());
}

#[tokio::test]
async fn a_listening_port_connects_and_a_closed_one_is_refused_on_real_sockets() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = plan(
        &[segment(
            "127.0.0.1",
            "ipAddress",
            &[&open.to_string(), &closed.to_string()],
            "tcp",
        )],
        &settings(4, 4),
    );
    let report = probe(p, Duration::from_secs(2), 4).await;
    assert_eq!(report.probes[0].result, Ok(()));
    assert_eq!(report.probes[1].result, Err(Failure::Refused));
    assert!(
        internal_network(&report)
            .evidence()
            .unwrap()
            .contains("refused")
    );
}
