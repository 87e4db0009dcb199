//! The connector's and the updater's Admin event logs, and the connector's registration errors
//! in the Application log ([`registration`]), read incrementally through the Windows event log
//! API ([`crate::platform::event_log`]) with a bookmark kept across restarts
//! ([`BookmarkStore`]), and decoded ([`event`]) from the event XML every Windows event renders
//! to (Microsoft's "Event Schema"). Counted by event id, level and the step each explains: the
//! ids Microsoft documents for the Admin logs ([`DOCUMENTED`]) and the registration messages it
//! documents ([`registration::DOCUMENTED`]) are mapped to their flowchart step (the tables in
//! docs/eventlog.md), and every other id is counted as `other`, never dropped.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::Verdict;
use crate::platform::event_log::{self, EventLog};
use crate::walk::Step;

mod bookmarks;
mod event;
pub mod registration;

pub use bookmarks::BookmarkStore;
pub use event::{DecodeError, Event, decode};

/// Which log (the `channel` label), with the channel names it has had: the App Proxy name, and
/// the name after the 2024 rename to "Microsoft Entra private network connector". The
/// Application log is read for the connector's event sources only ([`Channel::providers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Connector,
    Updater,
    /// Windows Logs\Application: the connector's registration errors.
    Application,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Connector, Channel::Updater, Channel::Application];

    pub fn label(self) -> &'static str {
        match self {
            Channel::Connector => "connector",
            Channel::Updater => "updater",
            Channel::Application => "application",
        }
    }

    pub fn names(self) -> &'static [&'static str] {
        match self {
            Channel::Connector => &[
                "Microsoft-AadApplicationProxy-Connector/Admin",
                "Microsoft-Microsoft Entra private network-Connector/Admin",
            ],
            Channel::Updater => &[
                "Microsoft-AadApplicationProxy-Updater/Admin",
                "Microsoft-Microsoft Entra private network-Updater/Admin",
            ],
            Channel::Application => &["Application"],
        }
    }

    /// The event sources read from this log; empty: all of them (the Admin logs are the
    /// connector's own).
    pub fn providers(self) -> &'static [&'static str] {
        match self {
            Channel::Application => &registration::SOURCES,
            Channel::Connector | Channel::Updater => &[],
        }
    }

    /// The `event_id` label, the step and, when documented, the meaning of one of this log's
    /// events. The Admin logs' events are known by id; registration errors by message, as
    /// Microsoft documents them (their ids are undocumented, so always `other`).
    pub fn attribute(self, event: &Event) -> (String, Step, Option<&'static str>) {
        match self {
            Channel::Application => {
                let message = event.message.as_deref();
                (
                    "other".to_string(),
                    registration::step_of(message),
                    registration::documented(message).map(|d| d.meaning),
                )
            }
            Channel::Connector | Channel::Updater => (
                id_label(event.id),
                step_of(event.id),
                DOCUMENTED
                    .iter()
                    .find(|d| d.id == event.id)
                    .map(|d| d.meaning),
            ),
        }
    }
}

/// An event id Microsoft documents for the connector, and the step it explains.
#[derive(Debug)]
pub struct Documented {
    pub id: u32,
    pub step: Step,
    /// Microsoft's text for it, shortened.
    pub meaning: &'static str,
}

