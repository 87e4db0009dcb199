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
        counts.add(Channel::Connector, &fixture(name));
    }
    assert_eq!(
        counts
            .counts
            .get(&("other".into(), "information", Step::ConnectorInstalled)),
        Some(&2)
    );
    assert_eq!(
        counts
            .counts
            .get(&("1000".into(), "error", Step::ConnectorInstalled)),
        Some(&1)
    );
    assert_eq!(
        counts
            .counts
            .get(&("13019".into(), "error", Step::InternalUrl)),
        Some(&1)
    );
    assert_eq!(counts.counts.values().sum::<u64>(), 4);
    // The newest error, and the newest event of any level.
    let last = counts.last_error.as_ref().unwrap();
    assert_eq!((last.id, last.time), (13019, 1_714_640_400));
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
    counts.add(Channel::Connector, "<Event/>");
    assert_eq!((counts.undecodable, counts.counts.len()), (1, 0));
}

#[test]
fn a_recent_error_warns_with_its_step_and_an_old_one_passes() {
    let mut counts = ChannelCounts::default();
    counts.add(
        Channel::Connector,
        &fixture("1000-trust-certificate-expired.xml"),
    );
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

#[test]
fn registration_errors_in_the_application_log_count_by_their_documented_message() {
    let mut counts = ChannelCounts::default();
    for name in [
        "application-registration-denied.xml",
        "application-registration-networking.xml",
        "application-aad-download-configuration.xml",
        "application-other-source.xml",
    ] {
        counts.add(Channel::Application, &fixture(name));
    }
    // The other source's event is not the connector's: not counted at all.
    assert_eq!(
        counts.counts.values().sum::<u64>(),
        3,
        "{:?}",
        counts.counts
    );
    assert_eq!(
        counts
            .counts
            .get(&("other".into(), "error", Step::ConnectorInstalled)),
        Some(&1)
    );
    assert_eq!(
        counts
            .counts
            .get(&("other".into(), "error", Step::PortTest)),
        Some(&1)
    );
    // The source's name before the 2024 rename counts too.
    assert_eq!(
        counts
            .counts
            .get(&("other".into(), "error", Step::ForwardProxy)),
        Some(&1)
    );
    assert_eq!(counts.undecodable, 0);
}

#[test]
fn a_recent_registration_error_warns_with_its_meaning_and_step() {
    let mut counts = ChannelCounts::default();
    counts.add(
        Channel::Application,
        &fixture("application-registration-denied.xml"),
    );
    let time = counts.last_error.as_ref().unwrap().time;
    let channels = BTreeMap::from([(Channel::Application, counts)]);
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(time as u64 + 60);
    let Verdict::Warning { evidence } = judge(channels, at).verdict else {
        panic!()
    };
    assert!(
        evidence.contains("the Application log recorded a registration error of the connector"),
        "{evidence}"
    );
    assert!(evidence.contains("Application Administrator"), "{evidence}");
    assert!(evidence.contains("step 2"), "{evidence}");
}

#[test]
fn registration_messages_are_matched_by_their_start_in_any_letter_case() {
    use registration::{documented, is_connector_source, step_of};
    assert_eq!(
        step_of(Some(
            "  the CONNECTOR was unable to connect to the service due to networking issues. The connector tried to access the following URL."
        )),
        Step::PortTest
    );
    // The more specific row wins over the general one it starts like.
    let denied = documented(Some("Connector registration failed: Make sure you are an Application Administrator of your Active Directory to register the connector. Error: 'The registration request was denied.'")).unwrap();
    assert!(denied.meaning.contains("Application Administrator"));
    // A message no page documents, or none at all: step 2, never dropped.
    assert_eq!(step_of(Some("Something else")), Step::ConnectorInstalled);
    assert_eq!(step_of(None), Step::ConnectorInstalled);
    assert!(
        documented(Some("Conn")).is_none(),
        "shorter than every start"
    );
    assert!(is_connector_source(
        "microsoft entra private network connector"
    ));
    assert!(is_connector_source(
        "Microsoft AAD Application Proxy Connector"
    ));
    assert!(!is_connector_source(
        "Microsoft-AadApplicationProxy-Connector"
    ));
}

#[test]
fn the_query_asks_for_the_connectors_sources_and_a_first_read_for_one_day() {
    use crate::platform::event_log::query;
    assert_eq!(query(&[], false), "*");
    assert_eq!(
        query(&[], true),
        "*[System[TimeCreated[timediff(@SystemTime) <= 86400000]]]"
    );
    assert_eq!(
        query(&registration::SOURCES, false),
        "*[System[Provider[@Name='Microsoft Entra private network connector' or @Name='Microsoft AAD Application Proxy Connector']]]"
    );
    assert_eq!(
        query(&["a'b", "c"], true),
        "*[System[Provider[@Name='c'] and TimeCreated[timediff(@SystemTime) <= 86400000]]]"
    );
}
