//! `resource/sessions`: the caller's live sessions (one per device it is logged in on), and
//! ending one or all but the current one. A session is shown and named by its public id, never
//! by the cookie nor by the cookie's hash.
//!
//! Ending a session deletes its row and waits until this instance's authz cache has dropped it
//! (`publish_applied`), so the very next decision here refuses it; other instances drop it when
//! the PostgreSQL notification arrives, and at the latest after `BARONG_AUTHZ_CACHE_TTL`.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities::iso8601;
use crate::api::error::ApiError;
use crate::api::identity::RequestMeta;
use crate::api::pagination::{self, Page};
use crate::api::params::{Params, Validator};
use crate::domain::{NewActivity, Session, User, describe_device, mask_ip, session_key};
use crate::invalidation::Invalidation;

/// One session as its owner (`current` known, addresses masked as the settings say) or an
/// admin (`current` absent, unmasked) sees it.
pub(crate) fn entity(session: &Session, current: Option<bool>, mask: bool) -> Value {
    let user_ip = if mask {
        mask_ip(&session.user_ip)
    } else {
        session.user_ip.clone()
    };
    let expire_at = chrono::DateTime::from_timestamp(session.expire_at, 0)
        .map(|t| iso8601(&t))
        .unwrap_or_default();
    let mut body = json!({
        "id": session.public_id,
        "user_agent": session.user_agent,
        "device": describe_device(session.user_agent.as_deref()),
        "user_ip": user_ip,
        "user_ip_country": session.user_ip_country,
        "authenticated_with": session.authenticated_with,
        "created_at": iso8601(&session.created_at),
        "last_seen_at": iso8601(&session.updated_at),
        "expire_at": expire_at,
    });
    if let (Some(current), Value::Object(map)) = (current, &mut body) {
        map.insert("current".into(), Value::Bool(current));
    }
    body
}

/// One page of sessions with the pagination headers.
pub(crate) fn page_of(uri: &Uri, page: Page, rows: Vec<Value>) -> Response {
    let total = rows.len() as i64;
    let shown: Vec<Value> = rows
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(0))
        .collect();
    (pagination::headers(uri, page, total), Json(shown)).into_response()
}

/// The storage id of the session the request's cookie names, if any.
fn current_id(meta: &RequestMeta) -> Option<String> {
    meta.cookie.as_deref().map(session_key)
}

/// `GET sessions`: live sessions, newest first, the request's own marked `current`.
pub async fn list(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.session", &params);
    let page = v.page();
    v.finish()?;
    let now = chrono::Utc::now().timestamp();
    let sessions = state.store.list_user_sessions(current.user.id, now).await?;
    let own = current_id(&meta);
    let mask = crate::api::entities::masked(&state);
    let rows = sessions
        .iter()
        .map(|s| entity(s, Some(own.as_deref() == Some(s.id.as_str())), mask))
        .collect();
    Ok(page_of(&uri, page, rows))
}

/// `DELETE sessions/{id}`: ends one of the caller's sessions (the current one too: that is a
/// logout from elsewhere); 404 for an id that is not one of the caller's.
pub async fn destroy(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(ended) = state
        .store
        .delete_user_session(current.user.id, &id)
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "resource.session.not_found",
        ));
    };
    forget(&state, vec![ended]).await;
    record_end(
        &state,
        &current.user,
        &meta,
        "end",
        json!({ "session": id }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE sessions`: ends every session of the caller but the one the request came from
/// (all of them when the request carries no session cookie).
pub async fn destroy_others(
    State(state): State<ApiState>,
    current: CurrentUser,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    let keep = current_id(&meta);
    let ended = state
        .store
        .delete_user_sessions(current.user.id, keep.as_deref())
        .await?;
    let count = ended.len();
    forget(&state, ended).await;
    record_end(
        &state,
        &current.user,
        &meta,
        "end_all",
        json!({ "ended": count }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Drops ended sessions from every authz cache: here before returning, elsewhere as the bus
/// relays it. The publications are numbered in order, so waiting for the last covers all.
pub(crate) async fn forget(state: &ApiState, mut ended: Vec<String>) {
    let Some(last) = ended.pop() else {
        return;
    };
    for id in ended {
        state.invalidation.publish(Invalidation::Session(id));
    }
    state
        .invalidation
        .publish_applied(Invalidation::Session(last))
        .await;
}

/// The `session` activity of the user whose sessions were ended (by themselves or an admin,
/// whose address and agent it then carries, with `by` naming the admin).
pub(crate) async fn record_end(
    state: &ApiState,
    user: &User,
    meta: &RequestMeta,
    action: &str,
    data: Value,
) {
    let activity = NewActivity {
        user_id: user.id,
        target_uid: None,
        category: "user".into(),
        user_ip: meta.ip.to_string(),
        user_ip_country: crate::api::identity::country_of(state, meta.ip),
        user_agent: meta.user_agent.clone().unwrap_or_default(),
        topic: "session".into(),
        action: action.into(),
        result: "succeed".into(),
        data: Some(data.to_string()),
    };
    if let Err(error) = state.store.insert_activities(&[activity]).await {
        tracing::warn!(%error, action, "session activity not recorded");
    }
}
