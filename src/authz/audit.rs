//! The activity writer of the authz path: AUDIT and denied decisions are queued without waiting
//! and written in batches by one background task, so the decision never waits for the database.
//! On shutdown the queue is drained before the process exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::NewActivity;
use crate::store::Store;

/// Queue capacity: beyond this, rows are dropped (and counted) rather than slowing decisions.
const QUEUE: usize = 16_384;
const BATCH: usize = 512;

/// The sending half, held by the decision path.
#[derive(Clone)]
pub struct AuditQueue {
    sender: mpsc::Sender<NewActivity>,
    dropped: Arc<AtomicU64>,
}

impl AuditQueue {
    /// Starts the writer task. It ends, after writing everything queued, once every
    /// [`AuditQueue`] clone is dropped.
    pub fn start(store: Arc<dyn Store>) -> (AuditQueue, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_batches(store, receiver));
        let queue = AuditQueue {
            sender,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (queue, task)
    }

    /// Queues one row; never waits.
    pub fn record(&self, activity: NewActivity) {
        if self.sender.try_send(activity).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rows dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<NewActivity>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        write_with_retry(store.as_ref(), &batch).await;
        batch.clear();
    }
}

/// A database outage delays rows; after a few attempts they are logged as lost.
async fn write_with_retry(store: &dyn Store, batch: &[NewActivity]) {
    for attempt in 1..=5u32 {
        match store.insert_activities(batch).await {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, attempt, rows = batch.len(), "activity batch not written yet");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
    tracing::error!(rows = batch.len(), "activity batch lost after retries");
}
