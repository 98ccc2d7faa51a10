//! `admin/users`: listing and filtering, one user with everything, state/otp/email/role
//! changes, pending documents, data storage removal and comments.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    Admin, optional_bool, ordering, required_id, superadmin_guard, target_user, user_not_found,
};
use crate::api::ApiState;
use crate::api::entities::admin::{user, user_with_kyc, user_with_profile};
use crate::api::error::ApiError;
use crate::api::pagination::{self, Page};
use crate::api::params::{Params, Validator};
use crate::domain::abilities::{Action, Resource};
use crate::domain::{
    USER_ORDER_COLUMNS, User, UserFilter, UserState, UserUpdate, email_is_valid, role,
};
use crate::service::error::Key;
use crate::store::StoreError;

const SCOPE: &str = "admin.user";

fn unprocessable(key: &str) -> ApiError {
    ApiError::unprocessable(vec![key.to_owned()])
}

/// The filters shared by `GET users` and `GET users/documents/pending`.
fn read_filter(v: &mut Validator<'_>) -> (bool, UserFilter) {
    let extended = optional_bool(v, "extended", "admin.user.non_boolean_extended").unwrap_or(false);
    let mut filter = UserFilter {
        uid: v.optional_string("uid"),
        email: v.optional_string("email"),
        role: v.optional_string("role"),
        country: v.optional_string("country"),
        ..UserFilter::default()
    };
    filter.level = integer(v, "level");
    filter.state = v.optional_string("state");
    filter.range_updated = match v.optional_string("range").as_deref() {
        None | Some("created") => false,
        Some("updated") => true,
        Some(_) => {
            v.error("admin.user.invalid_range");
            false
        }
    };
    filter.from = integer(v, "from");
    filter.to = integer(v, "to");
    (extended, filter)
}

fn integer(v: &mut Validator<'_>, name: &str) -> Option<i64> {
    let raw = v.raw(name)?;
    if raw.is_null() {
        return None;
    }
    let value = pagination::coerce_integer(raw);
    if value.is_none() {
        v.error(&format!("{SCOPE}.non_integer_{name}"));
    }
    value
}

async fn render(state: &ApiState, users: &[User], extended: bool) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        out.push(if extended {
            user_with_profile(state, u).await?
        } else {
            user(state, u).await?
        });
    }
    Ok(out)
}

fn paginated(uri: &Uri, page: Page, total: i64, body: Vec<Value>) -> Response {
    (pagination::headers(uri, page, total), Json(body)).into_response()
}

/// `GET users`: filtered, ordered, paginated.
pub async fn list(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let (extended, mut filter) = read_filter(&mut v);
    let (order_by, descending) = ordering(&mut v, "user", USER_ORDER_COLUMNS);
    filter.order_by = order_by;
    filter.descending = descending;
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::User)?;
    let (users, total) = state
        .store
        .list_users(&filter, page.limit, page.offset())
        .await?;
    let body = render(&state, &users, extended).await?;
    Ok(paginated(&uri, page, total, body))
}

/// `GET users/{uid}`: the admin `UserWithKYC`.
pub async fn show(
    State(state): State<ApiState>,
    admin: Admin,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    admin.authorize(Action::Read, Resource::User)?;
    let target = target_user(&state, &uid).await?;
    Ok(Json(user_with_kyc(&state, &target).await?))
}

/// `GET users/documents/pending`: users whose private `document` label is `pending` or
/// `replaced`, oldest label change first, then filtered like the users list.
pub async fn documents_pending(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let (extended, filter) = read_filter(&mut v);
    v.optional_string("first_name");
    v.optional_string("last_name");
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::User)?;
    let mut users = state.store.users_with_pending_documents().await?;
    if filter != UserFilter::default() {
        let (matching, _) = state.store.list_users(&filter, i64::MAX, 0).await?;
        let ids: std::collections::HashSet<i64> = matching.iter().map(|u| u.id).collect();
        users.retain(|u| ids.contains(&u.id));
    }
    let total = users.len() as i64;
    let shown: Vec<User> = users
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(0))
        .collect();
    let mut body = Vec::with_capacity(shown.len());
    for u in &shown {
        body.push(if extended {
            user_with_kyc(&state, u).await?
        } else {
            user(&state, u).await?
        });
    }
    Ok(paginated(&uri, page, total, body))
}

