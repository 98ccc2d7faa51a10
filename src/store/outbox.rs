//! The outboxes: mails to send and events to publish.

use async_trait::async_trait;

use super::*;

#[async_trait]
pub trait OutboxStore: Send + Sync {
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
