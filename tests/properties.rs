//! Random and truncated input to every parser of outside data: the config file, the web config,
//! the connector's .NET config files, the WinHTTP registry value, and HTTP heads both ways (a
//! client's request to our server, a backend's answer to our client). Graph's JSON has its own
//! in `inventory::graph::model`. None may panic; every failure is an error that says where.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use appproxy_exporter::exporter::Exporter;
use appproxy_exporter::http;
use appproxy_exporter::http::listener::{ConnectionLimits, WebListener};
use appproxy_exporter::http::webconfig::WebConfig;
use appproxy_exporter::proxy::{dotnet, registry};
use appproxy_exporter::supervise::Tasks;
use appproxy_exporter::{backend, config};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("fixtures/config/valid/contract_example.yml");
const PROXY_FILE: &str = include_str!("fixtures/dotnet/proxy.exe.config");

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_as_a_config_file_loads_or_says_where_it_is_wrong(text in "\\PC{0,400}") {
        match config::parse(&text, "fuzz.yml") {
            Ok(_) => {}
            Err(error) => prop_assert!(error.to_string().starts_with("fuzz.yml"), "{error}"),
        }
    }

    #[test]
    fn a_truncated_config_file_loads_or_says_where_it_is_wrong(cut in 0usize..EXAMPLE.len()) {
        let text = EXAMPLE.get(..cut).unwrap_or(EXAMPLE);
        match config::parse(text, "cut.yml") {
            Ok(_) => {}
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.starts_with("cut.yml"), "{message}");
            }
        }
    }

    #[test]
    fn a_config_file_with_a_byte_changed_never_panics(at in 0usize..EXAMPLE.len(), byte in any::<u8>()) {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        bytes[at] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = config::parse(&text, "changed.yml");
        }
    }

    #[test]
    fn any_bytes_as_a_dotnet_config_parse_or_give_a_position(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        match dotnet::decode(&bytes).and_then(|text| dotnet::parse(&text)) {
            Ok(_) => {}
            Err(problem) => prop_assert!(problem.line >= 1 && problem.column >= 1, "{problem}"),
        }
    }

    #[test]
    fn a_truncated_dotnet_config_parses_or_gives_a_position(cut in 0usize..PROXY_FILE.len()) {
        let text = PROXY_FILE.get(..cut).unwrap_or(PROXY_FILE);
        match dotnet::parse(text) {
            Ok(_) => {}
            Err(problem) => prop_assert!(problem.line >= 1 && !problem.message.is_empty(), "{problem}"),
        }
    }

    #[test]
    fn any_registry_value_is_read_or_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = registry::parse_settings(&bytes);
    }
}

const WEB_CONFIG: &str = "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\nbasic_auth_users:\n  prometheus: $2y$10$rN5p2hD3KZMM5fnnEmL2fOTrgEU4U7bAE9v.8vzPtmVZkZrDOhoVm\n";

/// A request head as a client might send it: a plausible start, then anything.
fn request_head() -> impl Strategy<Value = Vec<u8>> {
    let start = prop_oneof![
        Just(b"GET /metrics HTTP/1.1\r\n".to_vec()),
        Just(b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec()),
        Just(b"POST /-/reload HTTP/1.1\r\nContent-Length: ".to_vec()),
        Just(b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()),
        Just(Vec::new()),
    ];
    (start, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(mut head, rest)| {
        head.extend(rest);
        head
    })
}

/// An answer head as a backend might send it: a plausible start, then anything.
fn answer_head() -> impl Strategy<Value = Vec<u8>> {
    let start = prop_oneof![
        Just(b"HTTP/1.1 ".to_vec()),
        Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        Just(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 ".to_vec()),
        Just(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()),
        Just(b"HTTP/1.1 302 Found\r\nLocation: ".to_vec()),
        Just(Vec::new()),
    ];
    (start, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(mut head, rest)| {
        head.extend(rest);
        head
    })
}

/// One runtime for the async cases, and our HTTP server on it, started once.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        appproxy_exporter::install_crypto_provider();
        tokio::runtime::Runtime::new().unwrap()
    })
}

