//! The binary structures Active Directory keeps delegation in, read as Microsoft's "[MS-DTYP]:
//! Windows Data Types" lays them out: SIDs (2.4.2.2) in `objectSid` and `tokenGroups`, and the
//! self-relative security descriptor (2.4.6) of `msDS-AllowedToActOnBehalfOfOtherIdentity`,
//! whose DACL (2.4.5) lists, in access-allowed (2.4.4.2) and access-denied (2.4.4.4) ACEs, who
//! may delegate to the account by resource-based constrained delegation. Every read is bounds
//! checked: a truncated or malformed value decides nothing and never panics.

/// The "Windows Authorization Access Group" (BUILTIN, well-known SID S-1-5-32-560): its
/// members may read the computed `tokenGroupsGlobalAndUniversal` attribute of users, which the
/// connector needs to build a user's token for Kerberos constrained delegation.
pub const AUTHORIZATION_ACCESS_GROUP: &str = "S-1-5-32-560";

/// ACE_HEADER.AceType (MS-DTYP 2.4.4.1) of an ACCESS_ALLOWED_ACE.
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0x00;
/// ACE_HEADER.AceType of an ACCESS_DENIED_ACE.
const ACCESS_DENIED_ACE_TYPE: u8 = 0x01;
/// ACE_HEADER.AceFlags: the ACE is only inherited by children, it does not apply here.
const INHERIT_ONLY_ACE: u8 = 0x08;

/// What a descriptor's DACL says about a set of SIDs (this computer's and its groups').
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The first ACE naming one of them allows it: that SID, in string form.
    Allowed(String),
    /// The first ACE naming one of them denies it.
    Denied(String),
    /// No ACE names any of them (or there is no DACL, or it does not parse).
    NotListed,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
}

/// The length of the SID at the start of `bytes` (MS-DTYP 2.4.2.2: Revision (1 byte),
/// SubAuthorityCount (1), IdentifierAuthority (6, big-endian), SubAuthority (4 each,
/// little-endian)), when it is all there.
fn sid_len(bytes: &[u8]) -> Option<usize> {
    let count = usize::from(*bytes.get(1)?);
    let len = 8 + 4 * count;
    (*bytes.first()? == 1 && bytes.len() >= len).then_some(len)
}

/// A binary SID in its string form (`S-1-5-21-...-1104`), or `None` when it is not one
/// exactly (a wrong revision, or bytes missing or left over).
pub fn sid_string(sid: &[u8]) -> Option<String> {
    if sid_len(sid)? != sid.len() {
        return None;
    }
    let authority = sid[2..8].iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
    let mut text = format!("S-1-{authority}");
    for at in (8..sid.len()).step_by(4) {
        text.push_str(&format!("-{}", u32_at(sid, at)?));
    }
    Some(text)
}

/// How `sids` fare in the DACL of a self-relative security descriptor (MS-DTYP 2.4.6): the
/// first access-allowed or access-denied ACE naming one of them decides, as Windows' access
/// check does for a DACL in canonical order (denies first). Inherit-only ACEs do not apply to
/// the object itself and are skipped, as are ACE types that name no SID at the same place.
pub fn access(descriptor: &[u8], sids: &[Vec<u8>]) -> Access {
    access_of(descriptor, sids).unwrap_or(Access::NotListed)
}

fn access_of(descriptor: &[u8], sids: &[Vec<u8>]) -> Option<Access> {
    // SECURITY_DESCRIPTOR: Revision (1), Sbz1 (1), Control (2), OffsetOwner (4),
    // OffsetGroup (4), OffsetSacl (4), OffsetDacl (4, at byte 16); 0 means none.
    let dacl = u32_at(descriptor, 16).filter(|d| *d != 0)?;
    // ACL: AclRevision (1), Sbz1 (1), AclSize (2), AceCount (2, at byte 4), Sbz2 (2), ACEs.
    let count = u16_at(descriptor, dacl.checked_add(4)?)?;
    let mut ace = dacl.checked_add(8)?;
    for _ in 0..count {
        // ACE_HEADER: AceType (1), AceFlags (1), AceSize (2); then, for both ACE types
        // read here, Mask (4) and the SID from byte 8 of the ACE.
        let kind = *descriptor.get(ace)?;
        let flags = *descriptor.get(ace.checked_add(1)?)?;
        let size = u16_at(descriptor, ace.checked_add(2)?)?;
        if size < 8 {
            return None;
        }
        let body = descriptor.get(ace.checked_add(8)?..ace.checked_add(size)?)?;
        let applies = flags & INHERIT_ONLY_ACE == 0;
        if applies && matches!(kind, ACCESS_ALLOWED_ACE_TYPE | ACCESS_DENIED_ACE_TYPE) {
            let sid = &body[..sid_len(body)?];
            if sids.iter().any(|s| !s.is_empty() && s.as_slice() == sid) {
                let text = sid_string(sid)?;
                return Some(match kind {
                    ACCESS_ALLOWED_ACE_TYPE => Access::Allowed(text),
                    _ => Access::Denied(text),
                });
            }
        }
        ace = ace.checked_add(size)?;
    }
    Some(Access::NotListed)
}

/// Whether the DACL allows `sid` (only that SID, no groups).
pub fn allows_sid(descriptor: &[u8], sid: &[u8]) -> bool {
    matches!(access(descriptor, &[sid.to_vec()]), Access::Allowed(_))
}

/// `sid` escaped for an LDAP filter (RFC 4515: every byte as `\hh`), to find the object that
/// has it (`(objectSid=...)`).
pub fn ldap_filter_value(sid: &[u8]) -> String {
    sid.iter().map(|b| format!("\\{b:02x}")).collect()
}
