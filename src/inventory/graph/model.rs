//! The parts of Microsoft Graph's (beta) JSON the exporter reads, as Graph documents them:
//! `$select` returns only the selected properties (an object read with
//! `$select=onPremisesPublishing` has no `id`), any property may be missing or `null`, and
//! unknown properties and enum values are ignored. Graph adds properties and values over time,
//! and Microsoft's own examples leave documented ones out (a connector's `version`).
//! docs/graph.md lists the documented behaviours these types rely on; the example answers of
//! Graph's API reference are fed through them in `tests/graph_documented.rs`.

use serde::{Deserialize, Deserializer};

/// One page of an OData list.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// `"value": null` reads as an empty page, as a missing `value` does.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorGroup {
    pub id: Option<String>,
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
    pub id: Option<String>,
    pub machine_name: Option<String>,
    pub external_ip: Option<String>,
    pub status: Option<String>,
    pub version: Option<String>,
}

/// An application as a list shows it (`id`, `displayName`), or as a `$select` read shows it
/// (only what was selected).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: Option<String>,
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
    /// The portal's "Translate URLs in headers" (onPremisesPublishing resource type).
    pub is_translate_host_header_enabled: Option<bool>,
    /// Private Access and other apps share the connectors but are no App Proxy web apps.
    pub application_type: Option<String>,
    pub is_on_prem_publishing_enabled: Option<bool>,
    /// `passthru` | `aadPreAuthentication`.
    pub external_authentication_type: Option<String>,
    pub single_sign_on_settings: Option<SingleSignOnSettings>,
    /// The custom domain's certificate; `null` on the default domain (msappproxy.net). A value
    /// that is not the documented object is ignored rather than failing the app's whole read.
    #[serde(default, deserialize_with = "object_or_none")]
    pub verified_custom_domain_certificates_metadata:
        Option<VerifiedCustomDomainCertificatesMetadata>,
}

/// `onPremisesPublishing.verifiedCustomDomainCertificatesMetadata` (Graph beta,
/// resources/verifiedcustomdomaincertificatesmetadata.md): five properties, the dates
/// DateTimeOffset strings; read by `inventory::CustomDomainCertificate`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedCustomDomainCertificatesMetadata {
    pub subject_name: Option<String>,
    pub issuer_name: Option<String>,
    pub thumbprint: Option<String>,
    pub issue_date: Option<String>,
    pub expiry_date: Option<String>,
}

/// `T` when the value reads as one, `None` otherwise (`null`, or a shape Graph does not
/// document): a property only some apps have must not fail the read of the rest.
fn object_or_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// One of a Private Access app's segments (Graph beta, resources/ipapplicationsegment.md),
/// read from `GET /applications/{id}/onPremisesPublishing/segmentsConfiguration/
/// microsoft.graph.ipSegmentConfiguration/applicationSegments`. `destinationHost` is "the IP
/// address, IP range, or FQDN of the applicationSegment, with or without wildcards";
/// `destinationType` one of `ipAddress`, `ipRange`, `ipRangeCidr`, `fqdn`, `dnsSuffix`,
/// `unknownFutureValue`; `ports` a string collection, each `"445-445"` in Microsoft's examples;
/// `protocol` `tcp`, `udp` or `unknownFutureValue`. The deprecated `port` ("DO NOT USE"; the
/// list example has the placeholder string `"Integer"` there) is not read. A property of
/// another shape than documented reads as missing, so one odd segment never fails a refresh.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpApplicationSegment {
    #[serde(default, deserialize_with = "object_or_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub destination_host: Option<String>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub destination_type: Option<String>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub ports: Option<Vec<String>>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub protocol: Option<String>,
}

