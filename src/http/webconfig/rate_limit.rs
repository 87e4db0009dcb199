//! The web config's `rate_limit`: a token bucket over every request, as exporter-toolkit keeps
//! one (web/handler.go: golang.org/x/time/rate with `rate.Every(interval)` and `burst`; a
//! request over the limit is answered 429 Too Many Requests). It starts full, holds at most
//! `burst` requests and gains one every `interval`. The health and readiness checks are not
//! counted (a liveness probe answered 429 restarts a healthy exporter).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::error::RateLimitError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    interval: Option<RawInterval>,
    burst: Option<i64>,
}

/// `interval` as YAML gives it to Go's `time.Duration`: text in Go's duration syntax, or an
/// integer (a count of nanoseconds in Go, where only 0 makes sense).
#[derive(Debug)]
enum RawInterval {
    Text(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for RawInterval {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawInterval;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as 100ms or 1s, or 0")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawInterval, E> {
                Ok(RawInterval::Number(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawInterval, E> {
                Ok(RawInterval::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawInterval, E> {
                Ok(RawInterval::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The limit in force: `None` from [`RateLimit::from_raw`] when the interval is 0 or unset.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    burst: u32,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    pub(super) fn from_raw(raw: &RawRateLimit) -> Result<Option<RateLimit>, RateLimitError> {
        let interval = match &raw.interval {
            None | Some(RawInterval::Number(0)) => return Ok(None),
            Some(RawInterval::Number(n)) => return Err(RateLimitError::NoUnit(*n)),
            Some(RawInterval::Text(text)) => go_duration(text)?,
        };
        if interval.is_zero() {
            return Ok(None);
        }
        let burst = raw.burst.unwrap_or(0);
        let burst = u32::try_from(burst)
            .ok()
            .filter(|b| *b >= 1)
            .ok_or(RateLimitError::Burst(burst))?;
        Ok(Some(RateLimit::new(interval, burst)))
    }

    pub fn new(interval: Duration, burst: u32) -> RateLimit {
        RateLimit {
            interval,
            burst,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst),
                at: Instant::now(),
            }),
        }
    }

    /// Takes a token when there is one.
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let gained =
            now.saturating_duration_since(bucket.at).as_secs_f64() / self.interval.as_secs_f64();
        bucket.tokens = (bucket.tokens + gained).min(f64::from(self.burst));
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Go's `time.ParseDuration`: one or more decimal numbers, each with a unit (ns, us, µs, ms,
/// s, m, h), such as `300ms`, `1.5h` or `2h45m`; `0` alone. Negative intervals are refused.
fn go_duration(text: &str) -> Result<Duration, RateLimitError> {
    let invalid = || RateLimitError::Interval(text.to_string());
    if text.starts_with('-') {
        return Err(RateLimitError::Negative(text.to_string()));
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        nanos += value * unit_nanos;
    }
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Examples from Go's time.ParseDuration documentation and tests.
    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration("300ms").unwrap(), ms(300));
        assert_eq!(go_duration("1.5h").unwrap(), ms(5_400_000));
        assert_eq!(go_duration("2h45m").unwrap(), ms(9_900_000));
        assert_eq!(go_duration("1m30s").unwrap(), ms(90_000));
        assert_eq!(go_duration("100µs").unwrap(), Duration::from_micros(100));
        assert_eq!(go_duration("100us").unwrap(), Duration::from_micros(100));
        assert_eq!(go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(go_duration(".5s").unwrap(), ms(500));
        for bad in ["", "1", "s", "1x", "1.2.3s", ".s", "1s2"] {
            assert!(
                matches!(go_duration(bad), Err(RateLimitError::Interval(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            go_duration("-1s"),
            Err(RateLimitError::Negative(_))
        ));
    }

    #[test]
    fn a_bucket_starts_full_holds_burst_and_gains_one_per_interval() {
        let limit = RateLimit::new(Duration::from_secs(1), 3);
        let start = Instant::now();
        let passed = (0..5).filter(|_| limit.allow_at(start)).count();
        assert_eq!(
            passed, 3,
            "a full bucket lets burst requests through at once"
        );
        assert!(!limit.allow_at(start + Duration::from_millis(500)));
        assert!(limit.allow_at(start + Duration::from_millis(1500)));
        assert!(!limit.allow_at(start + Duration::from_millis(1600)));
        // A long quiet time fills it back to burst, not beyond.
        let later = start + Duration::from_secs(3600);
        assert_eq!((0..5).filter(|_| limit.allow_at(later)).count(), 3);
    }

    #[test]
    fn what_turns_it_off_and_what_is_refused() {
        let raw = |interval: Option<RawInterval>, burst| RawRateLimit { interval, burst };
        assert!(RateLimit::from_raw(&raw(None, Some(5))).unwrap().is_none());
        assert!(
            RateLimit::from_raw(&raw(Some(RawInterval::Number(0)), None))
                .unwrap()
                .is_none()
        );
        assert!(
            RateLimit::from_raw(&raw(Some(RawInterval::Text("0s".into())), None))
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            RateLimit::from_raw(&raw(Some(RawInterval::Number(5)), Some(1))),
            Err(RateLimitError::NoUnit(5))
        ));
        assert!(matches!(
            RateLimit::from_raw(&raw(Some(RawInterval::Text("1s".into())), None)),
            Err(RateLimitError::Burst(0))
        ));
        let limit = RateLimit::from_raw(&raw(Some(RawInterval::Text("1s".into())), Some(2)))
            .unwrap()
            .unwrap();
        assert_eq!((limit.interval, limit.burst), (Duration::from_secs(1), 2));
    }
}
