//! The file version of a Windows executable, read from its version resource the way Explorer's
//! "File version" shows it: the PE headers (Microsoft's "PE Format" specification) lead to the
//! resource directory, its `RT_VERSION` (16) entry to a `VS_VERSIONINFO` block, and that to
//! `VS_FIXEDFILEINFO` (signature `0xFEEF04BD`, then `dwFileVersionMS`/`dwFileVersionLS`).
//! Plain reads of the file ([`super::file`]), bounded in size; only on Windows, where the
//! connector's executable is ([`FileVersions::here`]), though the parsing is the same
//! everywhere.

use std::path::{Path, PathBuf};

use super::file::ReadError;
use super::{Unavailable, Windows};

/// The most of an executable that is read; the connector's service executable is far smaller.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

const RT_VERSION: u32 = 16;
const FIXED_FILE_INFO_SIGNATURE: u32 = 0xFEEF_04BD;

/// A four-part Windows file version, compared part by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileVersion(pub [u32; 4]);

impl FileVersion {
    /// `1.5.3437.0` (fewer parts are filled with zeros; more, or non-numbers, are `None`).
    pub fn parse(text: &str) -> Option<FileVersion> {
        let mut parts = [0u32; 4];
        let mut count = 0;
        for (i, part) in text.trim().split('.').enumerate() {
            *parts.get_mut(i)? = part.parse().ok()?;
            count = i + 1;
        }
        (count > 0).then_some(FileVersion(parts))
    }
}

impl std::fmt::Display for FileVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// What is wrong with an executable's bytes, where its version should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("not a Windows executable (no MZ header)")]
    NoMzHeader,
    #[error("no PE signature at byte {0}")]
    NoPeSignature(usize),
    #[error("unknown optional header magic {0:#x}")]
    UnknownMagic(u16),
    #[error("no resources, so no version resource")]
    NoResources,
    #[error("address {0:#x} is in no section")]
    OutsideSections(u32),
    #[error("the version resource directory is nested too deep")]
    NestedTooDeep,
    #[error("the version resource is too short")]
    TooShort,
    #[error("the version resource has no VS_FIXEDFILEINFO")]
    NoFixedFileInfo,
    #[error("no resource of type {0} (no version resource)")]
    NoResourceOfType(u32),
    #[error("an empty resource directory")]
    EmptyDirectory,
}

/// Why an executable's version is unknown; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileVersionError {
    #[error("{}: {source}", .path.display())]
    Read { path: PathBuf, source: ReadError },
    #[error("{}: {source}", .path.display())]
    Parse { path: PathBuf, source: PeError },
}

/// The reader of executables' file versions: there is one only on Windows.
#[derive(Debug, Clone, Copy)]
pub struct FileVersions {
    _windows: Windows,
}

impl FileVersions {
    /// The reader on this host, or why there is none.
    pub fn here() -> Result<FileVersions, Unavailable> {
        Windows::here().map(|windows| FileVersions { _windows: windows })
    }

