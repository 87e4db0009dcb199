//! Steps 5 and 7-10 against real web servers in a network namespace: nginx (keep-alive,
//! chunked gzip, 204, 304), a server that sends 103 Early Hints and then 500, one that speaks
//! only TLS 1.0/1.1 (and `openssl s_server` limited to TLS 1.0), tinyproxy filtering a backend host (403) or asking for authentication
//! (407) when the connector sends backend requests through it, and App Proxy-like front ends
//! for step 10 (a sign-in redirect, a "Backend Timeout" page, a gateway timeout page). Every
//! case asserts the step, the failure phase and the evidence. App Proxy's timeouts are scaled
//! to 2 s (Default) so the test runs in seconds.

mod common;

use std::path::Path;
use std::process::Child;

use common::{Lab, sample, write_config};
use serde_json::json;

/// nginx inside the lab on 127.0.0.70:80, serving a small page, a large text that it sends
/// gzip-compressed (so chunked), and 204 and 304 answers, on kept-alive connections.
struct Nginx(Child);

impl Nginx {
    fn start(lab: &Lab, dir: &Path) -> Nginx {
        let www = dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "<html><body>ok</body></html>\n").unwrap();
        std::fs::write(
            www.join("big.txt"),
            "the quick brown fox jumps over the lazy dog\n".repeat(5000),
        )
        .unwrap();
        let d = dir.display();
        let config = format!(
            "worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
daemon off;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_timeout 60;
  gzip on; gzip_min_length 1; gzip_types text/plain;
  server {{
    listen 127.0.0.70:80;
    root {d}/www;
    location = /nocontent {{ return 204; }}
    location = /notmodified {{ return 304; }}
  }}
  # A backend that serves one site by its external name, as SharePoint with alternate access
  # mappings or a load balancer with host rules does; any other Host finds no site (503, as
  # a load balancer without a matching backend answers).
  server {{
    listen 127.0.0.74:80 default_server;
    return 503;
  }}
  server {{
    listen 127.0.0.74:80;
    server_name vhost-contoso.msappproxy.test;
    location / {{ return 200 \"ok\"; }}
  }}
}}
"
        );
        let file = dir.join("nginx.conf");
        std::fs::write(&file, config).unwrap();
        let child = lab
            .netns
            .command("nginx")
            .args(["-c", &file.display().to_string()])
            .spawn()
            .expect("nginx runs (scripts/test installs it)");
        // Ready when it answers.
        let address = "127.0.0.70:80".parse().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while lab.netns.get(address, "/").0 != 200 {
            assert!(std::time::Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Nginx(child)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spec(proxy: serde_json::Value) -> serde_json::Value {
    json!({
        "hosts": {
            "nginx.backend.test": "127.0.0.70",
            "hints.backend.test": "127.0.0.71",
            "legacy.backend.test": "127.0.0.72",
            "blocked.backend.test": "127.0.0.73",
            "vhost.backend.test": "127.0.0.74",
            "secure.backend.test": "127.0.0.75",
            "front-preauth.test": "127.0.0.81",
            "front-timeout.test": "127.0.0.82",
            "front-gateway.test": "127.0.0.83",
            "front-badgateway.test": "127.0.0.84",
            "intranet.contoso.test": "127.0.0.70"
        },
        "servers": [
            {"ip": "127.0.0.71", "port": 80, "kind": "http", "status": 500, "informational": [103]},
            {"ip": "127.0.0.72", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "legacy.backend.test", "max_tls": "1.1"},
            {"ip": "127.0.0.73", "port": 80, "kind": "http"},
            {"ip": "127.0.0.75", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "secure-contoso.msappproxy.test"},
            {"ip": "127.0.0.81", "port": 80, "kind": "http", "status": 302,
             "headers": {"Location": "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/authorize?client_id=x"}},
            {"ip": "127.0.0.82", "port": 80, "kind": "http", "status": 504,
             "body": "<html><h1>This corporate app can't be accessed.</h1><p>Backend Timeout</p></html>"},
            {"ip": "127.0.0.83", "port": 80, "kind": "http", "status": 504,
             "body": "<html><p>Error Code: GatewayTimeout</p></html>"},
            {"ip": "127.0.0.84", "port": 80, "kind": "http", "status": 502,
             "body": "<html><h1>This corporate app can't be accessed.</h1><p>Status Code: Bad gateway</p></html>"}
        ],
        "proxy": proxy
    })
}

/// (app, internal URL, external URL)
const APPS: &[(&str, &str, &str)] = &[
    ("nginx-page", "http://nginx.backend.test/", ""),
    ("nginx-chunked", "http://nginx.backend.test/big.txt", ""),
    ("nginx-204", "http://nginx.backend.test/nocontent", ""),
    ("nginx-304", "http://nginx.backend.test/notmodified", ""),
    ("early-hints", "http://hints.backend.test/", ""),
    ("legacy-tls", "https://legacy.backend.test/", ""),
    (
        "preauth",
        "http://nginx.backend.test/",
        "http://front-preauth.test/",
    ),
    (
        "front-timeout",
        "http://nginx.backend.test/",
        "http://front-timeout.test/",
    ),
    (
        "front-gateway",
        "http://nginx.backend.test/",
        "http://front-gateway.test/",
    ),
    ("filtered", "http://blocked.backend.test/", ""),
    (
        "front-bad-gateway",
        "http://nginx.backend.test/",
        "http://front-badgateway.test/",
    ),
    // A custom domain behind split-brain DNS: its external host is the backend itself here.
    (
        "split-brain",
        "http://nginx.backend.test/",
        "http://intranet.contoso.test/",
    ),
];

fn config(connector_file: &Path, through_proxy: bool) -> String {
    let apps: String = APPS
        .iter()
        .map(|(name, internal, external)| {
            let external = if external.is_empty() {
                String::new()
            } else {
                format!(", external_url: \"{external}\"")
            };
            format!("      - {{name: {name}, connector_group: Default, internal_url: \"{internal}\"{external}}}\n")
        })
        .collect();
    format!(
        "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
    apps:
{apps}connector:
  service_config: {file}
  updater_config: {file}
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
  use_default_proxy_for_backend_requests: {through_proxy}
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    catalog: none
  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
",
        file = connector_file.display()
    )
}

/// The connector's file: the lab's tinyproxy, bypassed for every backend host but
/// `blocked.backend.test`, so only that one's request goes through the proxy.
fn connector_file(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("connector.exe.config");
    std::fs::write(
        &file,
        r#"<configuration><system.net><defaultProxy>
  <proxy proxyaddress="http://127.0.0.1:3128"/>
  <bypasslist><add address="^https?://(nginx|hints|legacy)\.backend\.test"/></bypasslist>
</defaultProxy></system.net></configuration>"#,
    )
    .unwrap();
    file
}

fn failing(m: &str, app: &str) -> Option<f64> {
    sample(
        m,
        &format!("appproxy_flow_failing_step{{app=\"{app}\",connector_group=\"Default\"}}"),
    )
}

/// The app's backend (and external URL, when it has one) has been requested at least once.
fn answered(m: &str, app: &str, external: bool) -> bool {
    let has = |metric: &str| {
        m.contains(&format!(
            "{metric}{{app=\"{app}\",connector_group=\"Default\"}}"
        ))
    };
    has("appproxy_backend_up") && (!external || has("appproxy_external_up"))
}

/// Whether the app fails in `phase`, with the HTTP status (`code`) it got, if any.
fn failure_phase(m: &str, app: &str, phase: &str) -> bool {
    failure_code(m, app, phase).is_some()
}

/// The `code` label of the app's failure in `phase` (empty without an HTTP status).
fn failure_code(m: &str, app: &str, phase: &str) -> Option<String> {
    common::backend_failure(m, app, phase)
        .filter(|(_, value)| *value == 1.0)
        .map(|(code, _)| code)
}

#[test]
fn each_real_server_case_gets_its_step_phase_and_evidence() {
    let lab = Lab::up(&spec(
        json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80],
                                   "filter": ["blocked\\.backend\\.test"]}),
    ));
    let dir = tempfile::tempdir().unwrap();
    let _nginx = Nginx::start(&lab, dir.path());
    let exporter = lab.start(&write_config(
        dir.path(),
        &config(&connector_file(dir.path()), true),
    ));
    let m = lab.wait_for_metrics(&exporter, |m| {
        APPS.iter()
            .all(|(app, _, external)| answered(m, app, !external.is_empty()))
    });

