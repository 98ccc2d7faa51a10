//! Request metrics of both listeners and the request id, shared by the authz and REST paths and
//! rendered by `/metrics` on the authz listener. Plain atomics, striped per thread
//! ([`striped`]): recording takes no lock and no cache line another core is writing, so the
//! decision path pays a few uncontended increments per request.

pub mod striped;

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};

use crate::limits::Limits;
use crate::limits::hashing::HashPool;
use crate::store::{SharedCounters, Store};
use striped::{Counter, Striped};

/// Upper bounds of the latency buckets, microseconds (Prometheus `le` in seconds).
const BOUNDS_US: [u64; 12] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000,
];

/// A Prometheus histogram of durations on atomics, one set per stripe.
#[derive(Default)]
pub struct Histogram {
    stripes: Striped<HistogramCells>,
}

#[derive(Default)]
struct HistogramCells {
    /// Per bucket (not cumulative; summed when rendered); the last one is `+Inf`.
    buckets: [Counter; BOUNDS_US.len() + 1],
    sum_us: Counter,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let index = BOUNDS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(BOUNDS_US.len());
        let cells = self.stripes.local();
        if let Some(bucket) = cells.buckets.get(index) {
            bucket.add(1);
        }
        cells.sum_us.add(us);
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of `name{labels}`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        Self::render_sum(&[self], out, name, labels);
    }

    /// The same lines for the sum of several histograms, as if each duration had been
    /// recorded in one: what lets a duration be recorded once where two series count it.
    fn render_sum(parts: &[&Self], out: &mut String, name: &str, labels: &str) {
        let total = |cell: &dyn Fn(&HistogramCells) -> &Counter| -> u64 {
            parts
                .iter()
                .map(|part| part.stripes.sum_by(cell))
                .fold(0, u64::wrapping_add)
        };
        let mut cumulative = 0u64;
        for index in 0..=BOUNDS_US.len() {
            cumulative = cumulative.wrapping_add(total(&|cells| &cells.buckets[index]));
            let le = BOUNDS_US
                .get(index)
                .map(|us| format!("{}", *us as f64 / 1e6))
                .unwrap_or_else(|| "+Inf".into());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = total(&|cells| &cells.sum_us) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// Requests of one listener: answers by status class and their latency.
#[derive(Default)]
pub struct ListenerStats {
    /// 1xx..5xx, per stripe.
    classes: Striped<[Counter; 5]>,
    pub latency: Histogram,
}

impl ListenerStats {
    /// Records one answered request.
    pub fn record(&self, status: u16, elapsed: Duration) {
        self.count(status);
        self.latency.observe(elapsed);
    }

    /// Counts one answered request whose duration another histogram records (an authz
    /// decision's: [`RequestMetrics::decided`]).
    fn count(&self, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        if let Some(counter) = self.classes.local().get(class) {
            counter.add(1);
        }
    }

    fn render(&self, out: &mut String, listener: &str) {
        for index in 0..5 {
            let count = self.classes.sum_by(|classes| &classes[index]);
            let _ = writeln!(
                out,
                "barong_http_requests_total{{listener=\"{listener}\",status=\"{}xx\"}} {count}",
                index + 1,
            );
        }
    }
}

/// Request metrics of both listeners.
#[derive(Default)]
pub struct RequestMetrics {
    /// The authz listener's answers; its latency histogram holds only the answers that are
    /// not decisions (the JWKS, `/metrics`, unknown routes), and is rendered summed with the
    /// two below, so a decision's duration is recorded once.
    pub authz: ListenerStats,
    pub rest: ListenerStats,
    /// Latency of authz decisions that allowed.
    allow_latency: Histogram,
    /// Latency of authz decisions that denied.
    deny_latency: Histogram,
}

impl RequestMetrics {
    /// Records one authz decision: its status and, once, its duration (in the allow or deny
    /// histogram, which the listener's series includes).
    pub fn decided(&self, status: u16, elapsed: Duration) {
        self.authz.count(status);
        if status == 200 {
            self.allow_latency.observe(elapsed);
        } else {
            self.deny_latency.observe(elapsed);
        }
    }

    /// The Prometheus text of these metrics.
    pub fn render(&self, out: &mut String) {
        out.push_str("# TYPE barong_http_requests_total counter\n");
        self.authz.render(out, "authz");
        self.rest.render(out, "rest");
        out.push_str("# TYPE barong_http_request_duration_seconds histogram\n");
        let name = "barong_http_request_duration_seconds";
        let authz = [&self.authz.latency, &self.allow_latency, &self.deny_latency];
        Histogram::render_sum(&authz, out, name, "listener=\"authz\"");
        self.rest.latency.render(out, name, "listener=\"rest\"");
        out.push_str("# TYPE barong_authz_decision_duration_seconds histogram\n");
        let name = "barong_authz_decision_duration_seconds";
        self.allow_latency.render(out, name, "result=\"allow\"");
        self.deny_latency.render(out, name, "result=\"deny\"");
    }
}

/// What both listeners share for `/metrics`: request metrics and the REST abuse limiters.
pub struct Observability {
    pub requests: RequestMetrics,
    pub limits: Arc<Limits>,
    /// The password-hashing cap of the REST listener (its queue and refusals are metrics).
    pub hashing: Arc<HashPool>,
    /// Logins for unknown e-mails answered after checking a dummy digest (so they take as long
    /// as a wrong password); the tests read it to prove that path runs.
    pub dummy_password_checks: AtomicU64,
}

impl Observability {
    /// Fresh counters, the limiters the settings ask for (counting in `shared` when the store
    /// offers shared counters) and the hashing cap.
    pub fn new(config: &crate::config::Limits, shared: Option<Arc<dyn SharedCounters>>) -> Self {
        Self {
            requests: RequestMetrics::default(),
            limits: Arc::new(Limits::from_config(config, shared)),
            hashing: Arc::new(HashPool::new(
                usize::try_from(config.password_hash_concurrency).unwrap_or(0),
                usize::try_from(config.password_hash_queue).unwrap_or(usize::MAX),
            )),
            dummy_password_checks: AtomicU64::new(0),
        }
    }

    /// Request metrics, rate-limit rejections, the store's pool and the mail outbox depth.
    pub async fn render(&self, out: &mut String, store: &dyn Store) {
        self.requests.render(out);
        out.push_str("# TYPE barong_rate_limit_rejections_total counter\n");
        for limiter in self.limits.all() {
            let _ = writeln!(
                out,
                "barong_rate_limit_rejections_total{{limit=\"{}\"}} {}",
                limiter.name(),
                limiter.rejected()
            );
        }
        out.push_str("# TYPE barong_rate_limit_reservations_total counter\n");
        for limiter in self.limits.all() {
            let _ = writeln!(
                out,
                "barong_rate_limit_reservations_total{{limit=\"{}\"}} {}",
                limiter.name(),
                limiter.reserved()
            );
        }
        let hashing = &self.hashing;
        out.push_str("# TYPE barong_password_hash_slots gauge\n");
        for (state, n) in [
            ("concurrency", hashing.concurrency()),
            ("queue", hashing.queue()),
            ("in_use", hashing.in_use()),
        ] {
            let _ = writeln!(out, "barong_password_hash_slots{{state=\"{state}\"}} {n}");
        }
        out.push_str("# TYPE barong_password_hash_refused_total counter\n");
        let _ = writeln!(
            out,
            "barong_password_hash_refused_total {}",
            hashing.refused()
        );
        out.push_str("# TYPE barong_login_dummy_password_checks_total counter\n");
        let _ = writeln!(
            out,
            "barong_login_dummy_password_checks_total {}",
            self.dummy_password_checks.load(Ordering::Relaxed)
        );
        let pool = store.pool_status();
        out.push_str("# TYPE barong_db_pool_connections gauge\n");
        for (state, n) in [
            ("max", pool.max_size),
            ("open", pool.size),
            ("idle", pool.available),
            ("in_use", pool.size.saturating_sub(pool.available)),
            ("waiting", pool.waiting),
        ] {
            let _ = writeln!(out, "barong_db_pool_connections{{state=\"{state}\"}} {n}");
        }
        // The outbox depth costs a query: a database that is gone shows as -1, not as an error.
        let depth =
            match tokio::time::timeout(Duration::from_secs(1), store.count_unsent_mails()).await {
                Ok(Ok(n)) => n,
                _ => -1,
            };
        out.push_str("# TYPE barong_mail_outbox_unsent gauge\n");
        let _ = writeln!(out, "barong_mail_outbox_unsent {depth}");
    }
}

/// The request header carrying the request id, from the proxy and to the upstream.
// A `HeaderName` constant, not a `&str`: a `&str` name is parsed again on every answer of the
// decision path (issue 20).
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The request id of a request: the proxy's `X-Request-Id` when it is a sane token (at most 128
/// visible ASCII characters), else a new random one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    let given = headers.get(REQUEST_ID).filter(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
    });
    match given {
        Some(value) => value.clone(),
        None => new_request_id(),
    }
}

