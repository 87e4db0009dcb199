//! Prometheus-style durations (`30s`, `5m`, `1h30m`, `250ms`): parsed from the config file and
//! printed back the same way on `/config`, so users read what they would write.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

use super::values::ValueError;

/// Units in the order Prometheus requires them, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A duration read from the config file; deserializing validates it, so a bad value is reported
/// at its own line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromDuration(pub Duration);

/// Parses `1h30m`-style text; units must appear largest first, each at most once.
pub fn parse(text: &str) -> Result<Duration, ValueError> {
    let invalid = || ValueError::Duration {
        text: text.to_string(),
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut millis: u64 = 0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        // "ms" must be tried before "m".
        let (index, unit_millis, len) = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (unit, _))| rest.starts_with(unit))
            .max_by_key(|(_, (unit, _))| unit.len())
            .map(|(i, (unit, ms))| (i, *ms, unit.len()))
            .ok_or_else(invalid)?;
        rest = &rest[len..];
        next_unit = index + 1;
        millis = number
            .checked_mul(unit_millis)
            .and_then(|ms| millis.checked_add(ms))
            .ok_or_else(invalid)?;
    }
    Ok(Duration::from_millis(millis))
}

/// Prints a duration the way [`parse`] reads it (`90s` becomes `1m30s`).
pub fn format(duration: Duration) -> String {
    let mut millis = duration.as_millis() as u64;
    if millis == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, unit_millis) in UNITS {
        if millis >= unit_millis {
            out.push_str(&format!("{}{unit}", millis / unit_millis));
            millis %= unit_millis;
        }
    }
    out
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text)
            .map(PromDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

/// `serialize_with` helper for typed settings.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_unit_and_combinations() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m500ms"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse("1y"), Ok(Duration::from_secs(31_536_000)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_missing_units_wrong_order_and_junk() {
        for bad in [
            "", "30", "s", "30x", "1m1h", "5s5s", "-5s", "1.5s", " 5s", "5 s", "5sec",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn rejects_overflow_instead_of_wrapping() {
        assert!(parse("99999999999999999y").is_err());
    }

    #[test]
    fn formats_back_to_what_it_reads() {
        for text in ["30s", "1m30s", "85s", "3m", "1h", "250ms", "1d2h"] {
            let duration = parse(text).unwrap();
            assert_eq!(parse(&format(duration)), Ok(duration));
        }
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