    // nginx: a length, chunked gzip, 204 and 304 all end where their framing says, on a
    // connection nginx keeps open: fast pages, nothing waits for the close.
    for app in ["nginx-page", "nginx-chunked", "nginx-204", "nginx-304"] {
        assert_eq!(failing(&m, app), Some(0.0), "{app}: {m}");
        let ratio = sample(
            &m,
            &format!("appproxy_backend_latency_ratio{{app=\"{app}\",connector_group=\"Default\"}}"),
        )
        .unwrap();
        assert!(ratio < 0.25, "{app} is fast: {ratio}");
    }
    assert_eq!(
        sample(
            &m,
            r#"appproxy_backend_http_status_code{app="nginx-304",connector_group="Default"}"#
        ),
        Some(304.0)
    );

    // 103 then 500: the final answer counts.
    assert_eq!(failing(&m, "early-hints"), Some(7.0));
    assert_eq!(
        failure_code(&m, "early-hints", "http").as_deref(),
        Some("500")
    );
    assert!(
        lab.diagnosed(&exporter, "early-hints", 7)
            .1
            .contains("answered HTTP 500")
    );

    // A backend that speaks only TLS 1.0/1.1 is named as such; off Windows nobody knows
    // whether the connector's SChannel speaks it, so step 7 is not evaluated, never failed.
    assert_eq!(failing(&m, "legacy-tls"), Some(0.0));
    assert!(failure_phase(&m, "legacy-tls", "tls"));
    let (state, evidence) = lab.diagnosed(&exporter, "legacy-tls", 7);
    assert_eq!(state, "not_evaluated");
    assert!(evidence.contains("TLS 1.0/1.1 only"), "{evidence}");

