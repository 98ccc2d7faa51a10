//! `admin/abilities`, `admin/levels`, `admin/permissions` and `admin/restrictions`.
//! Every permission or restriction change is announced on the
//! invalidation bus, so the authz decision follows it at once here and through NOTIFY elsewhere.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Admin, required_id};
use crate::api::ApiState;
use crate::api::entities::admin::{level, permission, restriction};
use crate::api::error::ApiError;
use crate::api::pagination::{self, Page};
use crate::api::params::{Params, Validator};
use crate::domain::abilities::{self, Action, Resource};
use crate::domain::{NewPermission, NewRestriction, Restriction};
use crate::invalidation::Invalidation;
use crate::service::error::Key;

const PERMISSION: &str = "admin.permission";
const RESTRICTION: &str = "admin.restriction";
const VERBS: &[&str] = &["get", "post", "delete", "put", "head", "patch", "all"];
const ACTIONS: &[&str] = &["accept", "drop", "audit"];
const SCOPES: &[&str] = &["continent", "country", "ip", "ip_subnet", "all"];
const CATEGORIES: &[&str] = &["whitelist", "maintenance", "blacklist", "blocklogin"];
const STATES: &[&str] = &["enabled", "disabled"];

/// One page of an in-memory listing with the pagination headers.
fn page_of<T>(uri: &Uri, page: Page, rows: &[T], render: impl Fn(&T) -> Value) -> Response {
    let body: Vec<Value> = rows
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(0))
        .map(render)
        .collect();
    (
        pagination::headers(uri, page, rows.len() as i64),
        Json(body),
    )
        .into_response()
}

/// `GET abilities`: the caller role's entry of `abilities.yml`; no ability needed.
pub async fn abilities(admin: Admin) -> Json<Value> {
    Json(abilities::ability_map(&admin.user.role))
}

/// `GET levels`.
pub async fn levels(
    State(state): State<ApiState>,
    admin: Admin,
) -> Result<Json<Vec<Value>>, ApiError> {
    admin.authorize(Action::Read, Resource::Level)?;
    let levels = state.store.list_levels().await?;
    Ok(Json(levels.iter().map(level).collect()))
}

/// `GET permissions`: by id, paginated.
pub async fn permissions(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(PERMISSION, &params);
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::Permission)?;
    let mut rows = state.store.list_permissions().await?;
    rows.sort_by_key(|p| p.id);
    Ok(page_of(&uri, page, &rows, permission))
}

/// Answered only once this instance's decision uses the new table: the next request after
/// the admin's answer is never judged by the old one.
async fn permissions_changed(state: &ApiState) {
    state
        .invalidation
        .publish_applied(Invalidation::Permissions)
        .await;
}

/// `POST permissions`.
pub async fn permission_create(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(PERMISSION, &params);
    let role = v.required_string("role");
    let verb = v.required_string("verb");
    let path = v.required_string("path");
    let action = v.required_string("action");
    let topic = v.optional_nonblank_string("topic");
    v.finish()?;
    admin.authorize(Action::Create, Resource::Permission)?;
    let new = NewPermission {
        role: role.unwrap_or_default(),
        verb: verb.unwrap_or_default(),
        path: path.unwrap_or_default(),
        action: action.unwrap_or_default(),
        topic,
    };
    if !VERBS.contains(&new.verb.to_lowercase().as_str()) {
        return Err(ApiError::from(Key::AdminPermissionsInvalidVerb));
    }
    if !ACTIONS.contains(&new.action.to_lowercase().as_str()) {
        return Err(ApiError::from(Key::AdminPermissionsInvalidAction));
    }
    let existing = state.store.list_permissions().await?;
    if !existing.iter().any(|p| p.role == new.role) {
        return Err(ApiError::from(Key::AdminPermissionRoleDoesntExist));
    }
    state.store.create_permission(&new.normalized()).await?;
    permissions_changed(&state).await;
    Ok(Json(json!(200)))
}

fn permission_not_found() -> ApiError {
    ApiError::from(Key::AdminPermissionDoesntExist)
}

/// `PUT permissions`: any field, without the verb/action lists (as Barong).
pub async fn permission_update(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(PERMISSION, &params);
    let id = required_id(&mut v, PERMISSION);
    let role = v.optional_nonblank_string("role");
    let verb = v.optional_nonblank_string("verb");
    let path = v.optional_nonblank_string("path");
    let action = v.optional_nonblank_string("action");
    let topic = v.optional_nonblank_string("topic");
    v.finish()?;
    admin.authorize(Action::Update, Resource::Permission)?;
    let id = id.unwrap_or_default();
    let current = state
        .store
        .list_permissions()
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(permission_not_found)?;
    let new = NewPermission {
        role: role.unwrap_or(current.role),
        verb: verb.unwrap_or(current.verb),
        path: path.unwrap_or(current.path),
        action: action.unwrap_or(current.action),
        topic: topic.or(current.topic),
    }
    .normalized();
    state
        .store
        .update_permission(id, &new)
        .await?
        .ok_or_else(permission_not_found)?;
    permissions_changed(&state).await;
    Ok(Json(json!(200)))
}

