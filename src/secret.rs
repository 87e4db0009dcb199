//! Secrets (client secrets, access and refresh tokens) in a wrapper whose `Debug` and
//! `Display` print a placeholder, so a careless log line, error or `/config` cannot leak them;
//! and the redaction of text from outside (a server's error message, an invalid value) that
//! may repeat a secret, before it is logged or answered.

use std::fmt;
use std::sync::LazyLock;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Read from a file the user wrote (the web config's inline `key`): the value goes straight
/// into the wrapper.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

const REDACTED: &str = "<redacted>";

/// `text` with `secret` replaced wherever it appears: as given, form- or percent-encoded
/// (either letter case in the escapes), or JSON-escaped. A server that echoes what it was
/// sent may echo it in any of those. Secrets shorter than 4 bytes are not looked for (they
/// would match anywhere, and no real secret is that short).
pub fn redact_echo(text: &str, secret: &str) -> String {
    if secret.len() < 4 {
        return text.to_string();
    }
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent = percent_encode(secret);
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json
        .get(1..json.len().saturating_sub(1))
        .unwrap_or_default();
    let mut text = text.to_string();
    for form in [secret, form.as_str(), percent.as_str(), json] {
        text = replace_ignoring_ascii_case(&text, form, REDACTED);
    }
    text
}

/// Every byte but the unreserved ones (RFC 3986 section 2.3) as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `text` with every occurrence of `needle` replaced, ASCII letter case ignored (so `%2f` is
/// found for `%2F`; a secret found in another case is redacted too, which costs nothing).
fn replace_ignoring_ascii_case(text: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return text.to_string();
    }
    let (haystack, needle_lower) = (text.to_ascii_lowercase(), needle.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    // Lowercasing ASCII keeps every byte where it was, so positions carry over.
    while let Some(found) = haystack[at..].find(&needle_lower) {
        out.push_str(&text[at..at + found]);
        out.push_str(with);
        at += found + needle.len();
    }
    out.push_str(&text[at..]);
    out
}

/// Bearer tokens and JWTs (`Bearer xyz`, `eyJ...`), wherever a server's text repeats one.
/// `None` only if the pattern did not compile, which the tests below would show: then the
/// text is withheld whole rather than shown unredacted.
static TOKENS: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*|\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-.]*",
    )
    .ok()
});

/// `text` without anything that looks like a bearer token or a JWT.
pub fn redact_tokens(text: &str) -> String {
    match &*TOKENS {
        Some(tokens) => tokens.replace_all(text, REDACTED).into_owned(),
        None => REDACTED.to_string(),
    }
}

/// A password in a URL (`scheme://user:password@host`), wherever one appears in a text; as
/// [`TOKENS`], `None` only if it did not compile.
static URL_PASSWORDS: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r#"([A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:"']*:)[^\s"']*@"#).ok()
});

/// `text` with the password of every URL in it replaced by `REDACTED`, as
/// [`crate::config::values::redact_url`] writes them: for messages that quote what was given.
pub fn redact_url_passwords(text: &str) -> String {
    match &*URL_PASSWORDS {
        Some(passwords) => passwords.replace_all(text, "${1}REDACTED@").into_owned(),
        None => REDACTED.to_string(),
    }
}

/// At most `max` characters of `text`, marked where cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…[cut]", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_secret_is_found_in_every_encoding() {
        let secret = "a/b+c d\"e";
        for echo in [
            "a/b+c d\"e",
            "a%2Fb%2Bc+d%22e",
            "a%2fb%2bc%20d%22e",
            "a/b+c d\\\"e",
        ] {
            let text = format!("refused: {echo}.");
            assert_eq!(redact_echo(&text, secret), "refused: <redacted>.", "{echo}");
        }
        assert_eq!(redact_echo("abc", "ab"), "abc", "too short to look for");
    }

    #[test]
    fn bearer_tokens_and_jwts_are_redacted() {
        let text = "seen Authorization: Bearer eyJ0eXAi.eyJhdWQi.c2ln== and bearer abc-123";
        assert_eq!(
            redact_tokens(text),
            "seen Authorization: <redacted> and <redacted>"
        );
        assert_eq!(
            redact_tokens("a JWT eyJhbGci.x.y alone"),
            "a JWT <redacted> alone"
        );
    }

    #[test]
    fn url_passwords_in_a_message_are_redacted() {
        let text = "invalid URL \"http://svc:hunter2@proxy.corp.example:99999/\": invalid port";
        assert_eq!(
            redact_url_passwords(text),
            "invalid URL \"http://svc:REDACTED@proxy.corp.example:99999/\": invalid port"
        );
        assert_eq!(redact_url_passwords("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn cut_marks_where_it_cut() {
        assert_eq!(cut("abcdef", 3), "abc…[cut]");
        assert_eq!(cut("abc", 3), "abc");
    }

    #[test]
    fn neither_debug_nor_display_shows_the_value() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }
}
