//! A small per-thread front for the hottest entries of a shared cache.
//!
//! Why: a hit in the shared cache (`timed_cache`, the token minter's) takes its shard's lock
//! word for reading and clones the entry's `Arc`. Both are writes, so when the two cores serve
//! the same session, API key or user (a trading bot on several connections does exactly that),
//! each hit pulls those cache lines away from the other core (`decision_two_threads` in
//! `benches/authz.rs`). The front keeps, per thread, a few direct-mapped slots; a hit there
//! touches only this thread's memory. An entry hit often enough gets a copy of its own
//! (`own`), so even its reference count stops being shared.
//!
//! Exactness is the owner's: each slot carries the owner's `epoch` as read *before* the shared
//! lookup that filled it, and a hit requires it unchanged. The owner removes an invalidated
//! entry from the shared cache first and bumps the epoch after, so a value read before the
//! removal was stored under the old epoch and is never served again. Slots also keep the
//! shared entry's deadline. Nothing here is needed for correctness: a miss falls through to
//! the shared cache, and a slot only ever holds what the shared cache gave out.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hash};

use quick_cache::Equivalent;
use thread_local::ThreadLocal;

use crate::clock::Tick;

/// Slots per thread and cache: a handful of hot principals per core, a few KiB each.
const SLOTS: usize = 64;

/// Hits of a shared value before this thread takes a copy of its own: one-off entries (most
/// sessions) are never copied, hot ones are after a few requests.
const HITS_BEFORE_OWN_COPY: u8 = 8;

struct Slot<K, V> {
    hash: u64,
    key: K,
    value: V,
    until: Tick,
    epoch: u64,
    /// Hits so far while `value` is still the shared one; `u8::MAX` once it is this thread's
    /// own copy.
    hits: u8,
}

/// One thread's slots, indexed by the high bits of a key's hash.
type Slots<K, V> = RefCell<Box<[Option<Slot<K, V>>]>>;

pub struct ThreadFront<K: Send, V: Send> {
    slots: ThreadLocal<Slots<K, V>>,
    /// Seeded per front: a collision costs only a slot, never a wrong value (keys compare).
    hasher: foldhash::fast::RandomState,
    /// Makes this thread's own copy of a hot value (deep: its reference count and fields
    /// live on lines only this thread writes).
    own: fn(&V) -> V,
}

impl<K, V> ThreadFront<K, V>
where
    K: Eq + Hash + Send,
    V: Clone + Send,
{
    pub fn new(own: fn(&V) -> V) -> Self {
        Self {
            slots: ThreadLocal::new(),
            hasher: foldhash::fast::RandomState::default(),
            own,
        }
    }

    pub fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// This thread's value for `key`, if it was filled under `epoch` and is live at `now`.
    pub fn get<Q>(&self, hash: u64, key: &Q, now: Tick, epoch: u64) -> Option<V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.get_with(hash, key, now, epoch, |value| Some(value.clone()))
    }

    /// What `read` makes of this thread's value for `key` (as [`Self::get`] finds it),
    /// without cloning the value.
    pub fn get_with<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        now: Tick,
        epoch: u64,
        read: impl FnOnce(&V) -> Option<R>,
    ) -> Option<R>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let slots = self.slots.get()?;
        // Nothing borrows the slots across a call; a failed borrow would only be a miss.
        let mut slots = slots.try_borrow_mut().ok()?;
        let slot = slots.get_mut(index(hash))?.as_mut()?;
        if slot.hash != hash
            || slot.epoch != epoch
            || slot.until <= now
            || !key.equivalent(&slot.key)
        {
            return None;
        }
        if slot.hits < HITS_BEFORE_OWN_COPY {
            slot.hits += 1;
        } else if slot.hits != u8::MAX {
            slot.value = (self.own)(&slot.value);
            slot.hits = u8::MAX;
        }
        read(&slot.value)
    }

    /// Remembers `value` (as the shared cache gave it out, live until `until`) for this
    /// thread, under the epoch read before the shared lookup.
    pub fn put(&self, hash: u64, key: K, value: V, until: Tick, epoch: u64) {
        let slots = self
            .slots
            .get_or(|| RefCell::new((0..SLOTS).map(|_| None).collect()));
        let Ok(mut slots) = slots.try_borrow_mut() else {
            return;
        };
        if let Some(slot) = slots.get_mut(index(hash)) {
            *slot = Some(Slot {
                hash,
                key,
                value,
                until,
                epoch,
                hits: 0,
            });
        }
    }
}

fn index(hash: u64) -> usize {
    // The high bits: quick_cache picks its shard from the low ones of its own hash, but this
    // hash is seeded apart, so any bits do; the high ones mix best in foldhash.
    (hash >> 58) as usize % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn front() -> ThreadFront<String, Arc<String>> {
        ThreadFront::new(|v| Arc::new(String::clone(v)))
    }

    #[test]
    fn a_slot_serves_only_its_key_epoch_and_deadline() {
        let front = front();
        let now = Tick::now();
        let until = now + Duration::from_secs(60);
        let hash = front.hash("a");
        assert_eq!(front.get(hash, "a", now, 0), None, "empty");
        front.put(hash, "a".into(), Arc::new("one".into()), until, 3);
        assert_eq!(
            front.get(hash, "a", now, 3).as_deref().map(|s| s.as_str()),
            Some("one")
        );
        assert_eq!(front.get(hash, "a", now, 4), None, "another epoch");
        assert_eq!(front.get(hash, "a", until, 3), None, "past its deadline");
        assert_eq!(front.get(front.hash("b"), "b", now, 3), None, "another key");
        // Another thread has slots of its own.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(front.get(hash, "a", now, 3), None));
        });
    }

    #[test]
    fn a_hot_value_becomes_this_threads_own_copy() {
        let front = front();
        let now = Tick::now();
        let shared = Arc::new(String::from("hot"));
        let hash = front.hash("k");
        front.put(
            hash,
            "k".into(),
            shared.clone(),
            now + Duration::from_secs(60),
            0,
        );
        for _ in 0..HITS_BEFORE_OWN_COPY {
            let hit = front.get(hash, "k", now, 0).expect("hit");
            assert!(Arc::ptr_eq(&hit, &shared), "shared while not yet hot");
        }
        let own = front.get(hash, "k", now, 0).expect("hit");
        assert!(!Arc::ptr_eq(&own, &shared), "copied once hot");
        assert_eq!(*own, *shared);
        let again = front.get(hash, "k", now, 0).expect("hit");
        assert!(Arc::ptr_eq(&again, &own), "copied once only");
        assert_eq!(Arc::strong_count(&shared), 1, "the shared value is let go");
    }
}
