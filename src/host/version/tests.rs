//! The version check's rule, a case per line of its module doc: behind the newest
//! auto-update release warns; anything else passes with what it saw, or is not evaluated.

use super::updater::{UpdaterLog, UpdaterService};
use super::*;
use crate::config::values::{ConnectorRelease, ConnectorVersion, Releases};

fn v(text: &str) -> FileVersion {
    ConnectorVersion::parse(text).unwrap().0
}

fn group(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn running() -> UpdaterActivity {
    UpdaterActivity {
        service: UpdaterService::Running,
        log: UpdaterLog::LastEvent {
            time: 1_760_054_400,
        },
    }
}

fn builtin() -> ReleaseList {
    ReleaseList::builtin()
}

fn warning(state: &VersionState) -> &str {
    match &state.verdict {
        Verdict::Warning { evidence } => evidence,
        other => panic!("expected a warning, got {other:?}"),
    }
}

#[test]
fn a_connector_on_the_newest_auto_update_release_passes_though_download_only_releases_are_newer() {
    let state = judge(v("1.5.4522.0"), &builtin(), &group(&[]), running());
    assert_eq!(state.verdict, Verdict::Pass);
    assert_eq!(state.releases_behind, Some(2));
    assert_eq!(state.behind_auto_update, Some(false));
    assert_eq!(state.latest_release.as_deref(), Some("1.5.4892.0"));
    assert_eq!(state.latest_auto_update.as_deref(), Some("1.5.4522.0"));
    let note = state.note.unwrap();
    assert!(note.contains("download page only"), "{note}");
    assert!(
        note.contains("updater service (WAPCUpdaterSvc) runs"),
        "{note}"
    );
}

#[test]
fn a_host_upgraded_by_hand_past_its_group_passes_and_warns_no_other() {
    // conn-01 was upgraded by hand to 1.5.4892.0 (download only); conn-02 and conn-03 are on
    // 1.5.4522.0, where their updaters put them: nobody is behind.
    let members = group(&["1.5.4892.0", "1.5.4522.0", "1.5.4522.0"]);
    for mine in ["1.5.4892.0", "1.5.4522.0"] {
        let state = judge(v(mine), &builtin(), &members, running());
        assert_eq!(state.verdict, Verdict::Pass, "{mine}");
        assert_eq!(state.group_highest.as_deref(), Some("1.5.4892.0"));
    }
}

#[test]
fn a_whole_group_left_behind_warns_on_every_host() {
    // Every connector of the group on 1.5.3437.0: no member is newer, yet all are stale.
    let members = group(&["1.5.3437.0", "1.5.3437.0"]);
    let state = judge(v("1.5.3437.0"), &builtin(), &members, running());
    let evidence = warning(&state);
    assert!(evidence.contains("older than 1.5.4522.0"), "{evidence}");
    assert!(
        evidence.contains("8 published release(s) are newer"),
        "{evidence}"
    );
    assert!(evidence.contains("as of 2026-06-08"), "{evidence}");
    assert_eq!(state.releases_behind, Some(8));
    assert_eq!(state.behind_auto_update, Some(true));
}

#[test]
fn one_auto_update_release_behind_warns() {
    let state = judge(v("1.5.4364.0"), &builtin(), &group(&[]), running());
    assert!(warning(&state).contains("older than 1.5.4522.0"));
    assert_eq!(state.releases_behind, Some(3));
}

#[test]
fn a_version_newer_than_the_list_is_not_behind_and_says_the_list_may_be_old() {
    let state = judge(v("1.5.5100.0"), &builtin(), &group(&[]), running());
    assert_eq!(state.verdict, Verdict::Pass);
    assert_eq!(state.releases_behind, Some(0));
    assert_eq!(state.behind_auto_update, Some(false));
    let note = state.note.unwrap();
    assert!(note.contains("newer than every release"), "{note}");
    assert!(note.contains("the list may be old"), "{note}");
}

#[test]
fn a_group_member_newer_than_the_list_says_the_list_may_be_old() {
    let members = group(&["1.5.5100.0"]);
    let state = judge(v("1.5.4892.0"), &builtin(), &members, running());
    assert_eq!(state.verdict, Verdict::Pass);
    assert!(state.note.unwrap().contains("newer than the list"));
}

#[test]
fn a_build_between_releases_is_judged_by_where_it_falls() {
    let state = judge(v("1.5.4400.3"), &builtin(), &group(&[]), running());
    assert!(warning(&state).contains("older than 1.5.4522.0"));
    let state = judge(v("1.5.4600.0"), &builtin(), &group(&[]), running());
    assert_eq!(state.verdict, Verdict::Pass);
    assert!(state.note.unwrap().contains("not in the list"));
}

#[test]
fn the_config_list_replaces_the_built_in_one() {
    let release = |text, auto_update| ConnectorRelease {
        version: ConnectorVersion::parse(text).unwrap(),
        auto_update,
    };
    let list = ReleaseList::from_settings(&Releases::Listed(vec![
        release("1.5.4522.0", false),
        release("1.5.4892.0", true),
    ]));
    let state = judge(v("1.5.4522.0"), &list, &group(&[]), running());
    let evidence = warning(&state);
    assert!(evidence.contains("older than 1.5.4892.0"), "{evidence}");
    assert!(evidence.contains("connector.releases"), "{evidence}");
    assert_eq!(state.release_list, ListSource::Config);
}

#[test]
fn the_warning_says_what_the_updater_did() {
    let stopped = UpdaterActivity {
        service: UpdaterService::NotRunning {
            status: "Stopped".into(),
        },
        log: UpdaterLog::NothingRead,
    };
    let state = judge(v("1.5.3925.0"), &builtin(), &group(&[]), stopped);
    let evidence = warning(&state);
    assert!(
        evidence.contains("WAPCUpdaterSvc) is Stopped"),
        "{evidence}"
    );
    assert!(evidence.contains("recorded nothing"), "{evidence}");
    let missing = UpdaterActivity {
        service: UpdaterService::Missing,
        log: UpdaterLog::NotEvaluated {
            reason: "this host has no updater Admin log (neither name exists)".into(),
        },
    };
    let state = judge(v("1.5.3925.0"), &builtin(), &group(&[]), missing);
    assert!(warning(&state).contains("reinstall the connector"));
    let state = judge(v("1.5.3925.0"), &builtin(), &group(&[]), running());
    assert!(warning(&state).contains("last recorded activity at 2025-10-10T00:00:00Z"));
}

#[test]
fn off_windows_the_check_is_not_evaluated_and_says_why_with_the_list_still_known() {
    let state = check_version(
        &executable_paths(&AutoOr::Auto),
        &builtin(),
        &group(&["1.5.4522.0"]),
        UpdaterActivity::default(),
    );
    if cfg!(windows) {
        return;
    }
    assert!(
        matches!(&state.verdict, Verdict::NotEvaluated { reason } if reason.contains("not Windows")),
        "{:?}",
        state.verdict
    );
    assert_eq!(state.releases_behind, None);
    assert_eq!(state.behind_auto_update, None);
    assert_eq!(state.latest_release.as_deref(), Some("1.5.4892.0"));
}

#[test]
fn a_configured_service_config_points_at_the_executable_beside_it() {
    let paths = executable_paths(&AutoOr::Value(PathBuf::from("/opt/c/Svc.exe.config")));
    assert_eq!(paths, [PathBuf::from("/opt/c/Svc.exe")]);
    assert_eq!(executable_paths(&AutoOr::Auto).len(), 2);
}

#[test]
fn the_updaters_activity_comes_from_this_rounds_services_and_its_admin_log() {
    use super::updater::updater_activity;
    use crate::host::eventlog::{Channel, ChannelCounts, EventLogState};
    use crate::platform::services::ServiceState;
    let counts = ChannelCounts {
        last_event: Some(1_760_054_400),
        ..ChannelCounts::default()
    };
    let log = EventLogState {
        verdict: Verdict::Pass,
        channels: [(Channel::Updater, counts)].into(),
    };
    let services = [
        ("connector", ServiceState::Running),
        ("updater", ServiceState::NotRunning("Stopped".into())),
    ];
    let activity = updater_activity(Some(&services), &log);
    assert_eq!(
        activity.service,
        UpdaterService::NotRunning {
            status: "Stopped".into()
        }
    );
    assert_eq!(activity.last_activity(), Some(1_760_054_400));

    // Connector log only: the updater's was not found.
    let no_updater_log = EventLogState {
        verdict: Verdict::Pass,
        channels: [(Channel::Connector, ChannelCounts::default())].into(),
    };
    let activity = updater_activity(Some(&services[..1]), &no_updater_log);
    assert_eq!(activity.service, UpdaterService::Missing);
    assert!(
        matches!(activity.log, UpdaterLog::NotEvaluated { ref reason } if reason.contains("no updater Admin log"))
    );

    // Off Windows: neither was read, and each says why.
    let unread = EventLogState {
        verdict: Verdict::not_evaluated(crate::platform::NOT_WINDOWS),
        channels: Default::default(),
    };
    let activity = updater_activity(None, &unread);
    assert!(
        matches!(activity.log, UpdaterLog::NotEvaluated { ref reason } if reason.contains("not Windows"))
    );
    if !cfg!(windows) {
        assert!(
            matches!(activity.service, UpdaterService::NotEvaluated { ref reason } if reason.contains("not Windows"))
        );
    }
    assert_eq!(activity.last_activity(), None);
}
