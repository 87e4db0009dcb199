//! Reading the files the exporter is given, and their text. Every file is read the same way:
//! only a regular file (a FIFO or a device would block or never end), and at most a size it
//! has no reason to exceed. Text may be written on Windows: UTF-8 with or without a byte order
//! mark, or UTF-16 with one (what Windows PowerShell 5.1's `>` and `Out-File` write).

use std::io::{self, Read};
use std::path::Path;

/// The most the web config and the connector's `.exe.config` may hold.
pub const CONFIG_LIMIT: u64 = 1 << 20;
/// The most the exporter's config file may hold: a static inventory takes about 100 bytes an
/// app, so 10,000 apps and as many endpoints of one's own are about 2 MB.
pub const EXPORTER_CONFIG_LIMIT: u64 = 32 << 20;
/// The most a certificate, key, secret or token file may hold.
pub const SECRET_LIMIT: u64 = 256 << 10;

/// Reads a regular file of at most `limit` bytes; anything else is an error that says so.
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, a device or a directory is not read)",
        ));
    }
    if metadata.len() > limit {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::new();
    // The file may grow between the two looks: the cap holds whatever it does.
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "larger than {} KiB, more than such a file holds",
            limit / 1024
        ),
    )
}

/// [`read_bounded`], decoded as text.
pub fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    let bytes = read_bounded(path, limit)?;
    decode(&bytes).map_err(|message| io::Error::new(io::ErrorKind::InvalidData, message))
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
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "ok").unwrap();
        assert_eq!(read_bounded(&small, 10).unwrap(), b"ok");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 11]).unwrap();
        let error = read_bounded(&big, 10).unwrap_err().to_string();
        assert!(error.contains("larger than"), "{error}");
        let error = read_bounded(dir.path(), 10).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
        #[cfg(unix)]
        {
            let error = read_bounded(Path::new("/dev/zero"), 10)
                .unwrap_err()
                .to_string();
            assert!(error.contains("not a regular file"), "{error}");
        }
    }

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
