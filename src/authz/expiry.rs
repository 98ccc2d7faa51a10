//! Write-behind of the sliding session expiry and of API keys' last use: the decision moves
//! the expiry (or notes the use) in memory and queues it for the database at most once per
//! session (key) per interval; one task per queue flushes it in batches. A crash loses at most
//! one interval of sliding (of last-use precision).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::{Store, StoreResult};

/// The sending halves, held by the decision path.
#[derive(Clone)]
pub struct ExpiryQueue {
    sender: mpsc::Sender<(String, i64)>,
    uses: mpsc::Sender<(String, i64)>,
}

impl ExpiryQueue {
    /// Starts the flushers; they drain and write what is queued once every sender is dropped.
    pub fn start(store: Arc<dyn Store>) -> (ExpiryQueue, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(65_536);
        let (uses, used) = mpsc::channel(65_536);
        let expiries = tokio::spawn(flush(store.clone(), receiver, "session expiries", {
            |store: Arc<dyn Store>, rows: Vec<(String, i64)>| async move {
                store.extend_sessions(&rows).await
            }
        }));
        let key_uses = tokio::spawn(flush(store, used, "API key uses", {
            |store: Arc<dyn Store>, rows: Vec<(String, i64)>| async move {
                store.record_api_key_uses(&rows).await
            }
        }));
        let both = tokio::spawn(async move {
            let _ = tokio::join!(expiries, key_uses);
        });
        (ExpiryQueue { sender, uses }, both)
    }

    /// Queues a new expiry for a session; never waits (a full queue skips this update, the
    /// next request of the session queues it again).
    pub fn push(&self, session_id: &str, expire_at: i64) {
        let _ = self.sender.try_send((session_id.to_owned(), expire_at));
    }

    /// Queues the last use of a key; never waits (a full queue skips it, like [`Self::push`]).
    pub fn push_key_use(&self, kid: &str, at: i64) {
        let _ = self.uses.try_send((kid.to_owned(), at));
    }
}

async fn flush<W, F>(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<(String, i64)>,
    what: &'static str,
    write: W,
) where
    W: Fn(Arc<dyn Store>, Vec<(String, i64)>) -> F,
    F: Future<Output = StoreResult<()>>,
{
    let mut batch = Vec::with_capacity(1024);
    while receiver.recv_many(&mut batch, 1024).await > 0 {
        // Keep only the latest time per id.
        let latest: HashMap<String, i64> =
            batch.drain(..).fold(HashMap::new(), |mut m, (id, t)| {
                let entry = m.entry(id).or_insert(t);
                *entry = (*entry).max(t);
                m
            });
        let rows: Vec<(String, i64)> = latest.into_iter().collect();
        for attempt in 1..=5u32 {
            match write(store.clone(), rows.clone()).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, attempt, what, "write-behind not written yet");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
        // Batch a little: one write per second at most under load.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