/// `DELETE permissions`.
pub async fn permission_delete(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(PERMISSION, &params);
    let id = required_id(&mut v, PERMISSION);
    v.finish()?;
    admin.authorize(Action::Destroy, Resource::Permission)?;
    if !state
        .store
        .delete_permission(id.unwrap_or_default())
        .await?
    {
        return Err(permission_not_found());
    }
    permissions_changed(&state).await;
    Ok(Json(json!(200)))
}

/// An optional value from a list: blank gives `empty_<name>`, another value `invalid_<name>`.
fn listed(v: &mut Validator<'_>, name: &str, values: &[&str]) -> Option<String> {
    let value = v.optional_string_keys(
        name,
        &format!("{RESTRICTION}.invalid_{name}"),
        &format!("{RESTRICTION}.empty_{name}"),
    )?;
    if values.contains(&value.as_str()) {
        Some(value)
    } else {
        v.error(&format!("{RESTRICTION}.invalid_{name}"));
        None
    }
}

/// `GET restrictions`: filtered by scope, category and a created/updated range.
pub async fn restrictions(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(RESTRICTION, &params);
    let scope = listed(&mut v, "scope", SCOPES);
    let category = listed(&mut v, "category", CATEGORIES);
    let updated = match v.optional_string("range").as_deref() {
        None | Some("created") => false,
        Some("updated") => true,
        Some(_) => {
            v.error(&format!("{RESTRICTION}.invalid_range"));
            false
        }
    };
    let from = epoch(&mut v, "from");
    let to = epoch(&mut v, "to");
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::Restriction)?;
    let mut rows = state.store.list_restrictions().await?;
    rows.retain(|r| {
        let at = if updated { r.updated_at } else { r.created_at }.timestamp();
        scope.as_ref().is_none_or(|s| &r.scope == s)
            && category.as_ref().is_none_or(|c| &r.category == c)
            && from.is_none_or(|f| at >= f)
            && to.is_none_or(|t| at <= t)
    });
    rows.sort_by_key(|r| r.id);
    Ok(page_of(&uri, page, &rows, restriction))
}

fn epoch(v: &mut Validator<'_>, name: &str) -> Option<i64> {
    let raw = v.raw(name)?;
    let value = pagination::coerce_integer(raw);
    if value.is_none() {
        v.error(&format!("{RESTRICTION}.non_integer_{name}"));
    }
    value
}

/// Like [`permissions_changed`]. A `blocklogin` row that became enabled also ends every session
/// at once, as Barong's restriction callback does.
async fn restrictions_changed(state: &ApiState, ends_sessions: bool) -> Result<(), ApiError> {
    if ends_sessions {
        let ended = state.store.delete_all_sessions().await?;
        tracing::info!(ended, "blocklogin enabled: every session ended");
        state
            .invalidation
            .publish_applied(Invalidation::AllSessions)
            .await;
    }
    state
        .invalidation
        .publish_applied(Invalidation::Restrictions)
        .await;
    Ok(())
}

fn blocks_login(r: &NewRestriction) -> bool {
    r.category == "blocklogin" && r.state == "enabled"
}

/// The model validations of a restriction: value format per scope, length, and
/// uniqueness per (scope, category) among the other rows.
fn restriction_errors(r: &NewRestriction, others: &[Restriction], id: Option<i64>) -> Vec<String> {
    let mut errors = Vec::new();
    if r.value.chars().count() > 64 {
        errors.push("value.too_long".to_owned());
    }
    let valid = match r.scope.as_str() {
        "ip" => r.value.parse::<std::net::Ipv4Addr>().is_ok(),
        "ip_subnet" => r.value.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
        }),
        _ => true,
    };
    if !valid {
        errors.push("value.invalid".to_owned());
    }
    if !crate::domain::is_restriction_code(i64::from(r.effective_code())) {
        errors.push("code.invalid".to_owned());
    }
    let taken = others.iter().any(|o| {
        Some(o.id) != id && o.scope == r.scope && o.category == r.category && o.value == r.value
    });
    if taken {
        errors.push("value.taken".to_owned());
    }
    errors
}

/// `POST restrictions`.
pub async fn restriction_create(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(RESTRICTION, &params);
    let scope = required_listed(&mut v, "scope", SCOPES, true);
    let value = v.required_string("value");
    let category = required_listed(&mut v, "category", CATEGORIES, false);
    let state_value = listed(&mut v, "state", STATES);
    let code = v.optional_integer(
        "code",
        &format!("{RESTRICTION}.non_integer_code"),
        &format!("{RESTRICTION}.empty_code"),
    );
    v.finish()?;
    admin.authorize(Action::Create, Resource::Restriction)?;
    let new = NewRestriction {
        category: category.unwrap_or_default(),
        scope: scope.unwrap_or_default(),
        value: value.unwrap_or_default(),
        code: code.and_then(|c| i32::try_from(c).ok()),
        state: state_value.unwrap_or_else(|| "enabled".into()),
    };
    let others = state.store.list_restrictions().await?;
    let errors = restriction_errors(&new, &others, None);
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    state.store.create_restriction(&new).await?;
    restrictions_changed(&state, blocks_login(&new)).await?;
    Ok(Json(json!(200)))
}

