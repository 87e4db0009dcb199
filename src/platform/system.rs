//! The host's own CPU and memory on Windows: `GetSystemTimes` (idle, kernel and user time
//! summed over every processor since boot; Microsoft documents that kernel time includes idle
//! time) and `GlobalMemoryStatusEx` (`ullTotalPhys`, `ullAvailPhys`). These are what Task
//! Manager's CPU and memory figures are made of, so "peak CPU and memory under 70%"
//! (concept-connectors.md) can be judged against them.

use super::{Unavailable, Windows};

/// CPU time summed over every processor since boot, as `GetSystemTimes` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    pub idle_seconds: f64,
    /// Kernel time, idle time included (as Windows reports it).
    pub kernel_seconds: f64,
    pub user_seconds: f64,
}

/// Physical memory, as `GlobalMemoryStatusEx` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// The reader of the host's CPU and memory: there is one only on Windows.
#[derive(Debug, Clone, Copy)]
pub struct SystemFigures {
    _windows: Windows,
}

impl SystemFigures {
    /// The reader on this host, or why there is none.
    pub fn here() -> Result<SystemFigures, Unavailable> {
        Windows::here().map(|windows| SystemFigures { _windows: windows })
    }

    /// `Err`: Windows refused the call (its error code).
    #[cfg(windows)]
    #[allow(unsafe_code)]
    pub fn cpu_times(&self) -> Result<CpuTimes, std::io::Error> {
        use windows_sys::Win32::Foundation::FILETIME;
        use windows_sys::Win32::System::Threading::GetSystemTimes;
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut idle, mut kernel, mut user) = (zero, zero, zero);
        // SAFETY: writes only into the three locals, FILETIMEs as the API documents.
        if unsafe { GetSystemTimes(&mut idle, &mut kernel, &mut user) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let seconds =
            |t: FILETIME| super::process::filetime_seconds(t.dwHighDateTime, t.dwLowDateTime);
        Ok(CpuTimes {
            idle_seconds: seconds(idle),
            kernel_seconds: seconds(kernel),
            user_seconds: seconds(user),
        })
    }

    #[cfg(not(windows))]
    pub fn cpu_times(&self) -> Result<CpuTimes, std::io::Error> {
        self._windows.unreachable()
    }

    /// `Err`: Windows refused the call (its error code).
    #[cfg(windows)]
    #[allow(unsafe_code)]
    pub fn memory(&self) -> Result<Memory, std::io::Error> {
        use windows_sys::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};
        // SAFETY: a zeroed MEMORYSTATUSEX with dwLength set, as the API requires; it writes
        // only into it.
        let status = unsafe {
            let mut status: MEMORYSTATUSEX = std::mem::zeroed();
            status.dwLength = std::mem::size_of::<MEMORYSTATUSEX>() as u32;
            if GlobalMemoryStatusEx(&mut status) == 0 {
                return Err(std::io::Error::last_os_error());
            }
            status
        };
        Ok(Memory {
            total_bytes: status.ullTotalPhys,
            available_bytes: status.ullAvailPhys,
        })
    }

    #[cfg(not(windows))]
    pub fn memory(&self) -> Result<Memory, std::io::Error> {
        self._windows.unreachable()
    }
}
