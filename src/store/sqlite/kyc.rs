//! SQLite SQL for phones and documents; the trait impl delegates here.

use chrono::{DateTime, Utc};
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params};

use super::{
    SqliteStore, now_text, recompute_state_level, relabelled, set_label, timestamp, user_by_id,
    user_side_effects,
};
use crate::domain::{Document, NewDocument, NewPhone, Phone, StateRules};
use crate::store::sql::Database;
use crate::store::{DocumentEvents, StoreResult, UserChange, phone_conflict};

fn optional_timestamp(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<String>>(column)? {
        None => Ok(None),
        Some(_) => timestamp(row, column).map(Some),
    }
}

fn phone_from_row(row: &Row<'_>) -> rusqlite::Result<Phone> {
    Ok(Phone {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        country: row.get("country")?,
        code: row.get("code")?,
        number_encrypted: row.get("number_encrypted")?,
        number_index: row.get("number_index")?,
        validated_at: optional_timestamp(row, "validated_at")?,
        code_sent_at: row.get("code_sent_at")?,
        send_count: row.get("send_count")?,
        send_window_start: row.get("send_window_start")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn document_from_row(row: &Row<'_>) -> rusqlite::Result<Document> {
    Ok(Document {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        upload: row.get("upload")?,
        doc_type: row.get("doc_type")?,
        doc_expire: row.get("doc_expire")?,
        doc_number_encrypted: row.get("doc_number_encrypted")?,
        doc_number_index: row.get("doc_number_index")?,
        doc_issue: row.get("doc_issue")?,
        doc_category: row.get("doc_category")?,
        identificator: row.get("identificator")?,
        metadata: row.get("metadata")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

impl SqliteStore {
    pub(super) async fn kyc_create_phone(&self, phone: &NewPhone) -> StoreResult<Phone> {
        let phone = phone.clone();
        self.with_conn(move |c| {
            let now = now_text();
            let validated = phone.validated.then(|| now.clone());
            c.query_row(
                "INSERT INTO phones (user_id, country, code, number_encrypted, number_index,
                     validated_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING *",
                params![
                    phone.user_id,
                    phone.country,
                    phone.code,
                    phone.number_encrypted,
                    phone.number_index,
                    validated,
                    now
                ],
                phone_from_row,
            )
        })
        .await
        .map_err(phone_conflict)
    }

    pub(super) async fn kyc_list_user_phones(&self, user_id: i64) -> StoreResult<Vec<Phone>> {
        self.with_conn(move |c| {
            let mut stmt = c.prepare("SELECT * FROM phones WHERE user_id = ?1 ORDER BY id")?;
            stmt.query_map([user_id], phone_from_row)?.collect()
        })
        .await
    }

    pub(super) async fn kyc_find_user_phone(
        &self,
        user_id: i64,
        number_index: &str,
    ) -> StoreResult<Option<Phone>> {
        let index = number_index.to_owned();
        self.with_conn(move |c| {
            c.query_row(
                "SELECT * FROM phones WHERE user_id = ?1 AND number_index = ?2",
                params![user_id, index],
                phone_from_row,
            )
            .optional()
        })
        .await
    }

    pub(super) async fn kyc_list_phones_by_number_index(
        &self,
        number_index: &str,
    ) -> StoreResult<Vec<Phone>> {
        let index = number_index.to_owned();
        self.with_conn(move |c| {
            let mut stmt = c.prepare("SELECT * FROM phones WHERE number_index = ?1 ORDER BY id")?;
            stmt.query_map([index], phone_from_row)?.collect()
        })
        .await
    }

    pub(super) async fn kyc_claim_phone_code_send(
        &self,
        phone_id: i64,
        now: i64,
        min_interval: i64,
        window: i64,
        max_in_window: i64,
    ) -> StoreResult<bool> {
        self.with_conn(move |c| {
            let n = c.execute(
                "UPDATE phones SET
                     code_sent_at = ?2,
                     send_count = CASE WHEN send_window_start IS NULL
                         OR send_window_start <= ?2 - ?4 THEN 1 ELSE send_count + 1 END,
                     send_window_start = CASE WHEN send_window_start IS NULL
                         OR send_window_start <= ?2 - ?4 THEN ?2 ELSE send_window_start END,
                     updated_at = ?6
                 WHERE id = ?1
                   AND (code_sent_at IS NULL OR code_sent_at <= ?2 - ?3)
                   AND (send_window_start IS NULL OR send_window_start <= ?2 - ?4
                        OR send_count < ?5)",
                params![
                    phone_id,
                    now,
                    min_interval,
                    window,
                    max_in_window,
                    now_text()
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    pub(super) async fn kyc_verify_phone(
        &self,
        phone_id: i64,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        let domain = self.event_domain();
        let rules = rules.clone();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now_text();
            let user_id: Option<i64> = tx
                .query_row(
                    "UPDATE phones SET validated_at = COALESCE(validated_at, ?2), updated_at = ?2
                     WHERE id = ?1 RETURNING user_id",
                    params![phone_id, now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(user_id) = user_id else {
                return Ok(None);
            };
            let before = user_by_id(&tx, user_id)?;
            set_label(&tx, &domain, user_id, "phone", "verified", "private")?;
            let change = relabelled(&tx, &domain, &before, &rules)?;
            tx.commit()?;
            Ok(Some(change))
        })
        .await
        .map_err(phone_conflict)
    }

    pub(super) async fn kyc_delete_phone(&self, phone_id: i64) -> StoreResult<bool> {
        self.with_conn(move |c| Ok(c.execute("DELETE FROM phones WHERE id = ?1", [phone_id])? == 1))
            .await
    }

    pub(super) async fn kyc_create_documents(
        &self,
        user_id: i64,
        documents: &[NewDocument],
        label: Option<(&str, &str)>,
        rules: &StateRules,
        events: &DocumentEvents,
    ) -> StoreResult<(Vec<Document>, UserChange)> {
        let domain = self.event_domain();
        let events = events.clone();
        let documents = documents.to_vec();
        let label = label.map(|(k, v)| (k.to_owned(), v.to_owned()));
        let rules = rules.clone();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            let now = now_text();
            let mut rows = Vec::with_capacity(documents.len());
            for d in &documents {
                rows.push(tx.query_row(
                    "INSERT INTO documents (user_id, upload, doc_type, doc_expire,
                         doc_number_encrypted, doc_number_index, doc_category, identificator,
                         metadata, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) RETURNING *",
                    params![
                        user_id,
                        d.upload,
                        d.doc_type,
                        d.doc_expire,
                        d.doc_number_encrypted,
                        d.doc_number_index,
                        d.doc_category,
                        d.identificator,
                        d.metadata,
                        now
                    ],
                    document_from_row,
                )?);
            }
            if let Some((key, value)) = &label {
                set_label(&tx, &domain, user_id, key, value, "private")?;
                recompute_state_level(&tx, user_id, &rules)?;
            }
            let (user, kids) = user_side_effects(&tx, &domain, &before)?;
            super::events::documents_created(&tx, &domain, &rows, user_id, &events)?;
            tx.commit()?;
            Ok((
                rows,
                UserChange {
                    user,
                    sessions: Vec::new(),
                    kids,
                },
            ))
        })
        .await
    }

    pub(super) async fn kyc_count_user_documents(
        &self,
        user_id: i64,
        identificator: Option<&str>,
    ) -> StoreResult<i64> {
        let ident = identificator.map(str::to_owned);
        self.with_conn(move |c| {
            c.query_row(
                "SELECT count(*) FROM documents
                 WHERE user_id = ?1 AND (?2 IS NULL OR identificator = ?2)",
                params![user_id, ident],
                |r| r.get(0),
            )
        })
        .await
    }

    pub(super) async fn kyc_list_user_documents(&self, user_id: i64) -> StoreResult<Vec<Document>> {
        self.with_conn(move |c| {
            let mut stmt = c.prepare("SELECT * FROM documents WHERE user_id = ?1 ORDER BY id")?;
            stmt.query_map([user_id], document_from_row)?.collect()
        })
        .await
    }

    pub(super) async fn kyc_list_documents_by_number_index(
        &self,
        index: &str,
    ) -> StoreResult<Vec<Document>> {
        let index = index.to_owned();
        self.with_conn(move |c| {
            let mut stmt =
                c.prepare("SELECT * FROM documents WHERE doc_number_index = ?1 ORDER BY id")?;
            stmt.query_map([index], document_from_row)?.collect()
        })
        .await
    }

    pub(super) async fn kyc_list_pending_documents(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Document>, i64)> {
        self.with_conn(move |c| {
            let filter = "FROM documents WHERE user_id IN (SELECT user_id FROM labels
                 WHERE key = 'document' AND value = 'pending' AND scope = 'private')";
            let total: i64 = c.query_row(&format!("SELECT count(*) {filter}"), [], |r| r.get(0))?;
            let mut stmt =
                c.prepare(&format!("SELECT * {filter} ORDER BY id LIMIT ?1 OFFSET ?2"))?;
            let rows = stmt
                .query_map([limit, offset], document_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok((rows, total))
        })
        .await
    }
}
