//! The Management API (reference §11): server-to-server calls under `/management/...`, each a
//! jwt-multisig request checked against `BARONG_MANAGEMENT_API_FILE` (Barong's
//! `management_api.yml`) for the endpoint's scope. Errors use Barong's management shapes
//! (`{"error": "..."}`, Grape's English validation messages, Rails full messages).

pub mod auth;
mod handlers;

use std::future::Future;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde_json::{Map, Value, json};

use super::ApiState;
use super::error::ApiError;
pub use auth::ManagementConfig;

/// An error answer of the management API: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct MgmtError {
    pub status: StatusCode,
    pub body: Value,
}

impl MgmtError {
    /// `{"error": "<message>"}`.
    pub fn message(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            body: json!({ "error": message }),
        }
    }

    /// 422 `{"error": "<message>"}`.
    pub fn unprocessable(message: &str) -> Self {
        Self::message(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 422 `{"error": ["<full message>", ...]}` (model errors).
    pub fn model(messages: Vec<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "error": messages }),
        }
    }

    /// 404 `Record is not found`.
    pub fn not_found() -> Self {
        Self::message(StatusCode::NOT_FOUND, "Record is not found")
    }
}

impl From<ApiError> for MgmtError {
    fn from(error: ApiError) -> Self {
        let body = match error.body {
            super::error::ErrorBody::Keys(keys) => json!({ "errors": keys }),
            super::error::ErrorBody::Message(m) => json!({ "error": m }),
        };
        Self {
            status: error.status,
            body,
        }
    }
}

impl From<crate::store::StoreError> for MgmtError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for MgmtError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// A handler's result: the status and the JSON body.
pub type MgmtResult = Result<(StatusCode, Value), MgmtError>;

/// The request parameters (the `data` claim).
pub type Params = Map<String, Value>;

/// Wraps a handler with the signature check of its scope.
fn signed<F, Fut>(
    scope: &'static str,
    handler: F,
) -> impl Fn(
    State<ApiState>,
    Uri,
    HeaderMap,
    Bytes,
) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static
where
    F: Fn(ApiState, Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = MgmtResult> + Send + 'static,
{
    move |State(state): State<ApiState>, uri: Uri, headers: HeaderMap, body: Bytes| {
        let handler = handler.clone();
        Box::pin(async move {
            let params = match state.management.authenticate(scope, &uri, &headers, &body) {
                Ok(params) => params,
                Err(error) => return error.into_response(),
            };
            match handler(state, params).await {
                Ok((status, body)) => (status, axum::Json(body)).into_response(),
                Err(error) => error.into_response(),
            }
        })
    }
}

fn op<F, Fut>(scope: &'static str, handler: F) -> MethodRouter<ApiState>
where
    F: Fn(ApiState, Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = MgmtResult> + Send + 'static,
{
    post(signed(scope, handler))
}

/// The management routes (nested under `/management`).
pub fn routes() -> Router<ApiState> {
    use handlers as h;
    Router::new()
        .route("/timestamp", op("tools", h::timestamp))
        .route("/users/get", op("read_users", h::users_get))
        .route("/users", op("write_users", h::users_create))
        .route("/users/update", op("write_users", h::users_update))
        .route("/users/import", op("write_users", h::users_import))
        .route("/labels/list", op("read_labels", h::labels_list))
        .route(
            "/labels",
            op("write_labels", h::labels_create).put(signed("write_labels", h::labels_put)),
        )
        .route("/labels/delete", op("write_labels", h::labels_delete))
        .route("/otp/sign", op("otp_sign", h::otp_sign))
        .route(
            "/service_accounts/get",
            op("read_service_accounts", h::service_accounts_get),
        )
}

/// Grape's presence checks for required, not-blank parameters, in declaration order.
pub fn require(params: &Params, names: &[&str]) -> Result<(), MgmtError> {
    let mut messages = Vec::new();
    for name in names {
        match params.get(*name) {
            None | Some(Value::Null) => {
                messages.push(format!("{name} is missing"));
                messages.push(format!("{name} is empty"));
            }
            Some(value) if is_blank(value) => messages.push(format!("{name} is empty")),
            Some(_) => {}
        }
    }
    if messages.is_empty() {
        Ok(())
    } else {
        Err(MgmtError::unprocessable(&messages.join(", ")))
    }
}

/// Ruby's `blank?` for JSON values.
pub fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(_) => false,
    }
}

/// A parameter as text (numbers and booleans as Grape would coerce them to String).
pub fn text(params: &Params, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
