use super::*;

fn app(spn: &str) -> KerberosApp {
    KerberosApp {
        connector_group: "Default".into(),
        app: "intranet".into(),
        spn: spn.into(),
    }
}

fn directory(list: &[&str], uac: u32) -> Directory {
    Directory {
        allowed_to_delegate_to: list.iter().map(|s| s.to_string()).collect(),
        user_account_control: uac,
        sid: sid(&[21, 1, 2, 3, 1104]),
        groups: Some(Vec::new()),
        spn_owners: Vec::new(),
    }
}

/// A SID in binary form (MS-DTYP 2.4.2.2): Revision 1, SubAuthorityCount, the 6-byte
/// big-endian IdentifierAuthority (5, NT Authority), then each SubAuthority as a
/// little-endian u32.
fn sid(sub: &[u32]) -> Vec<u8> {
    let mut sid = vec![1, sub.len() as u8, 0, 0, 0, 0, 0, 5];
    for part in sub {
        sid.extend_from_slice(&part.to_le_bytes());
    }
    sid
}

fn owner(spn: &str, name: &str, descriptors: Vec<Vec<u8>>) -> SpnOwners {
    SpnOwners {
        spn: spn.into(),
        accounts: vec![SpnAccount {
            name: name.into(),
            descriptors,
        }],
    }
}

#[test]
fn an_spn_in_the_list_with_any_protocol_passes_in_any_letter_case() {
    let d = directory(
        &["HTTP/intranet.corp.example"],
        0x1000 | TRUSTED_TO_AUTH_FOR_DELEGATION,
    );
    assert_eq!(
        judge_app("CONN-01$", &d, &app("http/intranet.corp.example")),
        Verdict::Pass
    );
}

#[test]
fn kerberos_only_delegation_fails_because_users_never_sign_in_with_kerberos() {
    let d = directory(&["http/intranet.corp.example"], 0x1000);
    let Verdict::Fail { evidence, remedy } =
        judge_app("CONN-01$", &d, &app("http/intranet.corp.example"))
    else {
        panic!()
    };
    assert!(
        evidence.contains("Use any authentication protocol"),
        "{evidence}"
    );
    assert!(remedy.contains("Delegation"), "{remedy}");
}

#[test]
fn an_spn_missing_from_the_list_fails_unless_its_account_allows_resource_based_delegation() {
    let spn = "http/intranet.corp.example";
    let mut d = directory(&["http/other.corp.example"], TRUSTED_TO_AUTH_FOR_DELEGATION);
    d.spn_owners.push(owner(
        spn,
        "websvc",
        vec![descriptor(&[(0, &sid(&[21, 1, 2, 3, 9]))])],
    ));
    let Verdict::Fail { evidence, .. } = judge_app("CONN-01$", &d, &app(spn)) else {
        panic!()
    };
    assert!(
        evidence.contains("websvc, the account holding it"),
        "{evidence}"
    );
    d.spn_owners[0].accounts[0].descriptors = vec![descriptor(&[(0, &d.sid.clone())])];
    assert_eq!(judge_app("CONN-01$", &d, &app(spn)), Verdict::Pass);
    d.spn_owners.clear();
    let verdict = judge_app("CONN-01$", &d, &app(spn));
    assert!(
        matches!(verdict, Verdict::NotEvaluated { ref reason } if reason.contains("another domain")),
        "{verdict:?}"
    );
}

#[test]
fn resource_based_delegation_granted_to_a_group_of_the_connector_passes() {
    let spn = "http/group.corp.example";
    let group = sid(&[21, 1, 2, 3, 1105]);
    let mut d = directory(&[], TRUSTED_TO_AUTH_FOR_DELEGATION);
    d.spn_owners
        .push(owner(spn, "rbcdsvc", vec![descriptor(&[(0, &group)])]));
    // Not in the group: the descriptor names nobody the connector is.
    assert!(matches!(
        judge_app("CONN-01$", &d, &app(spn)),
        Verdict::Fail { .. }
    ));
    d.groups = Some(vec![Group {
        sid: group.clone(),
        name: Some("connector-hosts".into()),
    }]);
    assert_eq!(judge_app("CONN-01$", &d, &app(spn)), Verdict::Pass);
    // A deny ACE ahead of the allow decides, as the access check reads a canonical DACL.
    d.spn_owners[0].accounts[0].descriptors = vec![descriptor(&[(1, &group), (0, &d.sid.clone())])];
    let Verdict::Fail { evidence, .. } = judge_app("CONN-01$", &d, &app(spn)) else {
        panic!()
    };
    assert!(
        evidence.contains("denies CONN-01$ through group connector-hosts (S-1-5-21-1-2-3-1105)"),
        "{evidence}"
    );
    // The groups unreadable: a descriptor not naming the computer itself is not judged.
    d.groups = None;
    d.spn_owners[0].accounts[0].descriptors = vec![descriptor(&[(0, &group)])];
    let verdict = judge_app("CONN-01$", &d, &app(spn));
    assert!(
        matches!(verdict, Verdict::NotEvaluated { ref reason } if reason.contains("tokenGroups")),
        "{verdict:?}"
    );
}

