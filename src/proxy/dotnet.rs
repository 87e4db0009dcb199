//! The `<system.net><defaultProxy>` section of a .NET `.exe.config` or `machine.config`: what
//! the connector and updater services read to decide whether to use a forward proxy.
//! Attribute names are case-sensitive, as in .NET; their values (`True`, `true`) are not.

use std::fmt;

use quick_xml::events::{BytesStart, Event};

/// The longest attribute value read (`proxyaddress`, a `<bypasslist>` address).
const MAX_ATTRIBUTE: usize = 2048;

/// What a config file says about the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySection {
    /// No `<defaultProxy>` element: the service looks further (machine.config, then the system).
    Absent,
    /// `<defaultProxy enabled="false">`: no proxy at all.
    Disabled,
    /// `<proxy proxyaddress="...">`.
    Proxy {
        address: String,
        bypass_on_local: bool,
        bypass_list: Vec<String>,
    },
    /// `<defaultProxy>` that names no address: the system's proxy (`usesystemdefault`).
    SystemDefault,
}

/// A file that could not be read as XML, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for XmlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Decodes a config file's bytes: UTF-8 with or without BOM, or UTF-16 with a BOM.
pub fn decode(bytes: &[u8]) -> Result<String, XmlProblem> {
    crate::text::decode(bytes).map_err(|message| XmlProblem {
        line: 1,
        column: 1,
        message: message.to_string(),
    })
}

/// Reads the proxy section of config text.
pub fn parse(text: &str) -> Result<ProxySection, XmlProblem> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut section = ProxySection::Absent;
    let mut root_seen = false;
    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| problem_at(text, reader.error_position(), &e.to_string()))?;
        match event {
            Event::Start(element) => {
                let name = name_of(&element);
                handle(&path, &name, &element, &mut section, text, position)?;
                root_seen = true;
                path.push(name);
            }
            Event::Empty(element) => {
                let name = name_of(&element);
                handle(&path, &name, &element, &mut section, text, position)?;
                root_seen = true;
            }
            Event::End(element) => {
                let name = element.name().as_ref().to_string();
                if path.pop().as_deref() != Some(name.as_str()) {
                    return Err(problem_at(
                        text,
                        position,
                        &format!("unexpected closing tag </{name}>"),
                    ));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(problem_at(
            text,
            text.len() as u64,
            &format!("<{}> is never closed", path.join("><")),
        ));
    }
    if !root_seen {
        return Err(problem_at(text, 0, "no XML element in the file"));
    }
    Ok(section)
}

fn name_of(element: &BytesStart<'_>) -> String {
    element.name().as_ref().to_string()
}

/// Applies one element found under `path` to the section being read.
fn handle(
    path: &[String],
    name: &str,
    element: &BytesStart<'_>,
    section: &mut ProxySection,
    text: &str,
    position: u64,
) -> Result<(), XmlProblem> {
    let at = |parents: &[&str]| {
        path.len() == parents.len() && path.iter().zip(parents).all(|(a, b)| a == b)
    };
    let attribute = |key: &str| -> Result<Option<String>, XmlProblem> {
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|e| problem_at(text, position, &e.to_string()))?;
            if attribute.key.as_ref() == key {
                let value = attribute
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| problem_at(text, position, &e.to_string()))?;
                // A URL or a flag: anything longer is not one, and would ride on every log
                // line and label that names it.
                if value.len() > MAX_ATTRIBUTE {
                    let message = format!(
                        "{key}=\"...\" is {} bytes long; at most {MAX_ATTRIBUTE} are read",
                        value.len()
                    );
                    return Err(problem_at(text, position, &message));
                }
                return Ok(Some(value.trim().to_string()));
            }
        }
        Ok(None)
    };
    let flag = |key: &str| -> Result<Option<bool>, XmlProblem> {
        match attribute(key)? {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(problem_at(
                text,
                position,
                &format!("{key}=\"{v}\" is neither true nor false"),
            )),
        }
    };

    if at(&["configuration", "system.net"]) && name == "defaultProxy" {
        *section = if flag("enabled")? == Some(false) {
            ProxySection::Disabled
        } else {
            ProxySection::SystemDefault
        };
    } else if at(&["configuration", "system.net", "defaultProxy"]) && name == "proxy" {
        if *section == ProxySection::Disabled {
            return Ok(());
        }
        match attribute("proxyaddress")? {
            Some(address) if !address.is_empty() => {
                if !address.to_ascii_lowercase().starts_with("http://") {
                    let message = format!("proxyaddress=\"{address}\" must begin with http://");
                    return Err(problem_at(text, position, &message));
                }
                *section = ProxySection::Proxy {
                    address,
                    bypass_on_local: flag("bypassonlocal")?.unwrap_or(false),
                    bypass_list: Vec::new(),
                };
            }
            _ => *section = ProxySection::SystemDefault,
        }
    } else if at(&["configuration", "system.net", "defaultProxy", "bypasslist"]) && name == "add" {
        if let (ProxySection::Proxy { bypass_list, .. }, Some(address)) =
            (section, attribute("address")?)
        {
            // .NET compiles each address as a regular expression; one that is not fails there.
            super::bypass::Bypass::dotnet(false, std::slice::from_ref(&address))
                .map_err(|error| problem_at(text, position, &error.to_string()))?;
            bypass_list.push(address);
        }
    }
    Ok(())
}

