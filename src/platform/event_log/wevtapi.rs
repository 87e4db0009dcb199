//! The Windows event log API (wevtapi: `EvtQuery`, `EvtSeek` to a bookmark, `EvtNext`,
//! `EvtRender`, `EvtUpdateBookmark`), as Microsoft's "Bookmarking events" sample uses it. With
//! platform/process.rs, the library's only unsafe code on Windows: foreign calls with buffers
//! sized here, every handle closed by its owner's `Drop`.
#![allow(unsafe_code)]

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_EVT_CHANNEL_NOT_FOUND, ERROR_FILE_NOT_FOUND,
    ERROR_INSUFFICIENT_BUFFER, ERROR_NO_MORE_ITEMS, ERROR_PATH_NOT_FOUND, GetLastError,
};
use windows_sys::Win32::System::EventLog::{
    EVT_HANDLE, EvtClose, EvtCreateBookmark, EvtNext, EvtQuery, EvtQueryChannelPath,
    EvtQueryForwardDirection, EvtRender, EvtRenderBookmark, EvtRenderEventXml, EvtSeek,
    EvtSeekRelativeToBookmark, EvtSeekStrict, EvtUpdateBookmark,
};

/// The largest event XML accepted (an event's XML is a few KiB).
const MAX_XML_BYTES: u32 = 1024 * 1024;

use super::{Read, ReadError};

/// A handle closed when dropped.
struct Handle(EVT_HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        if self.0 != 0 {
            // SAFETY: the handle came from wevtapi and is closed once, here.
            unsafe { EvtClose(self.0) };
        }
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error() -> u32 {
    // SAFETY: reads the calling thread's last-error value.
    unsafe { GetLastError() }
}

/// The events of `channel` matching `query` (XPath, [`super::query`]) after `bookmark`, at
/// most `max`.
pub fn read_after(
    channel: &str,
    query: &str,
    bookmark: Option<&str>,
    max: usize,
) -> Result<Read, ReadError> {
    let failed =
        |what: &str| ReadError::Failed(format!("{what} failed with error {}", last_error()));
    let path = wide(channel);
    let query = wide(query);
    let seek = bookmark.is_some();
    // SAFETY: both strings are NUL-terminated UTF-16 that outlive the call.
    let results = Handle(unsafe {
        EvtQuery(
            0,
            path.as_ptr(),
            query.as_ptr(),
            EvtQueryChannelPath | EvtQueryForwardDirection,
        )
    });
    if results.0 == 0 {
        return Err(match last_error() {
            // Windows says 15007; Wine, which has no such channels, says "path not found".
            ERROR_EVT_CHANNEL_NOT_FOUND | ERROR_PATH_NOT_FOUND | ERROR_FILE_NOT_FOUND => {
                ReadError::NoSuchChannel
            }
            ERROR_ACCESS_DENIED => ReadError::AccessDenied,
            code => ReadError::Failed(format!("EvtQuery failed with error {code}")),
        });
    }
    let bookmark_xml = bookmark.map(wide);
    // SAFETY: a NUL-terminated UTF-16 bookmark, or null for a new one.
    let mark = Handle(unsafe {
        EvtCreateBookmark(
            bookmark_xml
                .as_ref()
                .map_or(std::ptr::null(), |b| b.as_ptr()),
        )
    });
    if mark.0 == 0 {
        return Err(failed("EvtCreateBookmark"));
    }
    // After the bookmarked event; when it is gone (the log was cleared or wrapped), from the
    // start of what is there.
    // SAFETY: valid handles from above.
    if seek
        && unsafe {
            EvtSeek(
                results.0,
                1,
                mark.0,
                0,
                EvtSeekRelativeToBookmark | EvtSeekStrict,
            )
        } == 0
    {
        tracing::info!(
            channel,
            error = last_error(),
            "the bookmarked event is gone; reading the log from its start"
        );
    }
    let mut events = Vec::new();
    let mut batch = [0isize; 64];
    while events.len() < max {
        let mut returned = 0u32;
        let want = u32::try_from(batch.len().min(max - events.len())).unwrap_or(1);
        // SAFETY: `batch` holds `want` handles; `returned` says how many were filled.
        if unsafe { EvtNext(results.0, want, batch.as_mut_ptr(), 0, 0, &mut returned) } == 0 {
            match last_error() {
                ERROR_NO_MORE_ITEMS => break,
                code => {
                    return Err(ReadError::Failed(format!(
                        "EvtNext failed with error {code}"
                    )));
                }
            }
        }
        let handles: Vec<Handle> = batch[..returned as usize]
            .iter()
            .map(|h| Handle(*h))
            .collect();
        for event in &handles {
            events.push(render(event.0, EvtRenderEventXml)?);
            // SAFETY: valid bookmark and event handles.
            if unsafe { EvtUpdateBookmark(mark.0, event.0) } == 0 {
                return Err(failed("EvtUpdateBookmark"));
            }
        }
        if returned == 0 {
            break;
        }
    }
    let bookmark = match events.is_empty() {
        true => None,
        false => Some(render(mark.0, EvtRenderBookmark)?),
    };
    Ok(Read { events, bookmark })
}

/// An event or a bookmark as XML.
fn render(handle: EVT_HANDLE, flags: u32) -> Result<String, ReadError> {
    let mut used = 0u32;
    let mut properties = 0u32;
    // SAFETY: a size query: no buffer, `used` receives the size needed in bytes.
    let ok = unsafe {
        EvtRender(
            0,
            handle,
            flags,
            0,
            std::ptr::null_mut(),
            &mut used,
            &mut properties,
        )
    };
    if ok == 0 && last_error() != ERROR_INSUFFICIENT_BUFFER {
        return Err(ReadError::Failed(format!(
            "EvtRender failed with error {}",
            last_error()
        )));
    }
    if used > MAX_XML_BYTES {
        return Err(ReadError::Failed(format!(
            "an event's XML is {used} bytes, more than {MAX_XML_BYTES}"
        )));
    }
    let mut buffer = vec![0u16; (used as usize).div_ceil(2)];
    let size = u32::try_from(buffer.len() * 2).unwrap_or(0);
    // SAFETY: `buffer` holds `size` bytes.
    if unsafe {
        EvtRender(
            0,
            handle,
            flags,
            size,
            buffer.as_mut_ptr().cast(),
            &mut used,
            &mut properties,
        )
    } == 0
    {
        return Err(ReadError::Failed(format!(
            "EvtRender failed with error {}",
            last_error()
        )));
    }
    let end = buffer.iter().position(|c| *c == 0).unwrap_or(buffer.len());
    String::from_utf16(&buffer[..end])
        .map_err(|_| ReadError::Failed("EvtRender gave invalid UTF-16".into()))
}
