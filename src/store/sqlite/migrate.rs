//! Runs the SQLite migrations (the list is in `store/migrate.rs`).

use deadpool_sqlite::rusqlite::{self, Connection, TransactionBehavior};

use crate::store::migrate::{BOOKKEEPING, SQLITE};
use crate::store::{StoreError, StoreResult};

/// Applies pending SQLite migrations on one connection.
pub(super) fn apply(conn: &mut Connection) -> StoreResult<Vec<String>> {
    let mut applied = Vec::new();
    for migration in SQLITE {
        let fail =
            |e: rusqlite::Error| StoreError::Migration(format!("{}: {e}", migration.version));
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        tx.execute_batch(BOOKKEEPING).map_err(fail)?;
        let done: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [migration.version],
                |r| r.get(0),
            )
            .map_err(fail)?;
        if done {
            continue;
        }
        tx.execute_batch(migration.sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            [migration.version, &super::now_text()],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        applied.push(migration.version.to_owned());
    }
    Ok(applied)
}
