//! The configuration file: read in two stages (`raw`: the YAML as written, unknown keys
//! rejected; `validate`: typed settings with cross-field checks), so every error names the
//! file, line, column and key path. This module knows nothing of probing.

pub mod duration;
mod raw;
mod settings;
mod validate;
pub mod values;

use std::fmt;
use std::path::{Path, PathBuf};

pub use settings::{
    BackendSettings, BackendTimeouts, ConnectorSettings, Endpoint, EndpointSettings,
    ExternalSettings, GraphSettings, InventorySettings, ProbeSettings, SegmentSettings, Settings,
    StaticApp, StaticConnector, StaticGroup, StaticInventory, WildcardHost,
};

/// One thing wrong in a config file, at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: u64,
    /// The key path (`probes.backend.timeouts.long`), when the problem belongs to a key.
    pub path: Option<String>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config file: {source}")]
    Read {
        file: String,
        source: crate::platform::file::ReadError,
    },
    #[error(
        "{file}: the config file is empty; run without --config.file to use the built-in defaults"
    )]
    Empty { file: String },
    #[error("{}", render(file, problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

/// The problems, one a line; a password in a URL that a message quotes is redacted, whichever
/// part of the reading wrote the message (the YAML library quotes values too).
fn render(file: &str, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match &p.path {
            Some(path) => format!("{file}:{}:{}: {path}: {}", p.line, p.column, p.message),
            None => format!("{file}:{}:{}: {}", p.line, p.column, p.message),
        })
        .collect();
    crate::secret::redact_url_passwords(&lines.join("\n"))
}

/// A loaded configuration: the settings, where they came from, and warnings worth logging.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    /// `None` when running on the built-in defaults.
    pub file: Option<PathBuf>,
    pub warnings: Vec<String>,
}

impl Loaded {
    pub fn defaults() -> Self {
        Self {
            settings: Settings::default(),
            file: None,
            warnings: Vec::new(),
        }
    }
}

/// Reads and validates the config file, or returns the built-in defaults when there is none.
pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    let Some(path) = file else {
        return Ok(Loaded::defaults());
    };
    let name = path.display().to_string();
    let bytes =
        crate::platform::file::read_bounded(path, crate::platform::file::EXPORTER_CONFIG_LIMIT)
            .map_err(|source| ConfigError::Read {
                file: name.clone(),
                source,
            })?;
    // Windows PowerShell 5.1 writes UTF-16: accepted, like UTF-8 with a byte order mark.
    let text = crate::text::decode(&bytes).map_err(|message| ConfigError::Read {
        file: name.clone(),
        source: crate::platform::file::ReadError::Undecodable(message),
    })?;
    let (settings, warnings) = parse(&text, &name)?;
    Ok(Loaded {
        settings,
        file: Some(path.to_path_buf()),
        warnings,
    })
}

/// Parses config text; `file` only names it in messages.
pub fn parse(text: &str, file: &str) -> Result<(Settings, Vec<String>), ConfigError> {
    let is_blank = text
        .lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---");
    if is_blank {
        return Err(ConfigError::Empty {
            file: file.to_string(),
        });
    }
    let invalid = |problems| ConfigError::Invalid {
        file: file.to_string(),
        problems,
    };
    let raw = deserialize(text).map_err(|p| invalid(vec![p]))?;
    validate::validate(raw).map_err(invalid)
}

/// Stage one: YAML into the raw structs, remembering the key path of the first error.
fn deserialize(text: &str) -> Result<raw::RawConfig, Problem> {
    let mut options = serde_saphyr::options::Options::default();
    options.with_snippet = false;
    let mut path = None;
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    result.map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((1, 1), |at| (at.line(), at.column()));
        Problem {
            line,
            column,
            path: path.as_deref().and_then(clean_path),
            message: yaml_message(&error),
        }
    })
}

/// `serde_path_to_error` spells the root `.` and unknowns `?`, and walks through the `value`
/// field of `Spanned` wrappers; users wrote none of those.
fn clean_path(path: &str) -> Option<String> {
    let cleaned: Vec<&str> = path
        .split('.')
        // A `Spanned` list's items are under `value[N]`: the `[N]` is the user's.
        .map(|segment| match segment.strip_prefix("value") {
            Some(index) if index.starts_with('[') => index,
            _ => segment,
        })
        .filter(|segment| !segment.is_empty() && *segment != "value" && *segment != "?")
        .collect();
    (!cleaned.is_empty()).then(|| cleaned.join(".").replace(".[", "["))
}

/// The YAML library's message, told for the person who wrote the file. Its own words speak to
/// programmers where it hits a limit (a debug dump of which), meets a second document ("use
/// from_str_multiple") or a repeated key ("set DuplicateKeyPolicy"); and it appends
/// " at line L, column C", which we print first, the compiler way.
pub(crate) fn yaml_message(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error;
    let mut inner = error;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    match inner {
        Error::Budget { breach, .. } => format!(
            "the YAML is larger or more complex than a configuration has reason to be: {}; the limit guards against YAML bombs",
            limit_breached(breach)
        ),
        Error::MultipleDocuments { .. } => {
            "a second YAML document (after `---`): the file holds one".to_string()
        }
        Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("the key {key} appears twice here: each key may appear once")
        }
        Error::DuplicateMappingKey { key: None, .. } => {
            "a key appears twice here: each key may appear once".to_string()
        }
        _ => {
            let message = inner.to_string();
            match message.rfind(" at line ") {
                Some(at) if message[at..].contains(", column ") => message[..at].to_string(),
                _ => message,
            }
        }
    }
}