/// Which change a `PUT users` / `POST users/update` asks for: the first parameter other than
/// `uid` among the allowed ones.
fn requested_change(
    params: &Params,
    allowed: &[&str],
    one_of_key: &str,
) -> Result<(String, String, Option<String>), ApiError> {
    let mut v = Validator::new(SCOPE, params);
    let uid = v.required_string("uid");
    let mut given = Vec::new();
    for name in allowed {
        if v.raw(name).is_some() {
            let value = if *name == "otp" {
                optional_bool(&mut v, "otp", "admin.user.non_boolean_otp").map(|b| b.to_string())
            } else {
                v.optional_nonblank_string(name)
            };
            given.push((name.to_string(), value));
        }
    }
    if given.len() != 1 {
        v.error(one_of_key);
    }
    v.finish()?;
    let (name, value) = given
        .into_iter()
        .next()
        .ok_or_else(|| unprocessable(one_of_key))?;
    Ok((uid.unwrap_or_default(), name, value))
}

/// `PUT users`: one of `email`, `state`, `otp`.
pub async fn update(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let (uid, name, value) = requested_change(
        &params,
        &["email", "state", "otp"],
        "admin.user.one_of_state_otp_email",
    )?;
    apply_update(&state, &admin, &uid, &name, value, true).await
}

/// `POST users/update`: one of `state`, `otp`.
pub async fn update_state_otp(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let (uid, name, value) =
        requested_change(&params, &["state", "otp"], "admin.user.one_of_state_otp")?;
    apply_update(&state, &admin, &uid, &name, value, false).await
}

async fn apply_update(
    state: &ApiState,
    admin: &Admin,
    uid: &str,
    name: &str,
    value: Option<String>,
    email_allowed: bool,
) -> Result<Json<Value>, ApiError> {
    admin.authorize(Action::Update, Resource::User)?;
    let target = target_user(state, uid).await?;
    superadmin_guard(admin, &target)?;
    if target.id == admin.user.id {
        return Err(ApiError::from(Key::AdminUserUpdateHimself));
    }
    let value = value.unwrap_or_default();
    let update = match name {
        "email" if email_allowed => {
            if admin.user.role != role::SUPERADMIN {
                return Err(ApiError::from(Key::SuperadminUserUpdateEmail));
            }
            let email = value.to_lowercase();
            if email == target.email {
                return Err(ApiError::from(Key::AdminUserEmailNoChange));
            }
            if !email_is_valid(&email) {
                return Err(ApiError::from(Key::EmailInvalid));
            }
            UserUpdate::Email(email)
        }
        "otp" => {
            if value == "true" {
                return Err(ApiError::from(Key::AdminUserEnable2fa));
            }
            if !target.otp {
                return Err(ApiError::from(Key::AdminUserOtpNoChange));
            }
            UserUpdate::Otp(false)
        }
        _ => {
            let new_state = UserState::parse(&value);
            if new_state == target.state {
                return Err(ApiError::from(Key::AdminUserStateNoChange));
            }
            UserUpdate::State(new_state)
        }
    };
    change_user(state, admin, &target, &update).await?;
    Ok(Json(json!(200)))
}

/// Applies a change, publishes what the caches must forget and names the target for the audit.
async fn change_user(
    state: &ApiState,
    admin: &Admin,
    target: &User,
    update: &UserUpdate,
) -> Result<(), ApiError> {
    let change = match state.store.update_user(target.id, update).await {
        Ok(change) => change,
        Err(StoreError::Conflict(_)) => return Err(ApiError::from(Key::EmailTaken)),
        Err(other) => return Err(other.into()),
    };
    crate::service::changes::publish_change(state, &change).await;
    admin.target(&target.uid);
    Ok(())
}

