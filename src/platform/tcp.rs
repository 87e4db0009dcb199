//! The host's TCP connections on Windows, from `GetExtendedTcpTable` with
//! `TCP_TABLE_OWNER_PID_ALL` (every state, listeners and TIME_WAIT included, as
//! `netstat -ano` lists them), for IPv4 (`AF_INET`) and IPv6 (`AF_INET6`). The tables' layout
//! is parsed here from bytes, as Microsoft documents it, so that it is tested everywhere:
//!
//! - `MIB_TCPTABLE_OWNER_PID`: a DWORD `dwNumEntries`, then that many `MIB_TCPROW_OWNER_PID`
//!   of six DWORDs: `dwState`, `dwLocalAddr`, `dwLocalPort`, `dwRemoteAddr`, `dwRemotePort`,
//!   `dwOwningPid` (24 bytes);
//! - `MIB_TCP6TABLE_OWNER_PID`: a DWORD `dwNumEntries`, then `MIB_TCP6ROW_OWNER_PID`s:
//!   `ucLocalAddr[16]`, `dwLocalScopeId`, `dwLocalPort`, `ucRemoteAddr[16]`,
//!   `dwRemoteScopeId`, `dwRemotePort`, `dwState`, `dwOwningPid` (56 bytes);
//! - a port is "in network byte order ... only the lower 16 bits should be used. The upper 16
//!   bits may contain uninitialized data" (MIB_TCPROW_OWNER_PID);
//! - `dwState` is a `MIB_TCP_STATE`: 1 CLOSED, 2 LISTEN, 3 SYN_SENT, 4 SYN_RCVD, 5 ESTAB,
//!   6 FIN_WAIT1, 7 FIN_WAIT2, 8 CLOSE_WAIT, 9 CLOSING, 10 LAST_ACK, 11 TIME_WAIT,
//!   12 DELETE_TCB.

use super::{Unavailable, Windows};

/// A connection's state, as `MIB_TCP_STATE` numbers it; `label` is the `state` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcpState {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    DeleteTcb,
    /// A value Microsoft does not document (never seen; kept countable, not an error).
    Unknown,
}

impl TcpState {
    pub const ALL: [TcpState; 13] = [
        TcpState::Closed,
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::CloseWait,
        TcpState::Closing,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::DeleteTcb,
        TcpState::Unknown,
    ];

    /// From `MIB_TCP_STATE`.
    pub fn from_mib(value: u32) -> TcpState {
        match value {
            1 => TcpState::Closed,
            2 => TcpState::Listen,
            3 => TcpState::SynSent,
            4 => TcpState::SynReceived,
            5 => TcpState::Established,
            6 => TcpState::FinWait1,
            7 => TcpState::FinWait2,
            8 => TcpState::CloseWait,
            9 => TcpState::Closing,
            10 => TcpState::LastAck,
            11 => TcpState::TimeWait,
            12 => TcpState::DeleteTcb,
            _ => TcpState::Unknown,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TcpState::Closed => "closed",
            TcpState::Listen => "listen",
            TcpState::SynSent => "syn_sent",
            TcpState::SynReceived => "syn_received",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::CloseWait => "close_wait",
            TcpState::Closing => "closing",
            TcpState::LastAck => "last_ack",
            TcpState::TimeWait => "time_wait",
            TcpState::DeleteTcb => "delete_tcb",
            TcpState::Unknown => "unknown",
        }
    }
}

/// One row of a table: what the capacity check needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRow {
    pub state: TcpState,
    pub local_port: u16,
    pub owning_pid: u32,
}

/// Which table a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The row's size, and where its local port, state and owner are (byte offsets).
    fn layout(self) -> (usize, usize, usize, usize) {
        match self {
            Family::V4 => (24, 8, 0, 20),
            Family::V6 => (56, 20, 48, 52),
        }
    }

    /// The `ulAf` GetExtendedTcpTable takes (ws2def.h: AF_INET 2, AF_INET6 23).
    #[cfg_attr(not(windows), allow(dead_code))]
    fn address_family(self) -> u32 {
        match self {
            Family::V4 => 2,
            Family::V6 => 23,
        }
    }
}

/// Why the TCP table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TcpTableError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error("GetExtendedTcpTable failed with error {0}")]
    Api(u32),
    #[error("the TCP table is {len} bytes, too short for its {entries} rows of {row} bytes")]
    Truncated {
        len: usize,
        entries: u32,
        row: usize,
    },
}

/// The rows of a `MIB_TCPTABLE_OWNER_PID` or `MIB_TCP6TABLE_OWNER_PID` as Windows lays it
/// out in memory (little-endian DWORDs on every Windows the connector runs on).
pub fn parse_table(bytes: &[u8], family: Family) -> Result<Vec<TcpRow>, TcpTableError> {
    let dword = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let (row, port, state, pid) = family.layout();
    let entries = dword(0).ok_or(TcpTableError::Truncated {
        len: bytes.len(),
        entries: 0,
        row,
    })?;
    let truncated = TcpTableError::Truncated {
        len: bytes.len(),
        entries,
        row,
    };
    // The rows start after dwNumEntries (4 bytes; every field of both rows is 4-aligned).
    let needed = usize::try_from(entries)
        .ok()
        .and_then(|n| n.checked_mul(row))
        .and_then(|n| n.checked_add(4));
    if needed.is_none_or(|needed| needed > bytes.len()) {
        return Err(truncated);
    }
    // In bounds: every row lies within `needed` bytes, checked above.
    let at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok((0..entries as usize)
        .map(|i| {
            let start = 4 + i * row;
            TcpRow {
                state: TcpState::from_mib(at(start + state)),
                // The port's DWORD holds it in network byte order in its first two bytes in
                // memory (its lower 16 bits on a little-endian machine).
                local_port: u16::from_be_bytes([bytes[start + port], bytes[start + port + 1]]),
                owning_pid: at(start + pid),
            }
        })
        .collect())
}