fn limit_breached(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Aliases { aliases } => format!("more than {} aliases (*name)", aliases - 1),
        B::Anchors { anchors } => format!("more than {} anchors (&name)", anchors - 1),
        B::Depth { depth } => format!("nested more than {} deep", depth - 1),
        B::Nodes { nodes } => format!("more than {} values", nodes - 1),
        B::Events { events } => format!("more than {} parser events", events - 1),
        B::ScalarBytes { .. } => "more text in values than it allows".to_string(),
        B::Documents { documents } => format!("{documents} documents"),
        B::MergeKeys { merge_keys } => format!("more than {} merge keys (<<)", merge_keys - 1),
        B::AliasAnchorRatio { aliases, anchors } => {
            format!("{aliases} aliases (*name) expanding {anchors} anchors (&name)")
        }
        B::SequenceUnbalanced => "a list or map closed that was never opened".to_string(),
        _ => "one of its size limits".to_string(),
    }
}

impl fmt::Display for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}", file.display()),
            None => f.write_str("built-in defaults"),
        }
    }
}

/// The settings as YAML for `/config`: defaults filled in, URL passwords redacted.
pub fn to_yaml(settings: &Settings) -> String {
    serde_saphyr::to_string(settings)
        .unwrap_or_else(|e| format!("# the settings could not be rendered: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_example_is_valid() {
        let text = include_str!("../../tests/fixtures/config/valid/contract_example.yml");
        let (settings, warnings) = parse(text, "example.yml").unwrap();
        assert!(warnings.is_empty());
        let apps = &settings.inventory.static_inventory.as_ref().unwrap().apps;
        assert_eq!(apps[0].name, "intranet");
        assert_eq!(settings.probes.backend.timeouts.long.as_secs(), 180);
    }

    #[test]
    fn plain_http_graph_urls_load_with_a_warning() {
        let text = "tenant_id: t\ninventory:\n  graph:\n    client_id: c\n    auth: client_secret\n    graph_url: http://127.0.0.1:8080\n";
        let (settings, warnings) = parse(text, "f.yml").unwrap();
        assert_eq!(
            settings.inventory.graph.unwrap().graph_url.0.as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("graph_url"));
    }

    #[test]
    fn the_cloud_picks_graph_and_login_hosts_and_both_can_be_overridden() {
        let graph = |cloud: &str, extra: &str| {
            let text = format!(
                "cloud: {cloud}\ntenant_id: t\ninventory:\n  graph:\n    client_id: c\n    auth: client_secret\n{extra}"
            );
            let graph = parse(&text, "f.yml").unwrap().0.inventory.graph.unwrap();
            (graph.graph_url.0.to_string(), graph.login_url.0.to_string())
        };
        assert_eq!(
            graph("public", ""),
            (
                "https://graph.microsoft.com/".into(),
                "https://login.microsoftonline.com/".into()
            )
        );
        assert_eq!(
            graph("usgov", ""),
            (
                "https://graph.microsoft.us/".into(),
                "https://login.microsoftonline.us/".into()
            )
        );
        assert_eq!(
            graph("china", ""),
            (
                "https://microsoftgraph.chinacloudapi.cn/".into(),
                "https://login.chinacloudapi.cn/".into()
            )
        );
        let dod = graph("usgov", "    graph_url: https://dod-graph.microsoft.us\n");
        assert_eq!(dod.0, "https://dod-graph.microsoft.us/");
    }

    #[test]
    fn every_cloud_has_valid_builtin_urls() {
        use values::Cloud;
        for cloud in [Cloud::Public, Cloud::Usgov, Cloud::China] {
            assert!(values::HttpUrl::parse(cloud.graph_url()).is_ok());
            assert!(values::HttpUrl::parse(cloud.login_url()).is_ok());
        }
    }

    #[test]
    fn config_page_redacts_proxy_passwords() {
        let text = "connector:\n  proxy: http://svc:hunter2@proxy.corp.example:3128\n";
        let (settings, _) = parse(text, "f.yml").unwrap();
        let yaml = to_yaml(&settings);
        assert!(!yaml.contains("hunter2"), "{yaml}");
        assert!(yaml.contains("REDACTED"), "{yaml}");
    }

    #[test]
    fn a_release_list_replaces_the_built_in_one_sorted_oldest_first_and_shows_on_the_config_page() {
        use values::{ConnectorRelease, ConnectorVersion, Releases};
        let (defaults, _) = parse("cloud: public\n", "f.yml").unwrap();
        assert_eq!(defaults.connector.releases, Releases::Builtin);
        let text = "connector:\n  releases:\n    - version: 1.5.4892.0\n    - {version: 1.5.4522.0, auto_update: true}\n";
        let (settings, _) = parse(text, "f.yml").unwrap();
        let v = |s| ConnectorVersion::parse(s).unwrap();
        assert_eq!(
            settings.connector.releases,
            Releases::Listed(vec![
                ConnectorRelease {
                    version: v("1.5.4522.0"),
                    auto_update: true
                },
                ConnectorRelease {
                    version: v("1.5.4892.0"),
                    auto_update: false
                },
            ])
        );
        let yaml = to_yaml(&settings);
        assert!(yaml.contains("1.5.4522.0"), "{yaml}");
        assert!(!to_yaml(&defaults).contains("releases"));
    }

    #[test]
    fn paths_read_like_the_file() {
        assert_eq!(
            clean_path("inventory.value.static.apps[2].value.name").as_deref(),
            Some("inventory.static.apps[2].name")
        );
        assert_eq!(
            clean_path("connector.releases.value[1].value.version").as_deref(),
            Some("connector.releases[1].version")
        );
        assert_eq!(clean_path("."), None);
        assert_eq!(clean_path("?"), None);
    }
}