fn our_server() -> SocketAddr {
    static ADDRESS: OnceLock<SocketAddr> = OnceLock::new();
    *ADDRESS.get_or_init(|| {
        runtime().block_on(async {
            let (settings, warnings) =
                config::parse("probes:\n  endpoints:\n    catalog: none\n", "t.yml").unwrap();
            let loaded = config::Loaded {
                settings,
                file: None,
                warnings,
            };
            let exporter = Exporter::new(loaded);
            let router = http::router(exporter, "/metrics");
            let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let limits = ConnectionLimits {
                total: 64,
                per_client: 0,
            };
            let listener = WebListener::new(vec![socket], None, limits, &Tasks::new()).unwrap();
            let address = listener.local_addr();
            tokio::spawn(http::server::serve(
                listener,
                router,
                std::future::pending(),
            ));
            address
        })
    })
}

/// Sends `bytes` and reads what comes back until the server closes or 5 s pass.
fn exchange(address: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = socket.write_all(bytes);
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    answer
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_as_a_web_config_loads_or_says_what_is_wrong(text in "\\PC{0,300}") {
        if let Err(error) = WebConfig::parse(&text, Path::new("."), "web.yml") {
            prop_assert!(error.to_string().starts_with("web.yml"), "{error}");
        }
    }

    #[test]
    fn a_web_config_with_a_byte_changed_loads_or_says_what_is_wrong(at in 0usize..WEB_CONFIG.len(), byte in any::<u8>()) {
        let mut bytes = WEB_CONFIG.as_bytes().to_vec();
        bytes[at] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            if let Err(error) = WebConfig::parse(&text, Path::new("."), "web.yml") {
                prop_assert!(error.to_string().starts_with("web.yml"), "{error}");
            }
        }
    }

    /// A header value that would split the answer (CR, LF) or end it (NUL) is refused,
    /// wherever it sits in the value.
    #[test]
    fn a_header_value_that_could_split_the_answer_is_refused(before in "[a-z ]{0,20}", bad in prop_oneof![Just("\\r"), Just("\\n"), Just("\\0")], after in "[a-z ]{0,20}") {
        let text = format!("http_server_config:\n  headers:\n    X-Frame-Options: \"{before}{bad}{after}\"\n");
        let error = WebConfig::parse(&text, Path::new("."), "web.yml").err();
        prop_assert!(error.is_some(), "accepted {text:?}");
    }

    /// Whatever a client sends, our server answers with an HTTP status or closes, and keeps
    /// serving the next client.
    #[test]
    fn any_request_head_gets_a_status_or_a_close(head in request_head()) {
        let address = our_server();
        let answer = exchange(address, &head);
        prop_assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 "), "{:?}", String::from_utf8_lossy(&answer));
        let next = exchange(address, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        prop_assert!(next.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&next));
    }

    /// Whatever a backend answers, the request ends with a status or a failure that says what.
    #[test]
    fn any_answer_head_gives_a_status_or_a_failure(head in answer_head()) {
        let (outcome, address) = runtime().block_on(async {
            let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = socket.local_addr().unwrap();
            let answer = head.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (mut stream, _) = socket.accept().await.unwrap();
                let mut request = [0u8; 2048];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            });
            let url = url::Url::parse(&format!("http://{address}/")).unwrap();
            (backend::http::get(&url, None, true, None, Duration::from_secs(5)).await, address)
        });
        match (&outcome.status, &outcome.failure) {
            (Some(status), _) => prop_assert!((100..1000).contains(status)),
            (None, Some(failure)) => prop_assert!(!failure.detail.is_empty()),
            (None, None) => prop_assert!(false, "neither status nor failure from {address}"),
        }
    }
}
