//! A value every request reads and a rare writer replaces as a whole: the permission and
//! restriction tables, the signing keys.
//!
//! `ArcSwap::load` alone costs each read a slot in arc-swap's debt list, written and paid back
//! (a fenced write and another write); `load_full` instead bumps the one reference count every
//! core shares. Three such reads per allowed decision came to about 40 ns (`perf`, pinned,
//! docs/benchmarks.md, twelfth pass). Here each thread keeps its own `arc_swap::Cache`: a read
//! compares the shared pointer with the one it holds (a plain load) and touches nothing
//! another core writes. A replacement is seen by a thread's next read.

use std::cell::RefCell;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use thread_local::ThreadLocal;

type Reader<T> = RefCell<Cache<Arc<ArcSwap<T>>, Arc<T>>>;

pub struct Snapshot<T: Send + Sync> {
    shared: Arc<ArcSwap<T>>,
    /// Each thread's cached copy of `shared`'s pointer (it keeps the value it last read alive
    /// until its next read).
    readers: ThreadLocal<Reader<T>>,
}

impl<T: Send + Sync> Snapshot<T> {
    pub fn new(value: T) -> Self {
        Self {
            shared: Arc::new(ArcSwap::from_pointee(value)),
            readers: ThreadLocal::new(),
        }
    }

    /// What `read` makes of the current value, through this thread's cache.
    pub fn read<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        let reader = self
            .readers
            .get_or(|| RefCell::new(Cache::new(self.shared.clone())));
        match reader.try_borrow_mut() {
            Ok(mut cache) => read(cache.load()),
            // A read inside a read on this thread: served by a plain load.
            Err(_) => read(&self.shared.load()),
        }
    }

    /// The current value, for readers that keep it (rare paths: the JWKS, the tests).
    pub fn load_full(&self) -> Arc<T> {
        self.shared.load_full()
    }

    /// Makes `value` the one every read sees from now on.
    pub fn store(&self, value: Arc<T>) {
        self.shared.store(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_sees_the_latest_store_on_every_thread() {
        let snapshot = Snapshot::new(1);
        assert_eq!(snapshot.read(|v| *v), 1);
        snapshot.store(Arc::new(2));
        assert_eq!(snapshot.read(|v| *v), 2, "this thread's cache revalidates");
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(snapshot.read(|v| *v), 2);
                snapshot.store(Arc::new(3));
            });
        });
        assert_eq!(snapshot.read(|v| *v), 3, "a store on another thread");
        assert_eq!(*snapshot.load_full(), 3);
    }

    #[test]
    fn a_nested_read_is_served_too() {
        let snapshot = Snapshot::new(String::from("outer"));
        let both =
            snapshot.read(|outer| format!("{outer}+{}", snapshot.read(|inner| inner.clone())));
        assert_eq!(both, "outer+outer");
    }
}