/// The reader of the host's TCP tables: there is one only on Windows.
#[derive(Debug, Clone, Copy)]
pub struct TcpTable {
    _windows: Windows,
}

impl TcpTable {
    /// The reader on this host, or why there is none.
    pub fn here() -> Result<TcpTable, Unavailable> {
        Windows::here().map(|windows| TcpTable { _windows: windows })
    }

    /// Every IPv4 and IPv6 connection, listeners and TIME_WAIT included.
    pub fn rows(&self) -> Result<Vec<TcpRow>, TcpTableError> {
        let mut rows = self.table(Family::V4)?;
        rows.extend(self.table(Family::V6)?);
        Ok(rows)
    }

    /// One family's table: asked for its size, then read; the table may grow between the
    /// two calls, so this asks again a few times, as Microsoft's example does.
    #[cfg(windows)]
    #[allow(unsafe_code)]
    fn table(&self, family: Family) -> Result<Vec<TcpRow>, TcpTableError> {
        use windows_sys::Win32::NetworkManagement::IpHelper::{
            GetExtendedTcpTable, TCP_TABLE_OWNER_PID_ALL,
        };
        const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
        let mut size = 0u32;
        for _ in 0..4 {
            // DWORD-aligned, as the table's fields are.
            let mut buffer = vec![0u32; (size as usize).div_ceil(4).max(1)];
            let mut len = (buffer.len() * 4) as u32;
            // SAFETY: the buffer is `len` bytes, as the call is told; it writes at most that.
            let status = unsafe {
                GetExtendedTcpTable(
                    buffer.as_mut_ptr().cast(),
                    &mut len,
                    0,
                    family.address_family(),
                    TCP_TABLE_OWNER_PID_ALL,
                    0,
                )
            };
            match status {
                0 => {
                    let bytes: Vec<u8> = buffer.iter().flat_map(|d| d.to_le_bytes()).collect();
                    return parse_table(&bytes[..(len as usize).min(bytes.len())], family);
                }
                ERROR_INSUFFICIENT_BUFFER => size = len.saturating_add(1024),
                error => return Err(TcpTableError::Api(error)),
            }
        }
        Err(TcpTableError::Api(ERROR_INSUFFICIENT_BUFFER))
    }

    #[cfg(not(windows))]
    fn table(&self, _family: Family) -> Result<Vec<TcpRow>, TcpTableError> {
        self._windows.unreachable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table as Windows lays it out, from rows of (state, local port, pid); the other
    /// fields (addresses, scope ids, the remote port) are filled with bytes that must be
    /// ignored, and each port's upper 16 bits with the "uninitialized data" Microsoft warns of.
    fn table(family: Family, rows: &[(u32, u16, u32)]) -> Vec<u8> {
        let (size, port, state, pid) = family.layout();
        let mut bytes = (rows.len() as u32).to_le_bytes().to_vec();
        for &(s, p, owner) in rows {
            let mut row = vec![0xAB; size];
            row[state..state + 4].copy_from_slice(&s.to_le_bytes());
            row[port..port + 2].copy_from_slice(&p.to_be_bytes());
            row[pid..pid + 4].copy_from_slice(&owner.to_le_bytes());
            bytes.extend(row);
        }
        bytes
    }

    #[test]
    fn ipv4_rows_are_read_as_mib_tcprow_owner_pid_lays_them_out() {
        let bytes = table(
            Family::V4,
            &[(5, 49_153, 4242), (11, 65_535, 0), (2, 443, 4)],
        );
        assert_eq!(bytes.len(), 4 + 3 * 24);
        let rows = parse_table(&bytes, Family::V4).unwrap();
        assert_eq!(
            rows,
            vec![
                TcpRow {
                    state: TcpState::Established,
                    local_port: 49_153,
                    owning_pid: 4242
                },
                TcpRow {
                    state: TcpState::TimeWait,
                    local_port: 65_535,
                    owning_pid: 0
                },
                TcpRow {
                    state: TcpState::Listen,
                    local_port: 443,
                    owning_pid: 4
                },
            ]
        );
    }

    #[test]
    fn ipv6_rows_are_read_as_mib_tcp6row_owner_pid_lays_them_out() {
        let bytes = table(Family::V6, &[(3, 50_000, 7), (12, 1, 8)]);
        assert_eq!(bytes.len(), 4 + 2 * 56);
        let rows = parse_table(&bytes, Family::V6).unwrap();
        assert_eq!(rows[0].state, TcpState::SynSent);
        assert_eq!(rows[0].local_port, 50_000);
        assert_eq!(rows[0].owning_pid, 7);
        assert_eq!(rows[1].state, TcpState::DeleteTcb);
    }

    #[test]
    fn an_empty_table_has_no_rows_and_an_undocumented_state_is_unknown() {
        assert_eq!(
            parse_table(&0u32.to_le_bytes(), Family::V4).unwrap(),
            vec![]
        );
        let rows = parse_table(&table(Family::V4, &[(99, 1, 1)]), Family::V4).unwrap();
        assert_eq!(rows[0].state, TcpState::Unknown);
    }

    #[test]
    fn a_table_shorter_than_its_row_count_is_an_error_not_a_panic() {
        let mut bytes = table(Family::V4, &[(5, 1, 1), (5, 2, 2)]);
        bytes.truncate(30);
        let error = parse_table(&bytes, Family::V4).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the TCP table is 30 bytes, too short for its 2 rows of 24 bytes"
        );
        assert!(parse_table(&[], Family::V6).is_err());
        assert!(parse_table(&u32::MAX.to_le_bytes(), Family::V6).is_err());
    }
}