    // tinyproxy filters the backend host: the proxy's 403, step 5 for this app alone.
    assert_eq!(failing(&m, "filtered"), Some(5.0));
    assert!(failure_phase(&m, "filtered", "proxy"));
    let (state, evidence) = lab.diagnosed(&exporter, "filtered", 5);
    assert_eq!(state, "fail");
    assert!(
        evidence.contains(
            "the backend proxy http://127.0.0.1:3128 refuses blocked.backend.test:80 (403)"
        ),
        "{evidence}"
    );
    assert_ne!(
        lab.diagnosed(&exporter, "nginx-page", 5).0,
        "fail",
        "other apps keep the host's step 5"
    );

    // Step 10 judges only what it can: a sign-in redirect is not evaluated; App Proxy's
    // pages go to the step they name.
    assert_eq!(failing(&m, "preauth"), Some(0.0));
    let (state, evidence) = lab.diagnosed(&exporter, "preauth", 10);
    assert_eq!(state, "not_evaluated");
    assert!(
        evidence.contains("redirects to Microsoft sign-in"),
        "{evidence}"
    );
    assert_eq!(failing(&m, "front-timeout"), Some(9.0));
    assert!(
        lab.diagnosed(&exporter, "front-timeout", 9)
            .1
            .contains("App Proxy's error page (\"backend timeout\")")
    );
    assert_eq!(failing(&m, "front-gateway"), Some(2.0));
    assert!(
        lab.diagnosed(&exporter, "front-gateway", 2)
            .1
            .contains("gatewaytimeout")
    );
    // A bad gateway while this host loads the page: another connector cannot reach it.
    assert_eq!(failing(&m, "front-bad-gateway"), Some(10.0));
    let (_, evidence) = lab.diagnosed(&exporter, "front-bad-gateway", 10);
    assert!(evidence.contains("steps 7-8"), "{evidence}");
    assert_eq!(lab.diagnosed(&exporter, "front-bad-gateway", 7).0, "pass");
    // The external host resolves to the backend: no request from here reaches App Proxy.
    assert_eq!(failing(&m, "split-brain"), Some(0.0));
    let (state, evidence) = lab.diagnosed(&exporter, "split-brain", 10);
    assert_eq!(state, "not_evaluated");
    assert!(evidence.contains("split-brain DNS"), "{evidence}");
}

