//! Instants a duration from now, for durations that come from outside (a token's lifetime, a
//! device code's, the config's intervals): `Instant + Duration` panics when the sum does not
//! fit, and a sign-in server once made the prober panic with `expires_in: 2^64 - 1`.

use std::time::{Duration, Instant};

/// Far enough to mean "never" for anything the exporter waits for.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `start + by`, or as far as an instant goes when that does not fit.
pub fn later(start: Instant, by: Duration) -> Instant {
    start
        .checked_add(by)
        .or_else(|| start.checked_add(NEVER))
        .unwrap_or(start)
}

/// [`later`] for the async timers.
pub fn later_tokio(start: tokio::time::Instant, by: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(later(start.into_std(), by))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_too_long_for_an_instant_saturates() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now + Duration::from_secs(3600));
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let tokio_now = tokio::time::Instant::now();
        assert!(later_tokio(tokio_now, Duration::MAX) > tokio_now);
    }
}
