//! The connector's version (step 2): the file version of this host's connector service
//! executable against the newest version among its group's connectors (Graph's `version`), and
//! how many releases lie between. Connectors update themselves through the updater service;
//! one more than a release behind has stopped updating. Only ever a warning: an old connector
//! still serves.

use std::path::PathBuf;

use serde::Serialize;

use super::Verdict;
use crate::config::values::AutoOr;
use crate::platform::file_version::{FileVersion, FileVersions};

/// Releases listed in Microsoft's "application proxy: Version release history" page, and
/// 1.5.3829.0 (the rename to "Microsoft Entra private network connector"). Versions seen in
/// the group are counted too, so releases after these still count once a connector has them.
pub const KNOWN_RELEASES: [&str; 10] = [
    "1.5.36.0",
    "1.5.132.0",
    "1.5.402.0",
    "1.5.612.0",
    "1.5.1526.0",
    "1.5.1626.0",
    "1.5.1975.0",
    "1.5.2846.0",
    "1.5.3437.0",
    "1.5.3829.0",
];

/// More releases behind than this warns.
pub const MAX_RELEASES_BEHIND: usize = 1;

#[derive(Debug, Clone, Serialize)]
pub struct VersionState {
    pub verdict: Verdict,
    /// This host's connector, when its executable was read.
    pub file_version: Option<String>,
    /// The newest version Graph reports in this host's groups.
    pub group_highest: Option<String>,
    pub releases_behind: Option<usize>,
}

/// The connector service's executable: beside `connector.service_config` when that is a path,
/// else at the standard install paths, newest name first.
pub fn executable_paths(service_config: &AutoOr<PathBuf>) -> Vec<PathBuf> {
    if let AutoOr::Value(config) = service_config {
        return config
            .to_str()
            .and_then(|s| s.strip_suffix(".config"))
            .map(PathBuf::from)
            .into_iter()
            .collect();
    }
    let base =
        PathBuf::from(std::env::var("ProgramFiles").unwrap_or_else(|_| r"C:\Program Files".into()));
    vec![
        base.join("Microsoft Entra private network connector")
            .join("MicrosoftEntraPrivateNetworkConnectorService.exe"),
        base.join("Microsoft AAD App Proxy Connector")
            .join("ApplicationProxyConnectorService.exe"),
    ]
}

/// Step 2's version check: this host's executable against `group_versions` (Graph's versions
/// of the connectors in this host's groups, as given).
pub fn check_version(executables: &[PathBuf], group_versions: &[String]) -> VersionState {
    let state = |verdict, file_version: Option<FileVersion>| VersionState {
        verdict,
        file_version: file_version.map(|v| v.to_string()),
        group_highest: None,
        releases_behind: None,
    };
    let versions = match FileVersions::here() {
        Ok(versions) => versions,
        Err(why) => return state(Verdict::not_evaluated(why.to_string()), None),
    };
    let Some(exe) = executables.iter().find(|p| p.is_file()) else {
        return state(
            Verdict::not_evaluated(
                "no connector on this host: no connector service executable at its install path",
            ),
            None,
        );
    };
    match versions.of(exe) {
        Ok(version) => judge(version, group_versions),
        Err(error) => state(
            Verdict::not_evaluated(format!(
                "the connector's file version is unreadable: {error}"
            )),
            None,
        ),
    }
}

/// The verdict on a known file version.
pub fn judge(mine: FileVersion, group_versions: &[String]) -> VersionState {
    let group: Vec<FileVersion> = group_versions
        .iter()
        .filter_map(|v| FileVersion::parse(v))
        .collect();
    let Some(highest) = group.iter().max().copied() else {
        return VersionState {
            verdict: Verdict::not_evaluated(
                "Graph reports no version for the connectors of this host's groups, so there is nothing to compare with",
            ),
            file_version: Some(mine.to_string()),
            group_highest: None,
            releases_behind: None,
        };
    };
    let mut releases: Vec<FileVersion> = KNOWN_RELEASES
        .iter()
        .filter_map(|v| FileVersion::parse(v))
        .chain(group.iter().copied())
        .filter(|v| *v > mine && *v <= highest)
        .collect();
    releases.sort();
    releases.dedup();
    let behind = releases.len();
    let verdict = if behind > MAX_RELEASES_BEHIND {
        Verdict::Warning {
            evidence: format!(
                "this connector is {mine}, {behind} releases behind {highest}, the newest in its group: it has stopped updating (is WAPCUpdaterSvc running, and can it reach the internet?)"
            ),
        }
    } else {
        Verdict::Pass
    };
    VersionState {
        verdict,
        file_version: Some(mine.to_string()),
        group_highest: Some(highest.to_string()),
        releases_behind: Some(behind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_newest_connector_in_its_group_passes() {
        let state = judge(
            FileVersion([1, 5, 3437, 0]),
            &versions(&["1.5.3437.0", "1.5.2846.0"]),
        );
        assert_eq!(state.verdict, Verdict::Pass);
        assert_eq!(state.releases_behind, Some(0));
        assert_eq!(state.group_highest.as_deref(), Some("1.5.3437.0"));
    }

    #[test]
    fn one_release_behind_passes_and_two_warn() {
        let mine = FileVersion([1, 5, 2846, 0]);
        let state = judge(mine, &versions(&["1.5.3437.0"]));
        assert_eq!(
            (state.verdict, state.releases_behind),
            (Verdict::Pass, Some(1))
        );
        let state = judge(mine, &versions(&["1.5.3829.0"]));
        assert_eq!(state.releases_behind, Some(2));
        assert!(
            matches!(state.verdict, Verdict::Warning { ref evidence } if evidence.contains("2 releases behind 1.5.3829.0"))
        );
    }

    #[test]
    fn releases_newer_than_the_built_in_list_count_once_a_group_member_has_them() {
        let state = judge(
            FileVersion([1, 5, 3829, 0]),
            &versions(&["1.5.4000.0", "1.5.4100.0"]),
        );
        assert_eq!(state.releases_behind, Some(2));
    }

    #[test]
    fn without_versions_from_graph_the_check_is_not_evaluated() {
        let state = judge(FileVersion([1, 5, 3437, 0]), &versions(&["", "n/a"]));
        assert!(matches!(state.verdict, Verdict::NotEvaluated { .. }));
        assert_eq!(state.file_version.as_deref(), Some("1.5.3437.0"));
    }

    #[test]
    fn a_configured_service_config_points_at_the_executable_beside_it() {
        let paths = executable_paths(&AutoOr::Value(PathBuf::from("/opt/c/Svc.exe.config")));
        assert_eq!(paths, [PathBuf::from("/opt/c/Svc.exe")]);
        assert_eq!(executable_paths(&AutoOr::Auto).len(), 2);
    }
}
