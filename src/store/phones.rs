//! KYC phones.

use async_trait::async_trait;

use super::label_rows::set_label;
use super::labels::relabelled;
use super::rows::user_by_id;
use super::sql::{Database, Exec, Row, all, args, opt};
use super::{StoreResult, UserChange};
use crate::domain::{LabelScope, NewPhone, Phone, StateRules};

#[async_trait]
pub trait PhoneStore: Send + Sync {
    // Numbers are stored encrypted by the caller (`Encryptor::encrypt`) with their blind index
    // (`Encryptor::blind_index` of the E.164 number / `normalise_doc_number`); stores compare
    // indexes only and never see a number in clear.
    /// Inserts a phone (verified at once when `phone.validated`). The user already having the
    /// number is `Conflict(Clash::PhoneNumber)`; creating it verified while another account
    /// verified it is `Conflict(Clash::PhoneVerified)`.
    async fn create_phone(&self, phone: &NewPhone) -> StoreResult<Phone>;

    /// A user's phones, oldest first.
    async fn list_user_phones(&self, user_id: i64) -> StoreResult<Vec<Phone>>;

    /// The user's phone with this number index.
    async fn find_user_phone(&self, user_id: i64, number_index: &str)
    -> StoreResult<Option<Phone>>;

    /// Every phone with this number index, any user, oldest first (at most one is verified).
    async fn list_phones_by_number_index(&self, number_index: &str) -> StoreResult<Vec<Phone>>;

    /// Records that a code is being sent to the phone, if the resend limits allow it: the last
    /// code at least `min_interval` s before `now` (unix seconds) and fewer than `max_in_window`
    /// codes in the current `window` s. Atomic; false (nothing recorded) when refused.
    async fn claim_phone_code_send(
        &self,
        phone_id: i64,
        now: i64,
        min_interval: i64,
        window: i64,
        max_in_window: i64,
    ) -> StoreResult<bool>;

    /// Marks the phone verified, sets the private label `phone: verified` and recomputes state
    /// and level, in one transaction. `None` when the phone is gone;
    /// `Conflict(Clash::PhoneVerified)` when another account verified the number first.
    async fn verify_phone(
        &self,
        phone_id: i64,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>>;

    /// Deletes a phone; true when it existed.
    async fn delete_phone(&self, phone_id: i64) -> StoreResult<bool>;
}

fn phone_from_row(row: &Row) -> StoreResult<Phone> {
    Ok(Phone {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        country: row.get("country")?,
        code: row.get("code")?,
        number_encrypted: row.get("number_encrypted")?,
        number_index: row.get("number_index")?,
        validated_at: row.get("validated_at")?,
        code_sent_at: row.get("code_sent_at")?,
        send_count: row.get("send_count")?,
        send_window_start: row.get("send_window_start")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

#[async_trait]
impl<S: Database> PhoneStore for S {
    async fn create_phone(&self, phone: &NewPhone) -> StoreResult<Phone> {
        let mut c = self.conn().await?;
        let row = c
            .query_one(
                "INSERT INTO phones (user_id, country, code, number_encrypted, number_index,
                     validated_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END, now(), now())
                 RETURNING *",
                args![
                    phone.user_id,
                    &phone.country,
                    &phone.code,
                    &phone.number_encrypted,
                    &phone.number_index,
                    phone.validated,
                ],
            )
            .await?;
        phone_from_row(&row)
    }

    async fn list_user_phones(&self, user_id: i64) -> StoreResult<Vec<Phone>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM phones WHERE user_id = $1 ORDER BY id",
                args![user_id],
            )
            .await?;
        all(rows, phone_from_row)
    }

    async fn find_user_phone(
        &self,
        user_id: i64,
        number_index: &str,
    ) -> StoreResult<Option<Phone>> {
        let mut c = self.conn().await?;
        let row = c
            .query_opt(
                "SELECT * FROM phones WHERE user_id = $1 AND number_index = $2",
                args![user_id, number_index],
            )
            .await?;
        opt(row, phone_from_row)
    }

    async fn list_phones_by_number_index(&self, number_index: &str) -> StoreResult<Vec<Phone>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM phones WHERE number_index = $1 ORDER BY id",
                args![number_index],
            )
            .await?;
        all(rows, phone_from_row)
    }

    async fn claim_phone_code_send(
        &self,
        phone_id: i64,
        now: i64,
        min_interval: i64,
        window: i64,
        max_in_window: i64,
    ) -> StoreResult<bool> {
        let n = self
            .conn()
            .await?
            .execute(
                "UPDATE phones SET
                     code_sent_at = CAST($2 AS BIGINT),
                     send_count = CASE WHEN send_window_start IS NULL
                         OR send_window_start <= CAST($2 AS BIGINT) - CAST($4 AS BIGINT)
                         THEN 1 ELSE send_count + 1 END,
                     send_window_start = CASE WHEN send_window_start IS NULL
                         OR send_window_start <= CAST($2 AS BIGINT) - CAST($4 AS BIGINT)
                         THEN CAST($2 AS BIGINT) ELSE send_window_start END,
                     updated_at = now()
                 WHERE id = $1
                   AND (code_sent_at IS NULL
                        OR code_sent_at <= CAST($2 AS BIGINT) - CAST($3 AS BIGINT))
                   AND (send_window_start IS NULL
                        OR send_window_start <= CAST($2 AS BIGINT) - CAST($4 AS BIGINT)
                        OR send_count < CAST($5 AS BIGINT))",
                args![phone_id, now, min_interval, window, max_in_window],
            )
            .await?;
        Ok(n == 1)
    }

    async fn verify_phone(
        &self,
        phone_id: i64,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE phones SET validated_at = COALESCE(validated_at, now()),
                     updated_at = now()
                 WHERE id = $1 RETURNING user_id",
                args![phone_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let user_id: i64 = row.at(0)?;
        let before = user_by_id(&mut tx, user_id).await?;
        set_label(
            &mut tx,
            &domain,
            user_id,
            "phone",
            "verified",
            LabelScope::Private.as_str(),
        )
        .await?;
        let change = relabelled(&mut tx, &domain, &before, rules).await?;
        tx.commit().await?;
        Ok(Some(change))
    }

    async fn delete_phone(&self, phone_id: i64) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute("DELETE FROM phones WHERE id = $1", args![phone_id])
            .await?;
        Ok(n == 1)
    }
}
