//! PostgreSQL SQL for phones and documents; the trait impl delegates here.

use tokio_postgres::Row;

use super::{
    PostgresStore, map_error, recompute_state_level, relabelled, set_label, user_by_id,
    user_side_effects,
};
use crate::domain::{Document, NewDocument, NewPhone, Phone, StateRules};
use crate::store::sql::Database;
use crate::store::{DocumentEvents, StoreResult, UserChange, phone_conflict};

fn phone_from_row(row: &Row) -> Phone {
    Phone {
        id: row.get("id"),
        user_id: row.get("user_id"),
        country: row.get("country"),
        code: row.get("code"),
        number_encrypted: row.get("number_encrypted"),
        number_index: row.get("number_index"),
        validated_at: row.get("validated_at"),
        code_sent_at: row.get("code_sent_at"),
        send_count: row.get("send_count"),
        send_window_start: row.get("send_window_start"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn document_from_row(row: &Row) -> Document {
    Document {
        id: row.get("id"),
        user_id: row.get("user_id"),
        upload: row.get("upload"),
        doc_type: row.get("doc_type"),
        doc_expire: row.get("doc_expire"),
        doc_number_encrypted: row.get("doc_number_encrypted"),
        doc_number_index: row.get("doc_number_index"),
        doc_issue: row.get("doc_issue"),
        doc_category: row.get("doc_category"),
        identificator: row.get("identificator"),
        metadata: row.get("metadata"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

impl PostgresStore {
    pub(super) async fn kyc_create_phone(&self, phone: &NewPhone) -> StoreResult<Phone> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO phones (user_id, country, code, number_encrypted, number_index,
                     validated_at)
                 VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END) RETURNING *",
                &[
                    &phone.user_id,
                    &phone.country,
                    &phone.code,
                    &phone.number_encrypted,
                    &phone.number_index,
                    &phone.validated,
                ],
            )
            .await
            .map_err(|e| phone_conflict(map_error(e)))?;
        Ok(phone_from_row(&row))
    }

    pub(super) async fn kyc_list_user_phones(&self, user_id: i64) -> StoreResult<Vec<Phone>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT * FROM phones WHERE user_id = $1 ORDER BY id",
                &[&user_id],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(phone_from_row).collect())
    }

    pub(super) async fn kyc_find_user_phone(
        &self,
        user_id: i64,
        number_index: &str,
    ) -> StoreResult<Option<Phone>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT * FROM phones WHERE user_id = $1 AND number_index = $2",
                &[&user_id, &number_index],
            )
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(phone_from_row))
    }

    pub(super) async fn kyc_list_phones_by_number_index(
        &self,
        number_index: &str,
    ) -> StoreResult<Vec<Phone>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT * FROM phones WHERE number_index = $1 ORDER BY id",
                &[&number_index],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(phone_from_row).collect())
    }

    pub(super) async fn kyc_claim_phone_code_send(
        &self,
        phone_id: i64,
        now: i64,
        min_interval: i64,
        window: i64,
        max_in_window: i64,
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE phones SET
                     code_sent_at = $2::bigint,
                     send_count = CASE WHEN send_window_start IS NULL
                         OR send_window_start <= $2::bigint - $4::bigint
                         THEN 1 ELSE send_count + 1 END,
                     send_window_start = CASE WHEN send_window_start IS NULL
                         OR send_window_start <= $2::bigint - $4::bigint
                         THEN $2::bigint ELSE send_window_start END,
                     updated_at = now()
                 WHERE id = $1
                   AND (code_sent_at IS NULL OR code_sent_at <= $2::bigint - $3::bigint)
                   AND (send_window_start IS NULL
                        OR send_window_start <= $2::bigint - $4::bigint
                        OR send_count < $5::bigint)",
                &[&phone_id, &now, &min_interval, &window, &max_in_window],
            )
            .await
            .map_err(map_error)?;
        Ok(n == 1)
    }

    pub(super) async fn kyc_verify_phone(
        &self,
        phone_id: i64,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        let domain = self.event_domain();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let result = async {
            let Some(row) = tx
                .query_opt(
                    "UPDATE phones SET validated_at = COALESCE(validated_at, now()),
                         updated_at = now()
                     WHERE id = $1 RETURNING user_id",
                    &[&phone_id],
                )
                .await?
            else {
                return Ok(None);
            };
            let user_id: i64 = row.get(0);
            let before = user_by_id(&tx, user_id).await?;
            set_label(&tx, &domain, user_id, "phone", "verified", "private").await?;
            let change = relabelled(&tx, &domain, &before, rules).await?;
            Ok::<_, tokio_postgres::Error>(Some(change))
        }
        .await
        .map_err(|e| phone_conflict(map_error(e)))?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    pub(super) async fn kyc_delete_phone(&self, phone_id: i64) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute("DELETE FROM phones WHERE id = $1", &[&phone_id])
            .await
            .map_err(map_error)?;
        Ok(n == 1)
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            let mut rows = Vec::with_capacity(documents.len());
            for d in documents {
                let row = tx
                    .query_one(
                        "INSERT INTO documents (user_id, upload, doc_type, doc_expire,
                             doc_number_encrypted, doc_number_index, doc_category,
                             identificator, metadata)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                        &[
                            &user_id,
                            &d.upload,
                            &d.doc_type,
                            &d.doc_expire,
                            &d.doc_number_encrypted,
                            &d.doc_number_index,
                            &d.doc_category,
                            &d.identificator,
                            &d.metadata,
                        ],
                    )
                    .await?;
                rows.push(document_from_row(&row));
            }
            if let Some((key, value)) = label {
                set_label(&tx, &domain, user_id, key, value, "private").await?;
                recompute_state_level(&tx, user_id, rules).await?;
            }
            let (user, kids) = user_side_effects(&tx, &domain, &before).await?;
            super::events::documents_created(&tx, &domain, &rows, user_id, events).await?;
            Ok::<_, tokio_postgres::Error>((
                rows,
                UserChange {
                    user,
                    sessions: Vec::new(),
                    kids,
                },
            ))
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    pub(super) async fn kyc_count_user_documents(
        &self,
        user_id: i64,
        identificator: Option<&str>,
    ) -> StoreResult<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM documents
                 WHERE user_id = $1 AND ($2::text IS NULL OR identificator = $2)",
                &[&user_id, &identificator],
            )
            .await
            .map_err(map_error)?;
        Ok(row.get(0))
    }

    pub(super) async fn kyc_list_user_documents(&self, user_id: i64) -> StoreResult<Vec<Document>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT * FROM documents WHERE user_id = $1 ORDER BY id",
                &[&user_id],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(document_from_row).collect())
    }

    pub(super) async fn kyc_list_documents_by_number_index(
        &self,
        index: &str,
    ) -> StoreResult<Vec<Document>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT * FROM documents WHERE doc_number_index = $1 ORDER BY id",
                &[&index],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(document_from_row).collect())
    }

    pub(super) async fn kyc_list_pending_documents(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Document>, i64)> {
        let client = self.client().await?;
        let filter = "FROM documents WHERE user_id IN (SELECT user_id FROM labels
             WHERE key = 'document' AND value = 'pending' AND scope = 'private')";
        let total: i64 = client
            .query_one(&format!("SELECT count(*) {filter}"), &[])
            .await
            .map_err(map_error)?
            .get(0);
        let rows = client
            .query(
                &format!("SELECT * {filter} ORDER BY id LIMIT $1 OFFSET $2"),
                &[&limit, &offset],
            )
            .await
            .map_err(map_error)?;
        Ok((rows.iter().map(document_from_row).collect(), total))
    }
}