/// `POST users/role`.
pub async fn role(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let role = v.required_string("role");
    v.finish()?;
    let (uid, role) = (uid.unwrap_or_default(), role.unwrap_or_default());
    admin.authorize(Action::Update, Resource::User)?;
    let target = target_user(&state, &uid).await?;
    superadmin_guard(&admin, &target)?;
    if target.id == admin.user.id {
        return Err(ApiError::from(Key::AdminUserUpdateHimself));
    }
    if target.role == role {
        return Err(ApiError::from(Key::AdminUserRoleNoChange));
    }
    let known = state
        .store
        .list_permissions()
        .await?
        .iter()
        .any(|p| p.role == role);
    if !known {
        return Err(ApiError::from(Key::RoleDoesntExist));
    }
    change_user(&state, &admin, &target, &UserUpdate::Role(role)).await?;
    Ok(Json(json!(200)))
}

/// `DELETE users/data_storage`: the row goes, its `<title>:recorded` label stays.
pub async fn delete_data_storage(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let title = v.required_string("title");
    v.finish()?;
    admin.authorize(Action::Destroy, Resource::User)?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    let deleted = state
        .store
        .delete_data_storage(target.id, &title.unwrap_or_default())
        .await?;
    if !deleted {
        return Err(ApiError::from(Key::AdminStorageDoesntExist));
    }
    admin.target(&target.uid);
    Ok(Json(user_with_kyc(&state, &target).await?))
}

/// A comment field: `missing_`, the length key, `empty_`, in Barong's order.
fn comment_field(v: &mut Validator<'_>, name: &str, max: usize, required: bool) -> Option<String> {
    let raw = v.raw(name);
    if raw.is_none() {
        if required {
            v.error(&format!("{SCOPE}.missing_{name}"));
            v.error(&format!("{SCOPE}.empty_{name}"));
        }
        return None;
    }
    let text = raw.and_then(crate::api::params::coerce_string);
    if text.as_ref().is_some_and(|t| t.chars().count() > max) {
        v.error(&format!("admin.comments.{name}_too_long"));
    }
    match text {
        Some(t) if !t.trim().is_empty() => Some(t),
        _ => {
            v.error(&format!("{SCOPE}.empty_{name}"));
            None
        }
    }
}

/// `POST users/comments` (no ability check, as in Barong): 201 with the user.
pub async fn comment_create(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let title = comment_field(&mut v, "title", 64, true);
    let data = comment_field(&mut v, "data", 65535, true);
    v.finish()?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    state
        .store
        .create_comment(
            target.id,
            &admin.user.uid,
            &title.unwrap_or_default(),
            &data.unwrap_or_default(),
        )
        .await?;
    admin.target(&target.uid);
    let body = user_with_kyc(&state, &target).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn comment_not_found() -> ApiError {
    ApiError::from(Key::RecordNotFound)
}

async fn comment_owner(state: &ApiState, user_id: i64) -> Result<User, ApiError> {
    state
        .store
        .find_user_by_id(user_id)
        .await?
        .ok_or_else(user_not_found)
}

/// `PUT users/comments`: new title and/or data.
pub async fn comment_update(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let id = required_id(&mut v, SCOPE);
    let title = comment_field(&mut v, "title", 64, false);
    let data = comment_field(&mut v, "data", 65535, false);
    v.finish()?;
    let comment = state
        .store
        .update_comment(id.unwrap_or_default(), title.as_deref(), data.as_deref())
        .await?
        .ok_or_else(comment_not_found)?;
    let owner = comment_owner(&state, comment.user_id).await?;
    admin.target(&owner.uid);
    Ok(Json(user_with_kyc(&state, &owner).await?))
}

/// `DELETE users/comments`.
pub async fn comment_delete(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let id = required_id(&mut v, SCOPE);
    v.finish()?;
    let comment = state
        .store
        .delete_comment(id.unwrap_or_default())
        .await?
        .ok_or_else(comment_not_found)?;
    let owner = comment_owner(&state, comment.user_id).await?;
    admin.target(&owner.uid);
    Ok(Json(user_with_kyc(&state, &owner).await?))
}
