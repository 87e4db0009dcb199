//! Which TCP address:port pairs of a Private Access app's segments are probed, and what is
//! not probed with why. A host name or one address is probed on every configured port; a
//! range or CIDR block is sampled, as is a port range, so one /16 never makes thousands of
//! probes: of N candidates, at most `max` are taken, the first, the last and the rest evenly
//! spaced between them (offset `i × (N − 1) / (max − 1)`, rounded down, for `i` in `0..max`).
//! A CIDR block's IPv4 network and broadcast addresses (prefixes up to /30) and IPv6
//! subnet-router anycast address (up to /126) are left out: no host answers there.

use std::net::IpAddr;

use crate::config::SegmentSettings;
use crate::inventory::Segment;

/// At most this many probes per app, whatever its segments: past it the rest are not probed
/// and the app says so.
pub const MAX_PROBES_PER_APP: usize = 256;

/// Where one probe dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Name(String),
    Address(IpAddr),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Name(name) => f.write_str(name),
            Destination::Address(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Destination::Address(a) => write!(f, "{a}"),
        }
    }
}

/// One TCP address:port to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The segment as Graph wrote it, for the evidence (`10.1.0.0/16 tcp 22,8000-8080`).
    pub segment: std::sync::Arc<str>,
    pub destination: Destination,
    pub port: u16,
    /// Sampled from a range or CIDR block: an address that may hold no service at all.
    pub sampled_from_range: bool,
}

/// What one app's segments come to: the probes, and the parts not probed with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub targets: Vec<ProbeTarget>,
    pub not_probed: Vec<String>,
}

/// The sampled offsets of `count` candidates, at most `max` of them (see the module's rule).
pub fn sample(count: u128, max: u32) -> Vec<u128> {
    let max = u128::from(max.max(1));
    if count <= max {
        return (0..count).collect();
    }
    if max == 1 {
        return vec![0];
    }
    (0..max).map(|i| i * (count - 1) / (max - 1)).collect()
}

/// Every segment of an app, planned.
pub fn plan(segments: &[Segment], settings: &SegmentSettings) -> Plan {
    let mut plan = Plan::default();
    for segment in segments {
        plan_one(segment, settings, &mut plan);
    }
    if plan.targets.len() > MAX_PROBES_PER_APP {
        let left = plan.targets.len() - MAX_PROBES_PER_APP;
        plan.targets.truncate(MAX_PROBES_PER_APP);
        plan.not_probed.push(format!(
            "{left} more address:port pairs not probed: at most {MAX_PROBES_PER_APP} per app"
        ));
    }
    plan
}

fn written(s: &Segment) -> String {
    format!(
        "{} {} {}",
        if s.destination_host.is_empty() {
            "(no destinationHost)"
        } else {
            &s.destination_host
        },
        if s.protocol.is_empty() {
            "(no protocol)"
        } else {
            &s.protocol
        },
        s.ports.join(",")
    )
}

fn plan_one(s: &Segment, settings: &SegmentSettings, plan: &mut Plan) {
    let name: std::sync::Arc<str> = written(s).into();
    let mut skip = |why: String| plan.not_probed.push(format!("{name}: {why}"));
    let protocols: Vec<String> = s
        .protocol
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if protocols.iter().any(|p| p == "udp") {
        skip("UDP not evaluated: UDP has no handshake, so no answer proves the segment reachable (a silent service and a firewall that drops look the same)".into());
    }
    if !protocols.iter().any(|p| p == "tcp") {
        if !protocols.iter().any(|p| p == "udp") {
            skip(format!("protocol {:?} is not tcp: not probed", s.protocol));
        }
        return;
    }
    let addresses = match destinations(s, settings.max_addresses) {
        Ok(d) => d,
        Err(why) => return skip(why),
    };
    let mut ports = Vec::new();
    for text in &s.ports {
        match port_range(text) {
            Ok((low, high)) => {
                let count = u128::from(high - low) + 1;
                ports.extend(
                    sample(count, settings.max_ports)
                        .into_iter()
                        .filter_map(|o| u16::try_from(u128::from(low) + o).ok()),
                );
            }
            Err(why) => skip(why),
        }
    }
    ports.dedup();
    if ports.is_empty() {
        if s.ports.is_empty() {
            skip("no ports: nothing to connect to".into());
        }
        return;
    }
    let (addresses, ranged) = addresses;
    for destination in &addresses {
        for &port in &ports {
            plan.targets.push(ProbeTarget {
                segment: std::sync::Arc::clone(&name),
                destination: destination.clone(),
                port,
                sampled_from_range: ranged,
            });
        }
    }
}