/// One of a wildcard web app's segments (Graph beta, resources/webapplicationsegment.md: "the
/// segment configurations that are allowed for an on-premises wildcard application"), read
/// from `GET /applications/{id}/onPremisesPublishing/segmentsConfiguration/
/// microsoft.graph.webSegmentConfiguration/applicationSegments`
/// (websegmentconfiguration-list-applicationsegments.md). `internalUrl`, `externalUrl` and
/// `alternateUrl` are strings; Microsoft's example list answers `"internalUrl":
/// "https://contoso.com/"` and `"alternateUrl": ""`. A property of another shape than
/// documented reads as missing, so one odd segment never fails a refresh.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebApplicationSegment {
    #[serde(default, deserialize_with = "object_or_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub internal_url: Option<String>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub external_url: Option<String>,
    #[serde(default, deserialize_with = "object_or_none")]
    pub alternate_url: Option<String>,
}

/// `onPremisesPublishing.singleSignOnSettings`. Graph's resource page writes its keys in
/// camelCase, Microsoft's example answer (connectorGroup: list applications) in PascalCase:
/// both are read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SingleSignOnSettings {
    /// `onPremisesKerberos` for Kerberos constrained delegation; also `none`, `saml`, ...
    #[serde(alias = "SingleSignOnMode")]
    pub single_sign_on_mode: Option<String>,
    #[serde(alias = "KerberosSignOnSettings")]
    pub kerberos_sign_on_settings: Option<KerberosSignOnSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KerberosSignOnSettings {
    #[serde(alias = "KerberosServicePrincipalName")]
    pub kerberos_service_principal_name: Option<String>,
}

impl SingleSignOnSettings {
    /// The backend's SPN when the app signs users in with Kerberos constrained delegation.
    pub fn kerberos_spn(&self) -> Option<String> {
        let kerberos = self
            .single_sign_on_mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("onPremisesKerberos"));
        let spn = self
            .kerberos_sign_on_settings
            .as_ref()?
            .kerberos_service_principal_name
            .as_deref()?
            .trim();
        (kerberos && !spn.is_empty()).then(|| spn.to_string())
    }
}

/// A `POST /$batch` answer: one inner answer per request, in any order.
#[derive(Debug, Deserialize)]
pub struct BatchResponse {
    pub responses: Vec<BatchItem>,
}

