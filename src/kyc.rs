//! KYCAID, the KYC provider Barong uses: its REST API (applicants, verifications)
//! and the integrity check of its callbacks. No storage and no HTTP serving here; the API layer
//! runs the jobs that use it.
//!
//! Personal data goes to KYCAID in request bodies only; nothing here logs a body.

use std::sync::OnceLock;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::config::Kyc;

/// Why a KYCAID call did not give an answer (the caller retries later or gives up; the
/// profile stays as it is).
#[derive(Debug, thiserror::Error)]
pub enum KycError {
    /// Connection refused, timeout, TLS failure.
    #[error("KYCAID unreachable: {0}")]
    Transport(String),
    /// KYCAID answered something that is not its JSON (a proxy error page, a 5xx).
    #[error("KYCAID answered HTTP {0} without a usable body")]
    BadAnswer(u16),
}

/// The applicant fields Barong sends (`type PERSON`).
pub struct Applicant<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub dob: Option<String>,
    pub residence_country: Option<&'a str>,
    pub email: &'a str,
    pub phone: Option<&'a str>,
}

/// What KYCAID made of an applicant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicantOutcome {
    /// Created; its id.
    Created(String),
    /// Refused (validation errors, bad token); KYCAID's error type, and an id if it gave one.
    Refused {
        kind: String,
        applicant_id: Option<String>,
    },
}

/// A verification as `GET /verifications/{id}` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub status: String,
    /// Each check by name (`document`, `facial`, `profile`, `address`, ...) with its decision.
    pub checks: Vec<(String, bool)>,
}

/// The KYCAID client: `BARONG_KYCAID_API_ENDPOINT`, `Authorization: Token <token>`.
pub struct Kycaid {
    endpoint: String,
    token: String,
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        crate::crypto::install_tls_provider();
        reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default()
    })
}

impl Kycaid {
    pub fn from_config(config: &Kyc) -> Self {
        Self {
            endpoint: config.kycaid_api_endpoint.trim_end_matches('/').to_owned(),
            token: config.kycaid_authorization_token.expose().to_owned(),
        }
    }

    /// `POST /applicants`. An answer carrying `error` or `errors` is a refusal (Barong then
    /// rejects the profile); an answer without usable JSON is a [`KycError`].
    pub async fn create_applicant(
        &self,
        applicant: &Applicant<'_>,
    ) -> Result<ApplicantOutcome, KycError> {
        let body = json!({
            "type": "PERSON",
            "first_name": applicant.first_name,
            "last_name": applicant.last_name,
            "dob": applicant.dob,
            "residence_country": applicant.residence_country,
            "email": applicant.email,
            "phone": applicant.phone,
        });
        let answer = self
            .send(
                http()
                    .post(format!("{}/applicants", self.endpoint))
                    .json(&body),
            )
            .await?;
        Ok(applicant_outcome(&answer))
    }

