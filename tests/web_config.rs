//! `--web.config.file` end to end: a real TLS client, basic auth with a bcrypt hash, client
//! certificates and their allowed SANs, `promtool check web-config`, a password change and a
//! renewed certificate picked up without a restart, and the rate limit.

mod common;

use std::path::Path;
use std::process::Command;

fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, a server certificate for 127.0.0.1 and two client certificates, in `dir`: `client`
/// (SAN prometheus.example) and `intruder` (SAN intruder.example), both from the same CA.
fn certificates(dir: &Path) {
    let p = |name: &str| dir.join(name).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=appproxy test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.crt"),
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "subjectAltName=DNS:prometheus.example\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("intruder.ext"),
        "subjectAltName=DNS:intruder.example\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for who in ["server", "client", "intruder"] {
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={who}"),
            "-keyout",
            &p(&format!("{who}.key")),
            "-out",
            &p(&format!("{who}.csr")),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p(&format!("{who}.csr")),
            "-CA",
            &p("ca.crt"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p(&format!("{who}.ext")),
            "-out",
            &p(&format!("{who}.crt")),
        ]);
    }
}

fn web_config(dir: &Path, password: &str, client_auth: &str) -> std::path::PathBuf {
    let hash = bcrypt::hash(password, 4).unwrap();
    let path = dir.join("web.yml");
    let ca = if client_auth == "NoClientCert" {
        ""
    } else {
        "  client_ca_file: ca.crt\n"
    };
    std::fs::write(
        &path,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {client_auth}\n{ca}  min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\nbasic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    path
}

fn client(dir: &Path, identity: bool) -> reqwest::blocking::Client {
    client_as(dir, identity.then_some("client"))
}

/// A client that trusts the test CA, shows the certificate `who` when given, and keeps the
/// server's certificate in each answer ([`reqwest::tls::TlsInfo`]).
fn client_as(dir: &Path, who: Option<&str>) -> reqwest::blocking::Client {
    appproxy_exporter::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.crt")).unwrap()).unwrap();
    let mut builder = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .no_proxy();
    if let Some(who) = who {
        let mut pem = std::fs::read(dir.join(format!("{who}.crt"))).unwrap();
        pem.extend(std::fs::read(dir.join(format!("{who}.key"))).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn start(dir: &Path, web: &Path) -> common::Running {
    let config = common::write_config(dir, common::THREE_APPS);
    common::start(&[
        &format!("--config.file={}", config.display()),
        &format!("--web.config.file={}", web.display()),
    ])
}

#[test]
fn tls_and_basic_auth_let_only_the_right_client_in_and_pick_up_a_new_password() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let web = web_config(dir.path(), "s3cret", "NoClientCert");
    promtool_accepts(&web);

    let exporter = start(dir.path(), &web);
    let url = format!("https://127.0.0.1:{}/metrics", exporter.address.port());
    let https = client(dir.path(), false);
    let ok = https
        .get(&url)
        .basic_auth("prometheus", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
    assert!(ok.text().unwrap().contains("appproxy_exporter_build_info"));
    let wrong = https
        .get(&url)
        .basic_auth("prometheus", Some("guess"))
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Basic");
    assert_eq!(
        https.get(&url).send().unwrap().status(),
        401,
        "no credentials"
    );

    // Plain HTTP on the TLS port gets no answer.
    let (status, _) = std::panic::catch_unwind(|| common::get(exporter.address, "/metrics"))
        .unwrap_or((0, String::new()));
    assert_ne!(status, 200);

    // A new password applies without a restart.
    std::thread::sleep(std::time::Duration::from_millis(20));
    web_config(dir.path(), "n3w-secret", "NoClientCert");
    let fresh = client(dir.path(), false);
    assert_eq!(
        fresh
            .get(&url)
            .basic_auth("prometheus", Some("n3w-secret"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        fresh
            .get(&url)
            .basic_auth("prometheus", Some("s3cret"))
            .send()
            .unwrap()
            .status(),
        401
    );
}

#[test]
fn a_client_certificate_can_be_required() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let web = web_config(dir.path(), "s3cret", "RequireAndVerifyClientCert");
    let exporter = start(dir.path(), &web);
    let url = format!("https://127.0.0.1:{}/-/healthy", exporter.address.port());
    assert!(
        client(dir.path(), false)
            .get(&url)
            .basic_auth("prometheus", Some("s3cret"))
            .send()
            .is_err(),
        "no client certificate, no handshake"
    );
    let ok = client(dir.path(), true)
        .get(&url)
        .basic_auth("prometheus", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// `client_allowed_sans`: a certificate from the trusted CA gets in only with an allowed SAN.
#[test]
fn only_a_client_certificate_with_an_allowed_san_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example]\n",
    )
    .unwrap();
    // Not checked with promtool: Debian's (2.42) predates client_allowed_sans.
    let exporter = start(dir.path(), &web);
    let url = format!("https://127.0.0.1:{}/-/healthy", exporter.address.port());
    let ok = client_as(dir.path(), Some("client"))
        .get(&url)
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = client_as(dir.path(), Some("intruder")).get(&url).send();
    assert!(
        refused.is_err(),
        "a certificate with SAN intruder.example got in: {refused:?}"
    );
}

/// A renewed certificate (new files under the same names; web.yml untouched) is presented
/// from the next connection on, as exporter-toolkit reads it at every handshake.
#[test]
fn a_renewed_certificate_is_presented_without_touching_web_yml() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let web = web_config(dir.path(), "s3cret", "NoClientCert");
    let exporter = start(dir.path(), &web);
    let url = format!("https://127.0.0.1:{}/-/healthy", exporter.address.port());
    let presented = || {
        let answer = client_as(dir.path(), None)
            .get(&url)
            .basic_auth("prometheus", Some("s3cret"))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200);
        let info = answer.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
        info.peer_certificate().unwrap().to_vec()
    };
    let der = |name: &str| {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(dir.path().join(name)).unwrap();
        rustls::pki_types::CertificateDer::from_pem_slice(&pem)
            .unwrap()
            .to_vec()
    };
    assert_eq!(presented(), der("server.crt"));
    let before = der("server.crt");
    std::fs::copy(
        dir.path().join("web.yml"),
        dir.path().join("web.yml.before"),
    )
    .unwrap();
    // Renewal as certbot or a script does it: a new key and certificate, written in place.
    std::thread::sleep(std::time::Duration::from_millis(20));
    certificates(dir.path());
    assert_ne!(
        der("server.crt"),
        before,
        "openssl made the same certificate"
    );
    assert_eq!(presented(), der("server.crt"));
    assert_eq!(
        std::fs::read(dir.path().join("web.yml")).unwrap(),
        std::fs::read(dir.path().join("web.yml.before")).unwrap()
    );
}

/// `rate_limit`: a full bucket lets `burst` requests through, the next is answered 429 as
/// exporter-toolkit answers it; the health and readiness checks are not counted.
#[test]
fn past_the_rate_limit_requests_are_answered_429_and_health_checks_still_pass() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "rate_limit:\n  interval: 1m\n  burst: 3\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
    )
    .unwrap();
    let exporter = start(dir.path(), &web);
    let statuses: Vec<u16> = (0..5)
        .map(|_| common::get(exporter.address, "/metrics").0)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let (status, body) = common::get(exporter.address, "/metrics");
    assert_eq!((status, body.trim()), (429, "Too Many Requests"));
    for path in ["/-/healthy", "/-/ready"] {
        let (status, _) = common::get(exporter.address, path);
        assert_ne!(status, 429, "{path} was rate limited");
    }
}