#[derive(Debug, Deserialize)]
pub struct BatchItem {
    pub id: Option<String>,
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: std::collections::HashMap<String, serde_json::Value>,
    /// A JSON object when the inner answer is JSON; otherwise a base64 string.
    #[serde(default)]
    pub body: serde_json::Value,
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
    fn kerberos_sso_settings_are_read_in_camel_and_pascal_case() {
        let camel: OnPremisesPublishing = serde_json::from_str(
            r#"{"singleSignOnSettings":{"singleSignOnMode":"onPremisesKerberos","kerberosSignOnSettings":{"kerberosServicePrincipalName":"http/intranet.corp.example"}}}"#,
        )
        .unwrap();
        let pascal: OnPremisesPublishing = serde_json::from_str(
            r#"{"singleSignOnSettings":{"SingleSignOnMode":"OnPremisesKerberos","KerberosSignOnSettings":{"KerberosServicePrincipalName":"http/intranet.corp.example"}}}"#,
        )
        .unwrap();
        for p in [camel, pascal] {
            let sso = p.single_sign_on_settings.unwrap();
            assert_eq!(
                sso.kerberos_spn().as_deref(),
                Some("http/intranet.corp.example")
            );
        }
        let saml: SingleSignOnSettings = serde_json::from_str(
            r#"{"singleSignOnMode":"saml","kerberosSignOnSettings":{"kerberosServicePrincipalName":"http/x"}}"#,
        )
        .unwrap();
        assert_eq!(saml.kerberos_spn(), None, "only Kerberos mode delegates");
    }

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
    fn any_property_may_be_null_and_a_null_list_is_empty() {
        let page: Page<Connector> = serde_json::from_str(
            r#"{"value":[{"id":null,"machineName":null,"externalIp":null,"status":null,"version":null}]}"#,
        )
        .unwrap();
        assert_eq!(page.value[0].id, None);
        let empty: Page<Application> = serde_json::from_str(r#"{"value":null}"#).unwrap();
        assert!(empty.value.is_empty());
        let app: Application = serde_json::from_str(
            r#"{"onPremisesPublishing":{"internalUrl":null,"applicationType":null,"isOnPremPublishingEnabled":null}}"#,
        )
        .unwrap();
        assert_eq!(app.id, None, "$select=onPremisesPublishing returns no id");
        assert_eq!(app.on_premises_publishing.unwrap().internal_url, None);
    }

    /// Apps on the default domain have `null` (onpremisespublishing.md); an app without the
    /// property, or with a shape Graph does not document, loads all the same.
    #[test]
    fn custom_domain_certificate_metadata_null_absent_or_odd_never_fails_the_app() {
        for metadata in ["null", "\"text\"", "[1,2]", "{\"thumbprint\":7}"] {
            let p: OnPremisesPublishing = serde_json::from_str(&format!(
                r#"{{"internalUrl":"https://a/","verifiedCustomDomainCertificatesMetadata":{metadata}}}"#
            ))
            .unwrap_or_else(|e| panic!("{metadata}: {e}"));
            assert!(
                p.verified_custom_domain_certificates_metadata.is_none(),
                "{metadata}"
            );
            assert_eq!(p.internal_url.as_deref(), Some("https://a/"));
        }
        let p: OnPremisesPublishing =
            serde_json::from_str(r#"{"internalUrl":"https://a/"}"#).unwrap();
        assert!(p.verified_custom_domain_certificates_metadata.is_none());
        let p: OnPremisesPublishing = serde_json::from_str(
            r#"{"verifiedCustomDomainCertificatesMetadata":{"thumbprint":"AB","expiryDate":"2027-01-01T00:00:00Z","newThing":1}}"#,
        )
        .unwrap();
        let m = p.verified_custom_domain_certificates_metadata.unwrap();
        assert_eq!(m.expiry_date.as_deref(), Some("2027-01-01T00:00:00Z"));
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

/// Microsoft Graph's own example answers, from its API reference and concept pages, through the
/// parser. `tests/graph_server/fixtures/SOURCES.md` names the page and commit of each.
#[cfg(test)]
mod documented {
    use super::*;
    use crate::inventory::Publishing;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/graph_server/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Every example has a test below: a new fixture without one fails here.
    const READ: [&str; 23] = [
        "webapplicationsegment-list.json",
        "webapplicationsegment-get.json",
        "ipapplicationsegment-list.json",
        "ipapplicationsegment-get.json",
        "ipapplicationsegment-get-expand-application.json",
        "ipapplicationsegment-create-response.json",
        "connectorgroup-list.json",
        "connectorgroup-get.json",
        "connectorgroup-create-tutorial.json",
        "connector-list.json",
        "connector-get.json",
        "connector-list-tutorial.json",
        "connector-list-memberof.json",
        "connectorgroup-list-members.json",
        "connectorgroup-list-applications.json",
        "application-get.json",
        "application-get-select-by-appid-v1.json",
        "application-onpremisespublishing-patch-request-tutorial.json",
        "json-batching-request.json",
        "json-batching-dependson-request.json",
        "json-batching-response.json",
        "json-batching-response-legacy.json",
        "throttling-429-response.json",
    ];

    #[test]
    fn every_documented_example_is_read_by_a_test() {
        let dir = format!("{}/tests/graph_server/fixtures", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                assert!(READ.contains(&name.as_str()), "{name} is read by no test");
            }
        }
    }

    #[test]
    fn connector_group_examples_parse_and_a_placeholder_type_is_skipped() {
        let page: Page<ConnectorGroup> = parse("connectorgroup-list.json");
        let group = &page.value[0];
        assert_eq!(group.id.as_deref(), Some("id-value"));
        assert_eq!(group.is_default, Some(true));
        assert_eq!(group.region.as_deref(), Some("region-value"));
        assert!(!group.is_application_proxy(), "connectorGroupType-value");
        let one: ConnectorGroup = parse("connectorgroup-get.json");
        assert_eq!(one.is_default, Some(false));
        let created: ConnectorGroup = parse("connectorgroup-create-tutorial.json");
        assert!(created.is_application_proxy());
        assert_eq!(created.region.as_deref(), Some("eur"));
        let member_of: Page<ConnectorGroup> = parse("connector-list-memberof.json");
        assert_eq!(member_of.value.len(), 1);
    }

    #[test]
    fn connector_examples_parse_without_a_version() {
        for name in [
            "connector-list.json",
            "connectorgroup-list-members.json",
            "connector-list-tutorial.json",
        ] {
            let page: Page<Connector> = parse(name);
            assert!(!page.value.is_empty(), "{name}");
            assert!(page.value.iter().all(|c| c.version.is_none()), "{name}");
            assert_eq!(page.next_link, None, "{name}");
        }
        let tutorial: Page<Connector> = parse("connector-list-tutorial.json");
        assert_eq!(
            tutorial.value[1].machine_name.as_deref(),
            Some("connectorB.contoso.com")
        );
        assert_eq!(tutorial.value[1].status.as_deref(), Some("active"));
        let one: Connector = parse("connector-get.json");
        assert_eq!(one.status.as_deref(), Some("status-value"));
    }

    #[test]
    fn a_groups_application_list_carries_publishing_and_no_name() {
        let page: Page<Application> = parse("connectorgroup-list-applications.json");
        let app = &page.value[0];
        assert_eq!(app.id.as_deref(), Some("id-value"));
        assert_eq!(app.display_name, None);
        let p = app.on_premises_publishing.as_ref().unwrap();
        assert_eq!(p.internal_url.as_deref(), Some("internalUrl-value"));
        assert_eq!(p.application_type.as_deref(), Some("applicationType-value"));
        // The custom domain's certificate, every property a placeholder: kept, with no expiry.
        let m = p
            .verified_custom_domain_certificates_metadata
            .as_ref()
            .unwrap();
        assert_eq!(m.thumbprint.as_deref(), Some("thumbprint-value"));
        assert_eq!(m.subject_name.as_deref(), Some("subjectName-value"));
        assert_eq!(m.issuer_name.as_deref(), Some("issuerName-value"));
        assert_eq!(m.issue_date.as_deref(), Some("datetime-value"));
        let certificate = crate::inventory::CustomDomainCertificate::from_graph(Some(m)).unwrap();
        assert_eq!(
            certificate.expires_at, None,
            "\"datetime-value\" is no date"
        );
        assert_eq!(certificate.sha1_thumbprint(), None);
        assert_eq!(
            Publishing::of(Some(p)),
            Publishing::WebApp,
            "an applicationType Graph has not documented is ignored"
        );
    }

    #[test]
    fn application_examples_parse_with_and_without_select() {
        let full: Application = parse("application-get.json");
        assert_eq!(
            full.display_name.as_deref(),
            Some("Application Display name")
        );
        assert!(full.on_premises_publishing.is_none());
        let selected: Application = parse("application-get-select-by-appid-v1.json");
        assert_eq!(selected.display_name.as_deref(), Some("PostmanWeb"));
        let patch: Application =
            parse("application-onpremisespublishing-patch-request-tutorial.json");
        let p = patch.on_premises_publishing.unwrap();
        assert_eq!(
            p.external_authentication_type.as_deref(),
            Some("aadPreAuthentication")
        );
        assert_eq!(p.is_on_prem_publishing_enabled, Some(true));
        assert_eq!(Publishing::of(Some(&p)), Publishing::WebApp);
    }

    #[test]
    fn batch_examples_parse_with_every_answer_by_id() {
        let answer: BatchResponse = parse("json-batching-response.json");
        let ids: Vec<_> = answer.responses.iter().map(|r| r.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("2"), Some("3"), Some("4"), Some("5")]);
        let statuses: Vec<_> = answer.responses.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [Some(200), Some(403), Some(403), Some(405), Some(200)]
        );
        assert!(answer.responses.iter().all(|r| !r.headers.is_empty()));
        let denied: ErrorBody = serde_json::from_value(answer.responses[2].body.clone()).unwrap();
        assert_eq!(denied.error.code, "Authorization_RequestDenied");
        // The older page: answers out of order, some without headers or body, a null body.
        let legacy: BatchResponse = parse("json-batching-response-legacy.json");
        let ids: Vec<_> = legacy.responses.iter().map(|r| r.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("3"), Some("5"), Some("2"), Some("4")]);
        assert!(legacy.responses[0].body.is_null());
        // The requests, as the page sends them, have what the client sends too.
        for name in [
            "json-batching-request.json",
            "json-batching-dependson-request.json",
        ] {
            let request: serde_json::Value = parse(name);
            for r in request["requests"].as_array().unwrap() {
                assert!(r["id"].is_string() && r["method"].is_string() && r["url"].is_string());
            }
        }
    }

