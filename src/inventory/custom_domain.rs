//! The certificate App Proxy presents for an app published on a custom domain, as Microsoft
//! Graph describes it in `onPremisesPublishing.verifiedCustomDomainCertificatesMetadata`
//! (Graph beta reference, resources/verifiedcustomdomaincertificatesmetadata.md: `subjectName`,
//! `issuerName`, `thumbprint` as strings, `issueDate` and `expiryDate` as DateTimeOffset, "ISO
//! 8601 format and is always in UTC time"; onpremisespublishing.md: "`null` when using the
//! default domain"). Its expiry is exported per app
//! (`appproxy_custom_domain_certificate_expiry_timestamp_seconds`); step 10 compares its
//! thumbprint with the one the external URL presents (`backend::custom_domain`).

use serde::Serialize;

use super::graph::VerifiedCustomDomainCertificatesMetadata;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomDomainCertificate {
    /// `subjectName`, as Graph gives it.
    pub subject: String,
    /// `issuerName`, as Graph gives it.
    pub issuer: String,
    /// `thumbprint`, as Graph gives it (a SHA-1 thumbprint in hex, in Graph's letter case).
    pub thumbprint: String,
    /// `expiryDate` as Graph gives it.
    pub expiry_date: String,
    /// `expiryDate` in Unix seconds; `None` when it is not an ISO 8601 date (Microsoft's own
    /// example answer has `"datetime-value"` there).
    pub expires_at: Option<i64>,
}

impl CustomDomainCertificate {
    /// From Graph's metadata; `None` for an app on the default domain (Graph's `null`, or an
    /// object with neither a thumbprint nor an expiry date, which says nothing).
    pub fn from_graph(
        metadata: Option<&VerifiedCustomDomainCertificatesMetadata>,
    ) -> Option<CustomDomainCertificate> {
        let m = metadata?;
        let text = |value: &Option<String>| value.as_deref().unwrap_or_default().trim().to_string();
        let certificate = CustomDomainCertificate {
            subject: text(&m.subject_name),
            issuer: text(&m.issuer_name),
            thumbprint: text(&m.thumbprint),
            expiry_date: text(&m.expiry_date),
            expires_at: m.expiry_date.as_deref().and_then(unix_seconds),
        };
        (!certificate.thumbprint.is_empty() || !certificate.expiry_date.is_empty())
            .then_some(certificate)
    }

    /// The thumbprint as 40 lowercase hex digits, when Graph's is a SHA-1 thumbprint at all
    /// (spaces and colons between the bytes, as Windows' certificate dialog shows them, are
    /// dropped).
    pub fn sha1_thumbprint(&self) -> Option<String> {
        let hex: String = self
            .thumbprint
            .chars()
            .filter(|c| !matches!(c, ' ' | ':'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        (hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
    }
}

/// An ISO 8601 (RFC 3339) date-time in Unix seconds.
fn unix_seconds(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(json: &str) -> Option<CustomDomainCertificate> {
        let m: Option<VerifiedCustomDomainCertificatesMetadata> =
            serde_json::from_str(json).unwrap();
        CustomDomainCertificate::from_graph(m.as_ref())
    }

    #[test]
    fn graphs_utc_dates_with_or_without_fractions_are_read_as_unix_seconds() {
        for (date, unix) in [
            ("2014-01-01T00:00:00Z", 1_388_534_400),
            ("2027-03-01T12:30:00.0000000Z", 1_803_904_200),
            ("2027-03-01T13:30:00+01:00", 1_803_904_200),
        ] {
            let c = metadata(&format!(r#"{{"thumbprint":"AB","expiryDate":"{date}"}}"#)).unwrap();
            assert_eq!(c.expires_at, Some(unix), "{date}");
        }
    }

    #[test]
    fn a_placeholder_date_keeps_the_certificate_without_an_expiry() {
        let c =
            metadata(r#"{"thumbprint":"thumbprint-value","expiryDate":"datetime-value"}"#).unwrap();
        assert_eq!(c.expires_at, None);
        assert_eq!(c.expiry_date, "datetime-value");
        assert_eq!(c.sha1_thumbprint(), None, "not a SHA-1 thumbprint");
    }

    #[test]
    fn the_default_domains_null_or_an_empty_object_is_no_certificate() {
        assert_eq!(metadata("null"), None);
        assert_eq!(metadata("{}"), None);
        assert_eq!(
            metadata(r#"{"thumbprint":null,"expiryDate":null,"subjectName":"CN=x"}"#),
            None
        );
    }

    #[test]
    fn a_thumbprint_is_compared_as_hex_in_any_case_with_or_without_separators() {
        let c = metadata(
            r#"{"thumbprint":"3E:AB 12cd3eab12cd3eab12cd3eab12cd3eab12CD","expiryDate":"2027-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            c.sha1_thumbprint().as_deref(),
            Some("3eab12cd3eab12cd3eab12cd3eab12cd3eab12cd")
        );
    }
}
