//! Counters several cores bump at once without passing a cache line between them.
//!
//! A counter every decision increments (an outcome, a status class, a latency bucket) is one
//! cache line that both cores write: each increment waits for the line to come over from the
//! other core. [`Striped`] keeps one copy of the counters per stripe, a stripe per thread
//! (threads are dealt stripes in turn as they first count), each on cache lines of its own;
//! reading sums the stripes. `benches/authz.rs`'s `decision_two_threads` group measures what
//! the sharing costs (docs/benchmarks.md).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// One `T` per stripe; [`Striped::local`] is the calling thread's.
pub struct Striped<T> {
    stripes: Box<[CachePadded<T>]>,
}

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Self {
            stripes: (0..stripe_count())
                .map(|_| CachePadded::default())
                .collect(),
        }
    }
}

impl<T> Striped<T> {
    /// The calling thread's stripe. Two threads may share one (more threads than stripes):
    /// the counters stay atomic, so that costs speed, never a count.
    pub fn local(&self) -> &T {
        // `stripes.len()` is a power of two.
        &self.stripes[thread_index() & (self.stripes.len() - 1)]
    }

    /// The sum of one counter over all stripes: `counter` picks it out of a stripe.
    pub fn sum_by(&self, counter: impl Fn(&T) -> &AtomicU64) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| counter(stripe).load(Ordering::Relaxed))
            .sum()
    }
}

impl Striped<AtomicU64> {
    /// Adds one on this thread's stripe.
    pub fn increment(&self) {
        self.local().fetch_add(1, Ordering::Relaxed);
    }

    /// The sum over all stripes.
    pub fn sum(&self) -> u64 {
        self.sum_by(|n| n)
    }
}

/// Twice the cores, rounded up to a power of two: the runtime's workers (one per core) and
/// the odd other thread that counts seldom collide.
fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, usize::from);
        (cores * 2).next_power_of_two().min(256)
    })
}

/// This thread's number, dealt in turn on its first count. A constant-initialised slot with
/// a sentinel, not a lazily initialised one: every count reads it, and this read is one load.
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    INDEX.with(|slot| {
        let mut index = slot.get();
        if index == usize::MAX {
            index = NEXT.fetch_add(1, Ordering::Relaxed);
            slot.set(index);
        }
        index
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_every_thread_add_up() {
        let counter = std::sync::Arc::new(Striped::<AtomicU64>::default());
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
}
