//! A process's own figures on Windows (this exporter's, and the connector service's by its id), read as Prometheus' client_golang reads them for the
//! same series (prometheus/process_collector_windows.go): CPU and start time from
//! `GetProcessTimes`, the working set and private bytes from `GetProcessMemoryInfo`
//! (`PROCESS_MEMORY_COUNTERS_EX`), and the open handles from `GetProcessHandleCount`, whose
//! limit Windows fixes at 16,777,216 per process (client_golang's `process_max_fds`).

use super::{Unavailable, Windows};

/// Windows' per-process handle limit, as client_golang exports it for `process_max_fds`.
pub const MAX_HANDLES: f64 = 16.0 * 1024.0 * 1024.0;

/// Seconds from 1601-01-01 (where a FILETIME counts from) to 1970-01-01.
const FILETIME_TO_UNIX_SECONDS: f64 = 11_644_473_600.0;

/// What Windows says of this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Kernel and user time.
    pub cpu_seconds: f64,
    /// The creation time, as Unix time.
    pub start_time_seconds: f64,
    /// The working set.
    pub resident_bytes: f64,
    /// Private bytes (`PrivateUsage`), what client_golang exports as virtual memory.
    pub virtual_bytes: f64,
    pub handles: f64,
}

/// A FILETIME (a count of 100 ns intervals, in two halves) as seconds.
pub fn filetime_seconds(high: u32, low: u32) -> f64 {
    ((u64::from(high) << 32) | u64::from(low)) as f64 / 1e7
}

/// A FILETIME instant (since 1601-01-01 UTC) as Unix time.
pub fn filetime_unix(high: u32, low: u32) -> f64 {
    filetime_seconds(high, low) - FILETIME_TO_UNIX_SECONDS
}

/// The reader of this process's figures: there is one only on Windows.
#[derive(Debug, Clone, Copy)]
pub struct ProcessFigures {
    _windows: Windows,
}

impl ProcessFigures {
    /// The reader on this host, or why there is none.
    pub fn here() -> Result<ProcessFigures, Unavailable> {
        Windows::here().map(|windows| ProcessFigures { _windows: windows })
    }

    /// This process's figures; `None` when Windows refuses one of the calls (never partly
    /// filled in).
    #[cfg(windows)]
    #[allow(unsafe_code)]
    pub fn read(&self) -> Option<Figures> {
        use windows_sys::Win32::System::Threading::GetCurrentProcess;
        // SAFETY: GetCurrentProcess returns a pseudo handle that needs no closing.
        read_handle(unsafe { GetCurrentProcess() })
    }

    #[cfg(not(windows))]
    pub fn read(&self) -> Option<Figures> {
        self._windows.unreachable()
    }

    /// Another process's figures, by its id (the connector service's, found through the
    /// Service Control Manager), opened with `PROCESS_QUERY_LIMITED_INFORMATION`, the least
    /// access that GetProcessTimes, GetProcessMemoryInfo and GetProcessHandleCount accept
    /// (Microsoft's "Process Security and Access Rights"). `Err` is Windows' refusal
    /// (access denied, the process has exited), with its error code.
    #[cfg(windows)]
    #[allow(unsafe_code)]
    pub fn read_pid(&self, pid: u32) -> Result<Figures, std::io::Error> {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Threading::{
            OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
        };
        // SAFETY: OpenProcess returns a handle we own or null; it is closed once, below.
        let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if process.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let figures = read_handle(process).ok_or_else(std::io::Error::last_os_error);
        // SAFETY: `process` is the open handle from OpenProcess, not used after this.
        unsafe { CloseHandle(process) };
        figures
    }

    #[cfg(not(windows))]
    pub fn read_pid(&self, _pid: u32) -> Result<Figures, std::io::Error> {
        self._windows.unreachable()
    }
}

/// One process's figures through a handle with query access; `None` when Windows refuses one
/// of the calls (never partly filled in).
/// With wevtapi, the library's only unsafe code: three foreign calls on a process handle, each
/// writing into a local sized as the API documents.
#[cfg(windows)]
#[allow(unsafe_code)]
fn read_handle(process: windows_sys::Win32::Foundation::HANDLE) -> Option<Figures> {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::ProcessStatus::{
        GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS, PROCESS_MEMORY_COUNTERS_EX,
    };
    use windows_sys::Win32::System::Threading::{GetProcessHandleCount, GetProcessTimes};
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the caller's handle is valid for the duration; each call writes only into the
    // locals it is given, sized as the API documents.
    let (times, memory, handles) = unsafe {
        let times = GetProcessTimes(process, &mut created, &mut exited, &mut kernel, &mut user);
        let mut memory: PROCESS_MEMORY_COUNTERS_EX = std::mem::zeroed();
        let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS_EX>() as u32;
        memory.cb = size;
        let memory_ok = GetProcessMemoryInfo(
            process,
            (&mut memory as *mut PROCESS_MEMORY_COUNTERS_EX).cast::<PROCESS_MEMORY_COUNTERS>(),
            size,
        );
        let mut handles = 0u32;
        let handles_ok = GetProcessHandleCount(process, &mut handles);
        (
            times != 0,
            (memory_ok != 0).then_some(memory),
            (handles_ok != 0).then_some(handles),
        )
    };
    let (memory, handles) = (memory?, handles?);
    if !times {
        return None;
    }
    Some(Figures {
        cpu_seconds: filetime_seconds(kernel.dwHighDateTime, kernel.dwLowDateTime)
            + filetime_seconds(user.dwHighDateTime, user.dwLowDateTime),
        start_time_seconds: filetime_unix(created.dwHighDateTime, created.dwLowDateTime),
        resident_bytes: memory.WorkingSetSize as f64,
        virtual_bytes: memory.PrivateUsage as f64,
        handles: f64::from(handles),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FILETIME as Microsoft documents it: 100 ns intervals since 1601-01-01 UTC; Unix time 0
    /// is 116444736000000000 (the value Microsoft's "Converting a time_t value to a FILETIME"
    /// adds).
    #[test]
    fn filetimes_convert_as_microsoft_documents_them() {
        let epoch: u64 = 116_444_736_000_000_000;
        assert_eq!(filetime_unix((epoch >> 32) as u32, epoch as u32), 0.0);
        let later = epoch + 1_700_000_000 * 10_000_000;
        assert_eq!(
            filetime_unix((later >> 32) as u32, later as u32),
            1_700_000_000.0
        );
        assert_eq!(filetime_seconds(0, 25_000_000), 2.5);
        assert_eq!(filetime_seconds(1, 0), 4_294_967_296.0 / 1e7);
    }
}
