//! Every invalid config fixture is rejected with exactly its message: file, line, column, key
//! path and what is wrong. One fixture per case under `tests/fixtures/config/invalid/`.

use std::path::Path;

use appproxy_exporter::config;

const DIR: &str = "tests/fixtures/config/invalid";

/// (fixture, message after the file name)
const CASES: &[(&str, &str)] = &[
    (
        "alias_bomb.yml",
        ":5:1: the YAML is larger or more complex than a configuration has reason to be: 200 aliases (*name) expanding 1 anchors (&name); the limit guards against YAML bombs",
    ),
    (
        "app_without_internal_url.yml",
        ":5:9: inventory.static.apps[0]: missing field `internal_url`",
    ),
    (
        "bad_duration.yml",
        ":2:13: probes.interval: invalid duration \"30x\": use a number and a unit (ms, s, m, h, d, w, y), such as 30s or 5m",
    ),
    (
        "concurrency_not_a_number.yml",
        ":2:16: probes.concurrency: \"many\" is not a number: expected a number of probes from 1 to 65535",
    ),
    (
        "device_code_without_token_cache.yml",
        ":4:5: inventory.graph: auth device_code needs token_cache_file (where `appproxy_exporter login` keeps the refresh token)",
    ),
    (
        "duplicate_app.yml",
        ":6:9: inventory.static.apps[1].name: duplicate app \"intranet\" (first at line 4)",
    ),
    (
        "duplicate_key.yml",
        ":2:1: the key cloud appears twice here: each key may appear once",
    ),
    (
        "duration_without_unit.yml",
        ":2:12: probes.timeout: invalid duration \"10\": use a number and a unit (ms, s, m, h, d, w, y), such as 30s or 5m",
    ),
    (
        "empty.yml",
        ": the config file is empty; run without --config.file to use the built-in defaults",
    ),
    (
        "endpoint_host_bracketed.yml",
        ":4:15: probes.endpoints.extra[0].host: \"[2001:db8::10]\" is not a host name or IP address: give the host alone, such as login.microsoftonline.com, 192.0.2.10 or 2001:db8::10 (no scheme, port, path or brackets)",
    ),
    (
        "endpoint_host_empty.yml",
        ":4:15: probes.endpoints.extra[0].host: \"\" is not a host name or IP address: give the host alone, such as login.microsoftonline.com, 192.0.2.10 or 2001:db8::10 (no scheme, port, path or brackets)",
    ),
    (
        "endpoint_host_url.yml",
        ":4:15: probes.endpoints.extra[0].host: \"https://login.microsoftonline.com/\" is not a host name or IP address: give the host alone, such as login.microsoftonline.com, 192.0.2.10 or 2001:db8::10 (no scheme, port, path or brackets)",
    ),
    (
        "endpoint_host_with_port.yml",
        ":4:15: probes.endpoints.extra[0].host: \"proxy.corp.example:8080\" is not a host name or IP address: give the host alone, such as login.microsoftonline.com, 192.0.2.10 or 2001:db8::10 (no scheme, port, path or brackets)",
    ),
    (
        "graph_without_client_id.yml",
        ":5:5: inventory.graph: missing field `client_id`",
    ),
    (
        "graph_without_tenant_id.yml",
        ":3:5: inventory.graph: needs tenant_id (a top-level key) to sign in",
    ),
    (
        "groups_all_with_names.yml",
        ":2:11: connector.groups: `all` cannot be combined with group names: expected auto, [all], or a list of connector group names",
    ),
    (
        "wildcard_host_not_a_host.yml",
        ":5:15: probes.backend.wildcard_hosts[0].host: \"https://payroll.corp.example/\" is not a host name: use letters, digits, hyphens and dots only, such as payroll.corp.example (no wildcard, scheme, port or path)",
    ),
    (
        "wildcard_host_named_twice.yml",
        ":6:14: probes.backend.wildcard_hosts[1].app: \"hr-apps\" is named twice (first on line 4): one concrete host per app",
    ),
    (
        "port_out_of_range.yml",
        ":5:15: probes.endpoints.extra[0].port: 70000 is out of range: expected a port from 1 to 65535",
    ),
    (
        "proxy_not_http.yml",
        ":2:10: connector.proxy: expected auto, direct or a proxy URL: invalid URL \"socks5://proxy.corp.example:1080\": the scheme must be http or https, not \"socks5\"",
    ),
    (
        "release_listed_twice.yml",
        ":6:7: connector.releases[2].version: 1.5.4522.0 is listed twice (first on line 3): each release once",
    ),
    (
        "release_unknown_key.yml",
        ":4:7: connector.releases[0].auto_updates: unknown field `auto_updates`, expected one of version, auto_update",
    ),
    (
        "release_version_a_number.yml",
        ":3:16: connector.releases[0].version: \"1.5\" is not a connector version: use four whole numbers from 0 to 65535 separated by dots, as Microsoft's release history writes them, such as 1.5.4522.0",
    ),
    (
        "release_version_malformed.yml",
        ":5:16: connector.releases[1].version: \"1.5.4522\" is not a connector version: use four whole numbers from 0 to 65535 separated by dots, as Microsoft's release history writes them, such as 1.5.4522.0",
    ),
    (
        "releases_empty.yml",
        ":2:13: connector.releases: an empty list: list the connector releases (at least one with auto_update: true), or leave the key out for the built-in list",
    ),
    (
        "releases_without_auto_update.yml",
        ":3:5: connector.releases: no release has auto_update: true: a connector is judged against the newest release its updater installs by itself, so mark the releases the release history says may auto-upgrade",
    ),
    (
        "risk_ratio_out_of_range.yml",
        ":3:25: probes.backend.timeout_risk_ratio: 1.5 is out of range: use a fraction above 0 and at most 1, such as 0.8",
    ),
    (
        "tab_indentation.yml",
        ":2:2: tabs disallowed within this context (block indentation)",
    ),
    (
        "timeout_longer_than_interval.yml",
        ":3:12: probes.timeout: 1m is longer than probes.interval (30s): a probe round could never finish in time",
    ),
    (
        "two_documents.yml",
        ":3:1: a second YAML document (after `---`): the file holds one",
    ),
    (
        "unclosed_flow_sequence.yml",
        ":3:13: probes.endpoints.extra: unclosed bracket '{'",
    ),
    (
        "unknown_backend_timeout.yml",
        ":6:26: inventory.static.apps[0].backend_timeout: unknown backend_timeout \"longer\", expected default or long (any letter case)",
    ),
    (
        "unknown_cloud.yml",
        ":1:8: cloud: unknown variant `azure`, expected one of public, usgov, china",
    ),
    (
        "unknown_connector_status.yml",
        ":7:21: inventory.static.connector_groups[0].connectors[0].status: unknown variant `running`, expected one of active, inactive",
    ),
    (
        "unknown_endpoint_purpose.yml",
        ":6:18: probes.endpoints.replace[0].purpose: unknown variant `telemetry`, expected one of service, certificates, registration",
    ),
    (
        "unknown_nested_key.yml",
        ":2:3: probes.intervall: unknown field `intervall`, expected one of interval, timeout, concurrency, endpoints, external, backend, segments",
    ),
    (
        "unknown_top_level_key.yml",
        ":1:1: clodu: unknown field `clodu`, expected one of cloud, tenant_id, inventory, connector, probes, metrics",
    ),
    (
        "url_without_scheme.yml",
        ":5:23: inventory.static.apps[0].internal_url: invalid URL \"intranet.corp.example\": relative URL without a base",
    ),
    (
        "untranslated_host_without_external_url.yml",
        ":4:9: inventory.static.apps[0].translate_host_header: false needs external_url: with it off App Proxy sends the backend the external host, which only external_url names",
    ),
    (
        "url_wrong_scheme.yml",
        ":5:23: inventory.static.apps[0].internal_url: invalid URL \"ftp://intranet.corp.example/\": the scheme must be http or https, not \"ftp\"",
    ),
    (
        "zero_concurrency.yml",
        ":2:16: probes.concurrency: 0 is out of range: expected a number of probes from 1 to 65535",
    ),
    (
        "segment_sample_out_of_range.yml",
        ":3:20: probes.segments.max_addresses: 0 is out of range: expected a number of addresses per range from 1 to 256",
    ),
    (
        "zero_interval.yml",
        ":2:13: probes.interval: must be greater than 0s",
    ),
];

