//! The connector's and the updater's Admin event logs, read incrementally through the Windows
//! event log API ([`crate::platform::event_log`]) with a bookmark kept across restarts
//! ([`BookmarkStore`]), and decoded here from the
//! event XML every Windows event renders to (Microsoft's "Event Schema"). Counted by event id
//! and level; the ids Microsoft documents are mapped to the flowchart step they explain
//! ([`DOCUMENTED`], the table in docs/eventlog.md), and every other id is counted as `other`,
//! never dropped.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::Verdict;
use crate::platform::event_log::{self, EventLog};
use crate::walk::Step;

mod bookmarks;

pub use bookmarks::BookmarkStore;

/// Which log (the `channel` label), with the channel names it has had: the App Proxy name, and
/// the name after the 2024 rename to "Microsoft Entra private network connector".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Connector,
    Updater,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Connector, Channel::Updater];

    pub fn label(self) -> &'static str {
        match self {
            Channel::Connector => "connector",
            Channel::Updater => "updater",
        }
    }

    pub fn names(self) -> [&'static str; 2] {
        match self {
            Channel::Connector => [
                "Microsoft-AadApplicationProxy-Connector/Admin",
                "Microsoft-Microsoft Entra private network-Connector/Admin",
            ],
            Channel::Updater => [
                "Microsoft-AadApplicationProxy-Updater/Admin",
                "Microsoft-Microsoft Entra private network-Updater/Admin",
            ],
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

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: u32,
    /// The `Level` value: 1 critical, 2 error, 3 warning, 4 information, 5 verbose; 0 is
    /// "log always" and counted as information.
    pub level: u8,
    /// Unix seconds of `TimeCreated/@SystemTime`.
    pub time: i64,
    pub provider: String,
    pub channel: String,
}

impl Event {
    pub fn level_label(&self) -> &'static str {
        match self.level {
            1 => "critical",
            2 => "error",
            3 => "warning",
            5 => "verbose",
            _ => "information",
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self.level, 1 | 2)
    }
}

/// Why an event's XML did not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("byte {position}: malformed event XML: {source}")]
    Malformed {
        position: u64,
        source: quick_xml::Error,
    },
    #[error("byte {position}: {source}")]
    Attribute {
        position: u64,
        source: quick_xml::Error,
    },
    #[error("no Event/System/EventID element")]
    NoEventId,
    #[error("EventID {0:?} is not a number")]
    BadEventId(String),
    #[error("Level {0:?} is not a number")]
    BadLevel(String),
    #[error("no Event/System/TimeCreated/@SystemTime")]
    NoTime,
    #[error("TimeCreated/@SystemTime {text:?} is not an RFC 3339 time: {source}")]
    BadTime {
        text: String,
        source: time::error::Parse,
    },
}

/// Decodes an event's XML (`<Event><System>...`); errors say what is missing or malformed.
pub fn decode(xml: &str) -> Result<Event, DecodeError> {
    use quick_xml::events::Event as Xml;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let (mut id, mut level, mut time, mut provider, mut channel) = (None, None, None, None, None);
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|source| DecodeError::Malformed { position, source })?;
        let (start, empty) = match &event {
            Xml::Start(e) => (Some(e.clone()), false),
            Xml::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.local_name().as_ref().to_string();
            let in_system = path.len() == 2 && path[0] == "Event" && path[1] == "System";
            if in_system && (name == "Provider" || name == "TimeCreated") {
                for attribute in e.attributes().flatten() {
                    let key = attribute.key.local_name();
                    let value = attribute
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|source| DecodeError::Attribute { position, source })?
                        .into_owned();
                    match (name.as_str(), key.as_ref()) {
                        ("Provider", "Name") => provider = Some(value),
                        ("TimeCreated", "SystemTime") => time = Some(value),
                        _ => {}
                    }
                }
            }
            if !empty {
                path.push(name);
            }
            continue;
        }
        match event {
            Xml::End(_) => {
                path.pop();
            }
            Xml::Text(t) => {
                let text = t
                    .xml_content(quick_xml::XmlVersion::Implicit1_0)
                    .trim()
                    .to_string();
                match path.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    ["Event", "System", "EventID"] => id = Some(text),
                    ["Event", "System", "Level"] => level = Some(text),
                    ["Event", "System", "Channel"] => channel = Some(text),
                    _ => {}
                }
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    let id = id.ok_or(DecodeError::NoEventId)?;
    let id: u32 = id.parse().map_err(|_| DecodeError::BadEventId(id))?;
    let level = match level.as_deref() {
        None | Some("") => 4,
        Some(l) => l
            .parse()
            .map_err(|_| DecodeError::BadLevel(l.to_string()))?,
    };
    let time = time.ok_or(DecodeError::NoTime)?;
    let time = time::OffsetDateTime::parse(&time, &time::format_description::well_known::Rfc3339)
        .map_err(|source| DecodeError::BadTime {
            text: time.clone(),
            source,
        })?
        .unix_timestamp();
    Ok(Event {
        id,
        level,
        time,
        provider: provider.unwrap_or_default(),
        channel: channel.unwrap_or_default(),
    })
}

/// What one channel's events added up to since the exporter started (or since its bookmark).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelCounts {
    /// The channel name found on this host.
    pub name: String,
    /// By (`event_id` label, level label).
    pub counts: BTreeMap<(String, &'static str), u64>,
    /// The last error or critical event: (id, unix seconds).
    pub last_error: Option<(u32, i64)>,
    /// The newest event of any level (the updater's last activity).
    pub last_event: Option<i64>,
    /// Events that did not decode (logged with the reason).
    pub undecodable: u64,
}

impl ChannelCounts {
    /// Counts one event's XML.
    pub fn add(&mut self, xml: &str) {
        match decode(xml) {
            Ok(event) => {
                *self
                    .counts
                    .entry((id_label(event.id), event.level_label()))
                    .or_default() += 1;
                if event.is_error() && self.last_error.is_none_or(|(_, t)| event.time >= t) {
                    self.last_error = Some((event.id, event.time));
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
            .filter(|(_, t)| now - t < RECENT_SECONDS)
            .map(|(id, _)| (channel, id))
    });
    let verdict = match recent {
        Some((channel, id)) => {
            let about = DOCUMENTED.iter().find(|d| d.id == id).map_or_else(
                || "not in Microsoft's tables".to_string(),
                |d| d.meaning.to_string(),
            );
            Verdict::Warning {
                evidence: format!(
                    "the {} log recorded error {id} in the last hour ({about}; step {})",
                    channel.label(),
                    step_of(id).number()
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
                    self.bookmarks.get(&channel).map(String::as_str),
                    MAX_EVENTS_PER_ROUND,
                ) {
                    Ok(read) => {
                        found = true;
                        let counts = self.channels.entry(channel).or_default();
                        counts.name = name.to_string();
                        for xml in &read.events {
                            counts.add(xml);
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
