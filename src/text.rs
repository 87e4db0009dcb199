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
/// The file is opened once and the opened file is checked, so nothing swapped in between a
/// look and the open is read (a FIFO put in its place blocked the open for good).
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_without_waiting(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    if metadata.len() > limit {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::new();
    // The file may grow after the look: the cap holds whatever it does.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// Opens `path` for reading without waiting on it. On Linux, `O_NONBLOCK`: opening a FIFO
/// otherwise waits for a writer, and with it returns at once (the file is refused after,
/// when it turns out not to be regular; a regular file reads the same either way). Elsewhere
/// a look first keeps FIFOs out, and the opened file is looked at again.
fn open_without_waiting(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    #[cfg(not(target_os = "linux"))]
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    options.open(path)
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a regular file (a FIFO, a device or a directory is not read)",
    )
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

    /// A FIFO put in the file's place between the look at it and the open blocked the open
    /// until a writer came, that is for ever: every request then waited on the web config.
    /// The file opened must be the file checked.
    #[cfg(unix)]
    #[test]
    fn a_fifo_swapped_in_between_the_look_and_the_open_is_refused_not_waited_on() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, "a: 1\n").unwrap();
        const SWAPS: usize = 2_000;
        let fifos: Vec<_> = (0..SWAPS)
            .map(|i| dir.path().join(format!("f{i}")))
            .collect();
        let made = std::process::Command::new("mkfifo")
            .args(&fifos)
            .status()
            .unwrap();
        assert!(made.success());
        let files: Vec<_> = (0..SWAPS)
            .map(|i| dir.path().join(format!("r{i}")))
            .collect();
        for file in &files {
            std::fs::write(file, "a: 1\n").unwrap();
        }
        let done = Arc::new(AtomicBool::new(false));
        let flipper = {
            let (path, done) = (path.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                for (file, fifo) in files.iter().zip(&fifos) {
                    std::fs::rename(fifo, &path).unwrap();
                    std::fs::rename(file, &path).unwrap();
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let reads = Arc::new(AtomicUsize::new(0));
        {
            let (path, done, reads) = (path.clone(), Arc::clone(&done), Arc::clone(&reads));
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let _ = read_bounded(&path, 1024);
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                reads.store(usize::MAX, Ordering::SeqCst);
            });
        }
        let (mut seen, mut since) = (0, Instant::now());
        let hung = loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = reads.load(Ordering::SeqCst);
            if now == usize::MAX {
                break false;
            }
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() > Duration::from_secs(3) {
                break true;
            }
        };
        flipper.join().unwrap();
        assert!(!hung, "a read waited on a FIFO after {seen} reads");
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
