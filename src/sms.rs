//! Phone verification providers (`BARONG_PHONE_VERIFICATION`):
//! `mock` sends nothing and accepts any code (Barong's development provider), `twilio_sms` sends
//! the phone's code by SMS through Twilio's Messages API and compares it locally, `twilio_verify`
//! lets Twilio Verify send and check the code. Twilio is spoken over its real HTTP API; the base
//! URLs are settings (`BARONG_TWILIO_API_URL`, `BARONG_TWILIO_VERIFY_URL`) so tests run a fake.
//!
//! Phone numbers are personal data: nothing here logs one.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::config::{Config, PhoneVerification};

/// A Twilio failure, by the Twilio error codes Barong distinguishes (each maps to one key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// 21612: the number cannot be reached.
    #[error("twilio: number not reachable")]
    NotReachable,
    /// 21614: not a valid mobile number.
    #[error("twilio: number not valid")]
    NotValid,
    /// 21618: the message body is invalid.
    #[error("twilio: message content invalid")]
    ContentInvalid,
    /// 21610: the recipient unsubscribed.
    #[error("twilio: recipient unsubscribed")]
    Unsubscribed,
    /// Any other error code, a transport failure or an unreadable answer.
    #[error("twilio: unexpected failure")]
    Unexpected,
}

impl SmsError {
    /// Barong's key (status 422) for the failure.
    pub fn key(self) -> &'static str {
        match self {
            Self::NotReachable => "resource.phone.num_not_reachable",
            Self::NotValid => "resource.phone.num_not_valid",
            Self::ContentInvalid => "resource.phone.sms_content_invalid",
            Self::Unsubscribed => "resource.phone.unsubscribed_recipient",
            Self::Unexpected => "resource.phone.twilio_unexpected",
        }
    }

    fn from_code(code: i64) -> Self {
        match code {
            21612 => Self::NotReachable,
            21614 => Self::NotValid,
            21618 => Self::ContentInvalid,
            21610 => Self::Unsubscribed,
            _ => Self::Unexpected,
        }
    }
}

/// A failed Twilio call with the Twilio error code when it sent one.
#[derive(Debug)]
struct TwilioFailure {
    error: SmsError,
    code: Option<i64>,
}

impl TwilioFailure {
    fn unexpected() -> Self {
        Self {
            error: SmsError::Unexpected,
            code: None,
        }
    }
}

/// The configured provider.
#[derive(Debug)]
pub struct PhoneVerifier {
    mode: PhoneVerification,
    template: String,
    from: String,
    account_sid: String,
    auth_token: String,
    api_url: String,
    verify_url: String,
    app_name: String,
    /// `BARONG_TWILIO_SERVICE_SID`, or the Verify service created on first use when empty.
    service_sid: OnceCell<String>,
    http: reqwest::Client,
}

impl PhoneVerifier {
    /// The provider of `BARONG_PHONE_VERIFICATION` with its Twilio settings.
    pub fn new(config: &Config) -> Self {
        let service_sid = OnceCell::new();
        if !config.phone.twilio_service_sid.is_empty() {
            let _ = service_sid.set(config.phone.twilio_service_sid.clone());
        }
        Self {
            mode: config.phone.phone_verification,
            template: config.phone.sms_content_template.clone(),
            from: config.phone.twilio_phone_number.clone(),
            account_sid: config.phone.twilio_account_sid.clone(),
            auth_token: config.phone.twilio_auth_token.expose().to_owned(),
            api_url: config.phone.twilio_api_url.trim_end_matches('/').to_owned(),
            verify_url: config
                .phone
                .twilio_verify_url
                .trim_end_matches('/')
                .to_owned(),
            app_name: config.users.app_name.clone(),
            service_sid,
            http: {
                crate::crypto::install_tls_provider();
                reqwest::Client::builder()
            }
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        }
    }

    /// Sends `code` to `e164` (`+<digits>`) over `channel` (`sms` or `call`).
    pub async fn send_code(&self, e164: &str, code: &str, channel: &str) -> Result<(), SmsError> {
        match self.mode {
            PhoneVerification::Mock => Ok(()),
            PhoneVerification::TwilioSms => {
                let body = self.template.replace("{{code}}", code);
                let url = format!(
                    "{}/2010-04-01/Accounts/{}/Messages.json",
                    self.api_url, self.account_sid
                );
                let form = [("To", e164), ("From", self.from.as_str()), ("Body", &body)];
                self.post(&url, &form).await.map(drop).map_err(|f| f.error)
            }
            PhoneVerification::TwilioVerify => {
                let service = self.service().await.map_err(|f| f.error)?;
                let url = format!("{}/v2/Services/{service}/Verifications", self.verify_url);
                self.post(&url, &[("To", e164), ("Channel", channel)])
                    .await
                    .map(drop)
                    .map_err(|f| f.error)
            }
        }
    }

    /// Whether `code` verifies the phone whose stored code is `stored_code`.
    pub async fn check_code(
        &self,
        e164: &str,
        code: &str,
        stored_code: Option<&str>,
    ) -> Result<bool, SmsError> {
        match self.mode {
            PhoneVerification::Mock => Ok(true),
            PhoneVerification::TwilioSms => Ok(stored_code.is_some_and(|stored| {
                aws_lc_rs::constant_time::verify_slices_are_equal(
                    stored.as_bytes(),
                    code.as_bytes(),
                )
                .is_ok()
            })),
            PhoneVerification::TwilioVerify => {
                let service = self.service().await.map_err(|f| f.error)?;
                let url = format!(
                    "{}/v2/Services/{service}/VerificationCheck",
                    self.verify_url
                );
                match self.post(&url, &[("To", e164), ("Code", code)]).await {
                    Ok(answer) => {
                        Ok(answer.get("status").and_then(Value::as_str) == Some("approved"))
                    }
                    // 20404: no pending verification (expired, or already approved).
                    Err(TwilioFailure {
                        code: Some(20404), ..
                    }) => Ok(false),
                    Err(failure) => Err(failure.error),
                }
            }
        }
    }

    /// The Verify service: the configured SID, or one created (once) named `BARONG_APP_NAME`.
    async fn service(&self) -> Result<&str, TwilioFailure> {
        self.service_sid
            .get_or_try_init(|| async {
                let url = format!("{}/v2/Services", self.verify_url);
                let answer = self
                    .post(&url, &[("FriendlyName", self.app_name.as_str())])
                    .await?;
                answer
                    .get("sid")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or(TwilioFailure::unexpected())
            })
            .await
            .map(String::as_str)
    }

    /// One form POST with HTTP basic auth; a non-2xx answer is read as Twilio's error JSON
    /// (`{"code":21614,"message":...,"more_info":...,"status":400}`).
    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<Value, TwilioFailure> {
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(form)
            .send()
            .await
            .map_err(|error| {
                tracing::warn!(error = %error.without_url(), "Twilio unreachable");
                TwilioFailure::unexpected()
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let code = body.get("code").and_then(Value::as_i64);
        tracing::warn!(%status, code, "Twilio refused a request");
        Err(TwilioFailure {
            error: code.map_or(SmsError::Unexpected, SmsError::from_code),
            code,
        })
    }
}
