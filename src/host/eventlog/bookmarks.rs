//! Where the event log bookmarks are kept across restarts: in `state\` under the exporter's
//! `%ProgramData%` folder, the one subfolder the service may write once
//! deploy/windows/service-account.ps1 has made the folder itself read-only to it. Up to 0.1.0
//! they were kept in the folder itself, where such a host could not save them (so every restart
//! read the last 24 hours again): a bookmark found there is moved into `state\`.

use std::path::{Path, PathBuf};

use super::Channel;

/// A bookmark is one short XML element; a bigger file is not one.
const MAX_BOOKMARK_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone)]
pub struct BookmarkStore {
    /// The exporter's folder (`%ProgramData%\appproxy_exporter`); writes go to its `state\`.
    data_dir: PathBuf,
}

impl BookmarkStore {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        BookmarkStore {
            data_dir: data_dir.into(),
        }
    }

    /// `%ProgramData%\appproxy_exporter`, where the MSI puts the configuration.
    pub fn program_data() -> Self {
        let program_data =
            std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        Self::new(PathBuf::from(program_data).join("appproxy_exporter"))
    }

    /// The folder every write goes to.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join("state")
    }

    fn name(channel: Channel) -> String {
        format!("eventlog-{}.bookmark.xml", channel.label())
    }

    pub fn file(&self, channel: Channel) -> PathBuf {
        self.state_dir().join(Self::name(channel))
    }

    /// Where 0.1.0 kept it.
    fn legacy_file(&self, channel: Channel) -> PathBuf {
        self.data_dir.join(Self::name(channel))
    }

    /// The saved bookmark of `channel`: the one in `state\`, else one left by 0.1.0, which is
    /// then moved into `state\`. A legacy file that cannot be removed (the folder is read-only
    /// to the service) stays behind, harmless: the one in `state\` is read first from now on.
    pub fn load(&self, channel: Channel) -> Option<String> {
        if let Some(text) = read(&self.file(channel)) {
            return Some(text);
        }
        let legacy = self.legacy_file(channel);
        let text = read(&legacy)?;
        match self.save(channel, &text) {
            Ok(()) => {
                if let Err(error) = std::fs::remove_file(&legacy) {
                    tracing::debug!(file = %legacy.display(), %error, "the moved bookmark's old file stays");
                }
                tracing::info!(from = %legacy.display(), to = %self.file(channel).display(), "event log bookmark moved into the state folder");
            }
            Err(error) => {
                tracing::warn!(file = %self.file(channel).display(), %error, "the event log bookmark cannot be moved into the state folder");
            }
        }
        Some(text)
    }

    /// Saves `channel`'s bookmark in `state\`, creating the folder when it is missing.
    pub fn save(&self, channel: Channel, bookmark: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.state_dir())?;
        std::fs::write(self.file(channel), bookmark)
    }
}

fn read(path: &Path) -> Option<String> {
    crate::text::read_text(path, MAX_BOOKMARK_BYTES).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARK: &str = "<BookmarkList><Bookmark Channel='Microsoft-AadApplicationProxy-Connector/Admin' RecordId='42' IsCurrent='true'/></BookmarkList>";

    fn files(dir: &Path) -> Vec<String> {
        let mut found: Vec<String> = walk(dir)
            .into_iter()
            .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
            .collect();
        found.sort();
        found
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flat_map(|entry| {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path)
                } else {
                    vec![path]
                }
            })
            .collect()
    }

    #[test]
    fn bookmarks_are_saved_in_the_state_folder_and_nowhere_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = BookmarkStore::new(dir.path());
        std::fs::write(dir.path().join("appproxy_exporter.yml"), "cloud: public\n").unwrap();
        store.save(Channel::Connector, MARK).unwrap();
        store.save(Channel::Updater, MARK).unwrap();
        assert_eq!(
            files(dir.path()),
            [
                "appproxy_exporter.yml",
                "state/eventlog-connector.bookmark.xml",
                "state/eventlog-updater.bookmark.xml"
            ]
        );
        assert_eq!(store.load(Channel::Connector).as_deref(), Some(MARK));
    }

    #[test]
    fn a_bookmark_left_at_the_root_by_0_1_0_is_moved_into_the_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("eventlog-connector.bookmark.xml"), MARK).unwrap();
        let store = BookmarkStore::new(dir.path());
        assert_eq!(store.load(Channel::Connector).as_deref(), Some(MARK));
        assert_eq!(files(dir.path()), ["state/eventlog-connector.bookmark.xml"]);
        assert_eq!(store.load(Channel::Updater), None);
    }

    #[test]
    fn the_state_folders_bookmark_wins_over_one_left_at_the_root() {
        // On a hardened host the service cannot remove the old file: the newer one in state\
        // must be the one read.
        let dir = tempfile::tempdir().unwrap();
        let store = BookmarkStore::new(dir.path());
        std::fs::write(
            dir.path().join("eventlog-connector.bookmark.xml"),
            "<BookmarkList/>",
        )
        .unwrap();
        store.save(Channel::Connector, MARK).unwrap();
        assert_eq!(store.load(Channel::Connector).as_deref(), Some(MARK));
    }

    #[test]
    fn a_bookmark_that_is_not_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = BookmarkStore::new(dir.path());
        std::fs::create_dir_all(store.state_dir()).unwrap();
        std::fs::write(
            store.file(Channel::Connector),
            vec![b'x'; MAX_BOOKMARK_BYTES as usize + 1],
        )
        .unwrap();
        assert_eq!(store.load(Channel::Connector), None);
    }
}
