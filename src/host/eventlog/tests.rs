use super::*;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/eventlog/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_documented_trust_certificate_event_decodes_as_an_error_explaining_step_2() {
    let event = decode(&fixture("1000-trust-certificate-expired.xml")).unwrap();
    assert_eq!(event.id, 1000);
    assert_eq!(event.level_label(), "error");
    assert_eq!(event.time, 1_714_637_643);
    assert_eq!(
        event.channel,
        "Microsoft-AadApplicationProxy-Connector/Admin"
    );
    assert_eq!(event.provider, "Microsoft-AadApplicationProxy-Connector");
    assert_eq!(step_of(event.id), Step::ConnectorInstalled);
}

#[test]
fn kerberos_events_explain_step_7_and_an_event_id_with_qualifiers_decodes() {
    let event = decode(&fixture("13022-backend-answers-401.xml")).unwrap();
    assert_eq!((event.id, event.level_label()), (13022, "warning"));
    assert_eq!(step_of(13022), Step::InternalUrl);
    assert_eq!(step_of(13019), Step::InternalUrl);
    assert_eq!(step_of(13016), Step::EscalateAppFlow);
}

#[test]
fn an_id_no_page_documents_is_counted_as_other_never_dropped() {
    let mut counts = ChannelCounts::default();
    for name in [
        "other-id-information.xml",
        "1000-trust-certificate-expired.xml",
        "13019-kerberos-general-api-error.xml",
        "other-id-information.xml",
    ] {
        counts.add(&fixture(name));
    }
    assert_eq!(
        counts.counts.get(&("other".into(), "information")),
        Some(&2)
    );
    assert_eq!(counts.counts.get(&("1000".into(), "error")), Some(&1));
    assert_eq!(counts.counts.get(&("13019".into(), "error")), Some(&1));
    assert_eq!(counts.counts.values().sum::<u64>(), 4);
    // The newest error, and the newest event of any level.
    assert_eq!(counts.last_error, Some((13019, 1_714_640_400)));
    assert_eq!(counts.last_event, Some(1_714_644_000));
    assert_eq!(step_of(32012), Step::ConnectorInstalled);
}

#[test]
fn level_0_log_always_counts_as_information() {
    let event = decode(&fixture("updater-information.xml")).unwrap();
    assert_eq!((event.level, event.level_label()), (0, "information"));
    assert!(!event.is_error());
}

#[test]
fn event_labels_are_a_bounded_set() {
    let labels: std::collections::BTreeSet<String> = (0..70_000).map(id_label).collect();
    assert_eq!(labels.len(), DOCUMENTED.len() + 1);
}

#[test]
fn malformed_event_xml_says_what_is_wrong() {
    let xml = fixture("1000-trust-certificate-expired.xml");
    let error = |xml: &str| decode(xml).unwrap_err().to_string();
    let found = error(&xml.replace("<EventID>1000</EventID>", ""));
    assert_eq!(found, "no Event/System/EventID element");
    let found = error(&xml.replace(">1000<", ">x1<"));
    assert!(found.contains("EventID \"x1\" is not a number"), "{found}");
    let found = error(&xml.replace("2024-05-02T08:14:03.1234567Z", "yesterday"));
    assert!(found.contains("not an RFC 3339 time"), "{found}");
    let found = error("<Event><System></Event>");
    assert!(found.contains("malformed event XML"), "{found}");
    let mut counts = ChannelCounts::default();
    counts.add("<Event/>");
    assert_eq!((counts.undecodable, counts.counts.len()), (1, 0));
}

#[test]
fn a_recent_error_warns_with_its_step_and_an_old_one_passes() {
    let mut counts = ChannelCounts::default();
    counts.add(&fixture("1000-trust-certificate-expired.xml"));
    let channels = BTreeMap::from([(Channel::Connector, counts)]);
    let at = |unix| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    let state = judge(channels.clone(), at(1_714_637_643 + 60));
    let Verdict::Warning { evidence } = state.verdict else {
        panic!("{:?}", state.verdict)
    };
    assert!(evidence.contains("error 1000"), "{evidence}");
    assert!(evidence.contains("step 2"), "{evidence}");
    assert_eq!(
        judge(channels, at(1_714_637_643 + 7200)).verdict,
        Verdict::Pass
    );
}

#[test]
fn off_windows_the_event_log_is_not_evaluated_and_says_why() {
    if cfg!(windows) {
        return;
    }
    let state = EventLogMonitor::default().check_event_log();
    assert_eq!(
        state.verdict,
        Verdict::not_evaluated(crate::platform::NOT_WINDOWS)
    );
}
