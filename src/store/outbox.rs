//! The outboxes: mails to send and events to publish.

use async_trait::async_trait;

use super::sql::{Database, Dialect, Exec, Row, all, args};
use super::{StoreResult, events};
use crate::domain::{NewEvent, NewMail, OutboxEvent, OutboxMail};

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Turns event recording on; `domain` is the `domain` field of system events. From then on
    /// the store writes model events (`model.user.*`, `model.label.*`, ...) and
    /// `system.user.email.confirmed` inside the transactions of the changes they describe.
    fn enable_events(&self, domain: &str);

    /// Queues one mail.
    async fn queue_mail(&self, mail: &NewMail) -> StoreResult<()>;

    /// Claims up to `limit` unsent mails that are due, oldest first: their attempt count goes
    /// up and they are not due again for `lease_secs` (so another worker skips them).
    async fn claim_mails(&self, limit: i64, lease_secs: i64) -> StoreResult<Vec<OutboxMail>>;

    /// Marks a mail delivered (once; a second call changes nothing).
    async fn mark_mail_sent(&self, id: i64) -> StoreResult<()>;

    /// Records a failed delivery and when to try again.
    async fn mark_mail_failed(&self, id: i64, error: &str, retry_in_secs: i64) -> StoreResult<()>;

    /// Deletes mails delivered more than `older_than_secs` ago; returns how many.
    async fn purge_sent_mails(&self, older_than_secs: i64) -> StoreResult<u64>;

    /// Counts mails not delivered yet.
    async fn count_unsent_mails(&self) -> StoreResult<i64>;

    /// Writes events in one transaction of their own (for events that follow a single write,
    /// such as `system.session.create`); nothing when events are off.
    async fn queue_events(&self, events: &[NewEvent]) -> StoreResult<()>;

    /// Claims up to `limit` undelivered due events, oldest first, leasing them for `lease_secs`.
    async fn claim_events(&self, limit: i64, lease_secs: i64) -> StoreResult<Vec<OutboxEvent>>;

    /// Marks an event delivered (once).
    async fn mark_event_sent(&self, id: i64) -> StoreResult<()>;

    /// Records a failed delivery and when to try again.
    async fn mark_event_failed(&self, id: i64, error: &str, retry_in_secs: i64) -> StoreResult<()>;

    /// Counts events not delivered yet.
    async fn count_unsent_events(&self) -> StoreResult<i64>;
}

/// Queues `mail` inside a transaction, with the confirmation claim it carries (the only valid
/// one for its recipient from now on).
pub(super) async fn insert_mail(c: &mut impl Exec, mail: &NewMail) -> StoreResult<()> {
    c.execute(
        "INSERT INTO mail_outbox (kind, recipient, language, subject, body_html,
             next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, now(), now())",
        args![
            &mail.kind,
            &mail.recipient,
            &mail.language,
            &mail.subject,
            &mail.body_html
        ],
    )
    .await?;
    if let Some(claim) = &mail.confirmation {
        c.execute(
            "INSERT INTO confirmation_tokens (email, token, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO UPDATE SET token = excluded.token,
                 expires_at = excluded.expires_at",
            args![&mail.recipient, &claim.token, claim.expires_at],
        )
        .await?;
    }
    Ok(())
}

