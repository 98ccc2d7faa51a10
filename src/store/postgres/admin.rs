//! The admin area's SQL on PostgreSQL (see the admin section of the `Store` trait).

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{
    PostgresStore, USER_COLUMNS, label_from_row, map_error, relabelled, user_by_id, user_from_row,
    user_side_effects,
};
use crate::domain::{Comment, LabelFilter, LabelWrite, StateRules, User, UserFilter, UserUpdate};
use crate::store::admin_sql::{self, Arg};
use crate::store::sql::Database;
use crate::store::{StoreResult, UserChange};

/// Casts fix each parameter's type, whatever the column's width.
fn placeholder(n: usize, arg: &Arg) -> String {
    match arg {
        Arg::Text(_) => format!("${n}::text"),
        Arg::Int(_) => format!("${n}::bigint"),
        Arg::Time(_) => format!("to_timestamp(${n}::bigint)"),
    }
}

fn bind(args: &[Arg]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    args.iter()
        .map(|arg| -> Box<dyn ToSql + Sync + Send> {
            match arg {
                Arg::Text(t) => Box::new(t.clone()),
                Arg::Int(i) | Arg::Time(i) => Box::new(*i),
            }
        })
        .collect()
}

fn refs(values: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn comment_from_row(row: &Row) -> Comment {
    Comment {
        id: row.get("id"),
        user_id: row.get("user_id"),
        author_uid: row.get("author_uid"),
        title: row.get("title"),
        data: row.get("data"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

fn user_columns() -> String {
    USER_COLUMNS
        .split(", ")
        .map(|c| format!("users.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PostgresStore {
    async fn users_page(
        &self,
        from_where: &str,
        order: &str,
        args: &[Arg],
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        let client = self.client().await?;
        let values = bind(args);
        let params = refs(&values);
        let total: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {from_where}"), &params)
            .await
            .map_err(map_error)?
            .get(0);
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM {from_where} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
                    user_columns()
                ),
                &params,
            )
            .await
            .map_err(map_error)?;
        Ok((rows.iter().map(user_from_row).collect(), total))
    }

    pub(super) async fn admin_list_users_impl(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        let (clause, args) = admin_sql::users_where(filter, placeholder);
        let order = admin_sql::users_order(filter);
        self.users_page(
            &format!("users WHERE {clause}"),
            &order,
            &args,
            limit,
            offset,
        )
        .await
    }

    pub(super) async fn admin_update_user_impl(
        &self,
        user_id: i64,
        update: &UserUpdate,
    ) -> StoreResult<UserChange> {
        let domain = self.event_domain();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            let sql = |column: &str| {
                format!("UPDATE users SET {column} = $2, updated_at = now() WHERE id = $1")
            };
            match update {
                UserUpdate::State(s) => tx.execute(&sql("state"), &[&user_id, s]).await?,
                UserUpdate::Otp(o) => tx.execute(&sql("otp"), &[&user_id, o]).await?,
                UserUpdate::Email(e) => tx.execute(&sql("email"), &[&user_id, e]).await?,
                UserUpdate::Role(r) => tx.execute(&sql("role"), &[&user_id, r]).await?,
            };
            if matches!(update, UserUpdate::Otp(_)) {
                tx.execute(
                    "DELETE FROM labels WHERE user_id = $1 AND key = 'otp' AND scope = 'private'",
                    &[&user_id],
                )
                .await?;
            }
            let (user, kids) = user_side_effects(&tx, &domain, &before).await?;
            Ok::<_, tokio_postgres::Error>(UserChange {
                user,
                sessions: Vec::new(),
                kids,
            })
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    pub(super) async fn admin_write_label_impl(
        &self,
        user_id: i64,
        key: &str,
        scope: &str,
        value: &str,
        write: &LabelWrite,
        rules: &StateRules,
    ) -> StoreResult<Option<UserChange>> {
        let domain = self.event_domain();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let result = async {
            let before = user_by_id(&tx, user_id).await?;
            let existing = tx
                .query_opt(
                    "SELECT * FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3
                     FOR UPDATE",
                    &[&user_id, &key, &scope],
                )
                .await?
                .map(|r| label_from_row(&r));
            let insert = "INSERT INTO labels (user_id, key, value, scope, description)
                          VALUES ($1, $2, $3, $4, $5)";
            match (write, existing) {
                (LabelWrite::Create { description }, _)
                | (
                    LabelWrite::Update {
                        description,
                        upsert: true,
                        ..
                    },
                    None,
                ) => {
                    tx.execute(insert, &[&user_id, &key, &value, &scope, description])
                        .await?;
                }
                (LabelWrite::Update { .. }, None) => return Ok(None),
                (
                    LabelWrite::Update {
                        description,
                        clear_description,
                        ..
                    },
                    Some(label),
                ) => {
                    let description = match description {
                        Some(d) => Some(d.clone()),
                        None if *clear_description => None,
                        None => label.description,
                    };
                    tx.execute(
                        "UPDATE labels SET value = $4, description = $5, updated_at = now()
                         WHERE user_id = $1 AND key = $2 AND scope = $3",
                        &[&user_id, &key, &scope, &value, &description],
                    )
                    .await?;
                }
            }
            let change = relabelled(&tx, &domain, &before, rules).await?;
            Ok::<_, tokio_postgres::Error>(Some(change))
        }
        .await
        .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(result)
    }

    pub(super) async fn count_private_labels_impl(
        &self,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key, value, COUNT(*) FROM labels WHERE scope = 'private'
                 GROUP BY key, value ORDER BY key, value",
                &[],
            )
            .await
            .map_err(map_error)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    pub(super) async fn users_with_label_impl(
        &self,
        filter: &LabelFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        let (clause, args) = admin_sql::labels_where(filter, placeholder);
        self.users_page(
            &format!(
                "users WHERE EXISTS (SELECT 1 FROM labels l WHERE l.user_id = users.id AND {clause})"
            ),
            "users.id ASC",
            &args,
            limit,
            offset,
        )
        .await
    }

    pub(super) async fn users_with_pending_documents_impl(&self) -> StoreResult<Vec<User>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM users JOIN labels l ON l.user_id = users.id
                     WHERE l.key = 'document' AND l.scope = 'private'
                         AND l.value IN ('pending', 'replaced')
                     ORDER BY l.updated_at ASC, l.id ASC",
                    user_columns()
                ),
                &[],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    pub(super) async fn create_comment_impl(
        &self,
        user_id: i64,
        author_uid: &str,
        title: &str,
        data: &str,
    ) -> StoreResult<Comment> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO comments (user_id, author_uid, title, data) VALUES ($1, $2, $3, $4)
                 RETURNING *",
                &[&user_id, &author_uid, &title, &data],
            )
            .await
            .map_err(map_error)?;
        Ok(comment_from_row(&row))
    }

    pub(super) async fn find_comment_impl(&self, id: i64) -> StoreResult<Option<Comment>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT * FROM comments WHERE id = $1", &[&id])
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(comment_from_row))
    }

    pub(super) async fn update_comment_impl(
        &self,
        id: i64,
        title: Option<&str>,
        data: Option<&str>,
    ) -> StoreResult<Option<Comment>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE comments SET title = COALESCE($2, title), data = COALESCE($3, data),
                     updated_at = now() WHERE id = $1 RETURNING *",
                &[&id, &title, &data],
            )
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(comment_from_row))
    }

    pub(super) async fn delete_comment_impl(&self, id: i64) -> StoreResult<Option<Comment>> {
        let client = self.client().await?;
        let row = client
            .query_opt("DELETE FROM comments WHERE id = $1 RETURNING *", &[&id])
            .await
            .map_err(map_error)?;
        Ok(row.as_ref().map(comment_from_row))
    }

    pub(super) async fn list_comments_impl(&self, user_id: i64) -> StoreResult<Vec<Comment>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT * FROM comments WHERE user_id = $1 ORDER BY id",
                &[&user_id],
            )
            .await
            .map_err(map_error)?;
        Ok(rows.iter().map(comment_from_row).collect())
    }

    pub(super) async fn delete_data_storage_impl(
        &self,
        user_id: i64,
        title: &str,
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM data_storages WHERE user_id = $1 AND lower(title) = lower($2)",
                &[&user_id, &title],
            )
            .await
            .map_err(map_error)?;
        Ok(n > 0)
    }
}