/// An error at a byte offset, as line and column (1-based, columns in characters).
fn problem_at(text: &str, offset: u64, message: &str) -> XmlProblem {
    let offset = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    XmlProblem {
        line,
        column,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Result<ProxySection, XmlProblem> {
        let path = format!(
            "{}/tests/fixtures/dotnet/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        parse(&decode(&bytes)?)
    }

    #[test]
    fn disabled_default_proxy_means_direct() {
        assert_eq!(fixture("disabled.exe.config"), Ok(ProxySection::Disabled));
    }

    #[test]
    fn a_proxy_address_with_its_bypass_list() {
        assert_eq!(
            fixture("proxy.exe.config"),
            Ok(ProxySection::Proxy {
                address: "http://proxy.corp.example:8080".into(),
                bypass_on_local: true,
                bypass_list: vec![r"intranet\.corp\.example".into(), r"10\.0\..*".into()],
            })
        );
    }

    #[test]
    fn use_system_default_without_address_means_the_system_proxy() {
        assert_eq!(
            fixture("system-default.exe.config"),
            Ok(ProxySection::SystemDefault)
        );
    }

    #[test]
    fn no_default_proxy_element_looks_further() {
        assert_eq!(fixture("no-element.exe.config"), Ok(ProxySection::Absent));
    }

    #[test]
    fn a_utf8_byte_order_mark_is_fine() {
        assert_eq!(fixture("bom-utf8.exe.config"), Ok(ProxySection::Disabled));
    }

    #[test]
    fn utf16_with_a_byte_order_mark_is_fine() {
        let text = "<configuration><system.net><defaultProxy enabled=\"False\"/></system.net></configuration>";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(parse(&decode(&bytes).unwrap()), Ok(ProxySection::Disabled));
    }

    #[test]
    fn attribute_names_are_case_sensitive_as_in_dotnet() {
        // `ProxyAddress` is not `proxyaddress`: .NET ignores it, so the system proxy applies.
        assert_eq!(
            fixture("wrong-case.exe.config"),
            Ok(ProxySection::SystemDefault)
        );
    }

    #[test]
    fn a_proxy_address_without_http_is_a_finding_with_its_position() {
        let problem = fixture("https-address.exe.config").unwrap_err();
        assert_eq!(
            (problem.line, problem.column),
            (4, 19),
            "the <proxy> element"
        );
        assert!(
            problem.message.contains("must begin with http://"),
            "{problem}"
        );
    }

    #[test]
    fn a_mismatched_tag_is_reported_with_line_and_column() {
        let problem = fixture("malformed-mismatch.exe.config").unwrap_err();
        assert_eq!(problem.line, 5, "{problem}");
        assert!(
            problem.message.contains("defaultProxy") || problem.message.contains("system.net"),
            "{problem}"
        );
    }

    #[test]
    fn a_truncated_file_is_reported() {
        let problem = fixture("malformed-truncated.exe.config").unwrap_err();
        assert!(
            problem.message.contains("never closed") || problem.line >= 3,
            "{problem}"
        );
    }

    #[test]
    fn a_bad_boolean_is_a_finding() {
        let problem = fixture("bad-boolean.exe.config").unwrap_err();
        assert!(problem.message.contains("enabled=\"no\""), "{problem}");
    }

    #[test]
    fn an_empty_file_is_a_finding() {
        assert!(parse("").is_err());
        assert!(parse("   \n").is_err());
    }
}
