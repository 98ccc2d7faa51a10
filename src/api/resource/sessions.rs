//! `resource/sessions`: the caller's live sessions (one per device it is logged in on), and
//! ending one or all but the current one. A session is shown and named by its public id, never
//! by the cookie nor by the cookie's hash.
//!
//! Ending a session deletes its row and waits until this instance's authz cache has dropped it
//! (`publish_applied`), so the very next decision here refuses it; other instances drop it when
//! the PostgreSQL notification arrives, and at the latest after `BARONG_AUTHZ_CACHE_TTL`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities;
use crate::api::error::ApiError;
use crate::api::pagination::{self};
use crate::api::params::{Params, Validator};
use crate::domain::session_key;
use crate::service::activity::RequestMeta;
use crate::service::error::Key;
use crate::service::sessions::{forget, record_end};

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
        .map(|s| entities::session(s, Some(own.as_deref() == Some(s.id.as_str())), mask))
        .collect();
    Ok(pagination::page_response(&uri, page, rows))
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
        return Err(ApiError::from(Key::ResourceSessionNotFound));
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
