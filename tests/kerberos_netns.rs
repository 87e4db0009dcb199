//! Kerberos delegation readiness (src/host/kerberos/) against a real directory: Debian's
//! Samba as the Active Directory domain controller of lab.test, in a network namespace
//! (tests/samba/dc). The test re-runs itself inside the namespace, where the domain's SRV
//! records resolve through the DC's DNS as on a domain member, then reads the connector
//! computer's delegation over LDAP bound as that computer account.
//!
//! Bound with the account's password (a simple bind): on Windows the exporter binds the same
//! account with Negotiate (SSPI), which only a domain-joined Windows host can do.

use std::process::Command;
use std::time::Duration;

use appproxy_exporter::host::Verdict;
use appproxy_exporter::host::kerberos::descriptor::sid_string;
use appproxy_exporter::host::kerberos::{
    Bind, Identity, KerberosApp, KerberosState, probe, read_directory,
};
use appproxy_exporter::secret::Secret;

const INSIDE: &str = "APPPROXY_KERBEROS_LAB";
const TEST: &str = "delegation_is_read_from_a_samba_domain_controller_as_the_connector_computer";
const MARKER: &str = "kerberos lab inside the namespace: every assertion held";

struct Lab(String);

impl Lab {
    fn up(name: &str) -> Lab {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samba/dc");
        let output = Command::new(script).args(["up", name]).output().expect(
            "tests/samba/dc runs (needs root and Debian's samba: scripts/test installs it)",
        );
        assert!(
            output.status.success(),
            "the Samba domain controller did not come up:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Lab(name.to_string())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samba/dc");
        let _ = Command::new(script).args(["down", &self.0]).status();
    }
}

#[test]
fn delegation_is_read_from_a_samba_domain_controller_as_the_connector_computer() {
    if let Some(lab) = std::env::var_os(INSIDE) {
        return inside(&lab.to_string_lossy());
    }
    let name = format!("appproxy-krb-{}", std::process::id());
    let _lab = Lab::up(&name);
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(INSIDE, &name)
        .output()
        .expect("ip netns exec runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(MARKER),
        "inside the namespace:\n{stdout}\n{stderr}"
    );
}

fn app(name: &str, spn: &str) -> KerberosApp {
    KerberosApp {
        connector_group: "Default".into(),
        app: name.into(),
        spn: spn.into(),
    }
}

fn connector() -> (Identity, Bind) {
    let identity = Identity {
        domain: Some("lab.test".into()),
        account: "CONN-01$".into(),
        http2: None,
    };
    let bind = Bind::Simple {
        dn: "CN=CONN-01,CN=Computers,DC=lab,DC=test".into(),
        password: Secret::new("Conn-01-Lab-Pass!"),
    };
    (identity, bind)
}

fn apps() -> Vec<KerberosApp> {
    vec![
        app("intranet", "HTTP/intranet.lab.test"),
        app("payroll", "http/payroll.lab.test"),
        app("elsewhere", "http/elsewhere.other.test"),
        app("grouped", "http/group.lab.test"),
        app("duplicated", "http/dup.lab.test"),
    ]
}

/// samba-tool on the lab's directory, as an administrator would run it.
fn samba_tool(lab: &str, args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samba/dc");
    let output = Command::new(script)
        .args(["tool", lab])
        .args(args)
        .output()
        .expect("tests/samba/dc tool runs");
    assert!(
        output.status.success(),
        "samba-tool {args:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn check(state: &KerberosState, name: &str) -> Option<bool> {
    state
        .checks
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, ok)| *ok)
}

fn iptables(args: &[&str]) {
    let status = Command::new("iptables")
        .args(args)
        .status()
        .expect("iptables runs (scripts/test installs it)");
    assert!(status.success(), "iptables {args:?}");
}

