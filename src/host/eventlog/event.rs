//! One event as the Windows event log renders it to XML (Microsoft's "Event Schema":
//! `Event/System` with `Provider/@Name`, `EventID`, `Level`, `TimeCreated/@SystemTime`,
//! `Channel`; then `EventData/Data`), decoded with errors that say what is missing.

use serde::Serialize;

/// The most of an event's first `Data` kept: enough to recognise a documented message.
const MAX_MESSAGE_CHARS: usize = 512;

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
    /// The first `EventData/Data` text (at most 512 characters): classic event sources such as
    /// the connector's registration write their message there. Matched against documented
    /// messages only; never logged or exported, since it may name an account.
    #[serde(skip)]
    pub message: Option<String>,
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
    let mut message: Option<String> = None;
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
                    ["Event", "EventData", "Data"] if message.is_none() => {
                        message = Some(text.chars().take(MAX_MESSAGE_CHARS).collect());
                    }
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
        message,
    })
}
