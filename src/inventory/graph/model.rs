//! The parts of Microsoft Graph's (beta) JSON the exporter reads. Everything is optional and
//! unknown fields are ignored: Graph adds properties and enum values over time, and Microsoft's
//! own examples leave some documented ones out (a connector's `version`).

use serde::Deserialize;

/// One page of an OData list.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorGroup {
    pub id: String,
    pub name: Option<String>,
    pub is_default: Option<bool>,
    pub region: Option<String>,
    pub connector_group_type: Option<String>,
}

impl ConnectorGroup {
    /// Only App Proxy groups matter; other types (present and future) are skipped. A group
    /// without a type is taken as App Proxy, the only type these endpoints had for years.
    pub fn is_application_proxy(&self) -> bool {
        self.connector_group_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("applicationProxy"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connector {
    pub id: String,
    pub machine_name: Option<String>,
    pub external_ip: Option<String>,
    pub status: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    pub display_name: Option<String>,
    pub on_premises_publishing: Option<OnPremisesPublishing>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnPremisesPublishing {
    pub internal_url: Option<String>,
    pub external_url: Option<String>,
    /// `default` | `long` in Graph, `Default` | `Long` in the portal: any letter case.
    pub application_server_timeout: Option<String>,
    pub is_backend_certificate_validation_enabled: Option<bool>,
}

/// Graph's error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The token endpoint's answer, success or error (`{"error": "...", "error_description": ...}`).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The device code endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct DeviceCodeResponse {
    pub device_code: String,
    pub message: Option<String>,
    pub user_code: Option<String>,
    pub verification_uri: Option<String>,
    pub expires_in: Option<u64>,
    pub interval: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_missing_optional_ones_are_fine() {
        let page: Page<Connector> = serde_json::from_str(
            r#"{"@odata.context":"x","value":[{"id":"c1","machineName":"CONN-01","status":"active","newThing":{"a":1}}]}"#,
        )
        .unwrap();
        assert_eq!(page.value[0].version, None);
        assert_eq!(page.next_link, None);
    }

    #[test]
    fn other_group_types_are_skipped_and_unknown_regions_kept() {
        let group: ConnectorGroup = serde_json::from_str(
            r#"{"id":"g","name":"N","connectorGroupType":"privateAccess","region":"unknownFutureValue"}"#,
        )
        .unwrap();
        assert!(!group.is_application_proxy());
        assert_eq!(group.region.as_deref(), Some("unknownFutureValue"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const PAGE: &str = r#"{"@odata.context":"x","value":[{"id":"c1","machineName":"CONN-01","externalIp":"203.0.113.5","status":"active","version":"1.5.3829.0"}],"@odata.nextLink":"https://graph.microsoft.com/beta/x?$skiptoken=abc"}"#;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Graph's answers are parsed or refused, never a panic: any text, and every truncation.
        #[test]
        fn any_graph_answer_parses_or_is_refused(text in "\\PC{0,300}", cut in 0usize..PAGE.len()) {
            let _ = serde_json::from_str::<Page<Connector>>(&text);
            let _ = serde_json::from_str::<Page<ConnectorGroup>>(&text);
            let _ = serde_json::from_str::<Application>(&text);
            let _ = serde_json::from_str::<ErrorBody>(&text);
            let _ = serde_json::from_str::<TokenResponse>(&text);
            let truncated = PAGE.get(..cut).unwrap_or(PAGE);
            prop_assert!(serde_json::from_str::<Page<Connector>>(truncated).is_err() || cut == PAGE.len());
        }
    }
}
