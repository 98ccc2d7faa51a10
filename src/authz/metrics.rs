//! Decision counters for `/metrics` (Prometheus text format): allows by kind, denies by key.
//! Plain atomics; no locks on the hot path.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Deny;
use super::cache::Caches;

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
    public: AtomicU64,
    session: AtomicU64,
    api_key: AtomicU64,
    /// Denies by key; few distinct keys, rarely written relative to allows.
    denies: Mutex<Vec<(&'static str, u64)>>,
}

impl Metrics {
    pub fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Public => &self.public,
            Outcome::Session => &self.session,
            Outcome::ApiKey => &self.api_key,
            Outcome::Deny(deny) => {
                let key = deny.key();
                if let Ok(mut denies) = self.denies.lock() {
                    match denies.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, n)) => *n += 1,
                        None => denies.push((key, 1)),
                    }
                }
                return;
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self, caches: &Caches, audit_dropped: u64) -> String {
        let mut out = String::new();
        out.push_str("# TYPE barong_authz_decisions_total counter\n");
        for (kind, counter) in [
            ("public", &self.public),
            ("session", &self.session),
            ("api_key", &self.api_key),
        ] {
            let n = counter.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "barong_authz_decisions_total{{result=\"allow\",reason=\"{kind}\"}} {n}"
            );
        }
        if let Ok(denies) = self.denies.lock() {
            for (key, n) in denies.iter() {
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
        out.push_str("# TYPE barong_authz_audit_dropped_total counter\n");
        let _ = writeln!(out, "barong_authz_audit_dropped_total {audit_dropped}");
        out
    }
}
