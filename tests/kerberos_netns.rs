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
use appproxy_exporter::host::kerberos::{Bind, Identity, KerberosApp, KerberosState, probe};
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
    if std::env::var_os(INSIDE).is_some() {
        return inside();
    }
    let name = format!("appproxy-krb-{}", std::process::id());
    let _lab = Lab::up(&name);
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
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
    ]
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

fn inside() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let timeout = Duration::from_secs(5);
        let (identity, bind) = connector();

        // As delegated in the directory: the SPN in msDS-AllowedToDelegateTo with any protocol
        // passes; an SPN held by another account that does not allow this computer fails; an
        // SPN nobody in the domain holds cannot be judged from here.
        let state = probe(&identity, apps(), timeout, &bind).await;
        for name in ["domain_joined", "dc_in_dns", "kdc_tcp_88", "ldap_tcp_389", "directory_read"] {
            assert_eq!(check(&state, name), Some(true), "{name}: {state:?}");
        }
        assert_eq!(state.apps[0].verdict, Verdict::Pass, "{:?}", state.apps[0]);
        let Verdict::Fail { evidence, remedy } = &state.apps[1].verdict else {
            panic!("payroll: {:?}", state.apps[1])
        };
        assert!(evidence.contains("http/payroll.lab.test is not in CONN-01$'s msDS-AllowedToDelegateTo"), "{evidence}");
        assert!(remedy.contains("Use any authentication protocol"), "{remedy}");
        assert!(
            matches!(&state.apps[2].verdict, Verdict::NotEvaluated { reason } if reason.contains("another domain")),
            "{:?}",
            state.apps[2]
        );
        assert!(matches!(state.verdict, Verdict::Fail { .. }));

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