    #[test]
    fn the_throttling_example_is_a_graph_error_body() {
        let body: ErrorBody = parse("throttling-429-response.json");
        assert_eq!(body.error.code, "TooManyRequests");
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
            let _ = serde_json::from_str::<BatchResponse>(&text);
            let _ = serde_json::from_str::<ErrorBody>(&text);
            let _ = serde_json::from_str::<TokenResponse>(&text);
            // Whatever JSON stands where the custom domain's certificate goes, the app loads.
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
                let app = serde_json::json!({"internalUrl": "https://a/", "verifiedCustomDomainCertificatesMetadata": value});
                let read = serde_json::from_value::<OnPremisesPublishing>(app);
                prop_assert!(read.is_ok_and(|p| p.internal_url.as_deref() == Some("https://a/")));
            }
            let truncated = PAGE.get(..cut).unwrap_or(PAGE);
            prop_assert!(serde_json::from_str::<Page<Connector>>(truncated).is_err() || cut == PAGE.len());
        }

        /// Any value where the custom domain's certificate goes (the documented object with any
        /// strings, wrong types, no object at all) loads the app; the object with a thumbprint
        /// is a certificate, with an expiry exactly when its date is one.
        #[test]
        fn any_custom_domain_certificate_metadata_loads_the_app(
            thumbprint in "\\PC{0,50}",
            expiry in prop_oneof!["\\PC{0,30}", "20[0-9]{2}-(0[1-9]|1[0-2])-[0-2][0-9]T[01][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,7})?Z"],
            number in any::<i64>(),
            shape in 0u8..4,
        ) {
            let value = match shape {
                0 => serde_json::json!({"thumbprint": thumbprint, "expiryDate": expiry}),
                1 => serde_json::json!({"thumbprint": number, "expiryDate": expiry}),
                2 => serde_json::json!(expiry),
                _ => serde_json::json!([number, thumbprint]),
            };
            let app = serde_json::json!({"internalUrl": "https://a/", "verifiedCustomDomainCertificatesMetadata": value});
            let read = serde_json::from_value::<OnPremisesPublishing>(app);
            prop_assert!(read.is_ok(), "{read:?}");
            let p = read.unwrap();
            let certificate = crate::inventory::CustomDomainCertificate::from_graph(
                p.verified_custom_domain_certificates_metadata.as_ref(),
            );
            if shape == 0 && !thumbprint.trim().is_empty() {
                let c = certificate.unwrap();
                let is_date = time::OffsetDateTime::parse(expiry.trim(), &time::format_description::well_known::Rfc3339).is_ok();
                prop_assert_eq!(c.expires_at.is_some(), is_date);
            } else if shape != 0 {
                prop_assert!(certificate.is_none());
            }
        }
    }
}