#[test]
fn every_invalid_fixture_is_rejected_with_its_exact_message() {
    let mut wrong = Vec::new();
    for (fixture, expected) in CASES {
        let path = Path::new(DIR).join(fixture);
        let expected = format!("{}{expected}", path.display());
        match config::load(Some(&path)) {
            Ok(_) => wrong.push(format!("{fixture}: accepted")),
            Err(error) if error.to_string() != expected => wrong.push(format!(
                "{fixture}:\n  expected: {expected}\n  got:      {error}"
            )),
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_fixture_file_has_a_case_and_there_are_at_least_fifteen() {
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|(f, _)| f.to_string()).collect();
    cases.sort();
    assert_eq!(files, cases);
    assert!(cases.len() >= 15);
}

#[test]
fn every_valid_fixture_and_the_shipped_example_load() {
    let fixtures = std::fs::read_dir("tests/fixtures/config/valid").unwrap();
    let paths = fixtures.map(|entry| entry.unwrap().path());
    for path in paths.chain([std::path::PathBuf::from(
        "deploy/appproxy_exporter.example.yml",
    )]) {
        if let Err(error) = config::load(Some(&path)) {
            panic!("{error}");
        }
    }
}

/// The README's configuration example is what newcomers copy: it must load.
#[test]
fn the_readme_configuration_example_is_valid() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let section = readme.split("## Configuration").nth(1).unwrap();
    let example = section
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    // The example's graph section names a secret file that does not exist here; the file
    // is read when Graph is used, not when the configuration loads.
    let text = example
        .replace("3f2c...", "3f2c0000")
        .replace("8e1d...", "8e1d0000");
    if let Err(error) = config::parse(&text, "README.md") {
        panic!("{error}\n{text}");
    }
}

#[test]
fn a_config_file_written_as_utf16_by_windows_powershell_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("utf16.yml");
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(
        "probes:\r\n  interval: 30s\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    std::fs::write(&path, bytes).unwrap();
    let loaded = config::load(Some(&path)).unwrap();
    assert_eq!(loaded.settings.probes.interval.as_secs(), 30);
}

/// A large tenant's static inventory fits: 10,000 apps and 10,000 endpoints of one's own are
/// about 2 MB, more than the 1 MiB the other files may hold.
#[test]
fn a_static_inventory_of_ten_thousand_apps_and_endpoints_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.yml");
    let mut text = String::from(
        "inventory:\n  static:\n    connector_groups: [{name: G, connectors: [{machine_name: C, status: active}]}]\n    apps:\n",
    );
    for i in 0..10_000 {
        text.push_str(&format!(
            "      - {{name: app{i:05}, connector_group: G, internal_url: \"http://127.0.{}.{}:8080/delay/0\"}}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    text.push_str("probes:\n  endpoints:\n    replace:\n");
    for i in 0..10_000 {
        text.push_str(&format!(
            "      - {{host: 127.0.{}.{}, port: 9000, purpose: registration}}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    assert!(text.len() > 1 << 20, "{} bytes", text.len());
    std::fs::write(&path, &text).unwrap();
    let loaded = config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    let apps = loaded.settings.inventory.static_inventory.as_ref().unwrap();
    assert_eq!(apps.apps.len(), 10_000);
}