/// A new id: 16 random bytes drawn once per thread, advanced by one per request, in hex. Unique
/// across threads, processes and requests (two threads' sequences would have to start within
/// a few billion of each other out of 2^128); an id is for correlation, not a secret, so a
/// request pays an increment, not a draw from the system RNG. Per thread, not one process-wide
/// counter: that one was a cache line both cores wrote on every decision. The thread keeps its
/// next id as text and adds one to the text, a digit and a rare carry: 119 instructions a new
/// id, where encoding a number cost 197 (docs/benchmarks.md, fourteenth pass).
pub fn new_request_id() -> HeaderValue {
    thread_local! {
        // All zeros until the thread's first id: hex text never holds a zero byte.
        static NEXT: std::cell::RefCell<[u8; 32]> = const { std::cell::RefCell::new([0; 32]) };
    }
    NEXT.with(|next| {
        // Nothing borrows it across a call; a failed borrow would only cost the id.
        let Ok(mut text) = next.try_borrow_mut() else {
            return HeaderValue::from_static("-");
        };
        if text[0] == 0 {
            crate::crypto::hex::encode_to_slice(&random_u128().to_be_bytes(), &mut *text);
        }
        let id = HeaderValue::from_bytes(&*text).unwrap_or_else(|_| HeaderValue::from_static("-"));
        increment_hex(&mut *text);
        id
    })
}