#[test]
fn a_proxy_asking_for_authentication_fails_step_5_for_the_backend_request() {
    let lab = Lab::up(&spec(
        json!({"ip": "127.0.0.1", "port": 3128, "connect_ports": [443, 80],
                                   "basic_auth": "user:pass"}),
    ));
    let dir = tempfile::tempdir().unwrap();
    let exporter = lab.start(&write_config(
        dir.path(),
        &config(&connector_file(dir.path()), true),
    ));
    let m = lab.wait_for_metrics(&exporter, |m| answered(m, "filtered", false));
    assert_eq!(failing(&m, "filtered"), Some(5.0), "{m}");
    assert!(failure_phase(&m, "filtered", "proxy"));
    let (_, evidence) = lab.diagnosed(&exporter, "filtered", 5);
    assert!(
        evidence.contains("asks for authentication (407)"),
        "{evidence}"
    );
}

/// "Translate URLs in headers: No" (Graph's `isTranslateHostHeaderEnabled: false`): App Proxy
/// passes the user's Host, the external one, to the backend. A backend that serves its site by
/// that name loads only when asked by it, and its certificate is for that name.
#[test]
fn an_app_that_keeps_the_external_host_is_asked_by_it_and_its_certificate_checked_for_it() {
    let lab = Lab::up(&spec(serde_json::Value::Null));
    let dir = tempfile::tempdir().unwrap();
    let _nginx = Nginx::start(&lab, dir.path());
    let file = connector_file(dir.path());
    let app = |name: &str, internal: &str, external: Option<&str>| match external {
        None => format!(
            "      - {{name: {name}, connector_group: Default, internal_url: \"{internal}\"}}\n"
        ),
        Some(external) => format!(
            "      - {{name: {name}, connector_group: Default, internal_url: \"{internal}\", external_url: \"{external}\", translate_host_header: false}}\n"
        ),
    };
    let apps = [
        app("vhost-translated", "http://vhost.backend.test/", None),
        app(
            "vhost-kept",
            "http://vhost.backend.test/",
            Some("https://vhost-contoso.msappproxy.test/"),
        ),
        app("tls-translated", "https://secure.backend.test/", None),
        app(
            "tls-kept",
            "https://secure.backend.test/",
            Some("https://secure-contoso.msappproxy.test/"),
        ),
    ]
    .concat();
    let config = format!(
        "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{{machine_name: CONN-01, status: active}}]
    apps:
{apps}connector:
  service_config: {file}
  updater_config: {file}
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    catalog: none
  external:
    enabled: false
  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
",
        file = file.display()
    );
    let exporter = lab.start(&write_config(dir.path(), &config));
    let m = lab.wait_for_metrics(&exporter, |m| {
        [
            "vhost-translated",
            "vhost-kept",
            "tls-translated",
            "tls-kept",
        ]
        .iter()
        .all(|app| answered(m, app, false))
    });
    // Asked by its internal name, the site is not found: step 7 fails, as it should only for
    // an app whose headers App Proxy translates.
    assert_eq!(failing(&m, "vhost-translated"), Some(7.0), "{m}");
    assert_eq!(
        failure_code(&m, "vhost-translated", "http").as_deref(),
        Some("503")
    );
    assert_eq!(failing(&m, "vhost-kept"), Some(0.0), "{m}");
    assert_eq!(failing(&m, "tls-translated"), Some(7.0), "{m}");
    assert!(failure_phase(&m, "tls-translated", "tls"), "{m}");
    assert_eq!(failing(&m, "tls-kept"), Some(0.0), "{m}");
    let (_, evidence) = lab.diagnosed(&exporter, "vhost-translated", 7);
    assert!(
        evidence.contains("vhost.backend.test:80 answered HTTP 503"),
        "{evidence}"
    );
}

