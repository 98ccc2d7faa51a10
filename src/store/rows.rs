//! Row readers every aggregate shares: a user and a label by key. They read and write nothing
//! else, so any module may use them without importing an aggregate that imports it back.

use super::StoreResult;
use super::sql::{Exec, Row, args};
use crate::domain::{Label, User};

pub(super) fn label_from_row(row: &Row) -> StoreResult<Label> {
    Ok(Label {
        key: row.get("key")?,
        value: row.get("value")?,
        scope: row.get("scope")?,
        description: row.get("description")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// The user's label (key, scope) with its id, if any.
pub(super) async fn label_by_key(
    c: &mut impl Exec,
    user_id: i64,
    key: &str,
    scope: &str,
) -> StoreResult<Option<(i64, Label)>> {
    let row = c
        .query_opt(
            "SELECT * FROM labels WHERE user_id = $1 AND key = $2 AND scope = $3",
            args![user_id, key, scope],
        )
        .await?;
    match row {
        Some(row) => Ok(Some((row.get("id")?, label_from_row(&row)?))),
        None => Ok(None),
    }
}

pub(super) const USER_COLUMNS: &str = "id, uid, username, email, password_digest, role, data, \
     level, otp, state, referral_id, created_at, updated_at";

pub(super) fn user_from_row(row: &Row) -> StoreResult<User> {
    Ok(User {
        id: row.get("id")?,
        uid: row.get("uid")?,
        username: row.get("username")?,
        email: row.get("email")?,
        password_digest: row.get("password_digest")?,
        role: row.get("role")?,
        data: row.get("data")?,
        level: row.get("level")?,
        otp: row.get("otp")?,
        state: row.get("state")?,
        referral_id: row.get("referral_id")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

/// The user with this id (it must exist).
pub(super) async fn user_by_id(c: &mut impl Exec, id: i64) -> StoreResult<User> {
    let row = c
        .query_one(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            args![id],
        )
        .await?;
    user_from_row(&row)
}
