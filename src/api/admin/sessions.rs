//! `admin/users/sessions`: a user's live sessions, and ending one or all of them (a lost
//! phone reported to support, a compromised account). Guarded by the User ability like the
//! other user operations; the audit layer records the DELETE with its target.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Admin, target_user};
use crate::api::ApiState;
use crate::api::entities;
use crate::api::error::ApiError;
use crate::api::pagination::page_response;
use crate::api::params::{Params, Validator};
use crate::domain::abilities::{Action, Resource};
use crate::service::activity::RequestMeta;
use crate::service::error::Key;
use crate::service::sessions::{forget, record_end};

const SCOPE: &str = "admin.user";

/// `GET users/sessions?uid=`: the user's live sessions, newest first, addresses unmasked.
pub async fn list(
    State(state): State<ApiState>,
    admin: Admin,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let page = v.page();
    v.finish()?;
    admin.authorize(Action::Read, Resource::User)?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    let now = chrono::Utc::now().timestamp();
    let sessions = state.store.list_user_sessions(target.id, now).await?;
    let rows = sessions
        .iter()
        .map(|s| entities::session(s, None, false))
        .collect();
    Ok(page_response(&uri, page, rows))
}

/// `DELETE users/sessions?uid=[&id=]`: ends the session `id` of the user, or every one of its
/// sessions; 204, or `404 admin.session.doesnt_exist` for an id the user does not have.
pub async fn destroy(
    State(state): State<ApiState>,
    admin: Admin,
    meta: RequestMeta,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new(SCOPE, &params);
    let uid = v.required_string("uid");
    let id = v.optional_string("id");
    v.finish()?;
    admin.authorize(Action::Update, Resource::User)?;
    let target = target_user(&state, &uid.unwrap_or_default()).await?;
    admin.target(&target.uid);
    let by = &admin.user.uid;
    match id {
        Some(id) => {
            let ended = state
                .store
                .delete_user_session(target.id, &id)
                .await?
                .ok_or_else(|| ApiError::from(Key::AdminSessionDoesntExist))?;
            forget(&state, vec![ended]).await;
            let data = json!({ "session": id, "by": by });
            record_end(&state, &target, &meta, "end", data).await;
        }
        None => {
            let ended = state.store.delete_user_sessions(target.id, None).await?;
            let data = json!({ "ended": ended.len(), "by": by });
            forget(&state, ended).await;
            record_end(&state, &target, &meta, "end_all", data).await;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