/// The SHA-1 thumbprint (hex, as openssl prints it without the colons) and subject of a
/// certificate file the lab made.
fn openssl_thumbprint_and_subject(pem: &Path) -> (String, String) {
    let output = std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha1",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
        ])
        .arg(pem)
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "openssl x509 {}", pem.display());
    let text = String::from_utf8(output.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.split_once('=').filter(|(k, _)| k.contains(name)))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    (field("Fingerprint").replace(':', ""), field("subject"))
}

/// Step 10 on a custom domain, end to end: Graph (the Graph-shaped server) describes each
/// app's certificate as `verifiedCustomDomainCertificatesMetadata`, and the external URL is a
/// real TLS server whose certificate openssl made. The app whose metadata names that
/// certificate passes; the one whose metadata names another (a real one too) fails step 10
/// naming both thumbprints and subjects; the one whose front end refuses the connection fails
/// for that, its certificate not evaluated.
#[test]
fn the_external_url_must_present_the_custom_domain_certificate_graph_describes() {
    let lab = Lab::up(&json!({
        "hosts": {
            "plain.backend.test": "127.0.0.73",
            "apps.contoso.test": "127.0.0.76",
            "other.contoso.test": "127.0.0.77",
            "closed.contoso.test": "127.0.0.78"
        },
        "servers": [
            {"ip": "127.0.0.73", "port": 80, "kind": "http"},
            {"ip": "127.0.0.76", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "apps.contoso.test"},
            {"ip": "127.0.0.77", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "other.contoso.test"}
        ],
        "proxy": null
    }));
    let certs = Path::new(&lab.ca_bundle).parent().unwrap().join("certs");
    let (served, served_subject) =
        openssl_thumbprint_and_subject(&certs.join("microsoft-apps.contoso.test.pem"));
    let (other, other_subject) =
        openssl_thumbprint_and_subject(&certs.join("microsoft-other.contoso.test.pem"));
    let metadata = |thumbprint: &str, subject: &str| {
        json!({"thumbprint": thumbprint, "subjectName": subject,
               "issuerName": "CN=Microsoft Test Root CA, O=Microsoft Corporation",
               "issueDate": "2026-12-01T00:00:00Z", "expiryDate": "2027-01-01T00:00:00Z"})
    };
    let app = |id: &str, name: &str, external: &str, certificate: serde_json::Value| {
        json!({"id": id, "displayName": name, "connectorGroupId": "g1", "onPremisesPublishing": {
            "internalUrl": "http://plain.backend.test/", "externalUrl": external,
            "externalAuthenticationType": "passthru",
            "verifiedCustomDomainCertificatesMetadata": certificate}})
    };
    let tenant = json!({
        "tenant_id": "t-id", "client_id": "c-id", "client_secret": "s3cret",
        "groups": [{"id": "g1", "name": "Default", "isDefault": true, "connectorGroupType": "applicationProxy"}],
        "connectors": [{"id": "c1", "machineName": "CONN-01", "status": "active", "memberOf": ["g1"]}],
        "applications": [
            // Graph's thumbprint in lower case: compared without regard to letter case.
            app("a1", "matching", "https://apps.contoso.test/", metadata(&served.to_lowercase(), &served_subject)),
            app("a2", "mismatched", "https://apps.contoso.test/", metadata(&other, &other_subject)),
            app("a3", "closed", "https://closed.contoso.test/", metadata(&served, &served_subject))
        ]
    });
    let graph = common::GraphServer::start_in(&lab.netns, &tenant, 100);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client_secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let direct = dir.path().join("connector.exe.config");
    std::fs::write(
        &direct,
        r#"<configuration><system.net><defaultProxy enabled="false"/></system.net></configuration>"#,
    )
    .unwrap();
    let config = format!(
        "tenant_id: t-id
inventory:
  refresh_interval: 1m
  graph:
    client_id: c-id
    auth: client_secret
    client_secret_file: {secret}
    graph_url: {url}
    login_url: {url}
connector:
  machine_name: CONN-01
  service_config: {file}
  updater_config: {file}
  machine_config: /nonexistent/machine.config
  winhttp_proxy: direct
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    catalog: none
  backend:
    interval: 300ms
    timeouts: {{default: 2s, long: 4s}}
",
        secret = secret.display(),
        url = graph.url,
        file = direct.display()
    );
    let exporter = lab.start(&write_config(dir.path(), &config));
    let m = lab.wait_for_metrics(&exporter, |m| {
        ["matching", "mismatched", "closed"]
            .iter()
            .all(|app| answered(m, app, true))
    });
    assert_eq!(failing(&m, "matching"), Some(0.0), "{m}");
    assert_eq!(failing(&m, "mismatched"), Some(10.0), "{m}");
    assert_eq!(failing(&m, "closed"), Some(10.0), "{m}");
    assert_eq!(
        sample(
            &m,
            r#"appproxy_custom_domain_certificate_expiry_timestamp_seconds{app="matching",connector_group="Default"}"#
        ),
        Some(1_798_761_600.0)
    );

    let (state, evidence) = lab.diagnosed(&exporter, "matching", 10);
    assert_eq!(state, "pass");
    assert!(
        evidence.contains("presents the custom-domain certificate uploaded to App Proxy"),
        "{evidence}"
    );
    let (state, evidence) = lab.diagnosed(&exporter, "mismatched", 10);
    assert_eq!(state, "fail");
    for part in [
        served.to_lowercase(),
        other.to_lowercase(),
        served_subject,
        other_subject,
    ] {
        assert!(evidence.contains(&part), "{part} in {evidence}");
    }
    let (state, evidence) = lab.diagnosed(&exporter, "closed", 10);
    assert_eq!(state, "fail");
    assert!(!evidence.contains("certificate"), "{evidence}");
    // The page shows the same.
    let page = lab.netns.get(exporter.address, "/").1;
    assert!(page.contains(&other.to_lowercase()), "{page}");
}