/// The connector events Microsoft's troubleshooting pages name (sources in docs/eventlog.md).
pub const DOCUMENTED: [Documented; 7] = [
    Documented {
        id: 1000,
        step: Step::ConnectorInstalled,
        meaning: "connector re-registration failed: the connector trust certificate expired",
    },
    Documented {
        id: 12008,
        step: Step::InternalUrl,
        meaning: "the maximum number of Kerberos authentication attempts to the backend server was exceeded",
    },
    Documented {
        id: 12027,
        step: Step::InternalUrl,
        meaning: "Kerberos constrained delegation: incorrect KCD configuration",
    },
    Documented {
        id: 13016,
        step: Step::EscalateAppFlow,
        meaning: "no Kerberos ticket on behalf of the user: no UPN in the edge token or access cookie",
    },
    Documented {
        id: 13019,
        step: Step::InternalUrl,
        meaning: "no Kerberos ticket on behalf of the user because of a general API error (SPN, time, trust)",
    },
    Documented {
        id: 13020,
        step: Step::InternalUrl,
        meaning: "no Kerberos ticket on behalf of the user: the backend server SPN is not defined",
    },
    Documented {
        id: 13022,
        step: Step::InternalUrl,
        meaning: "the backend server answers Kerberos authentication attempts with HTTP 401",
    },
];

/// The step an event id explains: a documented one's, or step 2 for any other (an error of the
/// connector service that Microsoft's tables do not name is about the connector itself).
pub fn step_of(id: u32) -> Step {
    DOCUMENTED
        .iter()
        .find(|d| d.id == id)
        .map_or(Step::ConnectorInstalled, |d| d.step)
}

/// The `event_id` label: the id when documented, else `other` (a bounded set).
pub fn id_label(id: u32) -> String {
    if DOCUMENTED.iter().any(|d| d.id == id) {
        id.to_string()
    } else {
        "other".to_string()
    }
}

/// What one channel's events added up to since the exporter started (or since its bookmark).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelCounts {
    /// The channel name found on this host.
    pub name: String,
    /// By (`event_id` label, level label, the step the event explains).
    pub counts: BTreeMap<(String, &'static str, Step), u64>,
    /// The last error or critical event.
    pub last_error: Option<LastError>,
    /// The newest event of any level (the updater's last activity).
    pub last_event: Option<i64>,
    /// Events that did not decode (logged with the reason).
    pub undecodable: u64,
}

/// A channel's newest error or critical event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    pub id: u32,
    /// Unix seconds.
    pub time: i64,
    pub step: Step,
    /// Microsoft's text for it, shortened, when documented.
    pub meaning: Option<&'static str>,
}

