//! Sessions and the devices users log in from.

use async_trait::async_trait;

use super::sql::{Database, Exec, Row, all, args, opt, values};
use super::{StoreResult, new_public_id};
use crate::domain::session::DeviceSighting;
use crate::domain::{NewSession, Session};

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session (its id is already the hash of the cookie value).
    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;

    async fn find_session(&self, id: &str) -> StoreResult<Option<Session>>;

    /// Deletes one session; true when it existed.
    async fn delete_session(&self, id: &str) -> StoreResult<bool>;

    /// Deletes every session of every user (a `blocklogin` restriction was enabled); returns
    /// how many.
    async fn delete_all_sessions(&self) -> StoreResult<u64>;

    /// Deletes every session of a user except `keep`; returns the deleted ids so caches can
    /// forget them.
    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>>;

    /// Pushes sliding expiries forward in one batch (the write-behind of the authz path);
    /// an expiry never moves backwards.
    async fn extend_sessions(&self, expiries: &[(String, i64)]) -> StoreResult<()>;

    /// A user's sessions not expired at `now` (epoch seconds), newest first.
    async fn list_user_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<Session>>;

    /// Deletes the user's session with this public id; its storage id (for the caches), or
    /// `None` when the user has no session by that id (another user's id included).
    async fn delete_user_session(
        &self,
        user_id: i64,
        public_id: &str,
    ) -> StoreResult<Option<String>>;

    /// Remembers a login of the user from `device` on `network` at `at` (epoch seconds) and
    /// says whether the pair was known.
    async fn record_user_device(
        &self,
        user_id: i64,
        device: &str,
        network: &str,
        at: i64,
    ) -> StoreResult<DeviceSighting>;
}

pub(super) fn session_from_row(row: &Row) -> StoreResult<Session> {
    Ok(Session {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        uid: row.get("uid")?,
        user_ip: row.get("user_ip")?,
        user_agent: row.get("user_agent")?,
        csrf_token: row.get("csrf_token")?,
        expire_at: row.get("expire_at")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        public_id: row.get("public_id")?,
        authenticated_with: row.get("authenticated_with")?,
        user_ip_country: row.get("user_ip_country")?,
    })
}

/// Deletes the user's sessions except `keep`; the deleted ids (for the caches).
pub(super) async fn delete_sessions_except(
    c: &mut impl Exec,
    user_id: i64,
    keep: Option<&str>,
) -> StoreResult<Vec<String>> {
    let rows = c
        .query(
            "DELETE FROM sessions WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id <> $2)
             RETURNING id",
            args![user_id, keep],
        )
        .await?;
    all(rows, |r| r.at(0))
}

/// Rows per statement of a batched update: well under both backends' parameter limits.
const BATCH: usize = 500;

#[async_trait]
impl<S: Database> SessionStore for S {
    async fn create_session(&self, s: &NewSession) -> StoreResult<()> {
        self.conn()
            .await?
            .execute(
                "INSERT INTO sessions (id, user_id, uid, user_ip, user_agent, csrf_token,
                     expire_at, created_at, updated_at, public_id, authenticated_with,
                     user_ip_country)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now(), $8, $9, $10)",
                args![
                    &s.id,
                    s.user_id,
                    &s.uid,
                    &s.user_ip,
                    &s.user_agent,
                    &s.csrf_token,
                    s.expire_at,
                    new_public_id(),
                    &s.authenticated_with,
                    &s.user_ip_country,
                ],
            )
            .await?;
        Ok(())
    }

    async fn find_session(&self, id: &str) -> StoreResult<Option<Session>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt("SELECT * FROM sessions WHERE id = $1", args![id])
            .await?;
        opt(row, session_from_row)
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute("DELETE FROM sessions WHERE id = $1", args![id])
            .await?;
        Ok(n > 0)
    }

    async fn delete_all_sessions(&self) -> StoreResult<u64> {
        self.conn()
            .await?
            .execute("DELETE FROM sessions", args![])
            .await
    }

    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id",
                args![user_id, keep.unwrap_or("")],
            )
            .await?;
        all(rows, |r| r.at(0))
    }

    async fn extend_sessions(&self, expiries: &[(String, i64)]) -> StoreResult<()> {
        if expiries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for chunk in expiries.chunks(BATCH) {
            let sql = format!(
                "WITH v (id, expire_at) AS (VALUES {})
                 UPDATE sessions SET expire_at = v.expire_at, updated_at = now()
                 FROM v WHERE sessions.id = v.id AND sessions.expire_at < v.expire_at",
                values(chunk.len(), &["TEXT", "BIGINT"])
            );
            let args: Vec<_> = chunk
                .iter()
                .flat_map(|(id, at)| [id.into(), (*at).into()])
                .collect();
            tx.execute(&sql, &args).await?;
        }
        tx.commit().await
    }

    async fn list_user_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<Session>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM sessions WHERE user_id = $1 AND expire_at > $2
                 ORDER BY created_at DESC, public_id DESC",
                args![user_id, now],
            )
            .await?;
        all(rows, session_from_row)
    }

    async fn delete_user_session(
        &self,
        user_id: i64,
        public_id: &str,
    ) -> StoreResult<Option<String>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "DELETE FROM sessions WHERE user_id = $1 AND public_id = $2 RETURNING id",
                args![user_id, public_id],
            )
            .await?;
        opt(row, |r| r.at(0))
    }

    async fn record_user_device(
        &self,
        user_id: i64,
        device: &str,
        network: &str,
        at: i64,
    ) -> StoreResult<DeviceSighting> {
        let mut tx = self.begin().await?;
        let inserted = tx
            .execute(
                "INSERT INTO user_devices (user_id, device, network, first_seen_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, device, network) DO NOTHING",
                args![user_id, device, network, at],
            )
            .await?;
        let sighting = if inserted == 0 {
            tx.execute(
                "UPDATE user_devices SET last_seen_at = GREATEST(last_seen_at, $4)
                 WHERE user_id = $1 AND device = $2 AND network = $3",
                args![user_id, device, network, at],
            )
            .await?;
            DeviceSighting::Known
        } else {
            let known: i64 = tx
                .scalar(
                    "SELECT COUNT(*) FROM user_devices WHERE user_id = $1",
                    args![user_id],
                )
                .await?;
            if known > 1 {
                DeviceSighting::New
            } else {
                DeviceSighting::First
            }
        };
        tx.commit().await?;
        Ok(sighting)
    }
}
