//! Captcha verification: reCAPTCHA v2 and GeeTest v3, checked server-side on the
//! endpoints listed in `captcha_protected_endpoints`. The providers' URLs are settings
//! (`BARONG_RECAPTCHA_VERIFY_URL`, `BARONG_GEETEST_API_URL`) so tests can point them at a fake.

use std::time::Duration;

use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::config::{CaptchaType, Config};

/// Why a captcha was refused; each maps to one of Barong's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaError {
    /// 400 `identity.captcha.required`.
    Required,
    /// 400 `identity.captcha.mandatory_fields` (GeeTest).
    MandatoryFields,
    /// 422 `identity.captcha.verification_failed`.
    VerificationFailed,
}

impl CaptchaError {
    pub fn key(self) -> &'static str {
        match self {
            Self::Required => "identity.captcha.required",
            Self::MandatoryFields => "identity.captcha.mandatory_fields",
            Self::VerificationFailed => "identity.captcha.verification_failed",
        }
    }
}

/// The configured captcha.
#[derive(Debug, Clone)]
pub struct Captcha {
    kind: CaptchaType,
    protected: Vec<String>,
    recaptcha_secret: String,
    recaptcha_url: String,
    geetest_id: String,
    geetest_key: String,
    geetest_url: String,
    http: reqwest::Client,
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

/// Ruby's `blank?`: null, empty or whitespace-only strings, empty objects and arrays.
fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(_)) => false,
    }
}

impl Captcha {
    pub fn from_config(config: &Config) -> Self {
        crate::crypto::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            kind: config.captcha.captcha,
            protected: config.barong_yml.captcha_protected_endpoints.clone(),
            recaptcha_secret: config.captcha.recaptcha_secret_key.expose().to_owned(),
            recaptcha_url: config.captcha.recaptcha_verify_url.clone(),
            geetest_id: config.captcha.geetest_id.clone(),
            geetest_key: config.captcha.geetest_key.expose().to_owned(),
            geetest_url: config
                .captcha
                .geetest_api_url
                .trim_end_matches('/')
                .to_owned(),
            http,
        }
    }

    /// Checks `response` (the `captcha_response` parameter) when `endpoint` is protected.
    pub async fn verify(
        &self,
        endpoint: &str,
        response: Option<&Value>,
    ) -> Result<(), CaptchaError> {
        if self.kind == CaptchaType::None || !self.protected.iter().any(|e| e == endpoint) {
            return Ok(());
        }
        if is_blank(response) {
            return Err(CaptchaError::Required);
        }
        let response = response.unwrap_or(&Value::Null);
        let valid = match self.kind {
            CaptchaType::Recaptcha => self.verify_recaptcha(response).await,
            _ => self.verify_geetest(response).await?,
        };
        if valid {
            Ok(())
        } else {
            Err(CaptchaError::VerificationFailed)
        }
    }

    async fn verify_recaptcha(&self, response: &Value) -> bool {
        let text = match response {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let result = self
            .http
            .post(&self.recaptcha_url)
            .form(&[
                ("secret", self.recaptcha_secret.as_str()),
                ("response", text.as_str()),
            ])
            .send()
            .await;
        let body: Option<Value> = match result {
            Ok(r) if r.status().is_success() => r.json().await.ok(),
            Ok(r) => {
                tracing::warn!(status = %r.status(), "reCAPTCHA verification answered an error");
                None
            }
            Err(error) => {
                tracing::warn!(%error, "reCAPTCHA verification failed");
                None
            }
        };
        body.and_then(|b| b.get("success").and_then(Value::as_bool))
            .unwrap_or(false)
    }

    async fn verify_geetest(&self, response: &Value) -> Result<bool, CaptchaError> {
        let field = |name: &str| response.get(name).and_then(Value::as_str);
        let (Some(challenge), Some(validate), Some(seccode)) = (
            field("geetest_challenge"),
            field("geetest_validate"),
            field("geetest_seccode"),
        ) else {
            return Err(CaptchaError::MandatoryFields);
        };
        if !crate::crypto::constant_time_eq(
            validate,
            &md5_hex(&format!("{}geetest{challenge}", self.geetest_key)),
        ) {
            return Ok(false);
        }
        let result = self
            .http
            .post(format!("{}/validate.php", self.geetest_url))
            .form(&[("seccode", seccode)])
            .send()
            .await;
        let body = match result {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            Ok(_) => return Ok(false),
            Err(error) => {
                tracing::warn!(%error, "GeeTest validation failed");
                return Ok(false);
            }
        };
        Ok(body.trim() == md5_hex(seccode))
    }

    /// `GET identity/users/register_geetest`: `{"gt","challenge"}`, or `""` on any failure.
    pub async fn register_geetest(&self) -> Value {
        let result = self
            .http
            .get(format!("{}/register.php", self.geetest_url))
            .query(&[("gt", self.geetest_id.as_str())])
            .send()
            .await;
        let challenge = match result {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        let challenge = challenge.trim();
        if challenge.len() != 32 {
            return json!("");
        }
        json!({
            "gt": self.geetest_id,
            "challenge": md5_hex(&format!("{challenge}{}", self.geetest_key)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_and_blank() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(is_blank(Some(&json!("  "))));
        assert!(is_blank(Some(&json!({}))));
        assert!(!is_blank(Some(&json!({"a": 1}))));
        assert!(is_blank(None));
    }
}
