//! Migrations: plain SQL files under `sql/<backend>/`, compiled into the binary, applied in order
//! and recorded in `schema_migrations`. Each file runs in its own transaction together with its
//! bookkeeping row, so a crash leaves either all of a file or none of it.
//!
//! Two processes may migrate at once: PostgreSQL serialises them with an advisory lock, SQLite with
//! `BEGIN IMMEDIATE` (the write lock is taken before the "what is applied?" read).

use deadpool_postgres::Client;
use deadpool_sqlite::rusqlite::{self, Connection, TransactionBehavior};

use super::{StoreError, StoreResult};

/// A migration: its version (the file stem) and its SQL.
pub struct Migration {
    pub version: &'static str,
    pub sql: &'static str,
}

/// The SQLite migrations, in order.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: "0001_schema",
        sql: include_str!("../../sql/sqlite/0001_schema.sql"),
    },
    Migration {
        version: "0002_otp_secrets",
        sql: include_str!("../../sql/sqlite/0002_otp_secrets.sql"),
    },
    Migration {
        version: "0003_kyc_profiles",
        sql: include_str!("../../sql/sqlite/0003_kyc_profiles.sql"),
    },
    Migration {
        version: "0004_kyc_documents",
        sql: include_str!("../../sql/sqlite/0004_kyc_documents.sql"),
    },
    Migration {
        version: "0005_rate_limits",
        sql: include_str!("../../sql/sqlite/0005_rate_limits.sql"),
    },
    Migration {
        version: "0006_confirmation_tokens",
        sql: include_str!("../../sql/sqlite/0006_confirmation_tokens.sql"),
    },
    Migration {
        version: "0007_signing_keys",
        sql: include_str!("../../sql/sqlite/0007_signing_keys.sql"),
    },
    Migration {
        version: "0008_sealed_events",
        sql: include_str!("../../sql/sqlite/0008_sealed_events.sql"),
    },
    Migration {
        version: "0009_session_devices",
        sql: include_str!("../../sql/sqlite/0009_session_devices.sql"),
    },
    Migration {
        version: "0010_passkeys",
        sql: include_str!("../../sql/sqlite/0010_passkeys.sql"),
    },
];

/// The PostgreSQL migrations, in order.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: "0001_schema",
        sql: include_str!("../../sql/postgres/0001_schema.sql"),
    },
    Migration {
        version: "0002_otp_secrets",
        sql: include_str!("../../sql/postgres/0002_otp_secrets.sql"),
    },
    Migration {
        version: "0003_kyc_profiles",
        sql: include_str!("../../sql/postgres/0003_kyc_profiles.sql"),
    },
    Migration {
        version: "0004_kyc_documents",
        sql: include_str!("../../sql/postgres/0004_kyc_documents.sql"),
    },
    Migration {
        version: "0005_rate_limits",
        sql: include_str!("../../sql/postgres/0005_rate_limits.sql"),
    },
    Migration {
        version: "0006_confirmation_tokens",
        sql: include_str!("../../sql/postgres/0006_confirmation_tokens.sql"),
    },
    Migration {
        version: "0007_signing_keys",
        sql: include_str!("../../sql/postgres/0007_signing_keys.sql"),
    },
    Migration {
        version: "0008_sealed_events",
        sql: include_str!("../../sql/postgres/0008_sealed_events.sql"),
    },
    Migration {
        version: "0009_session_devices",
        sql: include_str!("../../sql/postgres/0009_session_devices.sql"),
    },
    Migration {
        version: "0010_passkeys",
        sql: include_str!("../../sql/postgres/0010_passkeys.sql"),
    },
];

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
)";

/// Any fixed number works; it only has to be the same in every process of this program.
const PG_ADVISORY_LOCK: i64 = 0x6261_726f_6e67; // "barong"

/// Applies pending SQLite migrations on one connection.
pub fn apply_sqlite(conn: &mut Connection) -> StoreResult<Vec<String>> {
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
            [migration.version, &super::sqlite::now_text()],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        applied.push(migration.version.to_owned());
    }
    Ok(applied)
}

/// Applies pending PostgreSQL migrations, holding the advisory lock for the whole run.
pub async fn apply_postgres(client: &mut Client) -> StoreResult<Vec<String>> {
    let fail = |version: &str, e: tokio_postgres::Error| {
        StoreError::Migration(format!("{version}: {}", super::postgres::describe(&e)))
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