/// A required value from a list, with Barong's per-parameter key order: scope gives
/// `missing`, `empty`, `invalid`; category `missing`, `invalid`, `empty`.
fn required_listed(
    v: &mut Validator<'_>,
    name: &str,
    values: &[&str],
    empty_first: bool,
) -> Option<String> {
    let missing = format!("{RESTRICTION}.missing_{name}");
    let empty = format!("{RESTRICTION}.empty_{name}");
    let invalid = format!("{RESTRICTION}.invalid_{name}");
    let text = v
        .raw(name)
        .and_then(crate::api::params::coerce_string)
        .filter(|t| !t.trim().is_empty());
    if v.raw(name).is_none() {
        v.error(&missing);
    }
    match text {
        Some(t) if values.contains(&t.as_str()) => Some(t),
        Some(_) => {
            v.error(&invalid);
            None
        }
        None => {
            let order = if empty_first {
                [&empty, &invalid]
            } else {
                [&invalid, &empty]
            };
            for key in order {
                v.error(key);
            }
            None
        }
    }
}

fn restriction_not_found() -> ApiError {
    ApiError::from(Key::AdminRestrictionDoesntExist)
}

/// `PUT restrictions`: re-validated as a whole; an invalid change leaves the row as it was.
pub async fn restriction_update(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(RESTRICTION, &params);
    let id = required_id(&mut v, RESTRICTION);
    let scope = listed(&mut v, "scope", SCOPES);
    let category = listed(&mut v, "category", CATEGORIES);
    let value = v.optional_nonblank_string("value");
    let state_value = listed(&mut v, "state", STATES);
    let code = v.optional_integer(
        "code",
        &format!("{RESTRICTION}.non_integer_code"),
        &format!("{RESTRICTION}.empty_code"),
    );
    v.finish()?;
    admin.authorize(Action::Update, Resource::Restriction)?;
    let id = id.unwrap_or_default();
    let others = state.store.list_restrictions().await?;
    let current = others
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(restriction_not_found)?;
    let new = NewRestriction {
        category: category.unwrap_or_else(|| current.category.clone()),
        scope: scope.unwrap_or_else(|| current.scope.clone()),
        value: value.unwrap_or_else(|| current.value.clone()),
        code: Some(
            code.and_then(|c| i32::try_from(c).ok())
                .unwrap_or(current.code),
        ),
        state: state_value.unwrap_or_else(|| current.state.clone()),
    };
    let errors = restriction_errors(&new, &others, Some(id));
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    state
        .store
        .update_restriction(id, &new)
        .await?
        .ok_or_else(restriction_not_found)?;
    let became =
        blocks_login(&new) && !(current.category == "blocklogin" && current.state == "enabled");
    restrictions_changed(&state, became).await?;
    Ok(Json(json!(200)))
}

/// `DELETE restrictions`.
pub async fn restriction_delete(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let mut v = Validator::new(RESTRICTION, &params);
    let id = required_id(&mut v, RESTRICTION);
    v.finish()?;
    admin.authorize(Action::Destroy, Resource::Restriction)?;
    if !state
        .store
        .delete_restriction(id.unwrap_or_default())
        .await?
    {
        return Err(restriction_not_found());
    }
    restrictions_changed(&state, false).await?;
    Ok(Json(json!(200)))
}

/// `POST restrictions/whitelink`: a token that lets `identity/users/access` through for
/// `expire_time` days (or hours); 201.
pub async fn whitelink(
    State(state): State<ApiState>,
    admin: Admin,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(RESTRICTION, &params);
    let expire = match v.raw("expire_time") {
        None => Some(1),
        Some(raw) => match pagination::coerce_integer(raw) {
            Some(n) if (1..=30).contains(&n) => Some(n),
            // Barong's whitelink keys carry no prefix (its `values:` messages).
            Some(_) => {
                v.error("invalid_expire");
                None
            }
            None => {
                v.error(&format!("{RESTRICTION}.non_integer_expire_time"));
                None
            }
        },
    };
    let unit = match v.optional_string("range").as_deref() {
        None | Some("day") => 86_400,
        Some("hour") => 3_600,
        Some(_) => {
            v.error("invalid_range");
            0
        }
    };
    v.finish()?;
    admin.authorize(Action::Create, Resource::Restriction)?;
    let token = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &rand::random::<[u8; 10]>(),
    ));
    let expires_at = chrono::Utc::now().timestamp() + expire.unwrap_or(1) * unit;
    state
        .store
        .create_whitelink_token(&token, expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "whitelink_token": token })),
    )
        .into_response())
}
