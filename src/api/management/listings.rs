//! The paginated management listings: `users/list` and
//! `labels/filter/users`, answered 200 with Barong's pagination headers.

use serde_json::Value;

use super::{MgmtError, Paged, Params, boolean, integer, page, present, refuse, require, text};
use crate::api::ApiState;
use crate::api::entities::admin::{user, user_with_profile_masked};
use crate::api::entities::masked;
use crate::domain::{LabelFilter, User, UserFilter};

/// `range`: `created` (default) or `updated`; anything else is refused with `message`.
fn range(params: &Params, message: &str, messages: &mut Vec<String>) -> bool {
    match text(params, "range").as_deref() {
        None | Some("created") => false,
        Some("updated") => true,
        Some(_) => {
            messages.push(format!("range {message}"));
            false
        }
    }
}

/// POST /users/list: every user (created or updated within `from`..`to`), by id;
/// `[User]`, or management `[UserWithProfile]` when `extended`.
pub async fn users(state: ApiState, params: Params) -> Result<Paged, MgmtError> {
    let mut messages = Vec::new();
    let extended = boolean(
        &params,
        "extended",
        "Non boolean extended value",
        &mut messages,
    );
    let filter = UserFilter {
        range_updated: range(&params, "Non positive page", &mut messages),
        from: integer(&params, "from", &mut messages),
        to: integer(&params, "to", &mut messages),
        ..UserFilter::default()
    };
    let page = page(&params, &mut messages);
    refuse(messages)?;
    let (users, total) = state
        .store
        .list_users(&filter, page.limit, page.offset())
        .await?;
    // The management `UserWithProfile`: profiles unmasked.
    let body = render(&state, &users, extended.unwrap_or(false), false).await?;
    Ok(Paged { page, total, body })
}

/// POST /labels/filter/users: the users with a label matching `key` (and `value`, `scope`,
/// the label's time range); `[User]`, or the generic (masked) `[UserWithProfile]`.
pub async fn users_with_label(state: ApiState, params: Params) -> Result<Paged, MgmtError> {
    require(&params, &["key"])?;
    let mut messages = Vec::new();
    let extended = boolean(
        &params,
        "extended",
        "Non boolean extended value",
        &mut messages,
    );
    let filter = LabelFilter {
        key: text(&params, "key").unwrap_or_default(),
        value: present(&params, "value"),
        scope: present(&params, "scope"),
        range_updated: range(&params, "Invalid range", &mut messages),
        from: integer(&params, "from", &mut messages),
        to: integer(&params, "to", &mut messages),
    };
    let page = page(&params, &mut messages);
    refuse(messages)?;
    let (users, total) = state
        .store
        .users_with_label(&filter, page.limit, page.offset())
        .await?;
    // The generic `UserWithProfile`: profiles masked as the settings say.
    let mask = masked(&state);
    let body = render(&state, &users, extended.unwrap_or(false), mask).await?;
    Ok(Paged { page, total, body })
}

/// `[User]`, or `[UserWithProfile]` (profiles masked when `mask`) when `extended`.
async fn render(
    state: &ApiState,
    users: &[User],
    extended: bool,
    mask: bool,
) -> Result<Vec<Value>, MgmtError> {
    let mut body = Vec::with_capacity(users.len());
    for u in users {
        body.push(if extended {
            user_with_profile_masked(state, u, mask).await?
        } else {
            user(state, u).await?
        });
    }
    Ok(body)
}
