//! Abuse limits of the REST listener: failed logins per account and per IP, wrong TOTP codes
//! per user, wrong phone codes per user, mail-sending requests per address and per IP, sign-ups
//! per IP. Each is a fixed window that opens at the first counted event of a key and lasts the
//! configured number of seconds.
//!
//! Slots are reserved before the work they guard: an attempt takes its slot atomically, and only
//! an attempt that got one reaches the password hash, the TOTP comparison or the mail queue. So a
//! burst of any size released at once gets at most `count` checks per window; the rest are
//! refused unchecked. An attempt that turns out not to count (a successful login) gives its slot
//! back or clears the window.
//!
//! Where the counters live: on PostgreSQL in the `rate_limits` table, so every instance on the
//! database enforces the same limit; on SQLite (one process per database file) in this process.
//! A counter store that cannot be reached refuses the attempt (503), never lets it through.
//!
//! Nothing here is on the authz decision path: only REST handlers consult these limiters, so a
//! valid session's decision never waits on them.

pub mod hashing;
pub mod windows;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::RateLimit;
use crate::store::{SharedCounters, StoreError};

/// Keys kept per in-process limiter at most; beyond that the oldest windows are forgotten (an
/// attacker spraying keys can only make the limiter forget, never grow the process).
const MAX_KEYS: usize = 200_000;

/// One in this many shared reservations also purges ended windows from the table.
const PURGE_EVERY: u64 = 1024;

/// Where a limiter counts.
enum Counts {
    /// The limit is off.
    Off,
    /// In this process.
    Local(windows::Windows<String>),
    /// In the database, shared by every instance.
    Shared(Arc<dyn SharedCounters>),
}

/// One counter per key in a fixed window.
pub struct Limiter {
    name: &'static str,
    limit: RateLimit,
    counts: Counts,
    rejected: AtomicU64,
    reserved: AtomicU64,
}

impl Limiter {
    /// An in-process limiter named `name` (the `limit` label of the metrics).
    pub fn new(name: &'static str, limit: RateLimit) -> Self {
        Self::with_counters(name, limit, None)
    }

    /// A limiter counting in `shared` when given, else in process.
    pub fn with_counters(
        name: &'static str,
        limit: RateLimit,
        shared: Option<Arc<dyn SharedCounters>>,
    ) -> Self {
        let counts = match shared {
            _ if !limit.enabled() => Counts::Off,
            Some(shared) => Counts::Shared(shared),
            None => Counts::Local(windows::Windows::new(
                Duration::from_secs(limit.window),
                MAX_KEYS,
            )),
        };
        Self {
            name,
            limit,
            counts,
            rejected: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
        }
    }

