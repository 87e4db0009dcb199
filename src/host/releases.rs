//! The connector releases Microsoft publishes, which the version check
//! ([`super::version::check_version`]) judges a connector against: the list built into the
//! exporter, or `connector.releases` from the config file.
//!
//! Source of the built-in list: Microsoft's "Microsoft Entra private network connector: version
//! release history", <https://learn.microsoft.com/entra/global-secure-access/reference-version-history>
//! (MicrosoftDocs/entra-docs, docs/global-secure-access/reference-version-history.md), as
//! published on 2026-06-08 ([`BUILTIN_AS_OF`]). A release is `auto_update` where its "Release
//! status" says "This version may perform auto-upgrade of your connector. As long as the private
//! network connector updater service is running, your connectors may update with this connector
//! release automatically"; the others say "This version is only available for install via the
//! download page" (or, before 1.5.1526.0, only "Released for download": the page does not say
//! that they updated by themselves, so they are not counted as such). When Microsoft publishes a
//! release, add it here with its date, or set `connector.releases` until the exporter is updated.

use serde::Serialize;

use crate::config::values::{ConnectorRelease, ConnectorVersion, Releases};
use crate::platform::file_version::FileVersion;

/// The day the built-in list was checked against Microsoft's page (its `ms.date`).
pub const BUILTIN_AS_OF: &str = "2026-06-08";

/// One published release: version, the date the history gives, and whether it auto-updates.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub version: FileVersion,
    pub released: &'static str,
    pub auto_update: bool,
}

const fn release(a: u32, b: u32, c: u32, d: u32, released: &'static str, auto: bool) -> Published {
    Published {
        version: FileVersion([a, b, c, d]),
        released,
        auto_update: auto,
    }
}

/// Every release the history lists, oldest first.
pub const BUILTIN: [Published; 17] = [
    release(1, 5, 36, 0, "2017-04-15", false),
    release(1, 5, 132, 0, "2017-05-25", false),
    release(1, 5, 402, 0, "2018-01-19", false),
    release(1, 5, 612, 0, "2018-09-20", false),
    release(1, 5, 1526, 0, "2020-04-07", false),
    release(1, 5, 1626, 0, "2020-07-17", false),
    release(1, 5, 1975, 0, "2020-07-22", false),
    release(1, 5, 2846, 0, "2022-03-22", false),
    release(1, 5, 3437, 0, "2023-06-20", false),
    // The rename to "Microsoft Entra private network connector".
    release(1, 5, 3829, 0, "2024-04-02", false),
    release(1, 5, 3890, 0, "2024-05-29", false),
    release(1, 5, 3925, 0, "2024-07-03", false),
    release(1, 5, 4287, 0, "2025-05-28", false),
    release(1, 5, 4364, 0, "2025-06-25", true),
    release(1, 5, 4522, 0, "2025-10-10", true),
    release(1, 5, 4594, 0, "2025-12-19", false),
    release(1, 5, 4892, 0, "2026-06-08", false),
];

/// Where the list in use came from (the `source` label, and the check's evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListSource {
    Builtin,
    Config,
}

impl ListSource {
    pub fn label(self) -> &'static str {
        match self {
            ListSource::Builtin => "builtin",
            ListSource::Config => "config",
        }
    }

    /// The list named in a sentence.
    pub fn described(self) -> String {
        match self {
            ListSource::Builtin => format!(
                "Microsoft's release history as of {BUILTIN_AS_OF}, built into the exporter"
            ),
            ListSource::Config => "the release list of connector.releases".to_string(),
        }
    }
}

/// The releases in use, oldest first.
#[derive(Debug, Clone)]
pub struct ReleaseList {
    releases: Vec<ConnectorRelease>,
    pub source: ListSource,
}

impl Default for ReleaseList {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ReleaseList {
    pub fn builtin() -> Self {
        ReleaseList {
            releases: BUILTIN
                .iter()
                .map(|p| ConnectorRelease {
                    version: ConnectorVersion(p.version),
                    auto_update: p.auto_update,
                })
                .collect(),
            source: ListSource::Builtin,
        }
    }

    /// The list `connector.releases` chose (validated and sorted by the config).
    pub fn from_settings(releases: &Releases) -> Self {
        match releases {
            Releases::Builtin => Self::builtin(),
            Releases::Listed(list) => {
                let mut releases = list.clone();
                releases.sort_by_key(|r| r.version);
                ReleaseList {
                    releases,
                    source: ListSource::Config,
                }
            }
        }
    }

    /// The newest published release.
    pub fn latest(&self) -> Option<FileVersion> {
        self.releases.last().map(|r| r.version.0)
    }

    /// The newest release that connectors install by themselves through their updater.
    pub fn latest_auto_update(&self) -> Option<FileVersion> {
        self.releases
            .iter()
            .rev()
            .find(|r| r.auto_update)
            .map(|r| r.version.0)
    }

    /// How many published releases are newer than `version`.
    pub fn newer_than(&self, version: FileVersion) -> usize {
        self.releases
            .iter()
            .filter(|r| r.version.0 > version)
            .count()
    }

    pub fn contains(&self, version: FileVersion) -> bool {
        self.releases.iter().any(|r| r.version.0 == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_list_is_oldest_first_each_release_once_dated_in_order() {
        for pair in BUILTIN.windows(2) {
            assert!(pair[0].version < pair[1].version, "{pair:?}");
            assert!(pair[0].released <= pair[1].released, "{pair:?}");
        }
        let day = time::format_description::parse("[year]-[month]-[day]").unwrap();
        for p in BUILTIN {
            assert!(time::Date::parse(p.released, &day).is_ok(), "{p:?}");
            assert!(p.released <= BUILTIN_AS_OF, "{p:?}");
        }
    }

    #[test]
    fn the_built_in_list_knows_the_releases_the_troubleshooting_pages_name() {
        let list = ReleaseList::builtin();
        for named in [
            "1.5.3829.0",
            "1.5.3890.0",
            "1.5.3925.0",
            "1.5.4287.0",
            "1.5.4522.0",
        ] {
            let version = ConnectorVersion::parse(named).unwrap().0;
            assert!(list.contains(version), "{named}");
        }
        assert_eq!(list.latest(), Some(FileVersion([1, 5, 4892, 0])));
        assert_eq!(
            list.latest_auto_update(),
            Some(FileVersion([1, 5, 4522, 0]))
        );
    }

    #[test]
    fn releases_newer_than_a_version_are_counted_from_the_list() {
        let list = ReleaseList::builtin();
        assert_eq!(list.newer_than(FileVersion([1, 5, 4892, 0])), 0);
        assert_eq!(list.newer_than(FileVersion([1, 5, 4522, 0])), 2);
        // A hotfix build between two releases: the releases above it.
        assert_eq!(list.newer_than(FileVersion([1, 5, 4400, 7])), 3);
        assert_eq!(list.newer_than(FileVersion([1, 5, 9999, 0])), 0);
    }
}
