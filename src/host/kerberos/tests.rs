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
        spn_owners: Vec::new(),
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
    let mut d = directory(&["http/other.corp.example"], TRUSTED_TO_AUTH_FOR_DELEGATION);
    d.spn_owners
        .push(("http/intranet.corp.example".into(), Some(false)));
    assert!(matches!(
        judge_app("CONN-01$", &d, &app("http/intranet.corp.example")),
        Verdict::Fail { .. }
    ));
    d.spn_owners[0].1 = Some(true);
    assert_eq!(
        judge_app("CONN-01$", &d, &app("http/intranet.corp.example")),
        Verdict::Pass
    );
    d.spn_owners[0].1 = None;
    let verdict = judge_app("CONN-01$", &d, &app("http/intranet.corp.example"));
    assert!(
        matches!(verdict, Verdict::NotEvaluated { ref reason } if reason.contains("another domain")),
        "{verdict:?}"
    );
}

/// A self-relative security descriptor laid out as MS-DTYP 2.4.6 describes it, with a DACL of
/// one ACCESS_ALLOWED_ACE (2.4.4.2) for `sid`: what `Set-ADComputer
/// -PrincipalsAllowedToDelegateToAccount` writes into msDS-AllowedToActOnBehalfOfOtherIdentity.
fn descriptor(sid: &[u8]) -> Vec<u8> {
    let ace_size = 8 + sid.len();
    let acl_size = 8 + ace_size;
    let mut sd = vec![1, 0, 0x04, 0x80]; // revision 1, control SE_DACL_PRESENT | SE_SELF_RELATIVE
    sd.extend_from_slice(&[0; 12]); // no owner, group, SACL
    sd.extend_from_slice(&20u32.to_le_bytes()); // the DACL right after the header
    sd.extend_from_slice(&[4, 0]);
    sd.extend_from_slice(&(acl_size as u16).to_le_bytes());
    sd.extend_from_slice(&1u16.to_le_bytes());
    sd.extend_from_slice(&[0, 0]);
    sd.extend_from_slice(&[0, 0]); // ACCESS_ALLOWED_ACE_TYPE, no flags
    sd.extend_from_slice(&(ace_size as u16).to_le_bytes());
    sd.extend_from_slice(&0x000F_01FFu32.to_le_bytes());
    sd.extend_from_slice(sid);
    sd
}

#[test]
fn resource_based_delegation_is_read_from_the_descriptors_dacl() {
    // S-1-5-21-1-2-3-1104 in binary form (MS-DTYP 2.4.22).
    let mut sid = vec![1, 5, 0, 0, 0, 0, 0, 5];
    for part in [21u32, 1, 2, 3, 1104] {
        sid.extend_from_slice(&part.to_le_bytes());
    }
    let sd = descriptor(&sid);
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