    /// The file version of the executable at `path`.
    pub fn of(&self, path: &Path) -> Result<FileVersion, FileVersionError> {
        let bytes = super::file::read_bounded(path, MAX_BYTES).map_err(|source| {
            FileVersionError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        version_of(&bytes).map_err(|source| FileVersionError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, PeError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(PeError::Truncated(at))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, PeError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(PeError::Truncated(at))
}

fn at(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// The version in an executable's bytes.
pub fn version_of(b: &[u8]) -> Result<FileVersion, PeError> {
    if b.get(..2) != Some(b"MZ") {
        return Err(PeError::NoMzHeader);
    }
    let pe = at(u32_at(b, 0x3C)?);
    if b.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err(PeError::NoPeSignature(pe));
    }
    let sections = usize::from(u16_at(b, pe + 6)?);
    let optional = pe + 24;
    let optional_size = usize::from(u16_at(b, pe + 20)?);
    let directories = match u16_at(b, optional)? {
        0x10B => optional + 96,
        0x20B => optional + 112,
        magic => return Err(PeError::UnknownMagic(magic)),
    };
    let resource_rva = u32_at(b, directories + 2 * 8)?;
    if resource_rva == 0 {
        return Err(PeError::NoResources);
    }
    let table = optional + optional_size;
    let offset_of = |rva: u32| -> Result<usize, PeError> {
        for i in 0..sections {
            let s = table + i * 40;
            let (size, va, raw) = (u32_at(b, s + 8)?, u32_at(b, s + 12)?, u32_at(b, s + 20)?);
            let size = size.max(u32_at(b, s + 16)?);
            if rva >= va && rva - va < size {
                return Ok(at(raw) + at(rva - va));
            }
        }
        Err(PeError::OutsideSections(rva))
    };
    let root = offset_of(resource_rva)?;
    // Type RT_VERSION, then its first name and first language.
    let mut entry = find_entry(b, root, Some(RT_VERSION))?;
    for _ in 0..2 {
        if entry & 0x8000_0000 == 0 {
            break;
        }
        entry = find_entry(b, root + at(entry & 0x7FFF_FFFF), None)?;
    }
    if entry & 0x8000_0000 != 0 {
        return Err(PeError::NestedTooDeep);
    }
    let data = offset_of(u32_at(b, root + at(entry))?)?;
    let length = at(u32_at(b, root + at(entry) + 4)?);
    // VS_VERSIONINFO: three u16, the key "VS_VERSION_INFO\0" in UTF-16, padding to 32 bits,
    // then VS_FIXEDFILEINFO; found by its signature on that 32-bit boundary.
    let fixed = (data + 6 + 32).next_multiple_of(4);
    if fixed + 16 > data + length {
        return Err(PeError::TooShort);
    }
    if u32_at(b, fixed)? != FIXED_FILE_INFO_SIGNATURE {
        return Err(PeError::NoFixedFileInfo);
    }
    let (ms, ls) = (u32_at(b, fixed + 8)?, u32_at(b, fixed + 12)?);
    Ok(FileVersion([ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF]))
}

/// In the resource directory at `dir`, the entry with id `id` (or the first one).
fn find_entry(b: &[u8], dir: usize, id: Option<u32>) -> Result<u32, PeError> {
    let named = usize::from(u16_at(b, dir + 12)?);
    let ids = usize::from(u16_at(b, dir + 14)?);
    for i in 0..named + ids {
        let e = dir + 16 + i * 8;
        let name = u32_at(b, e)?;
        if id.is_none_or(|id| name == id) {
            return u32_at(b, e + 4);
        }
    }
    Err(match id {
        Some(id) => PeError::NoResourceOfType(id),
        None => PeError::EmptyDirectory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built by mingw-w64 from tests/fixtures/pe/version.rc (see the README beside it).
    const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/pe/version-1.5.3437.0.exe");

    #[test]
    fn the_version_resource_of_a_mingw_built_executable_is_read() {
        assert_eq!(version_of(FIXTURE).unwrap(), FileVersion([1, 5, 3437, 0]));
    }

    #[test]
    fn truncated_or_foreign_files_say_what_is_wrong_and_never_panic() {
        assert_eq!(version_of(b""), Err(PeError::NoMzHeader));
        assert_eq!(version_of(b"\x7fELF"), Err(PeError::NoMzHeader));
        for len in [2, 0x3C, 0x40, 0x80, 0x100, 0x200, 0x400, FIXTURE.len() - 1] {
            let _ = version_of(&FIXTURE[..len.min(FIXTURE.len())]);
        }
        let mut broken = FIXTURE.to_vec();
        broken[0x3C] = 0xFF;
        assert!(version_of(&broken).is_err());
    }

    #[test]
    fn versions_compare_part_by_part() {
        let v = |s| FileVersion::parse(s).unwrap();
        assert!(v("1.5.3437.0") > v("1.5.612.0"));
        assert_eq!(v("1.5.3437.0").to_string(), "1.5.3437.0");
        assert_eq!(v("1.5"), FileVersion([1, 5, 0, 0]));
        assert_eq!(FileVersion::parse("1.5.x"), None);
        assert_eq!(FileVersion::parse("1.2.3.4.5"), None);
        assert_eq!(FileVersion::parse(""), None);
    }
}
