//! The Windows event log, both ways: a channel's events read after a bookmark (through
//! wevtapi, [`EventLog`]), and the exporter's own log written to it when it runs as a service
//! ([`install_log`]). Elsewhere there is no event log, and both say why.

use tracing_subscriber::filter::LevelFilter;

use super::{Unavailable, Windows};

#[cfg(windows)]
mod wevtapi;

/// Why a channel was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no such channel")]
    NoSuchChannel,
    /// The account may not read the channel (it needs Event Log Readers).
    #[error("access denied")]
    AccessDenied,
    #[error("{0}")]
    Failed(String),
}

/// What one read of a channel found.
#[derive(Debug, Default)]
pub struct Read {
    /// Each new event's XML, oldest first.
    pub events: Vec<String>,
    /// The bookmark after the last event read; `None` when nothing was read.
    pub bookmark: Option<String>,
}

/// This host's event log.
#[derive(Debug, Clone, Copy)]
pub struct EventLog {
    windows: Windows,
}

impl EventLog {
    /// The event log, or why this host has none.
    pub fn open() -> Result<EventLog, Unavailable> {
        Windows::here().map(|windows| EventLog { windows })
    }

    /// The events of `channel` after `bookmark` (or from the last day), at most `max`; only
    /// those of `providers` (event sources) when it is not empty.
    #[cfg(windows)]
    pub fn read_after(
        &self,
        channel: &str,
        providers: &[&str],
        bookmark: Option<&str>,
        max: usize,
    ) -> Result<Read, ReadError> {
        let _ = self.windows;
        wevtapi::read_after(
            channel,
            &query(providers, bookmark.is_none()),
            bookmark,
            max,
        )
    }

    #[cfg(not(windows))]
    pub fn read_after(
        &self,
        _channel: &str,
        _providers: &[&str],
        _bookmark: Option<&str>,
        _max: usize,
    ) -> Result<Read, ReadError> {
        self.windows.unreachable()
    }
}

/// The XPath query of a read (the subset "Consuming Events" documents for `EvtQuery`): the
/// events of `providers`, or all, and on a first read (no bookmark) only those of the last 24
/// hours. A provider's name is quoted with `'`, which event source names do not contain; one
/// that does is left out rather than break the query.
pub fn query(providers: &[&str], first: bool) -> String {
    let mut conditions = Vec::new();
    let names: Vec<String> = providers
        .iter()
        .filter(|p| !p.contains('\''))
        .map(|p| format!("@Name='{p}'"))
        .collect();
    if !names.is_empty() {
        conditions.push(format!("Provider[{}]", names.join(" or ")));
    }
    if first {
        conditions.push("TimeCreated[timediff(@SystemTime) <= 86400000]".to_string());
    }
    match conditions.is_empty() {
        true => "*".to_string(),
        false => format!("*[System[{}]]", conditions.join(" and ")),
    }
}

/// Why the exporter's own log cannot go to the event log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The source could not be registered (Windows' own message).
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// Sends this process' log at `level` and above to the Application event log, under
/// `source`; call once, first thing.
#[cfg(windows)]
pub fn install_log(source: &str, level: LevelFilter) -> Result<(), LogError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let layer = tracing_layer_win_eventlog::EventLogLayer::new(source)
        .map_err(|e| LogError::Source(e.to_string()))?;
    tracing_subscriber::registry()
        .with(level)
        .with(layer)
        .try_init()?;
    Ok(())
}

#[cfg(not(windows))]
pub fn install_log(_source: &str, _level: LevelFilter) -> Result<(), LogError> {
    Err(Unavailable::NotWindows.into())
}
