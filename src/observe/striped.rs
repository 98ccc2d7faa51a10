//! Counters several cores bump at once without passing a cache line between them, and without
//! a locked instruction.
//!
//! A counter every decision increments (an outcome, a status class, a latency bucket) is one
//! cache line that both cores write: each increment waits for the line to come over from the
//! other core. [`Striped`] keeps one copy of the counters per thread, each on cache lines of
//! its own; reading sums the copies. `benches/authz.rs`'s `decision_two_threads` group measures
//! what the sharing costs (docs/benchmarks.md).
//!
//! A copy belongs to its thread alone (`thread_local::ThreadLocal`: a thread that exits leaves
//! its copy, counts and all, to the next thread given its id), so a [`Counter`] adds with a
//! plain load and store. `fetch_add` would be a lock-prefixed instruction: on the Intel cores
//! of docs/benchmarks.md (fifteenth pass) each drains the store buffer and costs 15 to 20 ns
//! where it stands in a decision, and a decision made eight of them.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use thread_local::ThreadLocal;

/// One `T` per thread; [`Striped::local`] is the calling thread's.
pub struct Striped<T: Send> {
    stripes: ThreadLocal<CachePadded<T>>,
}

impl<T: Send> Default for Striped<T> {
    fn default() -> Self {
        Self {
            stripes: ThreadLocal::new(),
        }
    }
}

impl<T: Send + Sync + Default> Striped<T> {
    /// The calling thread's own copy: the only one whose counters it may [`Counter::add`] to.
    pub fn local(&self) -> &T {
        self.stripes.get_or_default()
    }

    /// The sum of one counter over all threads' copies: `counter` picks it out of a copy.
    pub fn sum_by(&self, counter: impl Fn(&T) -> &Counter) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| counter(stripe).get())
            .fold(0, u64::wrapping_add)
    }
}

impl Striped<Counter> {
    /// Adds one to this thread's copy.
    pub fn increment(&self) {
        self.local().add(1);
    }

    /// The sum over all threads.
    pub fn sum(&self) -> u64 {
        self.sum_by(|n| n)
    }
}

/// A count one thread writes and any thread reads: a counter of a [`Striped`] copy.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Called only on the calling thread's own copy ([`Striped::local`]): with no
    /// other writer, a load and a store lose nothing, and readers see the count whole (an
    /// aligned 8-byte store), at most a few increments late.
    #[inline]
    pub fn add(&self, n: u64) {
        let count = self.0.load(Ordering::Relaxed);
        self.0.store(count.wrapping_add(n), Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_every_thread_add_up() {
        let counter = std::sync::Arc::new(Striped::<Counter>::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter.increment();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        assert_eq!(counter.sum(), 8000);
    }

    /// Threads come and go (a runtime's blocking pool does): a new thread given a dead one's
    /// id carries on from its copy, and nothing counted is lost.
    #[test]
    fn counts_survive_the_threads_that_made_them() {
        let counter = Striped::<Counter>::default();
        for round in 1..=20u64 {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        for _ in 0..500 {
                            counter.increment();
                        }
                    });
                }
            });
            assert_eq!(counter.sum(), round * 2000);
        }
    }
}
