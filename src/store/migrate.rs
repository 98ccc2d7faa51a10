//! Migrations: plain SQL files under `sql/<backend>/`, compiled into the binary, applied in order
//! and recorded in `schema_migrations`. Each file runs in its own transaction together with its
//! bookkeeping row, so a crash leaves either all of a file or none of it.
//!
//! The lists live here; each backend runs its own (`sqlite/migrate.rs`, `postgres/migrate.rs`).
//! Two processes may migrate at once: PostgreSQL serialises them with an advisory lock, SQLite with
//! `BEGIN IMMEDIATE` (the write lock is taken before the "what is applied?" read).

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

pub(super) const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
)";

/// Any fixed number works; it only has to be the same in every process of this program.
pub(super) const PG_ADVISORY_LOCK: i64 = 0x6261_726f_6e67; // "barong"