/// Microsoft's example answers of a Private Access app's segments, through the parser
/// (`tests/graph_server/fixtures/SOURCES.md` names the pages).
#[cfg(test)]
mod documented_segments {
    use super::*;
    use crate::inventory::Publishing;

    fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!(
            "{}/tests/graph_server/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn segment_examples_parse_with_their_ports_as_ranges_and_a_placeholder_port() {
        // The list example is all placeholders, the deprecated `port` the string "Integer":
        // it is not read, so the segment still loads.
        let page: Page<IpApplicationSegment> = parse("ipapplicationsegment-list.json");
        assert_eq!(page.value.len(), 1);
        assert_eq!(page.value[0].destination_host.as_deref(), Some("String"));
        assert_eq!(
            page.value[0].ports.as_deref(),
            Some(&["String".to_string()][..])
        );
        let one: IpApplicationSegment = parse("ipapplicationsegment-get.json");
        assert_eq!(
            one.destination_host.as_deref(),
            Some("test-check-ch.contoso.com")
        );
        assert_eq!(one.destination_type.as_deref(), Some("fqdn"));
        assert_eq!(one.ports.as_deref(), Some(&["20-20".to_string()][..]));
        assert_eq!(one.protocol.as_deref(), Some("tcp"));
        let udp: IpApplicationSegment = parse("ipapplicationsegment-get-expand-application.json");
        assert_eq!(udp.protocol.as_deref(), Some("udp"));
        let created: IpApplicationSegment = parse("ipapplicationsegment-create-response.json");
        assert_eq!(
            created.ports.as_deref(),
            Some(&["445-445".to_string(), "3389-3389".to_string()][..])
        );
    }