fn inside(lab: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let timeout = Duration::from_secs(5);
        let (identity, bind) = connector();

        // As delegated in the directory: the SPN in msDS-AllowedToDelegateTo with any protocol
        // passes; an SPN held by another account that does not allow this computer fails; an
        // SPN nobody in the domain holds cannot be judged from here; resource-based delegation
        // granted to connector-hosts, a group CONN-01$ is in, passes; an SPN two accounts hold
        // fails naming both. CONN-01$ is not in the Windows Authorization Access Group yet:
        // what passes warns, saying so.
        let state = probe(&identity, apps(), timeout, &bind).await;
        for name in ["domain_joined", "dc_in_dns", "kdc_tcp_88", "ldap_tcp_389", "directory_read"] {
            assert_eq!(check(&state, name), Some(true), "{name}: {state:?}");
        }
        assert_eq!(check(&state, "authorization_access_group"), Some(false), "{state:?}");
        for passing in [0, 3] {
            let Verdict::Warning { evidence } = &state.apps[passing].verdict else {
                panic!("{:?}", state.apps[passing])
            };
            assert!(
                evidence.contains("CONN-01$ is not a member of the Windows Authorization Access Group (S-1-5-32-560)")
                    && evidence.contains("Add-ADGroupMember"),
                "{evidence}"
            );
        }
        let Verdict::Fail { evidence, remedy } = &state.apps[1].verdict else {
            panic!("payroll: {:?}", state.apps[1])
        };
        assert!(evidence.contains("http/payroll.lab.test is not in CONN-01$'s msDS-AllowedToDelegateTo"), "{evidence}");
        assert!(evidence.contains("websvc, the account holding it"), "{evidence}");
        assert!(remedy.contains("Use any authentication protocol"), "{remedy}");
        assert!(
            matches!(&state.apps[2].verdict, Verdict::NotEvaluated { reason } if reason.contains("another domain")),
            "{:?}",
            state.apps[2]
        );
        let Verdict::Fail { evidence, remedy } = &state.apps[4].verdict else {
            panic!("duplicated: {:?}", state.apps[4])
        };
        assert!(evidence.contains("duplicate SPN: http/dup.lab.test is held by 2 accounts"), "{evidence}");
        assert!(evidence.contains("dup1") && evidence.contains("dup2"), "{evidence}");
        assert!(remedy.contains("setspn"), "{remedy}");
        assert!(matches!(state.verdict, Verdict::Fail { .. }));

        // The administrator adds the connector to the Windows Authorization Access Group:
        // the delegated apps pass.
        samba_tool(lab, &["group", "addmembers", "Windows Authorization Access Group", "CONN-01$"]);
        let state = probe(&identity, apps(), timeout, &bind).await;
        assert_eq!(check(&state, "authorization_access_group"), Some(true), "{state:?}");
        assert_eq!(state.apps[0].verdict, Verdict::Pass, "{:?}", state.apps[0]);
        assert_eq!(state.apps[3].verdict, Verdict::Pass, "{:?}", state.apps[3]);

        // The groups as the DC computes them (tokenGroups), named from the directory: the
        // group, the primary group and the BUILTIN one.
        let directory = read_directory("127.0.0.10", 389, "CONN-01$", &apps(), timeout, &bind)
            .await
            .expect("the directory reads");
        let groups: Vec<(String, Option<String>)> = directory
            .groups
            .iter()
            .flatten()
            .map(|g| (sid_string(&g.sid).unwrap_or_default(), g.name.clone()))
            .collect();
        for name in ["connector-hosts", "Domain Computers", "Windows Authorization Access Group"] {
            assert!(
                groups.iter().any(|(_, n)| n.as_deref() == Some(name)),
                "{name} in {groups:?}"
            );
        }
        assert!(groups.iter().any(|(sid, _)| sid == "S-1-5-32-560"), "{groups:?}");
        assert_eq!(directory.in_authorization_access_group(), Some(true));

        // Out of connector-hosts, the group's grant no longer covers it: grouped fails.
        samba_tool(lab, &["group", "removemembers", "connector-hosts", "CONN-01$"]);
        let state = probe(&identity, apps(), timeout, &bind).await;
        let Verdict::Fail { evidence, .. } = &state.apps[3].verdict else {
            panic!("grouped: {:?}", state.apps[3])
        };
        assert!(
            evidence.contains("rbcdsvc, the account holding it, does not allow CONN-01$ or any of its groups"),
            "{evidence}"
        );
        samba_tool(lab, &["group", "addmembers", "connector-hosts", "CONN-01$"]);

        // The KDC's port closed by a firewall: every Kerberos app fails, with the reason.
        iptables(&["-A", "OUTPUT", "-p", "tcp", "--dport", "88", "-j", "REJECT", "--reject-with", "tcp-reset"]);
        let state = probe(&identity, apps(), timeout, &bind).await;
        iptables(&["-D", "OUTPUT", "-p", "tcp", "--dport", "88", "-j", "REJECT", "--reject-with", "tcp-reset"]);
        assert_eq!(check(&state, "kdc_tcp_88"), Some(false));
        assert_eq!(check(&state, "ldap_tcp_389"), Some(true));
        for a in &state.apps {
            assert!(
                matches!(&a.verdict, Verdict::Fail { evidence, .. } if evidence.contains("do not accept TCP connections")),
                "{a:?}"
            );
        }

        // A domain that does not exist: no domain controller in DNS.
        let lost = Identity {
            domain: Some("nowhere.test".into()),
            ..identity.clone()
        };
        let state = probe(&lost, apps(), timeout, &bind).await;
        assert_eq!(check(&state, "dc_in_dns"), Some(false), "{state:?}");

        // A bind the directory refuses is no verdict on delegation: not evaluated, with why.
        let wrong = Bind::Simple {
            dn: "CN=CONN-01,CN=Computers,DC=lab,DC=test".into(),
            password: Secret::new("not-the-password"),
        };
        let state = probe(&identity, apps(), timeout, &wrong).await;
        assert_eq!(check(&state, "directory_read"), Some(false));
        for a in &state.apps {
            assert!(
                matches!(&a.verdict, Verdict::NotEvaluated { reason } if reason.contains("could not be read")),
                "{a:?}"
            );
            assert!(!format!("{a:?}").contains("not-the-password"), "the password never shows");
        }
    });
    println!("{MARKER}");
}
