//! Runs the PostgreSQL migrations (the list is in `store/migrate.rs`).

use deadpool_postgres::Client;

use crate::store::migrate::{BOOKKEEPING, PG_ADVISORY_LOCK, POSTGRES};
use crate::store::{StoreError, StoreResult};

/// Applies pending PostgreSQL migrations, holding the advisory lock for the whole run.
pub(super) async fn apply(client: &mut Client) -> StoreResult<Vec<String>> {
    let fail = |version: &str, e: tokio_postgres::Error| {
        StoreError::Migration(format!("{version}: {}", super::describe(&e)))
    };
    client
        .execute("SELECT pg_advisory_lock($1)", &[&PG_ADVISORY_LOCK])
        .await
        .map_err(|e| fail("lock", e))?;
    let result = apply_postgres_locked(client, &fail).await;
    // Unlock even after a failure; the lock would otherwise live as long as the pooled connection.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&PG_ADVISORY_LOCK])
        .await;
    result
}

async fn apply_postgres_locked(
    client: &mut Client,
    fail: &impl Fn(&str, tokio_postgres::Error) -> StoreError,
) -> StoreResult<Vec<String>> {
    client
        .batch_execute(BOOKKEEPING)
        .await
        .map_err(|e| fail("schema_migrations", e))?;
    let mut applied = Vec::new();
    for migration in POSTGRES {
        let version = migration.version;
        let tx = client.transaction().await.map_err(|e| fail(version, e))?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&version],
            )
            .await
            .map_err(|e| fail(version, e))?
            .is_some();
        if done {
            continue;
        }
        tx.batch_execute(migration.sql)
            .await
            .map_err(|e| fail(version, e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now()::text)",
            &[&version],
        )
        .await
        .map_err(|e| fail(version, e))?;
        tx.commit().await.map_err(|e| fail(version, e))?;
        applied.push(version.to_owned());
    }
    Ok(applied)
}
