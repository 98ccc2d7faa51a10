//! API-key replay protection: a signed request (kid, nonce, signature) is accepted once per
//! nonce window. The check is one atomic insert-if-absent, so two identical requests racing
//! each other cannot both pass.
//!
//! Two stores:
//! - **memory**, per instance: 128-bit digests in a window of one (`limits::windows`, taken
//!   under a lock), the oldest forgotten first. A fresh request is always admitted (a full set
//!   forgets its oldest entry, never refuses); so the protection holds while an instance sees
//!   fewer than [`MEMORY_CAPACITY`] signed requests per window (spread over its shards), and a
//!   replay sent to another instance is not recognised.
//! - **redis**, shared: `SET key 1 NX PX window` on Redis, so a copy sent to any instance is
//!   refused. Redis unreachable means the request cannot be checked: it is refused (503).

use std::time::Duration;

use aws_lc_rs::digest;

/// Signed requests remembered per instance by the memory store (about 100 bytes each).
pub const MEMORY_CAPACITY: usize = 1_000_000;

/// How long a Redis round trip (or a reconnection) may take before the request is refused.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// The store cannot say whether the request is fresh.
#[derive(Debug, thiserror::Error)]
#[error("replay store unavailable: {0}")]
pub struct Unavailable(String);

/// Where seen requests are remembered.
pub enum ReplayGuard {
    Memory(crate::limits::windows::Windows<u128>),
    Redis {
        connection: redis::aio::ConnectionManager,
        window_ms: u64,
    },
}

impl ReplayGuard {
    /// The per-instance store, remembering each request for `window`.
    pub fn memory(window: Duration) -> Self {
        Self::Memory(crate::limits::windows::Windows::new(
            window,
            MEMORY_CAPACITY,
        ))
    }

    /// The shared store on Redis at `url` (`password` when the URL has none). Connects lazily:
    /// a Redis that is down at start refuses API-key requests until it is up.
    pub fn redis(url: &str, password: &str, window: Duration) -> Result<Self, Unavailable> {
        use redis::IntoConnectionInfo;
        let fail = |e: redis::RedisError| Unavailable(e.to_string());
        let mut info = url.into_connection_info().map_err(fail)?;
        if !password.is_empty() && info.redis_settings().password().is_none() {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(fail)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let connection =
            redis::aio::ConnectionManager::new_lazy_with_config(client, config).map_err(fail)?;
        Ok(Self::Redis {
            connection,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1),
        })
    }

    /// Records the request; true when it was not seen before in its window.
    pub async fn first_sight(
        &self,
        kid: &str,
        nonce: &[u8],
        signature: &[u8],
    ) -> Result<bool, Unavailable> {
        let digest = fingerprint(kid, nonce, signature);
        match self {
            Self::Memory(seen) => Ok(seen.take(&digest, 1)),
            Self::Redis {
                connection,
                window_ms,
            } => {
                let key = format!("barong:apikey:replay:{digest:032x}");
                let mut connection = connection.clone();
                let mut command = redis::cmd("SET");
                command.arg(&key).arg(1).arg("NX").arg("PX").arg(*window_ms);
                let set = command.query_async::<Option<String>>(&mut connection);
                match tokio::time::timeout(REDIS_TIMEOUT, set).await {
                    Ok(Ok(stored)) => Ok(stored.is_some()),
                    Ok(Err(error)) => Err(Unavailable(error.to_string())),
                    Err(_) => Err(Unavailable("timed out".into())),
                }
            }
        }
    }
}

/// 128 bits of SHA-256 over the three headers (length-prefixed, so no two triples collide by
/// moving a separator): a fixed-size key whatever the client sends.
fn fingerprint(kid: &str, nonce: &[u8], signature: &[u8]) -> u128 {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in [kid.as_bytes(), nonce, signature] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    let sum = context.finish();
    let mut first = [0u8; 16];
    first.copy_from_slice(&sum.as_ref()[..16]);
    u128::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_request_is_fresh_once() {
        let guard = ReplayGuard::memory(Duration::from_secs(10));
        // (kid, nonce) of four checks in turn, and whether each is fresh.
        for (kid, nonce, fresh) in [
            ("kid", "1", true),
            ("kid", "1", false),
            ("kid", "2", true),
            // The same bytes split elsewhere between kid and nonce.
            ("ki", "d1", true),
        ] {
            let seen = guard.first_sight(kid, nonce.as_bytes(), b"sig").await;
            assert_eq!(seen.expect("memory"), fresh, "{kid} {nonce}");
        }
    }

    #[test]
    fn identical_requests_racing_pass_once() {
        let guard = Arc::new(ReplayGuard::memory(Duration::from_secs(10)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .expect("runtime");
        let fresh = runtime.block_on(async {
            let barrier = Arc::new(tokio::sync::Barrier::new(200));
            let tasks: Vec<_> = (0..200)
                .map(|_| {
                    let (guard, barrier) = (guard.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        guard
                            .first_sight("kid", b"1", b"sig")
                            .await
                            .expect("memory")
                    })
                })
                .collect();
            let mut fresh = 0;
            for task in tasks {
                fresh += usize::from(task.await.expect("task"));
            }
            fresh
        });
        assert_eq!(fresh, 1);
    }

    #[tokio::test]
    async fn a_full_cache_never_refuses_a_fresh_request() {
        let guard = ReplayGuard::Memory(crate::limits::windows::Windows::new(
            Duration::from_secs(60),
            10,
        ));
        for n in 0..1000 {
            let nonce = n.to_string();
            assert!(
                guard
                    .first_sight("kid", nonce.as_bytes(), b"sig")
                    .await
                    .expect("memory")
            );
        }
    }
}