    /// Takes one slot of `key`'s window: true when there was one (the attempt may go on), false
    /// when the window is used up (counted in the rejection metric). One atomic step, so
    /// concurrent attempts can never take more than the limit between them.
    pub async fn reserve(&self, key: &str) -> Result<bool, StoreError> {
        let taken = match &self.counts {
            Counts::Off => return Ok(true),
            Counts::Local(windows) => windows.take(key, self.limit.count),
            Counts::Shared(shared) => {
                let n = self.reserved.load(Ordering::Relaxed);
                if n % PURGE_EVERY == PURGE_EVERY - 1 {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        if let Err(error) = shared.purge_ended().await {
                            tracing::warn!(%error, "ended rate-limit windows not purged");
                        }
                    });
                }
                shared
                    .take_slot(self.name, key, self.limit.count, self.limit.window)
                    .await?
            }
        };
        if taken {
            self.reserved.fetch_add(1, Ordering::Relaxed);
        } else {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(taken)
    }

    /// Whether `key` has used up its window, without taking anything (a cheap early refusal
    /// before work that must not be spent on a locked key; the reservation still decides).
    /// A refusal is counted in the rejection metric.
    pub async fn exhausted(&self, key: &str) -> Result<bool, StoreError> {
        let spent = match &self.counts {
            Counts::Off => false,
            Counts::Local(windows) => windows.count(key) >= self.limit.count,
            Counts::Shared(shared) => {
                shared
                    .slots_used_up(self.name, key, self.limit.count)
                    .await?
            }
        };
        if spent {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(spent)
    }

    /// Gives one slot of `key` back. Best effort: a failure only leaves the slot used.
    pub async fn release(&self, key: &str) {
        match &self.counts {
            Counts::Off => {}
            Counts::Local(windows) => windows.give_back(key),
            Counts::Shared(shared) => {
                if let Err(error) = shared.give_back(self.name, key).await {
                    tracing::warn!(%error, limit = self.name, "rate-limit slot not given back");
                }
            }
        }
    }

    /// Closes `key`'s window (a successful login clears the account's failures). Best effort:
    /// a failure only leaves the window counting.
    pub async fn clear(&self, key: &str) {
        match &self.counts {
            Counts::Off => {}
            Counts::Local(windows) => windows.close(key),
            Counts::Shared(shared) => {
                if let Err(error) = shared.forget(self.name, key).await {
                    tracing::warn!(%error, limit = self.name, "rate-limit window not cleared");
                }
            }
        }
    }

    /// Attempts refused since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Slots taken since start (attempts that went on to their check).
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// The limiter's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether this limiter counts in the shared store.
    pub fn is_shared(&self) -> bool {
        matches!(self.counts, Counts::Shared(_))
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
    /// The limiters the settings ask for (`BARONG_RATE_LIMIT_*`), counting in `shared` when the
    /// store offers shared counters.
    pub fn from_config(
        config: &crate::config::Limits,
        shared: Option<Arc<dyn SharedCounters>>,
    ) -> Self {
        let limiter = |name, limit| Limiter::with_counters(name, limit, shared.clone());
        Self {
            login_account: limiter("login_account", config.rate_limit_login_account),
            login_ip: limiter("login_ip", config.rate_limit_login_ip),
            otp: limiter("otp", config.rate_limit_otp),
            phone_code: limiter("phone_code", config.rate_limit_otp),
            mail_address: limiter("mail_address", config.rate_limit_mail_address),
            mail_ip: limiter("mail_ip", config.rate_limit_mail_ip),
            signup_ip: limiter("signup_ip", config.rate_limit_signup_ip),
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

    /// Whether a login for `email` from `ip` is already locked out (a peek, before the captcha).
    pub async fn login_locked(&self, email: &str, ip: IpAddr) -> Result<bool, StoreError> {
        // Both are consulted (and counted as rejections) so the metric tells which one bit.
        let account = self.login_account.exhausted(&account_key(email)).await?;
        let address = self.login_ip.exhausted(&ip.to_string()).await?;
        Ok(account || address)
    }

    /// Reserves a login attempt for `email` from `ip`, before any password is checked: false
    /// when the account or the address has no attempt left in its window.
    pub async fn login_reserve(&self, email: &str, ip: IpAddr) -> Result<bool, StoreError> {
        let account = account_key(email);
        if !self.login_account.reserve(&account).await? {
            return Ok(false);
        }
        match self.login_ip.reserve(&ip.to_string()).await {
            Ok(true) => Ok(true),
            refused_or_failed => {
                // The attempt does not happen: the account's slot goes back.
                self.login_account.release(&account).await;
                refused_or_failed
            }
        }
    }

    /// Gives back the slots of an attempt that was not a failed guess.
    pub async fn login_release(&self, email: &str, ip: IpAddr) {
        self.login_account.release(&account_key(email)).await;
        self.login_ip.release(&ip.to_string()).await;
    }

    /// A successful login clears the account's failures and gives the address its slot back
    /// (not its failures: one account the attacker owns must not reset the count of an address
    /// guessing others).
    pub async fn login_succeeded(&self, email: &str, ip: IpAddr) {
        self.login_account.clear(&account_key(email)).await;
        self.login_ip.release(&ip.to_string()).await;
    }

    /// Reserves a password check of a signed-in user (`service::confirm`): the account's login
    /// slot only, since the guesser already holds a session of that account.
    pub async fn account_reserve(&self, email: &str) -> Result<bool, StoreError> {
        self.login_account.reserve(&account_key(email)).await
    }

    /// Gives back the slot of a password check that was right or did not happen.
    pub async fn account_release(&self, email: &str) {
        self.login_account.release(&account_key(email)).await;
    }

    /// Reserves a mail-sending request; false when the address or the IP is over its limit.
    /// Both are counted whatever the other says, so a refused address still uses the IP's.
    pub async fn mail_reserve(&self, email: &str, ip: IpAddr) -> Result<bool, StoreError> {
        let address = self.mail_address.reserve(&account_key(email)).await?;
        let from = self.mail_ip.reserve(&ip.to_string()).await?;
        Ok(address && from)
    }

    /// Reserves a sign-up request; false when the IP is over its limit.
    pub async fn signup_reserve(&self, ip: IpAddr) -> Result<bool, StoreError> {
        self.signup_ip.reserve(&ip.to_string()).await
    }
}

/// E-mails are compared case-insensitively by the store; so are the limiter keys.
fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(count: u32, window: u64) -> RateLimit {
        RateLimit { count, window }
    }

    #[tokio::test]
    async fn a_window_allows_count_events_then_refuses() {
        let limiter = Limiter::new("t", limit(3, 60));
        for _ in 0..3 {
            assert!(limiter.reserve("a").await.expect("local"));
        }
        assert!(!limiter.reserve("a").await.expect("local"));
        assert!(
            limiter.reserve("b").await.expect("local"),
            "keys are independent"
        );
        assert_eq!(limiter.rejected(), 1);
        limiter.release("a").await;
        assert!(
            limiter.reserve("a").await.expect("local"),
            "a slot given back"
        );
        assert!(!limiter.reserve("a").await.expect("local"));
        limiter.clear("a").await;
        assert!(limiter.reserve("a").await.expect("local"));
    }

    #[tokio::test]
    async fn a_disabled_limit_never_refuses() {
        let limiter = Limiter::new("t", limit(0, 0));
        for _ in 0..100 {
            assert!(limiter.reserve("a").await.expect("off"));
        }
    }

    #[tokio::test]
    async fn the_window_ends() {
        let limiter = Limiter::new("t", limit(1, 1));
        assert!(limiter.reserve("a").await.expect("local"));
        assert!(!limiter.reserve("a").await.expect("local"));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(limiter.reserve("a").await.expect("local"));
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let limiter = Arc::new(Limiter::new("t", limit(7, 60)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .expect("runtime");
        let taken = runtime.block_on(async {
            let barrier = Arc::new(tokio::sync::Barrier::new(500));
            let tasks: Vec<_> = (0..500)
                .map(|_| {
                    let (limiter, barrier) = (limiter.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        limiter.reserve("a").await.expect("local")
                    })
                })
                .collect();
            let mut taken = 0;
            for task in tasks {
                taken += usize::from(task.await.expect("task"));
            }
            taken
        });
        assert_eq!(taken, 7);
        assert_eq!(limiter.rejected(), 493);
    }
}
