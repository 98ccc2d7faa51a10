//! Password hashing under a cap. Each Argon2id check holds a 19 MiB block on a blocking thread
//! for tens of milliseconds; left to tokio's blocking pool (512 threads) a burst of logins
//! would run hundreds at once and take gigabytes. Here at most `concurrency` hashes run at once
//! (one per core by default) and at most `queue` more wait for a turn; beyond that the request
//! is answered `503 server.busy` at once, so memory is bounded by `concurrency` blocks whatever
//! the burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;

/// The hashing cap of one process.
pub struct HashPool {
    /// Turns to hash: `concurrency` permits.
    running: Arc<Semaphore>,
    /// Places in the building, running or waiting: `concurrency + queue` permits, taken without
    /// waiting.
    admitted: Arc<Semaphore>,
    concurrency: usize,
    queue: usize,
    refused: AtomicU64,
}

impl HashPool {
    /// `concurrency` hashes at once (0: one per core), `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            concurrency
        };
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency.saturating_add(queue))),
            concurrency,
            queue,
            refused: AtomicU64::new(0),
        }
    }

    /// Runs `work` (a password hash or check) on a blocking thread when a turn is free; `503
    /// server.busy` at once when the queue is full.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Refused>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Busy);
        };
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Refused::Failed)?;
        // The permits travel with the work: a client that hangs up while its hash runs does
        // not free a turn before the thread does.
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop((running, admitted));
            result
        })
        .await
        .map_err(|_| Refused::Failed)
    }

    /// Hashes running at most at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Requests waiting for a turn at most.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// Hashes running or waiting now.
    pub fn in_use(&self) -> usize {
        (self.concurrency + self.queue).saturating_sub(self.admitted.available_permits())
    }

    /// Requests refused because the queue was full, since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Why a hash did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every turn and queue place is taken: `503 server.busy`, retrying later may work.
    Busy,
    /// The blocking thread panicked or the pool was closed.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_concurrency_run_and_a_full_queue_is_refused() {
        let pool = Arc::new(HashPool::new(2, 3));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (pool, now, peak) = (pool.clone(), now.clone(), peak.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        let mut done = 0;
        let mut busy_answers = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => done += 1,
                Err(error) => {
                    assert_eq!(error, Refused::Busy);
                    busy_answers += 1;
                }
            }
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2, "never more than 2 at once");
        assert_eq!(done + busy_answers, 20);
        assert!(
            done >= 5,
            "the 2 running and the 3 queued are served: {done}"
        );
        assert_eq!(pool.refused(), busy_answers as u64);
        assert_eq!(pool.in_use(), 0);
    }
}
