//! The cache under every cached read of the decision: `quick_cache` (S3-FIFO eviction, sharded
//! locks, a reference bit per read) with a deadline per entry, since it has no time to live
//! of its own.
//!
//! Chosen over moka by `benches/cache.rs` (docs/benchmarks.md): a hit costs about a quarter
//! (no read log to replay, no channel send per read), two threads read about four times as
//! many hits per second, and an entry costs about 110 bytes beside its key and value instead
//! of about 350.
//!
//! Loads are single-flight: concurrent misses of one key wait for the first loader. An
//! invalidation that lands while a load is in flight removes its placeholder, so the loaded
//! value is handed to the callers that were waiting but never cached: a logout racing a miss
//! cannot leave the old session cached.
//!
//! In front of the shared cache sits a per-thread one (`thread_front`), so the hottest entries
//! are served without writing a cache line another core reads. An epoch, bumped after every
//! invalidation, keeps it exact (see that module).

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

use super::thread_front::ThreadFront;
use crate::clock::Tick;
use crate::observe::striped::{Counter, Striped};

/// A cached value and when it stops being served.
#[derive(Clone)]
struct Timed<V> {
    until: Tick,
    value: V,
}

/// Weighs an entry by a fixed function of its key and value (approximate bytes).
#[derive(Clone)]
struct Weigh<K, V>(fn(&K, &V) -> u64);

impl<K, V> Weighter<K, Timed<V>> for Weigh<K, V> {
    fn weight(&self, key: &K, timed: &Timed<V>) -> u64 {
        (self.0)(key, &timed.value).max(1)
    }
}

pub struct TimedCache<K: Send, V: Send> {
    entries: Cache<K, Timed<V>, Weigh<K, V>>,
    ttl: Duration,
    /// Calls of `get_or_load`, and the loads they ran: the hit ratio in `/metrics`. Lookups
    /// are striped per thread (every decision counts two); loads are rare.
    lookups: Striped<Counter>,
    loads: AtomicU64,
    /// Bumped after every invalidation; a thread's front serves only what it took from the
    /// shared cache under the current epoch. Padded: read by every lookup, written rarely.
    epoch: CachePadded<AtomicU64>,
    front: ThreadFront<K, V>,
}