/// `openssl s_server` on 127.0.0.76:443 that speaks only TLS 1.0, as an old IIS or appliance
/// does. Debian's OpenSSL offers TLS 1.0 only at security level 0 (`-cipher
/// 'DEFAULT:@SECLEVEL=0'`); `-www` answers any request with its status page.
struct Tls10Server(Child);

impl Tls10Server {
    const ADDRESS: &str = "127.0.0.76:443";

    fn start(lab: &Lab, dir: &Path) -> Tls10Server {
        let (cert, key) = (dir.join("tls10.pem"), dir.join("tls10.key"));
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=tls10.backend.test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs (scripts/test installs it)");
        assert!(made.status.success(), "{made:?}");
        let child = lab
            .netns
            .command("openssl")
            .args(["s_server", "-accept", Self::ADDRESS, "-tls1"])
            .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-www", "-quiet"])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server runs");
        let server = Tls10Server(child);
        // Ready when a TLS 1.0 client gets through; and a TLS 1.2 one must not.
        let handshake = |version: &str| {
            lab.netns
                .command("openssl")
                .args(["s_client", "-connect", Self::ADDRESS, version])
                .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
                .stdin(std::process::Stdio::null())
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !handshake("-tls1") {
            assert!(
                std::time::Instant::now() < deadline,
                "openssl s_server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(!handshake("-tls1_2"), "the server must not speak TLS 1.2");
        server
    }
}

impl Drop for Tls10Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The exporter (rustls: TLS 1.2 and 1.3 only) cannot load a backend that speaks only TLS 1.0,
/// but the connector's SChannel may: off Windows, where SChannel's settings cannot be read,
/// step 7 is not evaluated and says why, never failed and never passed; the backend's TLS is
/// exported as `TLS 1.0/1.1`, and a modern backend's negotiated version beside it.
#[test]
fn a_backend_speaking_only_tls_10_is_not_evaluated_off_windows_and_its_version_exported() {
    let lab = Lab::up(&json!({
        "hosts": {
            "tls10.backend.test": "127.0.0.76",
            "modern.backend.test": "127.0.0.77"
        },
        "servers": [
            {"ip": "127.0.0.77", "port": 443, "kind": "tls", "issuer": "microsoft", "cn": "modern.backend.test"}
        ]
    }));
    let dir = tempfile::tempdir().unwrap();
    let _server = Tls10Server::start(&lab, dir.path());
    let exporter = lab.start(&write_config(
        dir.path(),
        "inventory:
  static:
    connector_groups:
      - name: Default
        connectors: [{machine_name: CONN-01, status: active}]
    apps:
      - {name: tls10, connector_group: Default, internal_url: \"https://tls10.backend.test/\"}
      - {name: modern, connector_group: Default, internal_url: \"https://modern.backend.test/\"}
probes:
  interval: 1s
  timeout: 1s
  endpoints:
    catalog: none
  backend:
    interval: 300ms
    timeouts: {default: 2s, long: 4s}
metrics:
  per_step_series: true
",
    ));
    let version = |app: &str, version: &str| {
        format!(
            "appproxy_backend_tls_version_info{{app=\"{app}\",connector_group=\"Default\",version=\"{version}\"}}"
        )
    };
    let m = lab.wait_for_metrics(&exporter, |m| {
        ["tls10", "modern"]
            .iter()
            .all(|app| answered(m, app, false))
            && m.contains("appproxy_flow_failing_step{")
    });
    assert_eq!(
        sample(&m, &version("tls10", "TLS 1.0/1.1")),
        Some(1.0),
        "{m}"
    );
    assert_eq!(sample(&m, &version("modern", "TLS 1.3")), Some(1.0), "{m}");

    // Not failed, not passed: no step 7 series at all, and the walk goes past it.
    let step_7 = |app: &str| {
        format!(
            "appproxy_flow_step_ok{{app=\"{app}\",connector_group=\"Default\",step=\"7\",step_name=\"internal_url\"}}"
        )
    };
    assert_eq!(sample(&m, &step_7("tls10")), None, "{m}");
    assert_eq!(sample(&m, &step_7("modern")), Some(1.0));
    assert_eq!(failing(&m, "tls10"), Some(0.0));
    // What the exporter saw is still said: it could not load the page, over TLS.
    assert!(failure_phase(&m, "tls10", "tls"));

    let (state, evidence) = lab.diagnosed(&exporter, "tls10", 7);
    assert_eq!(state, "not_evaluated");
    for said in [
        "tls10.backend.test:443",
        "TLS 1.0/1.1 only",
        "whether the connector's SChannel does is unknown here",
        "not Windows",
    ] {
        assert!(evidence.contains(said), "{said:?} in {evidence}");
    }
    assert_eq!(lab.diagnosed(&exporter, "tls10", 8).0, "pass");
}
