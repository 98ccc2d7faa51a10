//! Fixed windows per key, counted in this process: the in-process rate limits (`Limiter` on
//! SQLite) and the API-key replay guard (`authz::replay`, a window of one).
//!
//! Written here rather than taken from a cache crate because both callers need one property
//! that a cache does not promise: **taking a slot is one atomic step under a lock**, so of any
//! number of concurrent attempts on one key at most `limit` succeed. A cache's
//! get-or-insert coalesces loaders on a best-effort basis; a burst of 100 identical API-key
//! requests once got two of them through (`tests/it/limits.rs`,
//! `replays_racing_on_one_instance_pass_once`).
//!
//! Bounded: at most `capacity` keys are remembered; beyond that the oldest window is forgotten
//! first (first in, first out). Forgetting a window can only let an attempt through that the
//! window would have refused, never refuse a fresh one; the callers document what that means
//! for them.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Shards: concurrent attempts on different keys rarely wait for each other.
const SHARDS: usize = 64;

/// Fixed windows of `window` per key, at most `capacity` keys.
pub struct Windows<K> {
    shards: Box<[Mutex<Shard<K>>]>,
    window: Duration,
    per_shard: usize,
    hasher: std::hash::RandomState,
}

struct Shard<K> {
    /// The open window of each key: when it ends and what it has counted.
    open: HashMap<K, Window>,
    /// Keys in the order their windows opened, which is the order they end in (every window
    /// lasts the same time and the clock is read under the lock); entries of windows that were
    /// closed or reopened since are skipped when they come out.
    order: VecDeque<(Instant, K)>,
}

#[derive(Clone, Copy)]
struct Window {
    ends: Instant,
    count: u32,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    pub fn new(window: Duration, capacity: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    open: HashMap::new(),
                    order: VecDeque::new(),
                })
            })
            .collect();
        Self {
            shards,
            window,
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Counts one attempt of `key` when its window has counted fewer than `limit` (opening a
    /// window if none is open); true when it was counted.
    pub fn take<Q>(&self, key: &Q, limit: u32) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now = Instant::now();
        let mut shard = self.shard(key);
        shard.forget_ended(now);
        if let Some(window) = shard.open.get_mut(key) {
            if window.count >= limit {
                return false;
            }
            window.count += 1;
            return true;
        }
        if limit == 0 {
            return false;
        }
        while shard.open.len() >= self.per_shard {
            if !shard.forget_oldest() {
                break;
            }
        }
        let ends = now + self.window;
        let owned = key.to_owned();
        shard.order.push_back((ends, owned.clone()));
        shard.open.insert(owned, Window { ends, count: 1 });
        true
    }

    /// What `key`'s open window has counted (0 when none is open).
    pub fn count<Q>(&self, key: &Q) -> u32
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        let shard = self.shard(key);
        shard
            .open
            .get(key)
            .filter(|window| window.ends > now)
            .map_or(0, |window| window.count)
    }

    /// Takes one count back from `key`'s open window, if any.
    pub fn give_back<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(window) = self.shard(key).open.get_mut(key) {
            window.count = window.count.saturating_sub(1);
        }
    }

    /// Closes `key`'s window.
    pub fn close<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).open.remove(key);
    }

    /// Keys with an open window (ended ones not yet swept included), for tests and metrics.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).open.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, Shard<K>> {
        lock(&self.shards[(self.hasher.hash_one(key) as usize) % self.shards.len()])
    }
}

impl<K: Hash + Eq> Shard<K> {
    /// Drops the windows that have ended by `now` (they sit at the front of `order`).
    fn forget_ended(&mut self, now: Instant) {
        while let Some((ends, _)) = self.order.front() {
            if *ends > now {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Drops the oldest entry of `order` and its window if the entry is still that window's;
    /// false when there was nothing left to drop.
    fn forget_oldest(&mut self) -> bool {
        let Some((ends, key)) = self.order.pop_front() else {
            return false;
        };
        if self
            .open
            .get(&key)
            .is_some_and(|window| window.ends == ends)
        {
            self.open.remove(&key);
        }
        true
    }
}

/// A panic while a shard was held cannot leave it inconsistent in a way that matters (each
/// step is a plain insert or remove), so a poisoned lock is used as it is rather than failing
/// every later attempt.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_window_counts_up_to_its_limit_then_ends() {
        let windows = Windows::<String>::new(Duration::from_millis(50), 100);
        assert!(windows.take("a", 2));
        assert!(windows.take("a", 2));
        assert!(!windows.take("a", 2));
        assert!(windows.take("b", 2));
        assert_eq!(windows.count("a"), 2);
        windows.give_back("a");
        assert!(windows.take("a", 2));
        windows.close("a");
        assert_eq!(windows.count("a"), 0);
        assert!(windows.take("a", 1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(windows.count("a"), 0);
        assert!(windows.take("a", 1));
        assert!(!windows.take("c", 0));
    }

    #[test]
    fn a_full_set_forgets_its_oldest_and_never_refuses_a_new_key() {
        let windows = Windows::<u128>::new(Duration::from_secs(60), 64);
        for n in 0..10_000u128 {
            assert!(windows.take(&n, 1), "key {n}");
        }
        // One per shard at most, and the newest are remembered.
        assert!(windows.len() <= SHARDS);
        assert!(!windows.take(&9_999, 1));
    }

    #[test]
    fn concurrent_attempts_on_one_key_take_exactly_the_limit() {
        for limit in [1u32, 5] {
            let windows = Arc::new(Windows::<u128>::new(Duration::from_secs(60), 1_000));
            let barrier = Arc::new(std::sync::Barrier::new(16));
            let threads: Vec<_> = (0..16)
                .map(|_| {
                    let (windows, barrier) = (windows.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        (0..50).filter(|_| windows.take(&7, limit)).count()
                    })
                })
                .collect();
            let taken: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(taken, limit as usize);
        }
    }
}
