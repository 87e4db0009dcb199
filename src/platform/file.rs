//! The one way the exporter reads a file, whoever asks: the config and web config, secrets and
//! certificates, the connector's `.exe.config` and `machine.config`, `TrustSettings.xml`, the
//! connector's executable and the event log bookmarks. Only a regular file is read (a FIFO or
//! a device would block or never end), at most a size it has no reason to exceed, on a thread
//! of its own, waited for at most [`READ_DEADLINE`]: a file on a network share that stops
//! answering costs its caller ten seconds, never a worker or a round for good.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The most the web config and the connector's `.exe.config` may hold.
pub const CONFIG_LIMIT: u64 = 1 << 20;
/// The most the exporter's config file may hold: a static inventory takes about 100 bytes an
/// app, so 10,000 apps and as many endpoints of one's own are about 2 MB.
pub const EXPORTER_CONFIG_LIMIT: u64 = 32 << 20;
/// The most a certificate, key, secret or token file may hold.
pub const SECRET_LIMIT: u64 = 256 << 10;

/// How long a caller waits for one file. A local file takes milliseconds; this is for a share
/// that does not answer (the connector's files may live on one), as long as a round waits for
/// the connector's files.
pub const READ_DEADLINE: Duration = super::deadline::READ_LIMIT;

/// Why a file was not read. The messages name no path: callers put the path in front.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("not a regular file (a FIFO, a device or a directory is not read)")]
    NotRegular,
    #[error("larger than {} KiB, more than such a file holds", .limit / 1024)]
    TooLarge { limit: u64 },
    #[error(
        "not read within {} s (a network share that does not answer?); the read goes on, and a later one uses the file once it answers",
        .deadline.as_secs()
    )]
    Late { deadline: Duration },
    #[error(
        "an earlier read of it has still not finished after {} s (a network share that does not answer?)",
        .waited.as_secs()
    )]
    StillReading { waited: Duration },
    #[error("the thread reading it could not be started: {0}")]
    NoThread(io::Error),
    /// The bytes are not text in an encoding Windows writes ([`crate::text::decode`]).
    #[error("{0}")]
    Undecodable(&'static str),
}

/// Reads a regular file of at most `limit` bytes, waiting at most [`READ_DEADLINE`]; anything
/// else is an error that says so.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    read_within(path, limit, READ_DEADLINE, read_now)
}

/// [`read_bounded`] from async code: the wait happens on the blocking pool, not on a worker.
pub async fn read_bounded_async(path: PathBuf, limit: u64) -> Result<Vec<u8>, ReadError> {
    tokio::task::spawn_blocking(move || read_bounded(&path, limit))
        .await
        .map_err(|error| ReadError::Io(io::Error::other(error)))?
}

/// Files whose read outlived its deadline and is still running: how many such reads, since
/// when. A new read of one of them is refused at once instead of leaving one more thread
/// stuck on the same share every round.
fn hung() -> &'static Mutex<HashMap<PathBuf, (usize, Instant)>> {
    static HUNG: OnceLock<Mutex<HashMap<PathBuf, (usize, Instant)>>> = OnceLock::new();
    HUNG.get_or_init(Mutex::default)
}

/// What the reading thread hands back, and whether its caller stopped waiting.
#[derive(Default)]
struct Slot {
    result: Option<Result<Vec<u8>, ReadError>>,
    abandoned: bool,
}

/// Runs `read` on a thread of its own and waits for it at most `deadline`. Nothing can stop a
/// read that hangs: its thread is left to it, and the path counts as hung until it ends.
fn read_within(
    path: &Path,
    limit: u64,
    deadline: Duration,
    read: fn(&Path, u64) -> Result<Vec<u8>, ReadError>,
) -> Result<Vec<u8>, ReadError> {
    let started = Instant::now();
    if let Some((_, since)) = hung()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(path)
    {
        return Err(ReadError::StillReading {
            waited: since.elapsed(),
        });
    }
    let shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
    let owned = path.to_path_buf();
    let reader = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("file-read".into())
        .spawn(move || {
            let result = read(&owned, limit);
            let (slot, done) = &*reader;
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.abandoned {
                forget_hung(&owned);
            } else {
                slot.result = Some(result);
                done.notify_one();
            }
        })
        .map_err(ReadError::NoThread)?;
    let (slot, done) = &*shared;
    let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    let (mut slot, _) = done
        .wait_timeout_while(slot, deadline, |s| s.result.is_none())
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(result) = slot.result.take() {
        return result;
    }
    // Marked under the slot's lock, which the reader takes before it looks: it either sees the
    // mark and clears the path, or has not finished yet.
    slot.abandoned = true;
    let mut hung = hung().lock().unwrap_or_else(PoisonError::into_inner);
    let entry = hung.entry(path.to_path_buf()).or_insert((0, started));
    entry.0 += 1;
    Err(ReadError::Late { deadline })
}

fn forget_hung(path: &Path) {
    let mut hung = hung().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((count, _)) = hung.get_mut(path) {
        *count -= 1;
        if *count == 0 {
            hung.remove(path);
        }
    }
}

/// The read itself. The file is opened once and the opened file is checked, so nothing
/// swapped in between a look and the open is read (a FIFO put in its place blocked the open
/// for good).
fn read_now(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_without_waiting(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(ReadError::NotRegular);
    }
    if metadata.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut bytes = Vec::new();
    // The file may grow after the look: the cap holds whatever it does.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Opens `path` for reading without waiting on it. On Linux, `O_NONBLOCK`: opening a FIFO
/// otherwise waits for a writer, and with it returns at once (the file is refused after,
/// when it turns out not to be regular; a regular file reads the same either way). Elsewhere
/// a look first keeps FIFOs out, and the opened file is looked at again.
fn open_without_waiting(path: &Path) -> Result<std::fs::File, ReadError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    #[cfg(not(target_os = "linux"))]
    if !std::fs::metadata(path)?.is_file() {
        return Err(ReadError::NotRegular);
    }
    Ok(options.open(path)?)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
