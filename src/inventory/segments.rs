//! A Private Access app's segments as Graph lists them (`ipApplicationSegment`): what the
//! connector is asked to reach for the app, kept as Graph wrote it. What can be probed of
//! them, and how they are sampled, is step 8's business (`backend::segments`).

use serde::Serialize;

use super::graph::IpApplicationSegment;

/// One segment: a destination (a host name, an IP address, a range `a-b` or a CIDR block, or
/// a DNS suffix), its ports (`"22"`, `"8000-8080"`) and its protocol (`tcp`, `udp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub destination_host: String,
    /// Graph's `destinationType` as given (`fqdn`, `ipAddress`, `ipRange`, `ipRangeCidr`,
    /// `dnsSuffix`, or a value Graph adds later); empty when Graph gave none.
    pub destination_type: String,
    pub ports: Vec<String>,
    /// `tcp`, `udp`, or what Graph gave; empty when it gave none.
    pub protocol: String,
}

/// The segments of a Private Access app, or why they could not be read (that app alone: the
/// rest of the inventory loads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum PrivateAccessSegments {
    Read(Vec<Segment>),
    Unreadable(String),
}

impl From<&IpApplicationSegment> for Segment {
    fn from(s: &IpApplicationSegment) -> Segment {
        Segment {
            destination_host: s.destination_host.clone().unwrap_or_default().trim().into(),
            destination_type: s.destination_type.clone().unwrap_or_default(),
            ports: s.ports.clone().unwrap_or_default(),
            protocol: s.protocol.clone().unwrap_or_default(),
        }
    }
}
