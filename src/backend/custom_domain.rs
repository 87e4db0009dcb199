//! Step 10's check of a custom domain's certificate: does the external URL present, to this
//! connector host, the certificate uploaded to App Proxy for the app (Graph's
//! `verifiedCustomDomainCertificatesMetadata`)? The SHA-1 thumbprint of the leaf that the
//! external URL's own TLS handshake presented (the request step 10 makes anyway, no second
//! handshake) is compared with Graph's, as hex without regard to letter case.
//!
//! A mismatch fails step 10 naming both certificates: users are sent somewhere that is not
//! App Proxy with that certificate (the custom domain's DNS CNAME points elsewhere, or a new
//! certificate was installed somewhere but not uploaded to the app). What cannot show it is not
//! evaluated, never passed: no metadata, a thumbprint in Graph that is no SHA-1 thumbprint, a
//! plain-http external URL, a handshake not reached, a host that resolves here to an internal
//! address (split-brain DNS: this host never reaches App Proxy by that name), and a different
//! certificate from a different issuer through the connector's forward proxy, which is what a
//! proxy inspecting TLS to that host presents (users outside get App Proxy's).

use std::sync::Arc;

use crate::inventory::CustomDomainCertificate;
use crate::net::tls::PresentedCertificate;

/// An app's custom-domain certificate as Graph describes it, and what its check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDomain {
    pub expected: Arc<CustomDomainCertificate>,
    pub check: CertificateCheck,
}

/// What the comparison found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateCheck {
    /// The external URL presents the uploaded certificate.
    Matches,
    /// It presents another one; the evidence names both.
    Mismatch { evidence: String },
    /// Nothing here can show it; why.
    NotEvaluated { reason: String },
}

/// How the external URL's request went, as far as the check needs it.
#[derive(Debug, Clone, Copy)]
pub struct Handshake<'a> {
    pub https: bool,
    /// The leaf the handshake presented; `None` when it was not reached or did not finish.
    pub presented: Option<&'a PresentedCertificate>,
    /// Why there is no handshake, when the request failed before or during it.
    pub failure: Option<&'a str>,
    /// The request went through the connector's forward proxy.
    pub through_proxy: bool,
}

impl CertificateCheck {
    /// Compares the certificate Graph describes (`None`: the app has none) with what the
    /// handshake presented.
    pub fn of(
        expected: Option<&CustomDomainCertificate>,
        handshake: Handshake<'_>,
    ) -> CertificateCheck {
        let not_evaluated = |reason: String| CertificateCheck::NotEvaluated { reason };
        let Some(expected) = expected else {
            return not_evaluated(
                "Graph describes no custom-domain certificate for this app (on the default domain, or a static app)".into(),
            );
        };
        let Some(wanted) = expected.sha1_thumbprint() else {
            return not_evaluated(format!(
                "Graph's thumbprint {:?} is not a SHA-1 thumbprint (40 hex digits)",
                expected.thumbprint
            ));
        };
        if !handshake.https {
            return not_evaluated(
                "the external URL is plain http: no certificate is presented".into(),
            );
        }
        let Some(presented) = handshake.presented else {
            return not_evaluated(match handshake.failure {
                Some(failure) => {
                    format!("the TLS handshake with the external URL was not completed: {failure}")
                }
                None => "the TLS handshake with the external URL was not reached".into(),
            });
        };
        if presented.thumbprint.eq_ignore_ascii_case(&wanted) {
            return CertificateCheck::Matches;
        }
        let described = format!(
            "the external URL presents the certificate {} (subject {}), not the custom-domain certificate uploaded to App Proxy, {wanted} (subject {})",
            presented.thumbprint,
            shown(&presented.subject),
            shown(&expected.subject)
        );
        if handshake.through_proxy && !same_issuer(expected, presented) {
            return not_evaluated(format!(
                "{described}, and from another issuer ({}), through the connector's forward proxy: what a proxy inspecting TLS to this host presents, so what users get cannot be judged from here",
                presented.issuer_common_name.as_deref().unwrap_or("no CN")
            ));
        }
        CertificateCheck::Mismatch {
            evidence: described,
        }
    }
}

impl CustomDomain {
    /// What the page and `diagnose` say of it beside step 10.
    pub fn note(&self) -> String {
        let expected = &self.expected;
        let expiry = match expected.expiry_date.as_str() {
            "" => String::new(),
            date => format!(", expires {date}"),
        };
        match &self.check {
            CertificateCheck::Matches => format!(
                "it presents the custom-domain certificate uploaded to App Proxy ({}, subject {}{expiry})",
                expected.thumbprint,
                shown(&expected.subject)
            ),
            CertificateCheck::Mismatch { evidence } => evidence.clone(),
            CertificateCheck::NotEvaluated { reason } => format!(
                "the custom-domain certificate ({}{expiry}) is not checked: {reason}",
                expected.thumbprint
            ),
        }
    }
}

/// The remedy of a mismatch.
pub const REMEDY: &str = "Make the custom domain's DNS name a CNAME of the app's msappproxy.net name, and upload the certificate the domain serves (PFX with its private key) to the app's Application proxy settings; then check what the external URL presents from outside.";

fn shown(subject: &str) -> &str {
    if subject.is_empty() {
        "unknown"
    } else {
        subject
    }
}