    #[test]
    fn web_segment_examples_parse_with_concrete_internal_urls_and_an_empty_alternate_url() {
        let page: Page<WebApplicationSegment> = parse("webapplicationsegment-list.json");
        let internal: Vec<_> = page
            .value
            .iter()
            .map(|s| s.internal_url.as_deref())
            .collect();
        assert_eq!(
            internal,
            [Some("https://contoso.com/"), Some("https://contoso.co/")]
        );
        assert_eq!(
            page.value[1].external_url.as_deref(),
            Some("https://channel2.contoso-proxy.contoso.com/")
        );
        assert_eq!(page.value[0].alternate_url.as_deref(), Some(""));
        assert!(page.next_link.is_none());
        let one: WebApplicationSegment = parse("webapplicationsegment-get.json");
        assert_eq!(
            one.id.as_deref(),
            Some("209efffb-0777-42b0-a65c-4e3ddb1ab3c0")
        );
        assert_eq!(one.internal_url.as_deref(), Some("https://contoso.com/"));
        let odd: WebApplicationSegment =
            serde_json::from_str(r#"{"internalUrl": 443, "externalUrl": null}"#).unwrap();
        assert_eq!((odd.internal_url, odd.external_url), (None, None));
    }

    #[test]
    fn the_expanded_segments_application_is_a_private_access_app_in_pascal_case() {
        // Example 2 of ipapplicationsegment-get: "applicationType": "NonWebApp".
        let answer: serde_json::Value = parse("ipapplicationsegment-get-expand-application.json");
        let app: Application = serde_json::from_value(answer["application"].clone()).unwrap();
        let p = app.on_premises_publishing.unwrap();
        assert!(matches!(
            Publishing::of(Some(&p)),
            Publishing::NotWebApp { .. }
        ));
        assert!(crate::inventory::is_private_access(&p));
    }

    #[test]
    fn a_segment_of_another_shape_than_documented_loads_with_what_it_has() {
        let odd: IpApplicationSegment = serde_json::from_str(
            r#"{"destinationHost": "db.corp.example", "ports": [22, "80"], "protocol": 6, "extra": {}}"#,
        )
        .unwrap();
        assert_eq!(odd.destination_host.as_deref(), Some("db.corp.example"));
        assert_eq!(odd.ports, None);
        assert_eq!(odd.protocol, None);
    }
}