/// promtool (Prometheus' own reader of this format) accepts the file.
fn promtool_accepts(web: &Path) {
    let check = Command::new("promtool")
        .args(["check", "web-config"])
        .arg(web)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn a_broken_web_config_stops_the_start_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  prometheus: not-a-hash\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_appproxy_exporter"))
        .args([
            "--web.listen-address=127.0.0.1:0",
            &format!("--web.config.file={}", web.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("basic_auth_users.prometheus: not a bcrypt hash")
    );
}

/// A TLS client that finishes the handshake and then sends nothing is closed after the
/// header timeout (10 s), like a plain one: it once held its descriptor for good.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_tls_connection_is_closed_after_the_header_timeout() {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::AsyncReadExt;
    appproxy_exporter::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let web = web_config(dir.path(), "s3cret", "NoClientCert");
    let exporter = start(dir.path(), &web);
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(dir.path().join("ca.crt")).unwrap();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(exporter.address)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("the handshake");
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 64];
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(20), tls.read(&mut buffer)).await;
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "closed without an answer: {read:?}"
    );
    assert!(
        waited < std::time::Duration::from_secs(15),
        "open for {waited:?}"
    );
}

/// A flood of wrong passwords (each a bcrypt check at cost 10, slow on purpose) must not hold
/// up a client with the right one: its answer comes from the cache, never behind the
/// flood's checks. Compared with the flood's own answers, not with a clock, so a slow
/// machine does not change the verdict. Once, every request waited on every bcrypt check.
#[test]
fn a_flood_of_wrong_passwords_does_not_hold_up_the_right_one() {
    use std::time::{Duration, Instant};
    appproxy_exporter::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("s3cret", 10).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    let exporter = start(dir.path(), &web);
    let url = format!("http://{}/-/healthy", exporter.address);
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let good = || {
        let started = Instant::now();
        let status = http
            .get(&url)
            .basic_auth("prometheus", Some("s3cret"))
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200);
        started.elapsed()
    };
    good(); // the one bcrypt check the right password costs; cached from here on
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..4)
        .map(|worker| {
            let (url, stop) = (url.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .build()
                    .unwrap();
                let mut took = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    let started = Instant::now();
                    let answer = http
                        .get(&url)
                        .basic_auth("prometheus", Some(format!("guess-{worker}-{n}")))
                        .send()
                        .unwrap();
                    assert_eq!(answer.status(), 401);
                    took.push(started.elapsed());
                }
                took
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut right: Vec<Duration> = (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            good()
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut wrong: Vec<Duration> = flood.into_iter().flat_map(|t| t.join().unwrap()).collect();
    right.sort();
    wrong.sort();
    let (right, wrong) = (right[right.len() / 2], wrong[wrong.len() / 2]);
    eprintln!("median answer during the flood: right password {right:?}, wrong ones {wrong:?}");
    // Four flooders share one bcrypt turn, so a wrong answer takes about four checks; the right
    // one must take well under one check (it took one or more when it waited behind them).
    assert!(
        right * 8 < wrong,
        "the right password took {right:?} (median) during a flood whose wrong ones took {wrong:?}"
    );
}
