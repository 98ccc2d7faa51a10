//! Write-behind of the sliding session expiry: the decision moves the expiry in memory and
//! queues it for the database at most once per session per interval; one task flushes the
//! queue in batches. A crash loses at most one interval of sliding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::store::Store;

/// The sending half, held by the decision path.
#[derive(Clone)]
pub struct ExpiryQueue {
    sender: mpsc::Sender<(String, i64)>,
}

impl ExpiryQueue {
    /// Starts the flusher; it drains and writes what is queued once every sender is dropped.
    pub fn start(store: Arc<dyn Store>) -> (ExpiryQueue, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(65_536);
        (ExpiryQueue { sender }, tokio::spawn(flush(store, receiver)))
    }

    /// Queues a new expiry for a session; never waits (a full queue skips this update, the
    /// next request of the session queues it again).
    pub fn push(&self, session_id: &str, expire_at: i64) {
        let _ = self.sender.try_send((session_id.to_owned(), expire_at));
    }
}

async fn flush(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<(String, i64)>) {
    let mut batch = Vec::with_capacity(1024);
    while receiver.recv_many(&mut batch, 1024).await > 0 {
        // Keep only the latest expiry per session.
        let latest: HashMap<String, i64> =
            batch.drain(..).fold(HashMap::new(), |mut m, (id, t)| {
                let entry = m.entry(id).or_insert(t);
                *entry = (*entry).max(t);
                m
            });
        let rows: Vec<(String, i64)> = latest.into_iter().collect();
        for attempt in 1..=5u32 {
            match store.extend_sessions(&rows).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, attempt, "session expiries not written yet");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
        // Batch a little: one write per second at most under load.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