impl ChannelCounts {
    /// Counts one event's XML read from `channel`; in the Application log, only the
    /// connector's sources count (the query asks for them; this holds where it is not honoured).
    pub fn add(&mut self, channel: Channel, xml: &str) {
        match decode(xml) {
            Ok(event) => {
                let providers = channel.providers();
                if !providers.is_empty()
                    && !providers
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(&event.provider))
                {
                    return;
                }
                let (id, step, meaning) = channel.attribute(&event);
                *self
                    .counts
                    .entry((id, event.level_label(), step))
                    .or_default() += 1;
                if event.is_error()
                    && self
                        .last_error
                        .as_ref()
                        .is_none_or(|e| event.time >= e.time)
                {
                    self.last_error = Some(LastError {
                        id: event.id,
                        time: event.time,
                        step,
                        meaning,
                    });
                }
                if self.last_event.is_none_or(|t| event.time >= t) {
                    self.last_event = Some(event.time);
                }
            }
            Err(error) => {
                self.undecodable += 1;
                tracing::warn!(channel = %self.name, %error, "an event of the connector's log did not decode");
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EventLogState {
    pub verdict: Verdict,
    pub channels: BTreeMap<Channel, ChannelCounts>,
}

/// Errors newer than this make the check warn.
const RECENT_SECONDS: i64 = 3600;

/// The event log's verdict: it passes once read; a recent error warns, naming its step. Events
/// are history, not state, so they never fail a step by themselves.
pub fn judge(channels: BTreeMap<Channel, ChannelCounts>, now: SystemTime) -> EventLogState {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let recent = channels.iter().find_map(|(channel, counts)| {
        counts
            .last_error
            .as_ref()
            .filter(|e| now - e.time < RECENT_SECONDS)
            .map(|e| (channel, e))
    });
    let verdict = match recent {
        Some((channel, error)) => {
            let about = error
                .meaning
                .unwrap_or("not in Microsoft's tables")
                .to_string();
            let what = match channel {
                Channel::Application => format!(
                    "the Application log recorded a registration error of the connector (event {})",
                    error.id
                ),
                _ => format!("the {} log recorded error {}", channel.label(), error.id),
            };
            Verdict::Warning {
                evidence: format!(
                    "{what} in the last hour ({about}; step {})",
                    error.step.number()
                ),
            }
        }
        None => Verdict::Pass,
    };
    EventLogState { verdict, channels }
}

/// Reads the logs incrementally and keeps the counts; lives as long as the prober.
#[derive(Debug, Default)]
pub struct EventLogMonitor {
    channels: BTreeMap<Channel, ChannelCounts>,
    /// The bookmark of each channel, as the API renders it.
    bookmarks: BTreeMap<Channel, String>,
    /// Said once: the bookmark directory cannot be written.
    warned: bool,
}

/// The most events read from one channel in one round; the rest wait for the next round.
pub const MAX_EVENTS_PER_ROUND: usize = 5_000;

impl EventLogMonitor {
    /// Reads what is new in each channel and judges the logs.
    pub fn check_event_log(&mut self) -> EventLogState {
        let log = match EventLog::open() {
            Ok(log) => log,
            Err(why) => {
                return EventLogState {
                    verdict: Verdict::not_evaluated(why.to_string()),
                    channels: BTreeMap::new(),
                };
            }
        };
        match self.read_all(log) {
            Ok(()) => judge(self.channels.clone(), SystemTime::now()),
            Err(reason) => EventLogState {
                verdict: Verdict::not_evaluated(reason.to_string()),
                channels: self.channels.clone(),
            },
        }
    }

    fn read_all(&mut self, log: EventLog) -> Result<(), EventLogError> {
        let store = BookmarkStore::program_data();
        let mut problems = Vec::new();
        for channel in Channel::ALL {
            if let std::collections::btree_map::Entry::Vacant(entry) = self.bookmarks.entry(channel)
            {
                if let Some(text) = store.load(channel) {
                    entry.insert(text);
                }
            }
            let mut found = false;
            for name in channel.names() {
                match log.read_after(
                    name,
                    channel.providers(),
                    self.bookmarks.get(&channel).map(String::as_str),
                    MAX_EVENTS_PER_ROUND,
                ) {
                    Ok(read) => {
                        found = true;
                        let counts = self.channels.entry(channel).or_default();
                        counts.name = name.to_string();
                        for xml in &read.events {
                            counts.add(channel, xml);
                        }
                        if let Some(bookmark) = read.bookmark {
                            if let Err(error) = store.save(channel, &bookmark) {
                                if !self.warned {
                                    tracing::warn!(file = %store.file(channel).display(), %error, "the event log bookmark cannot be saved: after a restart the log is read from its last 24 hours again");
                                    self.warned = true;
                                }
                            }
                            self.bookmarks.insert(channel, bookmark);
                        }
                        break;
                    }
                    Err(event_log::ReadError::NoSuchChannel) => {}
                    Err(event_log::ReadError::AccessDenied) => {
                        problems.push(format!(
                            "{name}: access denied: the exporter's account needs to be in Event Log Readers"
                        ));
                        found = true;
                        break;
                    }
                    Err(event_log::ReadError::Failed(error)) => {
                        problems.push(format!("{name}: {error}"));
                        found = true;
                        break;
                    }
                }
            }
            if !found && channel == Channel::Connector {
                return Err(EventLogError::NoConnector);
            }
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(EventLogError::Unreadable(problems)),
        }
    }
}

/// Why the logs were not read: the check's reason for not being evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("no connector on this host: neither connector Admin event log exists")]
    NoConnector,
    /// Each channel that could not be read, with why.
    #[error("the connector's event logs cannot be read: {}", .0.join("; "))]
    Unreadable(Vec<String>),
}

#[cfg(test)]
mod tests;