impl<K, V> TimedCache<K, V>
where
    K: Eq + Hash + Clone + Send,
    V: Clone + Send,
{
    /// Entries live `ttl`; the cache holds about `bytes` by `weigh`, `typical` bytes an entry
    /// (what its table is sized for). `own` makes a thread's own copy of a hot value for its
    /// front; what the copies must share stays shared (a session's copy slides its origin's
    /// expiry, an API key's copies share one last-use mark: `cache.rs`).
    pub fn new(
        ttl: Duration,
        bytes: u64,
        typical: u64,
        weigh: fn(&K, &V) -> u64,
        own: fn(&V) -> V,
    ) -> Self {
        let items = usize::try_from(bytes / typical.max(1)).unwrap_or(usize::MAX);
        Self {
            entries: Cache::with_weighter(items.max(16), bytes, Weigh(weigh)),
            ttl,
            lookups: Striped::default(),
            loads: AtomicU64::new(0),
            epoch: CachePadded::new(AtomicU64::new(0)),
            front: ThreadFront::new(own),
        }
    }

    /// The live value of `key`, if cached (the tests' look inside).
    #[cfg(test)]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.entries
            .get(key)
            .filter(|timed| timed.until > Tick::now())
            .map(|timed| timed.value)
    }

    /// The value of `key` live at `now`, loading it with `load()` on a miss (one load per key
    /// at a time; the others wait for it). A failed load caches nothing. Counted in
    /// [`Self::lookups`]. `now` is the caller's clock (a decision reads it once for all its
    /// cache reads), not read here.
    ///
    /// A hit, in the thread's front or the shared cache, never awaits. Everything that may
    /// (waiting for another loader, the load itself) is in [`Self::load`]'s future, boxed and
    /// made only on a miss: the decision's future, which hyper moves into place for every
    /// request, does not carry a load's state (`Caches::session`'s future went from 432 to
    /// 128 bytes in a debug build; docs/benchmarks.md, eleventh pass).
    pub async fn get_or_load<Q, E, F>(
        &self,
        key: &Q,
        now: Tick,
        load: impl FnOnce() -> F,
    ) -> Result<V, E>
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = Result<V, E>>,
    {
        self.lookups.increment();
        // Read before the shared lookup: an invalidation landing after this read bumps the
        // epoch past it, so whatever the shared cache gives out below is never served again
        // from the front.
        let epoch = self.epoch.load(Ordering::Acquire);
        let hash = self.front.hash(key);
        if let Some(value) = self.front.get(hash, key, now, epoch) {
            return Ok(value);
        }
        if let Some(timed) = self.entries.get(key)
            && timed.until > now
        {
            return Ok(self.serve_shared(hash, key, timed, epoch));
        }
        Box::pin(self.load(key, now, hash, epoch, load())).await
    }

    /// What `read` makes of `key`'s value when this thread's front holds it live at `now`,
    /// lent rather than cloned (no reference count taken and given back); `None` when the
    /// front does not hold it or `read` gives up. A lookup is counted only when `read`
    /// answers, so a decision that gives up and asks [`Self::get_or_load`] counts once.
    pub fn lend<Q, R>(&self, key: &Q, now: Tick, read: impl FnOnce(&V) -> Option<R>) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        // As in `get_or_load`: the epoch the slot must have been filled under.
        let epoch = self.epoch.load(Ordering::Acquire);
        let hash = self.front.hash(key);
        let answer = self.front.get_with(hash, key, now, epoch, read)?;
        self.lookups.increment();
        Some(answer)
    }

    /// [`Self::get_or_load`] past its hits: waits for another loader of `key` or loads.
    async fn load<Q, E>(
        &self,
        key: &Q,
        now: Tick,
        hash: u64,
        epoch: u64,
        load: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E>
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    {
        loop {
            match self.entries.get_value_or_guard_async(key).await {
                Ok(timed) if timed.until > now => {
                    return Ok(self.serve_shared(hash, key, timed, epoch));
                }
                // Expired: drop it (unless it was replaced meanwhile) and ask again.
                Ok(timed) => {
                    self.entries
                        .remove_if(key, |current| current.until == timed.until);
                }
                Err(guard) => {
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    let value = load.await?;
                    // Err: the key was invalidated during the load; the value is not cached.
                    let _ = guard.insert(Timed {
                        until: Tick::now() + self.ttl,
                        value: value.clone(),
                    });
                    return Ok(value);
                }
            }
        }
    }

    /// A live entry of the shared cache, remembered in this thread's front under the epoch
    /// read before the lookup that found it.
    fn serve_shared<Q>(&self, hash: u64, key: &Q, timed: Timed<V>, epoch: u64) -> V
    where
        Q: ToOwned<Owned = K> + ?Sized,
    {
        let value = timed.value.clone();
        self.front
            .put(hash, key.to_owned(), timed.value, timed.until, epoch);
        value
    }

    pub fn invalidate<Q>(&self, key: &Q)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.entries.remove(key);
        self.forget_fronts();
    }

    pub fn invalidate_all(&self) {
        self.entries.clear();
        self.forget_fronts();
    }

    /// Forgets every entry `matches` picks (a walk over the whole cache: for rare changes).
    pub fn invalidate_where(&self, matches: impl Fn(&K, &V) -> bool) {
        self.entries
            .retain(|key, timed| !matches(key, &timed.value));
        self.forget_fronts();
    }

    /// After the shared cache let go of an entry, and whether or not it held it (a front may
    /// hold what the shared cache already evicted): every thread's front drops everything.
    fn forget_fronts(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// (lookups, misses) through `get_or_load` since start.
    pub fn lookups(&self) -> (u64, u64) {
        (self.lookups.sum(), self.loads.load(Ordering::Relaxed))
    }

    /// Entries held (expired ones not yet dropped included).
    pub fn entry_count(&self) -> u64 {
        self.entries.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn cache(ttl: Duration) -> TimedCache<String, Option<u32>> {
        TimedCache::new(ttl, 1 << 20, 100, |_, _| 100, |v| *v)
    }

    #[tokio::test]
    async fn entries_expire_and_failed_loads_cache_nothing() {
        let cache = cache(Duration::from_millis(40));
        let one = cache
            .get_or_load("a", Tick::now(), || async { Ok::<_, ()>(Some(1)) })
            .await;
        assert_eq!(one, Ok(Some(1)));
        assert_eq!(cache.get("a"), Some(Some(1)));
        // A hit does not call the loader.
        let hit = cache
            .get_or_load("a", Tick::now(), || async { Err(()) })
            .await;
        assert_eq!(hit, Ok(Some(1)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(cache.get("a"), None);
        assert_eq!(
            cache
                .get_or_load("a", Tick::now(), || async { Err(()) })
                .await,
            Err(())
        );
        assert_eq!(cache.get("a"), None);
        let two = cache
            .get_or_load("a", Tick::now(), || async { Ok::<_, ()>(Some(2)) })
            .await;
        assert_eq!(two, Ok(Some(2)));
        cache.invalidate("a");
        assert_eq!(cache.get("a"), None);
    }

    #[tokio::test]
    async fn concurrent_misses_load_once() {
        let cache = Arc::new(cache(Duration::from_secs(60)));
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("k", Tick::now(), || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>(Some(7))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(Some(7)));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_invalidation_during_a_load_wins() {
        let cache = Arc::new(cache(Duration::from_secs(60)));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let loader = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load("s", Tick::now(), || async move {
                        let _ = started_tx.send(());
                        let _ = go_rx.await;
                        Ok::<_, ()>(Some(1))
                    })
                    .await
            })
        };
        started_rx.await.unwrap();
        cache.invalidate("s"); // a logout while the old row is being read
        go_tx.send(()).unwrap();
        assert_eq!(loader.await.unwrap(), Ok(Some(1)));
        assert_eq!(cache.get("s"), None, "the stale load was cached");
    }
}