/// The destinations of a segment, and whether they are sampled from a range.
fn destinations(s: &Segment, max: u32) -> Result<(Vec<Destination>, bool), String> {
    let host = s.destination_host.trim();
    if host.is_empty() {
        return Err("no destinationHost: nothing to probe".into());
    }
    if s.destination_type.eq_ignore_ascii_case("dnsSuffix") {
        return Err("a DNS suffix names no host to connect to: not probed".into());
    }
    if host.contains('*') {
        return Err("a wildcard names no host to connect to: not probed".into());
    }
    if let Some((base, prefix)) = host.split_once('/') {
        let base: IpAddr = base
            .trim()
            .parse()
            .map_err(|_| format!("{host:?} is not a CIDR block (address/prefix)"))?;
        let prefix: u32 = prefix
            .trim()
            .parse()
            .map_err(|_| format!("{host:?} is not a CIDR block (address/prefix)"))?;
        return cidr(base, prefix, max).map(|d| (d, true));
    }
    if let Some((a, b)) = host.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()) {
            return range(a, b, max).map(|d| (d, true));
        }
    }
    if let Ok(address) = host.parse::<IpAddr>() {
        return Ok((vec![Destination::Address(address)], false));
    }
    Ok((vec![Destination::Name(host.to_string())], false))
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v4: bool, n: u128) -> Option<IpAddr> {
    if v4 {
        Some(IpAddr::V4(u32::try_from(n).ok()?.into()))
    } else {
        Some(IpAddr::V6(n.into()))
    }
}

fn span(v4: bool, first: u128, last: u128, max: u32) -> Vec<Destination> {
    sample(last - first + 1, max)
        .into_iter()
        .filter_map(|o| from_u128(v4, first + o))
        .map(Destination::Address)
        .collect()
}

fn range(a: IpAddr, b: IpAddr, max: u32) -> Result<Vec<Destination>, String> {
    if a.is_ipv4() != b.is_ipv4() {
        return Err(format!("the range {a}-{b} mixes IPv4 and IPv6"));
    }
    let (first, last) = (to_u128(a), to_u128(b));
    if first > last {
        return Err(format!("the range {a}-{b} ends before it starts"));
    }
    Ok(span(a.is_ipv4(), first, last, max))
}

fn cidr(base: IpAddr, prefix: u32, max: u32) -> Result<Vec<Destination>, String> {
    let bits = if base.is_ipv4() { 32 } else { 128 };
    if prefix > bits {
        return Err(format!(
            "/{prefix} is longer than an address of {bits} bits"
        ));
    }
    let size_bits = bits - prefix;
    let host_mask: u128 = if size_bits == 128 {
        u128::MAX
    } else {
        (1u128 << size_bits) - 1
    };
    let first = to_u128(base) & !host_mask;
    let last = first | host_mask;
    let (first, last) = match (base.is_ipv4(), size_bits) {
        // Network and broadcast addresses: no host answers there.
        (true, 2..) => (first + 1, last - 1),
        // The subnet-router anycast address (RFC 4291 2.6.1).
        (false, 2..) => (first + 1, last),
        _ => (first, last),
    };
    Ok(span(base.is_ipv4(), first, last, max))
}

/// `"22"`, `"8000-8080"` or Microsoft's `"445-445"`.
fn port_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("port {text:?} is not a port (1-65535) or a range of them");
    let parse = |p: &str| p.trim().parse::<u16>().ok().filter(|&p| p != 0);
    let (low, high) = match text.split_once('-') {
        Some((a, b)) => (parse(a).ok_or_else(bad)?, parse(b).ok_or_else(bad)?),
        None => {
            let p = parse(text).ok_or_else(bad)?;
            (p, p)
        }
    };
    if low > high {
        return Err(bad());
    }
    Ok((low, high))
}
