//! The session cache's candidates, measured side by side (criterion; measured, never asserted):
//! what one cache hit costs and what each cached entry costs in memory beyond its key and value.
//!
//! `cargo bench --bench cache`
//!
//! - `cache_hit/*`: one hit on a cache of 100,000 sessions keyed by their 32-byte digest, the key
//!   walking through all of them (so the reads are not all one hot cache line), configured as
//!   `authz::cache` configures its caches (time to live, weighted capacity):
//!   `moka_future` (`moka::future::Cache`, the cache before this bench), `moka_sync`
//!   (`moka::sync::Cache`), `quick_cache` (`quick_cache::sync::Cache`, S3-FIFO, the one now
//!   used, with the deadline checked on read).
//! - Printed before the group: the bytes each cache allocates per entry (keys and values built
//!   before counting), and hits per second with two threads reading at once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test, bench or example fails loudly: a panic is its failure"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOC_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOC_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOC_BYTES.fetch_add(
                new_size.saturating_sub(layout.size()) as u64,
                Ordering::Relaxed,
            );
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const ENTRIES: usize = 100_000;
const TTL: Duration = Duration::from_secs(3600);
const CAPACITY_BYTES: u64 = 64 << 20;

type Key = [u8; 32];

/// Stands in for a cached session: what the value weighs does not change what the cache adds.
struct Value {
    _user_id: i64,
    _expire_at: AtomicU64,
}

fn keys() -> Vec<Key> {
    (0..ENTRIES)
        .map(|i| {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            key[8..16]
                .copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            key
        })
        .collect()
}

fn values() -> Vec<Arc<Value>> {
    (0..ENTRIES)
        .map(|i| {
            Arc::new(Value {
                _user_id: i as i64,
                _expire_at: AtomicU64::new(0),
            })
        })
        .collect()
}

/// `quick_cache` has no time to live: the entry carries its deadline and a read past it is a
/// miss, which is how `authz::cache` uses it.
type Deadlined = (Instant, Option<Arc<Value>>);

#[derive(Clone)]
struct Weigh;
impl quick_cache::Weighter<Key, Deadlined> for Weigh {
    fn weight(&self, _: &Key, _: &Deadlined) -> u64 {
        300
    }
}

fn moka_future() -> moka::future::Cache<Key, Option<Arc<Value>>> {
    moka::future::Cache::builder()
        .time_to_live(TTL)
        .max_capacity(CAPACITY_BYTES)
        .weigher(|_: &Key, _: &Option<Arc<Value>>| 300)
        .build()
}

fn moka_sync() -> moka::sync::Cache<Key, Option<Arc<Value>>> {
    moka::sync::Cache::builder()
        .time_to_live(TTL)
        .max_capacity(CAPACITY_BYTES)
        .weigher(|_: &Key, _: &Option<Arc<Value>>| 300)
        .build()
}

fn quick() -> quick_cache::sync::Cache<Key, Deadlined, Weigh> {
    quick_cache::sync::Cache::with_weighter(ENTRIES * 2, CAPACITY_BYTES, Weigh)
}

fn quick_get(cache: &quick_cache::sync::Cache<Key, Deadlined, Weigh>, key: &Key) -> bool {
    cache
        .get(key)
        .is_some_and(|(deadline, value)| deadline > Instant::now() && value.is_some())
}

/// Bytes the cache allocates for `ENTRIES` inserts, per entry (keys and values already built).
fn bytes_per_entry(insert_all: impl FnOnce(Vec<Key>, Vec<Arc<Value>>)) -> u64 {
    let (keys, values) = (keys(), values());
    ALLOC_BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    insert_all(keys, values);
    COUNTING.store(false, Ordering::Relaxed);
    ALLOC_BYTES.load(Ordering::Relaxed) / ENTRIES as u64
}

/// Hits per second with two threads reading at once (the authz listener's two workers).
fn two_threads(get: impl Fn(&Key) -> bool + Sync) -> f64 {
    let keys = keys();
    let reads = 2_000_000usize;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..2 {
            let (keys, get) = (&keys, &get);
            scope.spawn(move || {
                let mut hits = 0usize;
                for i in 0..reads / 2 {
                    hits += usize::from(get(&keys[(i * 7 + t * 13) % ENTRIES]));
                }
                assert_eq!(hits, reads / 2);
            });
        }
    });
    reads as f64 / started.elapsed().as_secs_f64()
}

fn print_footprints(rt: &tokio::runtime::Runtime) {
    let future = bytes_per_entry(|keys, values| {
        let cache = moka_future();
        rt.block_on(async {
            for (key, value) in keys.into_iter().zip(values) {
                cache.insert(key, Some(value)).await;
            }
            cache.run_pending_tasks().await;
        });
        std::mem::forget(cache);
    });
    let sync = bytes_per_entry(|keys, values| {
        let cache = moka_sync();
        for (key, value) in keys.into_iter().zip(values) {
            cache.insert(key, Some(value));
        }
        cache.run_pending_tasks();
        std::mem::forget(cache);
    });
    let quick = bytes_per_entry(|keys, values| {
        let cache = quick();
        let deadline = Instant::now() + TTL;
        for (key, value) in keys.into_iter().zip(values) {
            cache.insert(key, (deadline, Some(value)));
        }
        std::mem::forget(cache);
    });
    println!(
        "cache: bytes allocated per entry beyond key and value: moka future {future}, moka sync {sync}, quick_cache {quick}"
    );
}

fn cache_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    print_footprints(&rt);
    let keys = keys();

    let future = moka_future();
    let sync = moka_sync();
    let quick = quick();
    let deadline = Instant::now() + TTL;
    rt.block_on(async {
        for (key, value) in keys.iter().zip(values()) {
            future.insert(*key, Some(value.clone())).await;
            sync.insert(*key, Some(value.clone()));
            quick.insert(*key, (deadline, Some(value)));
        }
        future.run_pending_tasks().await;
    });
    sync.run_pending_tasks();

    println!(
        "cache: hits/s with two threads: moka sync {:.1} M, quick_cache {:.1} M (moka future: one runtime per thread)",
        two_threads(|key| sync.get(key).flatten().is_some()) / 1e6,
        two_threads(|key| quick_get(&quick, key)) / 1e6,
    );

    let mut group = c.benchmark_group("cache_hit");
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 7) % ENTRIES;
        i
    };
    // One `block_on` around the whole batch, so the runtime's entry is not in the figure.
    group.bench_function("moka_future", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(future.get(&keys[next()]).await.flatten().is_some());
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("moka_sync", |b| {
        b.iter(|| black_box(sync.get(&keys[next()]).flatten().is_some()))
    });
    group.bench_function("quick_cache", |b| {
        b.iter(|| black_box(quick_get(&quick, &keys[next()])))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = cache_hit
}
criterion_main!(benches);