#[test]
fn a_duplicate_spn_fails_and_names_every_account_holding_it() {
    let spn = "http/dup.corp.example";
    let mut d = directory(&[spn], TRUSTED_TO_AUTH_FOR_DELEGATION);
    d.spn_owners.push(SpnOwners {
        spn: spn.into(),
        accounts: vec![
            SpnAccount {
                name: "dup1".into(),
                descriptors: Vec::new(),
            },
            SpnAccount {
                name: "dup2".into(),
                descriptors: Vec::new(),
            },
        ],
    });
    let Verdict::Fail { evidence, remedy } =
        judge_app("CONN-01$", &d, &app("HTTP/dup.corp.example"))
    else {
        panic!()
    };
    assert!(evidence.contains("duplicate SPN"), "{evidence}");
    assert!(evidence.contains("dup1 and dup2"), "{evidence}");
    assert!(remedy.contains("setspn"), "{remedy}");
}

#[test]
fn membership_of_the_windows_authorization_access_group_is_read_from_the_groups() {
    let mut d = directory(&[], 0);
    assert_eq!(d.in_authorization_access_group(), Some(false));
    d.groups = Some(vec![Group {
        sid: sid_32(560),
        name: Some("Windows Authorization Access Group".into()),
    }]);
    assert_eq!(d.in_authorization_access_group(), Some(true));
    d.groups = None;
    assert_eq!(d.in_authorization_access_group(), None);
}

/// A BUILTIN SID, S-1-5-32-`rid`.
fn sid_32(rid: u32) -> Vec<u8> {
    sid(&[32, rid])
}

/// A self-relative security descriptor laid out as MS-DTYP 2.4.6 describes it, with a DACL
/// (2.4.5) of one ACE per `(type, sid)`: type 0 an ACCESS_ALLOWED_ACE (2.4.4.2), 1 an
/// ACCESS_DENIED_ACE (2.4.4.4), each an ACE_HEADER (2.4.4.1: AceType, AceFlags, AceSize), an
/// access mask and the SID. What `Set-ADComputer -PrincipalsAllowedToDelegateToAccount`
/// writes into msDS-AllowedToActOnBehalfOfOtherIdentity (with allow ACEs).
fn descriptor(aces: &[(u8, &[u8])]) -> Vec<u8> {
    descriptor_with_flags(aces, 0)
}

fn descriptor_with_flags(aces: &[(u8, &[u8])], flags: u8) -> Vec<u8> {
    let acl_size = 8 + aces.iter().map(|(_, sid)| 8 + sid.len()).sum::<usize>();
    // Revision 1, Sbz1, Control SE_DACL_PRESENT | SE_SELF_RELATIVE (0x8004).
    let mut sd = vec![1, 0, 0x04, 0x80];
    sd.extend_from_slice(&[0; 12]); // OffsetOwner, OffsetGroup, OffsetSacl: none
    sd.extend_from_slice(&20u32.to_le_bytes()); // OffsetDacl: right after the 20-byte header
    sd.extend_from_slice(&[4, 0]); // AclRevision 4 (ACL_REVISION_DS), Sbz1
    sd.extend_from_slice(&(acl_size as u16).to_le_bytes()); // AclSize
    sd.extend_from_slice(&(aces.len() as u16).to_le_bytes()); // AceCount
    sd.extend_from_slice(&[0, 0]); // Sbz2
    for (kind, sid) in aces {
        sd.extend_from_slice(&[*kind, flags]);
        sd.extend_from_slice(&((8 + sid.len()) as u16).to_le_bytes());
        sd.extend_from_slice(&0x000F_01FFu32.to_le_bytes()); // Mask: what ADUC writes
        sd.extend_from_slice(sid);
    }
    sd
}

#[test]
fn resource_based_delegation_is_read_from_the_descriptors_dacl() {
    let sid = sid(&[21, 1, 2, 3, 1104]);
    let sd = descriptor(&[(0, &sid)]);
    assert!(allows_sid(&sd, &sid));
    let mut other = sid.clone();
    *other.last_mut().unwrap() = 9;
    assert!(!allows_sid(&sd, &other));
    assert!(!allows_sid(&sd, &[]));
    for len in 0..sd.len() {
        assert!(
            !allows_sid(&sd[..len], &sid),
            "a truncated descriptor never allows"
        );
    }
}