/// Adds one to a lowercase hex number written in `digits`, wrapping to zeros past the largest.
fn increment_hex(digits: &mut [u8]) {
    for digit in digits.iter_mut().rev() {
        match *digit {
            b'9' => *digit = b'a',
            b'f' => {
                *digit = b'0';
                continue;
            }
            _ => *digit += 1,
        }
        return;
    }
}

/// 128 bits from the system RNG; without it, the clock in the high half and a process-wide
/// count of such threads in the low one keep sequences apart well enough for correlation.
fn random_u128() -> u128 {
    static WITHOUT_RNG: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut random).is_ok() {
        return u128::from_be_bytes(random);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    (nanos << 64) | (u128::from(WITHOUT_RNG.fetch_add(1, Ordering::Relaxed)) << 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_count_up_as_numbers_do() {
        for n in [
            0u128,
            9,
            15,
            0xff,
            0x0fff_ffff,
            u128::MAX - 1,
            u128::MAX,
            0x1234_5678_9abc_def0,
        ] {
            let mut digits = [0u8; 32];
            crate::crypto::hex::encode_to_slice(&n.to_be_bytes(), &mut digits);
            increment_hex(&mut digits);
            assert_eq!(
                std::str::from_utf8(&digits).expect("hex"),
                format!("{:032x}", n.wrapping_add(1))
            );
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(
            out.contains("x_bucket{a=\"b\",le=\"0.00025\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
    }

    #[test]
    fn a_proxy_request_id_is_kept_only_when_sane() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&headers), "has space");
        let (a, b) = (request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b, "every generated id is new");
    }

    #[test]
    fn generated_ids_differ_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..100).map(|_| new_request_id()).collect::<Vec<_>>()))
            .collect();
        let ids: std::collections::HashSet<HeaderValue> = threads
            .into_iter()
            .flat_map(|thread| thread.join().expect("thread"))
            .collect();
        assert_eq!(ids.len(), 400);
    }
}
