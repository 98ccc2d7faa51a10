//! Decision counters for `/metrics` (Prometheus text format): allows by kind, denies by key.
//! Plain atomics striped per thread (`observe::striped`); no locks on the hot path.

use std::fmt::Write;

use super::Deny;
use super::cache::Caches;
use crate::observe::striped::{Counter, Striped};

/// What one decision was.
pub enum Outcome {
    Public,
    Session,
    ApiKey,
    Deny(Deny),
}

/// Counters since start.
#[derive(Default)]
pub struct Metrics {
    counts: Striped<Counts>,
}

/// One stripe's counters.
#[derive(Default)]
struct Counts {
    public: Counter,
    session: Counter,
    api_key: Counter,
    /// One per deny key, at its [`Deny::index`]: a flood of denies contends on no lock and
    /// compares no string.
    denies: [Counter; Deny::KEYS],
}

impl Metrics {
    pub fn record(&self, outcome: Outcome) {
        let counts = self.counts.local();
        let counter = match outcome {
            Outcome::Public => &counts.public,
            Outcome::Session => &counts.session,
            Outcome::ApiKey => &counts.api_key,
            Outcome::Deny(deny) => match counts.denies.get(deny.index()) {
                Some(counter) => counter,
                None => return,
            },
        };
        counter.add(1);
    }

    /// The Prometheus exposition text.
    pub fn render(&self, caches: &Caches, audit_dropped: u64) -> String {
        let mut out = String::new();
        out.push_str("# TYPE barong_authz_decisions_total counter\n");
        for (kind, n) in [
            ("public", self.counts.sum_by(|c| &c.public)),
            ("session", self.counts.sum_by(|c| &c.session)),
            ("api_key", self.counts.sum_by(|c| &c.api_key)),
        ] {
            let _ = writeln!(
                out,
                "barong_authz_decisions_total{{result=\"allow\",reason=\"{kind}\"}} {n}"
            );
        }
        for (index, key) in Deny::keys().enumerate() {
            let n = self.counts.sum_by(|c| &c.denies[index]);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "barong_authz_decisions_total{{result=\"deny\",reason=\"{key}\"}} {n}"
                );
            }
        }
        out.push_str("# TYPE barong_authz_cache_entries gauge\n");
        for (name, n) in caches.sizes() {
            let _ = writeln!(out, "barong_authz_cache_entries{{cache=\"{name}\"}} {n}");
        }
        out.push_str("# TYPE barong_authz_cache_lookups_total counter\n");
        for (name, lookups, misses) in caches.lookups() {
            let hits = lookups.saturating_sub(misses);
            let _ = writeln!(
                out,
                "barong_authz_cache_lookups_total{{cache=\"{name}\",result=\"hit\"}} {hits}"
            );
            let _ = writeln!(
                out,
                "barong_authz_cache_lookups_total{{cache=\"{name}\",result=\"miss\"}} {misses}"
            );
        }
        out.push_str("# TYPE barong_authz_cache_hit_ratio gauge\n");
        for (name, lookups, misses) in caches.lookups() {
            let ratio = if lookups == 0 {
                0.0
            } else {
                lookups.saturating_sub(misses) as f64 / lookups as f64
            };
            let _ = writeln!(
                out,
                "barong_authz_cache_hit_ratio{{cache=\"{name}\"}} {ratio}"
            );
        }
        out.push_str("# TYPE barong_authz_audit_dropped_total counter\n");
        let _ = writeln!(out, "barong_authz_audit_dropped_total {audit_dropped}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_deny_key_has_a_counter() {
        let all = [
            Deny::Restricted {
                category: "maintenance",
                code: 471,
            },
            Deny::Restricted {
                category: "blacklist",
                code: 401,
            },
            Deny::Restricted {
                category: "blocklogin",
                code: 401,
            },
            Deny::InvalidPath,
            Deny::InvalidMethod,
            Deny::InvalidRequest,
            Deny::PermissionDenied,
            Deny::MissingCsrfToken,
            Deny::CsrfTokenMismatch,
            Deny::InvalidSession,
            Deny::ClientSessionMismatch,
            Deny::UserNotActive,
            Deny::InvalidApiKeyHeaders,
            Deny::UnexistentApiKey,
            Deny::NonceNotValidTimestamp,
            Deny::NonceExpired,
            Deny::NonceReplayed,
            Deny::InvalidSignature,
            Deny::ApiKeyNotActive,
            Deny::Disabled2fa,
            Deny::InvalidPermission,
            Deny::Unavailable,
        ];
        let mut seen = std::collections::HashSet::new();
        for deny in all {
            assert_eq!(Deny::keys().nth(deny.index()), Some(deny.key()), "{deny:?}");
            seen.insert(deny.index());
        }
        assert_eq!(seen.len(), Deny::KEYS, "every key has its own counter");
        let metrics = Metrics::default();
        metrics.record(Outcome::Deny(Deny::InvalidPath));
        assert_eq!(
            metrics
                .counts
                .sum_by(|c| &c.denies[Deny::InvalidPath.index()]),
            1
        );
    }
}