#[test]
fn the_first_ace_naming_any_of_the_sids_decides_and_inherit_only_aces_do_not_apply() {
    use descriptor::{Access, access};
    let me = sid(&[21, 1, 2, 3, 1104]);
    let group = sid(&[21, 1, 2, 3, 1105]);
    let both = [me.clone(), group.clone()];
    assert_eq!(
        access(&descriptor(&[(0, &group)]), &both),
        Access::Allowed("S-1-5-21-1-2-3-1105".into())
    );
    assert_eq!(
        access(&descriptor(&[(1, &me), (0, &group)]), &both),
        Access::Denied("S-1-5-21-1-2-3-1104".into())
    );
    // AceFlags INHERIT_ONLY_ACE (0x08): for children only.
    assert_eq!(
        access(&descriptor_with_flags(&[(0, &group)], 0x08), &both),
        Access::NotListed
    );
    // An object ACE type (5, ACCESS_ALLOWED_OBJECT_ACE) is not read as a plain one.
    assert_eq!(
        access(&descriptor(&[(5, &group)]), &both),
        Access::NotListed
    );
    // No DACL (OffsetDacl 0).
    let mut none = descriptor(&[(0, &group)]);
    none[16..20].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(access(&none, &both), Access::NotListed);
    // An AceSize below the header's 8 bytes, or past the end, decides nothing.
    let mut short = descriptor(&[(0, &group)]);
    short[30..32].copy_from_slice(&4u16.to_le_bytes());
    assert_eq!(access(&short, &both), Access::NotListed);
    short[30..32].copy_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(access(&short, &both), Access::NotListed);
}

#[test]
fn sids_render_in_their_string_form_and_malformed_ones_do_not() {
    use descriptor::sid_string;
    assert_eq!(sid_string(&sid_32(560)).as_deref(), Some("S-1-5-32-560"));
    assert_eq!(
        sid_string(&sid(&[21, 2212517917, 206736791, 3207069297, 1105])).as_deref(),
        Some("S-1-5-21-2212517917-206736791-3207069297-1105")
    );
    let good = sid_32(560);
    assert_eq!(sid_string(&good[..good.len() - 1]), None, "truncated");
    let mut long = good.clone();
    long.push(0);
    assert_eq!(sid_string(&long), None, "bytes left over");
    let mut revision = good;
    revision[0] = 2;
    assert_eq!(sid_string(&revision), None, "revision 2 is no SID");
    assert_eq!(sid_string(&[]), None);
    assert_eq!(
        descriptor::ldap_filter_value(&[1, 0x2a, 0xff]),
        "\\01\\2a\\ff"
    );
}

#[test]
fn http2_must_be_off_only_from_windows_server_2019_on() {
    assert_eq!(judge_http2(Some(14393), Ok(None)), None);
    assert_eq!(judge_http2(None, Ok(None)), None);
    assert_eq!(judge_http2(Some(17763), Ok(Some(0))), Some(Http2::Off));
    let Some(Http2::NotOff(evidence)) = judge_http2(Some(20348), Ok(None)) else {
        panic!()
    };
    assert!(
        evidence.contains("EnableDefaultHTTP2 is not set"),
        "{evidence}"
    );
    assert!(matches!(
        judge_http2(Some(17763), Ok(Some(1))),
        Some(Http2::NotOff(_))
    ));
}

#[tokio::test]
async fn without_kerberos_apps_or_off_windows_the_check_is_not_evaluated_and_says_why() {
    let state = check_kerberos(Vec::new(), Duration::from_secs(1)).await;
    assert!(
        matches!(state.verdict, Verdict::NotEvaluated { ref reason } if reason.contains("Kerberos single sign-on"))
    );
    if !cfg!(windows) {
        let state = check_kerberos(vec![app("http/x")], Duration::from_secs(1)).await;
        assert_eq!(
            state.verdict,
            Verdict::not_evaluated(crate::platform::NOT_WINDOWS)
        );
        assert_eq!(state.apps.len(), 1);
    }
}

#[tokio::test]
async fn a_host_outside_any_domain_fails_every_kerberos_app() {
    let identity = Identity {
        domain: None,
        account: "CONN-01$".into(),
        http2: None,
    };
    let state = probe(
        &identity,
        vec![app("http/x")],
        Duration::from_secs(1),
        &Bind::MachineAccount,
    )
    .await;
    assert!(
        matches!(state.apps[0].verdict, Verdict::Fail { ref evidence, .. } if evidence.contains("not joined to a domain"))
    );
    assert_eq!(state.checks, [("domain_joined", false)]);
}
