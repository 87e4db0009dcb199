//! Random and truncated input to every parser of outside data: the config file, the connector's
//! .NET config files and the WinHTTP registry value. None may panic; every failure is an error
//! that says where.

use appproxy_exporter::config;
use appproxy_exporter::proxy::{dotnet, registry};
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
