//! Basic auth against the web config's bcrypt hashes, checked as exporter-toolkit does: bcrypt,
//! slow on purpose, runs off the async workers and one check at a time, so a flood of wrong
//! passwords costs one core at most and delays no scrape or probe. Only credentials that
//! passed are remembered (by a digest, never the password), the least recently used one
//! forgotten first: wrong ones cannot flush the right ones out, as a cache of every answer,
//! cleared whole when full, let a flood of distinct wrong passwords do.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;

use super::webconfig::WebConfig;

/// Right credentials remembered at most.
const REMEMBERED: usize = 1024;

/// exporter-toolkit's hash of "fakepassword": an unknown user costs what a wrong password does,
/// so user names cannot be told by timing.
const DECOY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// What can be said of a request's credentials without bcrypt.
pub enum Verdict {
    /// No basic auth configured, or credentials that passed before.
    Allowed,
    /// None, or not basic auth.
    Refused,
    /// To be checked with bcrypt ([`Authenticator::verify`]).
    Unverified(Unverified),
}

/// Credentials waiting for their bcrypt check.
pub struct Unverified {
    key: [u8; 32],
    password: String,
    hash: String,
    /// Whether the user exists: an unknown one is checked against a decoy and refused.
    known: bool,
}

/// The checks and the credentials that passed, for as long as the web config file serves.
pub struct Authenticator {
    /// Digests of credentials that passed, with when each was last used.
    passed: Mutex<Lru>,
    bcrypt: tokio::sync::Semaphore,
}

#[derive(Default)]
struct Lru {
    used: HashMap<[u8; 32], u64>,
    clock: u64,
}

impl Default for Authenticator {
    fn default() -> Authenticator {
        Authenticator {
            passed: Mutex::new(Lru::default()),
            bcrypt: tokio::sync::Semaphore::new(1),
        }
    }
}

impl Authenticator {
    pub fn new() -> Authenticator {
        Authenticator::default()
    }

    /// Whether a request with this `Authorization` header may pass `config`, bcrypt included:
    /// [`Self::judge`], then [`Self::verify`] when it cannot say at once, as the gate does.
    #[cfg(test)]
    pub async fn authorized(&self, config: &WebConfig, authorization: Option<&str>) -> bool {
        match self.judge(config, authorization) {
            Verdict::Allowed => true,
            Verdict::Refused => false,
            Verdict::Unverified(credentials) => self.verify(credentials).await,
        }
    }

    /// What can be said at once: open, refused, passed before, or to be checked.
    pub fn judge(&self, config: &WebConfig, authorization: Option<&str>) -> Verdict {
        if !config.requires_auth() {
            return Verdict::Allowed;
        }
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return Verdict::Refused;
        };
        let (hash, known) = match config.hash_of(&user) {
            Some(hash) => (hash.to_string(), true),
            None => (DECOY_HASH.to_string(), false),
        };
        let key = credentials_key(&user, &hash, &password);
        if known && self.touch(&key) {
            return Verdict::Allowed;
        }
        Verdict::Unverified(Unverified {
            key,
            password,
            hash,
            known,
        })
    }

    /// The bcrypt check, one at a time and off the async workers; a pass is remembered.
    pub async fn verify(&self, credentials: Unverified) -> bool {
        let Ok(_turn) = self.bcrypt.acquire().await else {
            return false;
        };
        // Another request may have passed with the same credentials while this one waited.
        if credentials.known && self.touch(&credentials.key) {
            return true;
        }
        let Unverified {
            key,
            password,
            hash,
            known,
        } = credentials;
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash))
            .await
            .is_ok_and(|checked| checked.unwrap_or(false));
        if ok && known {
            self.remember(key);
        }
        ok && known
    }

    /// Whether `key` passed before (then it counts as used now).
    #[cfg(test)]
    fn cached(&self, key: &[u8; 32]) -> Option<bool> {
        self.touch(key).then_some(true)
    }

    fn touch(&self, key: &[u8; 32]) -> bool {
        let mut lru = self
            .passed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lru.clock += 1;
        let now = lru.clock;
        match lru.used.get_mut(key) {
            Some(used) => {
                *used = now;
                true
            }
            None => false,
        }
    }

    fn remember(&self, key: [u8; 32]) {
        let mut lru = self
            .passed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lru.used.len() >= REMEMBERED {
            // One out, the least recently used: a scan of a thousand entries, after a bcrypt
            // check that took far longer.
            let oldest = lru
                .used
                .iter()
                .min_by_key(|(_, used)| **used)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                lru.used.remove(&oldest);
            }
        }
        lru.clock += 1;
        let now = lru.clock;
        lru.used.insert(key, now);
    }
}

/// The digest credentials are remembered by: no password sits in memory longer than its
/// request.
pub(crate) fn credentials_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user.as_bytes(), hash.as_bytes(), password.as_bytes()] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config_with(hash: &str) -> WebConfig {
        WebConfig::parse(
            &format!("basic_auth_users:\n  prometheus: '{hash}'\n"),
            Path::new("."),
            "web.yml",
        )
        .unwrap()
    }

    fn header(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[tokio::test]
    async fn basic_auth_accepts_the_right_password_only() {
        let config = config_with(&bcrypt::hash("s3cret", 4).unwrap());
        let auth = Authenticator::new();
        let yes = |p: &str| header("prometheus", p);
        assert!(auth.authorized(&config, Some(&yes("s3cret"))).await);
        assert!(
            matches!(auth.judge(&config, Some(&yes("s3cret"))), Verdict::Allowed),
            "from the cache, without bcrypt"
        );
        assert!(!auth.authorized(&config, Some(&yes("wrong"))).await);
        assert!(
            matches!(
                auth.judge(&config, Some(&yes("wrong"))),
                Verdict::Unverified(_)
            ),
            "a wrong password is checked again, never remembered"
        );
        assert!(
            !auth
                .authorized(&config, Some(&header("someone", "s3cret")))
                .await
        );
        assert!(!auth.authorized(&config, None).await);
    }

    /// The cache of checked credentials was cleared whole at 1,024 entries, and wrong ones
    /// were cached too: a flood of distinct wrong passwords flushed the right one out, and
    /// every scrape paid for bcrypt again.
    #[tokio::test]
    async fn a_flood_of_distinct_wrong_passwords_leaves_the_right_one_cached() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let config = config_with(&hash);
        let auth = Authenticator::new();
        assert!(
            auth.authorized(&config, Some(&header("prometheus", "s3cret")))
                .await
        );
        for n in 0..1_100 {
            let wrong = header("prometheus", &format!("guess-{n}"));
            assert!(!auth.authorized(&config, Some(&wrong)).await);
        }
        let key = credentials_key("prometheus", &hash, "s3cret");
        assert_eq!(
            auth.cached(&key),
            Some(true),
            "the right password is still cached"
        );
        let wrong = credentials_key("prometheus", &hash, "guess-7");
        assert_eq!(auth.cached(&wrong), None, "wrong ones are not kept");
    }

    /// Full, the cache forgets the least recently used credentials, one at a time.
    #[test]
    fn the_least_recently_used_credentials_go_first() {
        let auth = Authenticator::new();
        let key = |n: u32| credentials_key("u", "h", &n.to_string());
        for n in 0..REMEMBERED as u32 {
            auth.remember(key(n));
        }
        assert!(auth.touch(&key(0)), "0 used again: now the most recent");
        auth.remember(key(9_999));
        assert!(auth.touch(&key(0)));
        assert!(!auth.touch(&key(1)), "1 was the least recently used");
        assert!(auth.touch(&key(2)));
        assert!(auth.touch(&key(9_999)));
    }
}