    /// `GET /verifications/{id}`.
    pub async fn verification(&self, id: &str) -> Result<Verification, KycError> {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let answer = self
            .send(http().get(format!("{}/verifications/{id}", self.endpoint)))
            .await?;
        Ok(parse_verification(&answer))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Map<String, Value>, KycError> {
        let response = request
            .header("authorization", format!("Token {}", self.token))
            .send()
            .await
            .map_err(|e| KycError::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        match response.json::<Value>().await {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(KycError::BadAnswer(status)),
        }
    }
}

fn applicant_outcome(answer: &Map<String, Value>) -> ApplicantOutcome {
    let id = answer
        .get("applicant_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let refused = ["error", "errors"]
        .iter()
        .any(|k| answer.get(*k).is_some_and(|v| !v.is_null()));
    match id {
        Some(id) if !refused => ApplicantOutcome::Created(id),
        applicant_id => ApplicantOutcome::Refused {
            kind: answer
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_owned(),
            applicant_id,
        },
    }
}

fn parse_verification(answer: &Map<String, Value>) -> Verification {
    let checks = answer
        .get("verifications")
        .and_then(Value::as_object)
        .map(|checks| {
            checks
                .iter()
                .map(|(name, decision)| {
                    let verified = decision.get("verified").and_then(Value::as_bool);
                    (name.clone(), verified == Some(true))
                })
                .collect()
        })
        .unwrap_or_default();
    Verification {
        status: answer
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        checks,
    }
}

/// The label decisions of a completed verification: each check names the label it
/// decides (`facial` decides `document` together with `document`, so a document is verified
/// only when both are), in KYCAID's order.
pub fn label_decisions(verification: &Verification) -> Vec<(String, bool)> {
    let mut decisions: Vec<(String, bool)> = Vec::new();
    for (name, verified) in &verification.checks {
        let key = if name == "facial" { "document" } else { name };
        match decisions.iter_mut().find(|(k, _)| k == key) {
            Some((_, all)) => *all &= *verified,
            None => decisions.push((key.to_owned(), *verified)),
        }
    }
    decisions
}

/// KYCAID's callback signature: lowercase hex HMAC-SHA512, keyed with the API token, of the
/// base64 of the raw body (header `x-data-integrity`).
pub fn callback_signature(token: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA512, token.as_bytes());
    hex::encode(hmac::sign(&key, STANDARD.encode(body).as_bytes()).as_ref())
}

/// Whether `header` is the signature of `body` under `token`, compared in constant time. An
/// empty token verifies nothing (a callback cannot be trusted without a shared secret).
pub fn callback_is_authentic(token: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(given) = header.map(str::trim) else {
        return false;
    };
    if token.is_empty() {
        return false;
    }
    let expected = callback_signature(token, body);
    aws_lc_rs::constant_time::verify_slices_are_equal(
        expected.as_bytes(),
        given.to_ascii_lowercase().as_bytes(),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_kycaid_documentation_example() {
        let body = br#"{"request_id":"61a7dbcc012d9042e909cf006e7b412d6ba5","type":"VERIFICATION_STATUS_CHANGED","applicant_id":"4141cc1b18dba048470b2961cb4592f480fe","verification_id":"2cf795e713be1040e50b202164ee17bfdfbe","form_id":"58bed87600dd9944f02ba0c9cd8b32d6bd4c","verification_status":"pending"}"#;
        let token = "28c6f7cc0345a04eee0b535039b1c5a62547";
        let want = "f7681b097b77928fc031d614709976796057c306cf77fdd449bb414937bd87678d908d7efaa65e9b1dd65b9eeea2121ea75bd9007f44fe8fcd7c9ac6cdeeef0e";
        assert_eq!(callback_signature(token, body), want);
        assert!(callback_is_authentic(token, body, Some(want)));
        assert!(!callback_is_authentic(token, b"{}", Some(want)));
        assert!(!callback_is_authentic(token, body, None));
        assert!(!callback_is_authentic("", body, Some(want)));
    }

    #[test]
    fn facial_and_document_decide_the_document_label_together() {
        let v = Verification {
            status: "completed".into(),
            checks: vec![
                ("profile".into(), true),
                ("document".into(), true),
                ("facial".into(), false),
            ],
        };
        assert_eq!(
            label_decisions(&v),
            [("profile".to_owned(), true), ("document".to_owned(), false)]
        );
    }

    #[test]
    fn applicant_answers() {
        let ok = json!({"applicant_id": "a1"});
        let bad = json!({"type": "validation", "errors": [{"parameter": "dob"}]});
        let as_map = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            applicant_outcome(&as_map(ok)),
            ApplicantOutcome::Created("a1".into())
        );
        assert_eq!(
            applicant_outcome(&as_map(bad)),
            ApplicantOutcome::Refused {
                kind: "validation".into(),
                applicant_id: None
            }
        );
    }
}