/// Claims up to `limit` due rows of `table` for `lease` seconds: one statement, so two workers
/// never claim the same row (PostgreSQL skips the rows another worker holds; SQLite has one
/// writer at a time).
async fn claim(
    c: &mut impl Exec,
    dialect: Dialect,
    table: &str,
    columns: &str,
    limit: i64,
    lease: i64,
) -> StoreResult<Vec<Row>> {
    let mut rows = c
        .query(
            &format!(
                "UPDATE {table} SET attempts = attempts + 1, next_attempt_at = {}
                 WHERE id IN (SELECT id FROM {table}
                     WHERE sent_at IS NULL AND next_attempt_at <= now()
                     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING {columns}",
                dialect.now_plus("$2")
            ),
            args![limit, lease],
        )
        .await?;
    rows.sort_by_key(|r| r.at::<i64>(0).unwrap_or_default());
    Ok(rows)
}

/// Marks a row of `table` delivered (once).
async fn mark_sent(c: &mut impl Exec, table: &str, id: i64) -> StoreResult<()> {
    c.execute(
        &format!(
            "UPDATE {table} SET sent_at = now(), last_error = NULL
             WHERE id = $1 AND sent_at IS NULL"
        ),
        args![id],
    )
    .await?;
    Ok(())
}

/// Records a failed delivery of a row of `table` and when to try again.
async fn mark_failed(
    c: &mut impl Exec,
    dialect: Dialect,
    table: &str,
    id: i64,
    error: &str,
    retry_in_secs: i64,
) -> StoreResult<()> {
    c.execute(
        &format!(
            "UPDATE {table} SET last_error = $2, next_attempt_at = {}
             WHERE id = $1 AND sent_at IS NULL",
            dialect.now_plus("$3")
        ),
        args![id, error, retry_in_secs],
    )
    .await?;
    Ok(())
}

async fn count_unsent(c: &mut impl Exec, table: &str) -> StoreResult<i64> {
    c.scalar(
        &format!("SELECT COUNT(*) FROM {table} WHERE sent_at IS NULL"),
        args![],
    )
    .await
}

#[async_trait]
impl<S: Database> OutboxStore for S {
    fn enable_events(&self, domain: &str) {
        self.event_switch()
            .store(Some(std::sync::Arc::new(domain.to_owned())));
    }

    async fn queue_mail(&self, mail: &NewMail) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        insert_mail(&mut tx, mail).await?;
        tx.commit().await
    }

    async fn claim_mails(&self, limit: i64, lease_secs: i64) -> StoreResult<Vec<OutboxMail>> {
        let mut c = self.conn().await?;
        let columns = "id, kind, recipient, language, subject, body_html, attempts";
        let rows = claim(
            &mut c,
            S::DIALECT,
            "mail_outbox",
            columns,
            limit,
            lease_secs,
        )
        .await?;
        all(rows, |r| {
            Ok(OutboxMail {
                id: r.at(0)?,
                kind: r.at(1)?,
                recipient: r.at(2)?,
                language: r.at(3)?,
                subject: r.at(4)?,
                body_html: r.at(5)?,
                attempts: r.at(6)?,
            })
        })
    }

    async fn mark_mail_sent(&self, id: i64) -> StoreResult<()> {
        mark_sent(&mut self.conn().await?, "mail_outbox", id).await
    }

    async fn mark_mail_failed(&self, id: i64, error: &str, retry_in_secs: i64) -> StoreResult<()> {
        let mut c = self.conn().await?;
        mark_failed(&mut c, S::DIALECT, "mail_outbox", id, error, retry_in_secs).await
    }

    async fn purge_sent_mails(&self, older_than_secs: i64) -> StoreResult<u64> {
        let mut c = self.conn().await?;
        c.execute(
            &format!(
                "DELETE FROM mail_outbox WHERE sent_at IS NOT NULL AND sent_at < {}",
                S::DIALECT.now_plus("$1")
            ),
            args![-older_than_secs],
        )
        .await
    }

    async fn count_unsent_mails(&self) -> StoreResult<i64> {
        count_unsent(&mut self.conn().await?, "mail_outbox").await
    }

    async fn queue_events(&self, new: &[NewEvent]) -> StoreResult<()> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        for e in new {
            events::record(&mut tx, &domain, e).await?;
        }
        tx.commit().await
    }

    async fn claim_events(&self, limit: i64, lease_secs: i64) -> StoreResult<Vec<OutboxEvent>> {
        let mut c = self.conn().await?;
        let columns = "id, exchange, routing_key, payload, attempts, sealed";
        let rows = claim(
            &mut c,
            S::DIALECT,
            "event_outbox",
            columns,
            limit,
            lease_secs,
        )
        .await?;
        all(rows, |r| {
            Ok(OutboxEvent {
                id: r.at(0)?,
                exchange: r.at(1)?,
                routing_key: r.at(2)?,
                payload: r.at(3)?,
                attempts: r.at(4)?,
                sealed: r.at(5)?,
            })
        })
    }

    async fn mark_event_sent(&self, id: i64) -> StoreResult<()> {
        mark_sent(&mut self.conn().await?, "event_outbox", id).await
    }

    async fn mark_event_failed(&self, id: i64, error: &str, retry_in_secs: i64) -> StoreResult<()> {
        let mut c = self.conn().await?;
        mark_failed(&mut c, S::DIALECT, "event_outbox", id, error, retry_in_secs).await
    }

    async fn count_unsent_events(&self) -> StoreResult<i64> {
        count_unsent(&mut self.conn().await?, "event_outbox").await
    }
}
