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

    /// The events of `channel` after `bookmark` (or from the last day), at most `max`.
    #[cfg(windows)]
    pub fn read_after(
        &self,
        channel: &str,
        bookmark: Option<&str>,
        max: usize,
    ) -> Result<Read, ReadError> {
        let _ = self.windows;
        wevtapi::read_after(channel, bookmark, max)
    }

    #[cfg(not(windows))]
    pub fn read_after(
        &self,
        _channel: &str,
        _bookmark: Option<&str>,
        _max: usize,
    ) -> Result<Read, ReadError> {
        self.windows.unreachable()
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
