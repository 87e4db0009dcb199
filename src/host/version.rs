//! The connector's version (step 2): the file version of this host's connector service
//! executable against Microsoft's published releases ([`super::releases`]), and what its
//! updater did ([`updater`]). A connector warns when it is older than the newest release that
//! updates automatically: its updater should have installed that one by itself, so it is not
//! updating. Releases offered only on the download page never warn, nor does a connector newer
//! than every release listed (upgraded by hand, or a list older than the connector), nor how
//! the other connectors of its group compare. Only ever a warning: an old connector still
//! serves.

use std::path::PathBuf;

use serde::Serialize;

use super::Verdict;
use super::releases::{ListSource, ReleaseList};
use crate::config::values::AutoOr;
use crate::platform::file_version::{FileVersion, FileVersions};

pub mod updater;

pub use updater::UpdaterActivity;

#[derive(Debug, Clone, Serialize)]
pub struct VersionState {
    pub verdict: Verdict,
    /// What a passing check saw, said on the page and by `diagnose`.
    pub note: Option<String>,
    /// This host's connector, when its executable was read.
    pub file_version: Option<String>,
    /// The newest version Graph reports in this host's groups (shown, not judged).
    pub group_highest: Option<String>,
    /// Published releases newer than this host's connector.
    pub releases_behind: Option<usize>,
    /// Older than the newest auto-update release: what warns.
    pub behind_auto_update: Option<bool>,
    /// The newest release in the list in use, and the newest that updates automatically.
    pub latest_release: Option<String>,
    pub latest_auto_update: Option<String>,
    pub release_list: ListSource,
    pub updater: UpdaterActivity,
}

impl VersionState {
    /// Not judged, for `reason`; what is known of the releases and the updater is kept.
    pub fn not_evaluated(
        reason: impl Into<String>,
        releases: &ReleaseList,
        updater: UpdaterActivity,
    ) -> Self {
        VersionState {
            verdict: Verdict::not_evaluated(reason),
            note: None,
            file_version: None,
            group_highest: None,
            releases_behind: None,
            behind_auto_update: None,
            latest_release: releases.latest().map(|v| v.to_string()),
            latest_auto_update: releases.latest_auto_update().map(|v| v.to_string()),
            release_list: releases.source,
            updater,
        }
    }
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

/// Step 2's version check: this host's executable against `releases`; `group_versions`
/// (Graph's versions of the connectors in this host's groups) are shown beside it.
pub fn check_version(
    executables: &[PathBuf],
    releases: &ReleaseList,
    group_versions: &[String],
    updater: UpdaterActivity,
) -> VersionState {
    let versions = match FileVersions::here() {
        Ok(versions) => versions,
        Err(why) => return VersionState::not_evaluated(why.to_string(), releases, updater),
    };
    let Some(exe) = executables.iter().find(|p| p.is_file()) else {
        return VersionState::not_evaluated(
            "no connector on this host: no connector service executable at its install path",
            releases,
            updater,
        );
    };
    match versions.of(exe) {
        Ok(version) => judge(version, releases, group_versions, updater),
        Err(error) => VersionState::not_evaluated(
            format!("the connector's file version is unreadable: {error}"),
            releases,
            updater,
        ),
    }
}

/// The verdict on a known file version.
pub fn judge(
    mine: FileVersion,
    releases: &ReleaseList,
    group_versions: &[String],
    updater: UpdaterActivity,
) -> VersionState {
    let group_highest = group_versions
        .iter()
        .filter_map(|v| FileVersion::parse(v))
        .max();
    let mut state = VersionState::not_evaluated("", releases, updater);
    state.file_version = Some(mine.to_string());
    state.group_highest = group_highest.map(|v| v.to_string());
    let (Some(latest), Some(auto)) = (releases.latest(), releases.latest_auto_update()) else {
        state.verdict = Verdict::not_evaluated(format!(
            "{} names no release that updates automatically, so there is nothing to be behind",
            releases.source.described()
        ));
        return state;
    };
    let behind = releases.newer_than(mine);
    state.releases_behind = Some(behind);
    state.behind_auto_update = Some(mine < auto);
    let list = releases.source.described();
    if mine < auto {
        state.verdict = Verdict::Warning {
            evidence: format!(
                "this connector is {mine}, older than {auto}, the newest release that updates automatically ({behind} published release(s) are newer, per {list}): it is not updating. {}",
                state.updater.sentence()
            ),
        };
        return state;
    }
    state.verdict = Verdict::Pass;
    let mut note = if mine > latest {
        format!(
            "this connector is {mine}, newer than every release in {list} (newest {latest}): not behind; the list may be old (update the exporter, or list the release in connector.releases)"
        )
    } else if behind == 0 {
        format!("this connector is {mine}, the newest release in {list}")
    } else {
        format!(
            "this connector is {mine}, at or past {auto}, the newest release that updates automatically; {behind} newer release(s) up to {latest} are offered on the download page only (per {list})"
        )
    };
    if !releases.contains(mine) && mine <= latest {
        note.push_str(&format!(
            "; {mine} itself is not in the list (a build between releases)"
        ));
    }
    if let Some(highest) = group_highest.filter(|h| *h > latest) {
        note.push_str(&format!(
            "; a connector of its group runs {highest}, newer than the list: the list may be old"
        ));
    }
    note.push_str(&format!(". {}", state.updater.sentence()));
    state.note = Some(note);
    state
}

#[cfg(test)]
mod tests;
