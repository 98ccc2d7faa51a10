//! Abuse limits of the REST listener, in memory and per instance: failed logins per account and
//! per IP, wrong TOTP codes per user, mail-sending requests per address and per IP, sign-ups per
//! IP. Each is a fixed window that opens at the first counted event of a key and lasts the
//! configured number of seconds (a moka entry with that time to live).
//!
//! Nothing here is on the authz decision path: only REST handlers consult these limiters, so a
//! valid session's decision never waits on them.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;

use super::error::ApiError;
use crate::config::{Config, RateLimit};

/// Keys kept per limiter at most; beyond that the least useful entries are evicted (an attacker
/// spraying keys can only make the limiter forget, never grow the process).
const MAX_KEYS: u64 = 200_000;

/// One counter per key in a fixed window.
pub struct Limiter {
    name: &'static str,
    limit: RateLimit,
    counts: Option<moka::sync::Cache<String, Arc<AtomicU32>>>,
    rejected: AtomicU64,
}

impl Limiter {
    /// A limiter named `name` (the `limit` label of the rejection metric).
    pub fn new(name: &'static str, limit: RateLimit) -> Self {
        let counts = limit.enabled().then(|| {
            moka::sync::Cache::builder()
                .max_capacity(MAX_KEYS)
                .time_to_live(Duration::from_secs(limit.window))
                .build()
        });
        Self {
            name,
            limit,
            counts,
            rejected: AtomicU64::new(0),
        }
    }

    /// Whether `key` has used up its window (without counting anything); a refusal is counted
    /// in the rejection metric.
    pub fn exhausted(&self, key: &str) -> bool {
        let Some(counts) = &self.counts else {
            return false;
        };
        let spent = counts
            .get(key)
            .is_some_and(|n| n.load(Ordering::Relaxed) >= self.limit.count);
        if spent {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        spent
    }

    /// Counts one event of `key`.
    pub fn record(&self, key: &str) {
        if let Some(counts) = &self.counts {
            counts
                .get_with(key.to_owned(), || Arc::new(AtomicU32::new(0)))
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one event of `key` and tells whether it was still within the limit.
    pub fn allow(&self, key: &str) -> bool {
        if self.exhausted(key) {
            return false;
        }
        self.record(key);
        true
    }

    /// Forgets `key` (a successful login clears the account's failures).
    pub fn clear(&self, key: &str) {
        if let Some(counts) = &self.counts {
            counts.invalidate(key);
        }
    }

    /// Requests refused since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The limiter's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Every limiter of the REST listener.
pub struct Limits {
    pub login_account: Limiter,
    pub login_ip: Limiter,
    pub otp: Limiter,
    /// Wrong phone verification codes per user (the TOTP limit, counted apart).
    pub phone_code: Limiter,
    pub mail_address: Limiter,
    pub mail_ip: Limiter,
    pub signup_ip: Limiter,
}

impl Limits {
    /// The limiters the settings ask for (`BARONG_RATE_LIMIT_*`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            login_account: Limiter::new("login_account", config.rate_limit_login_account),
            login_ip: Limiter::new("login_ip", config.rate_limit_login_ip),
            otp: Limiter::new("otp", config.rate_limit_otp),
            phone_code: Limiter::new("phone_code", config.rate_limit_otp),
            mail_address: Limiter::new("mail_address", config.rate_limit_mail_address),
            mail_ip: Limiter::new("mail_ip", config.rate_limit_mail_ip),
            signup_ip: Limiter::new("signup_ip", config.rate_limit_signup_ip),
        }
    }

    /// Every limiter, for the metrics.
    pub fn all(&self) -> [&Limiter; 7] {
        [
            &self.login_account,
            &self.login_ip,
            &self.otp,
            &self.phone_code,
            &self.mail_address,
            &self.mail_ip,
            &self.signup_ip,
        ]
    }

    /// Whether a login for `email` from `ip` must be refused before any password is checked.
    pub fn login_refused(&self, email: &str, ip: IpAddr) -> bool {
        // Both are consulted (and counted as rejections) so the metric tells which one bit.
        let account = self.login_account.exhausted(&account_key(email));
        let address = self.login_ip.exhausted(&ip.to_string());
        account || address
    }

    /// Counts a failed login.
    pub fn login_failed(&self, email: &str, ip: IpAddr) {
        self.login_account.record(&account_key(email));
        self.login_ip.record(&ip.to_string());
    }

    /// A successful login clears the account's failures (not the IP's: one account the
    /// attacker owns must not reset the count of an address guessing others).
    pub fn login_succeeded(&self, email: &str) {
        self.login_account.clear(&account_key(email));
    }

    /// Counts a mail-sending request; false when the address or the IP is over its limit.
    pub fn mail_allowed(&self, email: &str, ip: IpAddr) -> bool {
        let address = self.mail_address.allow(&account_key(email));
        let from = self.mail_ip.allow(&ip.to_string());
        address && from
    }

    /// Counts a sign-up request; false when the IP is over its limit.
    pub fn signup_allowed(&self, ip: IpAddr) -> bool {
        self.signup_ip.allow(&ip.to_string())
    }
}

/// E-mails are compared case-insensitively by the store; so are the limiter keys.
fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// `429 <namespace>.too_many_attempts`.
pub fn too_many(namespace: &str) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("{namespace}.too_many_attempts"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_count_events_then_refuses() {
        let limiter = Limiter::new(
            "t",
            RateLimit {
                count: 3,
                window: 60,
            },
        );
        assert!(limiter.allow("a"));
        assert!(limiter.allow("a"));
        assert!(limiter.allow("a"));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"), "keys are independent");
        assert_eq!(limiter.rejected(), 1);
        limiter.clear("a");
        assert!(limiter.allow("a"));
    }

    #[test]
    fn a_disabled_limit_never_refuses() {
        let limiter = Limiter::new(
            "t",
            RateLimit {
                count: 0,
                window: 0,
            },
        );
        for _ in 0..100 {
            assert!(limiter.allow("a"));
        }
    }

    #[test]
    fn the_window_ends() {
        let limiter = Limiter::new(
            "t",
            RateLimit {
                count: 1,
                window: 1,
            },
        );
        assert!(limiter.allow("a"));
        assert!(!limiter.allow("a"));
        std::thread::sleep(Duration::from_millis(1100));
        assert!(limiter.allow("a"));
    }
}
