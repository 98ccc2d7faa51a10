//! KYC documents.

use async_trait::async_trait;

use super::label_rows::{recompute_state_level, set_label};
use super::rows::user_by_id;
use super::sql::{Database, Exec, Row, all, args};
use super::users::user_side_effects;
use super::{DocumentEvents, StoreResult, UserChange, events};
use crate::domain::{Document, LabelScope, NewDocument, StateRules};

#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Inserts the documents of one upload request (files already stored) and, when given, sets
    /// the private `label` (key, value) with state and level recomputed, in one transaction.
    async fn create_documents(
        &self,
        user_id: i64,
        documents: &[NewDocument],
        label: Option<(&str, &str)>,
        rules: &StateRules,
        events: &DocumentEvents,
    ) -> StoreResult<(Vec<Document>, UserChange)>;

    /// How many documents the user has (of one `identificator` when given).
    async fn count_user_documents(
        &self,
        user_id: i64,
        identificator: Option<&str>,
    ) -> StoreResult<i64>;

    /// A user's documents (addresses included), oldest first.
    async fn list_user_documents(&self, user_id: i64) -> StoreResult<Vec<Document>>;

    /// Every document with this number index, any user, oldest first (duplicate numbers).
    async fn list_documents_by_number_index(&self, index: &str) -> StoreResult<Vec<Document>>;

    /// One page of the documents of users whose private `document` label is `pending` (awaiting
    /// review), oldest first, with the total count.
    async fn list_pending_documents(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Document>, i64)>;
}

fn document_from_row(row: &Row) -> StoreResult<Document> {
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
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

#[async_trait]
impl<S: Database> DocumentStore for S {
    async fn create_documents(
        &self,
        user_id: i64,
        documents: &[NewDocument],
        label: Option<(&str, &str)>,
        rules: &StateRules,
        sealer: &DocumentEvents,
    ) -> StoreResult<(Vec<Document>, UserChange)> {
        let domain = self.event_domain();
        let mut tx = self.begin().await?;
        let before = user_by_id(&mut tx, user_id).await?;
        let mut inserted = Vec::with_capacity(documents.len());
        for d in documents {
            let row = tx
                .query_one(
                    "INSERT INTO documents (user_id, upload, doc_type, doc_expire,
                         doc_number_encrypted, doc_number_index, doc_category, identificator,
                         metadata, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now()) RETURNING *",
                    args![
                        user_id,
                        &d.upload,
                        &d.doc_type,
                        d.doc_expire,
                        &d.doc_number_encrypted,
                        &d.doc_number_index,
                        &d.doc_category,
                        &d.identificator,
                        &d.metadata,
                    ],
                )
                .await?;
            inserted.push(document_from_row(&row)?);
        }
        if let Some((key, value)) = label {
            set_label(
                &mut tx,
                &domain,
                user_id,
                key,
                value,
                LabelScope::Private.as_str(),
            )
            .await?;
            recompute_state_level(&mut tx, user_id, rules).await?;
        }
        let (user, kids) = user_side_effects(&mut tx, &domain, &before).await?;
        events::documents_created(&mut tx, &domain, &inserted, user_id, sealer).await?;
        tx.commit().await?;
        let change = UserChange {
            user,
            sessions: Vec::new(),
            kids,
        };
        Ok((inserted, change))
    }

    async fn count_user_documents(
        &self,
        user_id: i64,
        identificator: Option<&str>,
    ) -> StoreResult<i64> {
        self.conn()
            .await?
            .scalar(
                "SELECT COUNT(*) FROM documents
                 WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR identificator = $2)",
                args![user_id, identificator],
            )
            .await
    }

    async fn list_user_documents(&self, user_id: i64) -> StoreResult<Vec<Document>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM documents WHERE user_id = $1 ORDER BY id",
                args![user_id],
            )
            .await?;
        all(rows, document_from_row)
    }

    async fn list_documents_by_number_index(&self, index: &str) -> StoreResult<Vec<Document>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM documents WHERE doc_number_index = $1 ORDER BY id",
                args![index],
            )
            .await?;
        all(rows, document_from_row)
    }

    async fn list_pending_documents(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Document>, i64)> {
        let filter = "FROM documents WHERE user_id IN (SELECT user_id FROM labels
             WHERE key = 'document' AND value = 'pending' AND scope = 'private')";
        let mut c = self.conn().await?;
        let total = c
            .scalar(&format!("SELECT COUNT(*) {filter}"), args![])
            .await?;
        let rows = c
            .query(
                &format!("SELECT * {filter} ORDER BY id LIMIT $1 OFFSET $2"),
                args![limit, offset],
            )
            .await?;
        Ok((all(rows, document_from_row)?, total))
    }
}
