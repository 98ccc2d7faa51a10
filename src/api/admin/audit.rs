//! The audit row of an admin call, written as Barong writes it: for every call an AUDIT
//! permission covers, whatever its outcome (a 404 or a 422 is still an audited attempt), one
//! row with the call's parameters, `target_uid` from its `uid`/`user_uid` parameter (or the user
//! the handler found, see [`AuditNote`]), `result: succeed`. The authz decision leaves admin
//! paths to this layer (it sees no body), so there is never a second row, and never none.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::super::ApiState;
use super::super::auth::CurrentUser;
use super::super::error::ApiError;
use super::super::params::Params;
use crate::authz::policy::{PermissionDecision, Permissions};
use crate::domain::NewActivity;
use crate::service::activity::RequestMeta;
use crate::service::error::Key;

/// Where a handler leaves the uid of the user its call was about, when it knows it better than
/// the parameters say (a comment's owner, a label's user).
#[derive(Clone, Default)]
pub(crate) struct AuditNote(Arc<Mutex<Option<String>>>);

impl AuditNote {
    pub(crate) fn target(&self, uid: &str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(uid.to_owned());
    }

    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The middleware of the admin routes.
pub(crate) async fn layer(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let method = parts.method.clone();
    let Ok(current) = CurrentUser::from_request_parts(&mut parts, &state).await else {
        // No principal, no audit: the handler answers the bearer error.
        return next.run(Request::from_parts(parts, body)).await;
    };
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.path().to_owned(), |o| o.0.path().to_owned());
    let route = decision_route(&path);
    let Some(topic) = audited(&state, &current, &method, &route).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    // The parameters are the body's too: read it once, hand the same bytes on.
    let bytes = match axum::body::to_bytes(body, state.max_body_size).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::from(Key::RequestBodyTooLarge).into_response();
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let params = Params::parse(
        &content_type,
        parts.uri.query(),
        Body::from(bytes.clone()),
        state.max_body_size,
    )
    .await
    .map(|p| p.0)
    .unwrap_or_default();
    let meta = RequestMeta::from_request_parts(&mut parts, &state)
        .await
        .ok();
    let note = AuditNote::default();
    parts.extensions.insert(note.clone());
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;

    let target_uid = note.take().or_else(|| {
        ["uid", "user_uid"]
            .iter()
            .find_map(|k| params.get(*k).and_then(Value::as_str).map(str::to_owned))
    });
    let mut data = params;
    data.remove("password");
    data.insert("path".into(), Value::String(route));
    let (user_ip, user_agent) = meta
        .map(|m| (m.ip.to_string(), m.user_agent.unwrap_or_default()))
        .unwrap_or_default();
    let activity = NewActivity {
        user_id: current.user.id,
        target_uid,
        category: "admin".into(),
        user_ip,
        user_ip_country: None,
        user_agent,
        topic,
        action: crate::authz::audit_action(&method).into(),
        result: "succeed".into(),
        data: Some(Value::Object(data).to_string()),
    };
    if let Err(error) = state.store.insert_activities(&[activity]).await {
        tracing::warn!(%error, "admin audit row not recorded");
    }
    response
}

/// The path in the decision's terms (`api/v2/barong/admin/...`, whichever mount point served
/// the call), as the permissions and Barong's `path` parameter name it.
fn decision_route(path: &str) -> String {
    let route = path.trim_start_matches('/');
    match route.strip_prefix("api/v2/admin/") {
        Some(rest) => format!("api/v2/barong/admin/{rest}"),
        None => route.to_owned(),
    }
}

/// The topic when an AUDIT permission covers this call, as the decision judged it.
async fn audited(
    state: &ApiState,
    current: &CurrentUser,
    method: &axum::http::Method,
    route: &str,
) -> Option<String> {
    let rows = match state.store.list_permissions().await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "permissions unreadable: admin call not audited");
            return None;
        }
    };
    match Permissions::new(rows).evaluate(&current.user.role, method, route) {
        PermissionDecision::Allow { audit } => audit,
        PermissionDecision::Deny { .. } => None,
    }
}
