//! The text of the files the exporter is given, and text from outside made safe to print.
//! Files are read by [`crate::platform::file`] (regular files only, bounded, with a deadline);
//! their text may be written on Windows: UTF-8 with or without a byte order mark, or UTF-16
//! with one (what Windows PowerShell 5.1's `>` and `Out-File` write).

use std::path::Path;

use crate::platform::file::{self, ReadError};

/// [`file::read_bounded`], decoded as text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = file::read_bounded(path, limit)?;
    decode(&bytes).map_err(ReadError::Undecodable)
}

/// Text from outside (Graph's names, a sign-in server's message) made safe to print on a
/// terminal: control characters (an escape sequence could rewrite the screen) and the
/// invisible characters that reorder or hide text (U+202E turns `exe.gpj` into what reads as
/// `jpg.exe`) are shown escaped, as `\u{202e}`; the rest is as it was.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(hidden) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else if hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Characters that change what a terminal shows without showing themselves: controls, and
/// Unicode's bidirectional and zero-width format characters (UAX #9, "Explicit Directional
/// Embeddings, Overrides and Isolates"; the Trojan Source paper, CVE-2021-42574).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Decodes a text file's bytes, or says why it cannot.
pub fn decode(bytes: &[u8]) -> Result<String, &'static str> {
    let utf16 = |bytes: &[u8], from: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| from([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|_| "invalid UTF-16")
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => {
            String::from_utf8(rest.to_vec()).map_err(|_| "invalid UTF-8 after the byte order mark")
        }
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => String::from_utf8(bytes.to_vec())
            .map_err(|_| "not UTF-8 (and no byte order mark for UTF-16)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_printed_escaped() {
        assert_eq!(printable("intranet"), "intranet");
        assert_eq!(printable("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(printable("red\u{1b}[31m\n"), "red\\u{1b}[31m\\n");
        assert_eq!(printable("a\u{2066}b\u{200b}"), "a\\u{2066}b\\u{200b}");
    }

    #[test]
    fn every_windows_encoding_decodes() {
        assert_eq!(
            decode(b"\xEF\xBB\xBFcloud: public").unwrap(),
            "cloud: public"
        );
        let mut le = vec![0xFF, 0xFE];
        le.extend("cloud: public".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&le).unwrap(), "cloud: public");
        let mut be = vec![0xFE, 0xFF];
        be.extend("ok".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be).unwrap(), "ok");
        assert!(decode(&[0xC3, 0x28]).is_err());
    }
}
