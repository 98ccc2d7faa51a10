//! The admin area's SQL on SQLite (see the admin section of the `Store` trait).

use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params, params_from_iter};

use super::{
    SqliteStore, USER_COLUMNS, label_by_key, now_text, relabelled, timestamp, user_by_id,
    user_from_row, user_side_effects,
};
use crate::domain::{Comment, LabelFilter, LabelWrite, StateRules, User, UserFilter, UserUpdate};
use crate::store::admin_sql::{self, Arg};
use crate::store::sql::Database;
use crate::store::{StoreResult, UserChange};

fn placeholder(n: usize, _: &Arg) -> String {
    format!("?{n}")
}

/// Times are stored as RFC 3339 text with milliseconds; an epoch bound becomes the same text.
fn bind(args: Vec<Arg>) -> Vec<rusqlite::types::Value> {
    args.into_iter()
        .map(|arg| match arg {
            Arg::Text(t) => rusqlite::types::Value::Text(t),
            Arg::Int(i) => rusqlite::types::Value::Integer(i),
            Arg::Time(secs) => rusqlite::types::Value::Text(
                chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
        })
        .collect()
}

fn comment_from_row(row: &Row<'_>) -> rusqlite::Result<Comment> {
    Ok(Comment {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        author_uid: row.get("author_uid")?,
        title: row.get("title")?,
        data: row.get("data")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn users_page(
    c: &rusqlite::Connection,
    from_where: &str,
    order: &str,
    args: Vec<Arg>,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<User>, i64)> {
    let values = bind(args);
    let total: i64 = c.query_row(
        &format!("SELECT COUNT(*) FROM {from_where}"),
        params_from_iter(values.iter()),
        |r| r.get(0),
    )?;
    let columns = USER_COLUMNS
        .split(", ")
        .map(|c| format!("users.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = c.prepare(&format!(
        "SELECT {columns} FROM {from_where} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    ))?;
    let users = stmt
        .query_map(params_from_iter(values.iter()), user_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((users, total))
}

impl SqliteStore {
    pub(super) async fn admin_list_users_impl(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        let (clause, args) = admin_sql::users_where(filter, placeholder);
        let order = admin_sql::users_order(filter);
        self.with_conn(move |c| {
            users_page(
                c,
                &format!("users WHERE {clause}"),
                &order,
                args,
                limit,
                offset,
            )
        })
        .await
    }

    pub(super) async fn admin_update_user_impl(
        &self,
        user_id: i64,
        update: &UserUpdate,
    ) -> StoreResult<UserChange> {
        let domain = self.event_domain();
        let update = update.clone();
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            let (column, value): (&str, rusqlite::types::Value) = match &update {
                UserUpdate::State(s) => ("state", s.clone().into()),
                UserUpdate::Otp(o) => ("otp", i64::from(*o).into()),
                UserUpdate::Email(e) => ("email", e.clone().into()),
                UserUpdate::Role(r) => ("role", r.clone().into()),
            };
            tx.execute(
                &format!("UPDATE users SET {column} = ?2, updated_at = ?3 WHERE id = ?1"),
                params![user_id, value, now_text()],
            )?;
            if matches!(update, UserUpdate::Otp(_)) {
                tx.execute(
                    "DELETE FROM labels WHERE user_id = ?1 AND key = 'otp' AND scope = 'private'",
                    [user_id],
                )?;
            }
            let (user, kids) = user_side_effects(&tx, &domain, &before)?;
            tx.commit()?;
            Ok(UserChange {
                user,
                sessions: Vec::new(),
                kids,
            })
        })
        .await
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
        let (key, scope, value, write, rules) = (
            key.to_owned(),
            scope.to_owned(),
            value.to_owned(),
            write.clone(),
            rules.clone(),
        );
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before = user_by_id(&tx, user_id)?;
            let existing = label_by_key(&tx, user_id, &key, &scope)?;
            let now = now_text();
            let insert = |description: &Option<String>| {
                tx.execute(
                    "INSERT INTO labels (user_id, key, value, scope, description, created_at,
                         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![user_id, key, value, scope, description, now],
                )
            };
            match (&write, existing) {
                (LabelWrite::Create { description }, _) => {
                    insert(description)?;
                }
                (
                    LabelWrite::Update {
                        description,
                        upsert: true,
                        ..
                    },
                    None,
                ) => {
                    insert(description)?;
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
                        "UPDATE labels SET value = ?4, description = ?5, updated_at = ?6
                         WHERE user_id = ?1 AND key = ?2 AND scope = ?3",
                        params![user_id, key, scope, value, description, now],
                    )?;
                }
            }
            let change = relabelled(&tx, &domain, &before, &rules)?;
            tx.commit()?;
            Ok(Some(change))
        })
        .await
    }

    pub(super) async fn count_private_labels_impl(
        &self,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT key, value, COUNT(*) FROM labels WHERE scope = 'private'
                 GROUP BY key, value ORDER BY key, value",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .await
    }

    pub(super) async fn users_with_label_impl(
        &self,
        filter: &LabelFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        let (clause, args) = admin_sql::labels_where(filter, placeholder);
        self.with_conn(move |c| {
            users_page(
                c,
                &format!(
                    "users WHERE EXISTS (SELECT 1 FROM labels l WHERE l.user_id = users.id \
                     AND {clause})"
                ),
                "users.id ASC",
                args,
                limit,
                offset,
            )
        })
        .await
    }

    pub(super) async fn users_with_pending_documents_impl(&self) -> StoreResult<Vec<User>> {
        self.with_conn(|c| {
            let columns = USER_COLUMNS
                .split(", ")
                .map(|c| format!("users.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c.prepare(&format!(
                "SELECT {columns} FROM users JOIN labels l ON l.user_id = users.id
                 WHERE l.key = 'document' AND l.scope = 'private'
                     AND l.value IN ('pending', 'replaced')
                 ORDER BY l.updated_at ASC, l.id ASC"
            ))?;
            stmt.query_map([], user_from_row)?.collect()
        })
        .await
    }

    pub(super) async fn create_comment_impl(
        &self,
        user_id: i64,
        author_uid: &str,
        title: &str,
        data: &str,
    ) -> StoreResult<Comment> {
        let (author_uid, title, data) = (author_uid.to_owned(), title.to_owned(), data.to_owned());
        self.with_conn(move |c| {
            c.query_row(
                "INSERT INTO comments (user_id, author_uid, title, data, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING *",
                params![user_id, author_uid, title, data, now_text()],
                comment_from_row,
            )
        })
        .await
    }

    pub(super) async fn find_comment_impl(&self, id: i64) -> StoreResult<Option<Comment>> {
        self.with_conn(move |c| {
            c.query_row(
                "SELECT * FROM comments WHERE id = ?1",
                [id],
                comment_from_row,
            )
            .optional()
        })
        .await
    }

    pub(super) async fn update_comment_impl(
        &self,
        id: i64,
        title: Option<&str>,
        data: Option<&str>,
    ) -> StoreResult<Option<Comment>> {
        let (title, data) = (title.map(str::to_owned), data.map(str::to_owned));
        self.with_conn(move |c| {
            c.query_row(
                "UPDATE comments SET title = COALESCE(?2, title), data = COALESCE(?3, data),
                     updated_at = ?4 WHERE id = ?1 RETURNING *",
                params![id, title, data, now_text()],
                comment_from_row,
            )
            .optional()
        })
        .await
    }

    pub(super) async fn delete_comment_impl(&self, id: i64) -> StoreResult<Option<Comment>> {
        self.with_conn(move |c| {
            c.query_row(
                "DELETE FROM comments WHERE id = ?1 RETURNING *",
                [id],
                comment_from_row,
            )
            .optional()
        })
        .await
    }

    pub(super) async fn list_comments_impl(&self, user_id: i64) -> StoreResult<Vec<Comment>> {
        self.with_conn(move |c| {
            let mut stmt = c.prepare("SELECT * FROM comments WHERE user_id = ?1 ORDER BY id")?;
            stmt.query_map([user_id], comment_from_row)?.collect()
        })
        .await
    }

    pub(super) async fn delete_data_storage_impl(
        &self,
        user_id: i64,
        title: &str,
    ) -> StoreResult<bool> {
        let title = title.to_owned();
        self.with_conn(move |c| {
            c.execute(
                "DELETE FROM data_storages WHERE user_id = ?1 AND lower(title) = lower(?2)",
                params![user_id, title],
            )
            .map(|n| n > 0)
        })
        .await
    }
}