/// Whether the presented certificate's issuer has the CN of Graph's `issuerName`; unknown
/// (either has no CN) counts as the same, so only a plainly different issuer is excused.
fn same_issuer(expected: &CustomDomainCertificate, presented: &PresentedCertificate) -> bool {
    let wanted = common_name(&expected.issuer);
    match (wanted, presented.issuer_common_name.as_deref()) {
        (Some(wanted), Some(got)) => wanted.eq_ignore_ascii_case(got.trim()),
        _ => true,
    }
}

/// The `CN=` part of a distinguished name as Windows writes it (`CN=..., O=..., C=US`).
fn common_name(name: &str) -> Option<&str> {
    name.split([',', ';'])
        .map(str::trim)
        .find_map(|part| {
            let (key, value) = part.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("CN")
                .then(|| value.trim().trim_matches('"'))
        })
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "3EAB12CD3EAB12CD3EAB12CD3EAB12CD3EAB12CD";

    fn uploaded(thumbprint: &str) -> CustomDomainCertificate {
        CustomDomainCertificate {
            subject: "CN=apps.contoso.com".into(),
            issuer: "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US".into(),
            thumbprint: thumbprint.into(),
            expiry_date: "2027-03-01T00:00:00Z".into(),
            expires_at: Some(1_803_859_200),
        }
    }

    fn presented(thumbprint: &str, issuer: &str) -> PresentedCertificate {
        PresentedCertificate {
            thumbprint: thumbprint.into(),
            subject: "CN=apps.contoso.com".into(),
            issuer_common_name: Some(issuer.into()),
        }
    }

    fn handshake(presented: Option<&PresentedCertificate>) -> Handshake<'_> {
        Handshake {
            https: true,
            presented,
            failure: None,
            through_proxy: false,
        }
    }

    #[test]
    fn the_same_thumbprint_in_another_letter_case_matches() {
        let seen = presented(
            &SHA1.to_lowercase(),
            "DigiCert Global G2 TLS RSA SHA256 2020 CA1",
        );
        let check = CertificateCheck::of(Some(&uploaded(SHA1)), handshake(Some(&seen)));
        assert_eq!(check, CertificateCheck::Matches);
        let note = CustomDomain {
            expected: Arc::new(uploaded(SHA1)),
            check,
        }
        .note();
        assert!(note.contains("expires 2027-03-01T00:00:00Z"), "{note}");
    }

    #[test]
    fn another_certificate_fails_naming_both_thumbprints_and_subjects() {
        let mut seen = presented(
            "00112233445566778899aabbccddeeff00112233",
            "DigiCert Global G2 TLS RSA SHA256 2020 CA1",
        );
        seen.subject = "CN=old.contoso.com".into();
        let CertificateCheck::Mismatch { evidence } =
            CertificateCheck::of(Some(&uploaded(SHA1)), handshake(Some(&seen)))
        else {
            panic!()
        };
        for part in [
            "00112233445566778899aabbccddeeff00112233",
            "CN=old.contoso.com",
            &SHA1.to_lowercase(),
            "CN=apps.contoso.com",
        ] {
            assert!(evidence.contains(part), "{part} in {evidence}");
        }
    }

    #[test]
    fn what_cannot_show_the_certificate_is_not_evaluated_and_says_why() {
        let seen = presented(SHA1, "x");
        let cases = [
            (None, handshake(Some(&seen)), "no custom-domain certificate"),
            (
                Some(uploaded("thumbprint-value")),
                handshake(Some(&seen)),
                "not a SHA-1 thumbprint",
            ),
            (
                Some(uploaded(SHA1)),
                Handshake {
                    https: false,
                    ..handshake(None)
                },
                "plain http",
            ),
            (Some(uploaded(SHA1)), handshake(None), "not reached"),
            (
                Some(uploaded(SHA1)),
                Handshake {
                    failure: Some("connection refused"),
                    ..handshake(None)
                },
                "not completed: connection refused",
            ),
        ];
        for (expected, handshake, why) in cases {
            match CertificateCheck::of(expected.as_ref(), handshake) {
                CertificateCheck::NotEvaluated { reason } => {
                    assert!(reason.contains(why), "{why}: {reason}")
                }
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    /// A proxy that inspects TLS to the custom domain presents its own certificate, from its
    /// own CA: users outside get App Proxy's, so no failure; the same issuer is no excuse.
    #[test]
    fn through_the_forward_proxy_only_another_issuers_certificate_is_excused() {
        let other = "00112233445566778899aabbccddeeff00112233";
        let through = |issuer: &str| {
            let seen = presented(other, issuer);
            CertificateCheck::of(
                Some(&uploaded(SHA1)),
                Handshake {
                    through_proxy: true,
                    ..handshake(Some(&seen))
                },
            )
        };
        assert!(matches!(
            through("Contoso Inspection Root"),
            CertificateCheck::NotEvaluated { .. }
        ));
        assert!(matches!(
            through("digicert global g2 tls rsa sha256 2020 ca1"),
            CertificateCheck::Mismatch { .. }
        ));
    }

    #[test]
    fn a_windows_distinguished_names_common_name_is_found() {
        assert_eq!(common_name("CN=R11, O=Let's Encrypt, C=US"), Some("R11"));
        assert_eq!(common_name("O=x; CN = \"Name\""), Some("Name"));
        assert_eq!(common_name("O=No CN"), None);
    }
}
