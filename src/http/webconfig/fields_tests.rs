//! Every field exporter-toolkit documents for the web config (docs/web-configuration.md in
//! prometheus/exporter-toolkit), each either used with its documented meaning or refused with
//! the reason: none is accepted and then ignored. What client certificates do on a real
//! connection is tested end to end in tests/web_config.rs.

use std::path::Path;
use std::process::Command;

use super::WebConfig;

/// A self-signed certificate and its key, made by openssl, as files in `dir` and as PEM text.
fn certificate(dir: &Path) -> (String, String) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=fields",
            "-keyout",
        ])
        .arg(dir.join("s.key"))
        .arg("-out")
        .arg(dir.join("s.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (scripts/test installs it)");
    assert!(status.success());
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    (read("s.crt"), read("s.key"))
}

/// YAML's block scalar for PEM text, indented for a key at `indent` spaces.
fn block(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent + 2);
    let lines: String = pem.lines().map(|l| format!("{pad}{l}\n")).collect();
    format!("|\n{lines}")
}

enum Expect {
    Used(fn(&WebConfig) -> bool),
    Refused(&'static str),
}
use Expect::{Refused, Used};

fn tls(config: &WebConfig) -> &rustls::ServerConfig {
    config.tls.as_deref().expect("TLS on")
}

#[test]
fn every_documented_field_is_used_or_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let files = "  cert_file: s.crt\n  key_file: s.key\n";
    let inline = format!("  cert: {}  key: {}", block(&cert, 2), block(&key, 2));
    let client_ca = format!("  client_ca: {}", block(&cert, 2));
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "cert_file, key_file",
            files.into(),
            Used(|c| c.tls.is_some()),
        ),
        (
            "cert, key (inline)",
            inline.clone(),
            Used(|c| c.tls.is_some()),
        ),
        (
            "cert and cert_file",
            format!("{files}  cert: {}", block(&cert, 2)),
            Refused("cert and cert_file are both set: use one"),
        ),
        (
            "key and key_file",
            format!("{files}  key: {}", block(&key, 2)),
            Refused("key and key_file are both set: use one"),
        ),
        (
            "no cert",
            "  key_file: s.key\n".into(),
            Refused("missing one of cert or cert_file"),
        ),
        (
            "no key",
            "  cert_file: s.crt\n".into(),
            Refused("missing one of key or key_file"),
        ),
        (
            "an inline key that is not PEM",
            "  cert_file: s.crt\n  key: not a key\n".into(),
            Refused("key: "),
        ),
        (
            "client_ca (inline) with RequireAndVerifyClientCert",
            format!("{files}{client_ca}  client_auth_type: RequireAndVerifyClientCert\n"),
            Used(|c| c.tls.is_some()),
        ),
        (
            "client_ca_file with VerifyClientCertIfGiven",
            format!(
                "{files}  client_ca_file: s.crt\n  client_auth_type: VerifyClientCertIfGiven\n"
            ),
            Used(|c| c.tls.is_some()),
        ),
        (
            "client_ca and client_ca_file",
            format!(
                "{files}{client_ca}  client_ca_file: s.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
            ),
            Refused("client_ca and client_ca_file are both set"),
        ),
        (
            "client_ca_file without client_auth_type",
            format!("{files}  client_ca_file: s.crt\n"),
            Refused("client_auth_type does not ask for client certificates"),
        ),
        (
            "RequireAndVerifyClientCert without a CA",
            format!("{files}  client_auth_type: RequireAndVerifyClientCert\n"),
            Refused("needs client_ca_file or client_ca"),
        ),
        (
            "RequestClientCert",
            format!("{files}  client_auth_type: RequestClientCert\n"),
            Refused("proves nothing about the client"),
        ),
        (
            "RequireAnyClientCert",
            format!("{files}  client_auth_type: RequireAnyClientCert\n"),
            Refused("proves nothing about the client"),
        ),
        (
            "RequireClientCert",
            format!("{files}  client_auth_type: RequireClientCert\n"),
            Refused("proves nothing about the client"),
        ),
        (
            "an unknown client_auth_type",
            format!("{files}  client_auth_type: Maybe\n"),
            Refused("client_auth_type \"Maybe\" is not known"),
        ),
        (
            "client_allowed_sans with RequireAndVerifyClientCert",
            format!(
                "{files}  client_ca_file: s.crt\n  client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: [prometheus.example]\n"
            ),
            Used(|c| c.tls.is_some()),
        ),
        (
            "client_allowed_sans with VerifyClientCertIfGiven",
            format!(
                "{files}  client_ca_file: s.crt\n  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: [prometheus.example]\n"
            ),
            Refused("client_allowed_sans needs client_auth_type RequireAndVerifyClientCert"),
        ),
        (
            "client_allowed_sans empty",
            format!(
                "{files}  client_ca_file: s.crt\n  client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: []\n"
            ),
            Refused("client_allowed_sans is an empty list"),
        ),
        (
            "min_version TLS13",
            format!("{files}  min_version: TLS13\n"),
            Used(|c| c.tls.is_some()),
        ),
        (
            "min_version TLS10 (taken as TLS12)",
            format!("{files}  min_version: TLS10\n"),
            Used(|c| c.tls.is_some()),
        ),
        (
            "max_version TLS11",
            format!("{files}  min_version: TLS10\n  max_version: TLS11\n"),
            Refused("no version would be left"),
        ),
        (
            "min_version above max_version",
            format!("{files}  min_version: TLS13\n  max_version: TLS12\n"),
            Refused("min_version is above max_version"),
        ),
        (
            "an unknown version",
            format!("{files}  min_version: SSL3\n"),
            Refused("unknown TLS version \"SSL3\""),
        ),
        (
            "cipher_suites",
            format!("{files}  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n"),
            Used(|c| {
                tls(c).crypto_provider().cipher_suites.iter().all(|s| {
                    s.version() == &rustls::version::TLS13
                        || format!("{:?}", s.suite()) == "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
                })
            }),
        ),
        (
            "a CBC cipher suite",
            format!("{files}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"),
            Refused("is not offered here"),
        ),
        (
            "prefer_server_cipher_suites unset",
            files.into(),
            Used(|c| tls(c).ignore_client_order),
        ),
        (
            "prefer_server_cipher_suites false",
            format!("{files}  prefer_server_cipher_suites: false\n"),
            Used(|c| !tls(c).ignore_client_order),
        ),
        (
            "curve_preferences",
            format!("{files}  curve_preferences: [CurveP384, CurveP256]\n"),
            Used(|c| {
                let groups: Vec<_> = tls(c)
                    .crypto_provider()
                    .kx_groups
                    .iter()
                    .map(|g| g.name())
                    .collect();
                groups == [rustls::NamedGroup::secp384r1, rustls::NamedGroup::secp256r1]
            }),
        ),
        (
            "curve_preferences CurveP521",
            format!("{files}  curve_preferences: [CurveP521]\n"),
            Refused("curve CurveP521 is not offered here"),
        ),
        (
            "a misspelt field",
            format!("{files}  min_versoin: TLS12\n"),
            Refused("unknown field"),
        ),
    ];
    let top_level: Vec<(&str, &str, Expect)> = vec![
        (
            "http2 false",
            "http_server_config:\n  http2: false\n",
            Used(|c| c.tls.is_none()),
        ),
        (
            "http2 true (HTTP/1.1 is served)",
            "http_server_config:\n  http2: true\n",
            Used(|c| c.tls.is_none()),
        ),
        (
            "rate_limit",
            "rate_limit:\n  interval: 250ms\n  burst: 5\n",
            Used(|c| c.rate_limit.is_some()),
        ),
        (
            "rate_limit interval 0",
            "rate_limit:\n  interval: 0\n  burst: 5\n",
            Used(|c| c.rate_limit.is_none()),
        ),
        (
            "rate_limit interval without a unit",
            "rate_limit:\n  interval: 5\n  burst: 5\n",
            Refused("rate_limit: interval 5: a bare number needs a unit"),
        ),
        (
            "rate_limit without burst",
            "rate_limit:\n  interval: 1s\n",
            Refused("rate_limit: burst 0: with an interval, burst must be 1 or more"),
        ),
        (
            "rate_limit negative",
            "rate_limit:\n  interval: -1s\n  burst: 1\n",
            Refused("a negative interval means nothing"),
        ),
        (
            "rate_limit with a misspelt field",
            "rate_limit:\n  interval: 1s\n  bursts: 1\n",
            Refused("unknown field"),
        ),
    ];
    let all = cases
        .iter()
        .map(|(what, tls, expect)| (*what, format!("tls_server_config:\n{tls}"), expect))
        .chain(
            top_level
                .iter()
                .map(|(what, text, expect)| (*what, text.to_string(), expect)),
        );
    let mut checked = 0;
    for (what, text, expect) in all {
        let loaded = WebConfig::parse(&text, dir.path(), "web.yml");
        match (expect, loaded) {
            (Used(check), Ok(config)) => assert!(check(&config), "{what}: not used as documented"),
            (Refused(reason), Err(error)) => {
                let error = error.to_string();
                assert!(error.starts_with("web.yml"), "{what}: {error}");
                assert!(
                    error.contains(reason),
                    "{what}: {error:?} does not say {reason:?}"
                );
            }
            (Used(_), Err(error)) => panic!("{what}: refused: {error}"),
            (Refused(reason), Ok(_)) => panic!("{what}: accepted, expected {reason:?}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 39);
}

/// The inline key is a secret: no message shows it.
#[test]
fn an_inline_key_never_shows_in_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = certificate(dir.path());
    let text = format!(
        "tls_server_config:\n  cert: {}  key: s3cret-key-material\n  max_version: TLS11\n",
        block(&cert, 2)
    );
    let error = WebConfig::parse(&text, dir.path(), "web.yml").unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("s3cret-key-material"), "{shown}");
}
