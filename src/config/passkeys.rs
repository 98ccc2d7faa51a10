//! The passkey (WebAuthn) settings, `BARONG_PASSKEY_*`: read by the one settings table in
//! `settings.rs` like every other setting, gathered here into [`Passkeys`] with their own checks,
//! so that the whole group can move with the file.

use super::{Config, ConfigError};

/// The relying party and the rules of its ceremonies, as `crate::service::passkeys` uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkeys {
    /// The domain the credentials are bound to (`BARONG_PASSKEY_RP_ID`).
    pub rp_id: String,
    /// Shown by the authenticator (`BARONG_PASSKEY_RP_NAME`, else `BARONG_APP_NAME`).
    pub rp_name: String,
    /// Every origin a ceremony may come from, exactly (scheme, host and port).
    pub origins: Vec<url::Url>,
    /// Whether a passkey alone opens a session (discoverable credentials).
    pub passwordless: bool,
    /// How long a challenge may be answered, seconds.
    pub challenge_ttl: u64,
}

impl Config {
    /// The passkey settings; `None` while `BARONG_PASSKEY_RP_ID` is unset (passkeys off).
    pub fn passkeys(&self) -> Option<Passkeys> {
        if self.passkey.passkey_rp_id.is_empty() {
            return None;
        }
        let origins = if self.passkey.passkey_origins.is_empty() {
            vec![format!("https://{}", self.passkey.passkey_rp_id)]
        } else {
            self.passkey.passkey_origins.clone()
        };
        let rp_name = match self.passkey.passkey_rp_name.as_str() {
            "" => self.users.app_name.clone(),
            name => name.to_owned(),
        };
        Some(Passkeys {
            rp_id: self.passkey.passkey_rp_id.clone(),
            rp_name,
            // Each origin was parsed when read (`check_passkeys`), so none is dropped here.
            origins: origins
                .iter()
                .filter_map(|o| url::Url::parse(o).ok())
                .collect(),
            passwordless: self.passkey.passkey_passwordless,
            challenge_ttl: self.passkey.passkey_challenge_ttl,
        })
    }

    /// Every origin must be a plain `scheme://host[:port]` whose host is the relying-party id or
    /// one of its subdomains: an authenticator would refuse anything else, so the start is.
    pub(super) fn check_passkeys(&self) -> Result<(), ConfigError> {
        let rp_id = &self.passkey.passkey_rp_id;
        if rp_id.is_empty() {
            if !self.passkey.passkey_origins.is_empty() {
                return Err(ConfigError::missing(
                    "BARONG_PASSKEY_RP_ID",
                    "required when BARONG_PASSKEY_ORIGINS is set",
                ));
            }
            return Ok(());
        }
        for origin in &self.passkey.passkey_origins {
            let bad = |problem: &str| {
                ConfigError::invalid("BARONG_PASSKEY_ORIGINS", Some(origin), problem)
            };
            let url = url::Url::parse(origin).map_err(|_| bad("expected scheme://host[:port]"))?;
            let plain = matches!(url.scheme(), "https" | "http")
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
                && !origin.trim_end_matches('/').ends_with(':');
            if !plain {
                return Err(bad("expected http(s)://host[:port] and nothing more"));
            }
            let host = url.domain().unwrap_or_default();
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                return Err(bad(
                    "the host must be BARONG_PASSKEY_RP_ID or a subdomain of it",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_sources(&env, None)
    }

    #[test]
    fn off_by_default_and_origins_default_to_https_rp_id() {
        assert_eq!(config(&[]).expect("defaults").passkeys(), None);
        let on = config(&[("BARONG_PASSKEY_RP_ID", "Example.com")])
            .expect("rp id")
            .passkeys()
            .expect("on");
        assert_eq!(on.rp_id, "example.com");
        assert_eq!(on.rp_name, "Barong");
        assert_eq!(on.origins[0].as_str(), "https://example.com/");
        assert!(!on.passwordless);
        assert_eq!(on.challenge_ttl, 120);
    }

    #[test]
    fn origins_must_belong_to_the_rp_id() {
        let rp = ("BARONG_PASSKEY_RP_ID", "example.com");
        for bad in [
            "https://example.org",
            "https://notexample.com",
            "https://example.com/login",
            "ftp://example.com",
            "example.com",
        ] {
            let error = config(&[rp, ("BARONG_PASSKEY_ORIGINS", bad)]).expect_err(bad);
            assert_eq!(error.setting, "BARONG_PASSKEY_ORIGINS", "{bad}");
        }
        let ok = config(&[
            rp,
            (
                "BARONG_PASSKEY_ORIGINS",
                "https://example.com, https://auth.example.com:8443",
            ),
        ])
        .expect("good origins");
        assert_eq!(ok.passkeys().expect("on").origins.len(), 2);
        let orphan = config(&[("BARONG_PASSKEY_ORIGINS", "https://example.com")]);
        assert_eq!(orphan.expect_err("no rp").setting, "BARONG_PASSKEY_RP_ID");
        for bad in [
            "https://example.com",
            "127.0.0.1",
            "example.com:443",
            ".com",
        ] {
            let error = config(&[("BARONG_PASSKEY_RP_ID", bad)]).expect_err(bad);
            assert_eq!(error.setting, "BARONG_PASSKEY_RP_ID");
        }
    }
}
