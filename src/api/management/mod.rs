//! The Management API: server-to-server calls under `/management/...`, each a
//! jwt-multisig request checked against `BARONG_MANAGEMENT_API_FILE` (Barong's
//! `management_api.yml`) for the endpoint's scope. Errors use Barong's management shapes
//! (`{"error": "..."}`, Grape's English validation messages, Rails full messages).

mod api_keys;
pub mod auth;
mod handlers;
mod kyc;
mod listings;
mod service_accounts;

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use axum::{Extension, Router};
use serde_json::{Map, Value, json};

use super::ApiState;
use super::error::ApiError;
use super::pagination::Page;
use crate::api::entities::admin::user_with_profile;
use crate::api::kyc::queue_applicant;
use crate::domain::{Profile, ProfileState, User};
use crate::service::changes::publish_change;
use crate::store::UserChange;
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

/// One page of a paginated listing: answered 200 with Barong's pagination headers.
pub struct Paged {
    pub page: Page,
    pub total: i64,
    pub body: Vec<Value>,
}

/// What a management handler answers, turned into a response once the request URI is known
/// (the pagination `Link` header needs it).
pub trait Reply: Send {
    fn into_reply(self, uri: &Uri) -> Response;
}

impl Reply for (StatusCode, Value) {
    fn into_reply(self, _uri: &Uri) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

impl Reply for Paged {
    fn into_reply(self, uri: &Uri) -> Response {
        let headers = super::pagination::headers(uri, self.page, self.total);
        (StatusCode::OK, headers, axum::Json(self.body)).into_response()
    }
}

/// The request parameters (the `data` claim).
pub type Params = Map<String, Value>;

/// What a signed route's future answers.
type Answer = std::pin::Pin<Box<dyn Future<Output = Response> + Send>>;

/// Wraps a handler with the signature check of its scope.
fn signed<F, Fut, R>(
    scope: &'static str,
    handler: F,
) -> impl Fn(State<ApiState>, Extension<Arc<ManagementConfig>>, OriginalUri, HeaderMap, Bytes) -> Answer
+ Clone
+ Send
+ Sync
+ 'static
where
    F: Fn(ApiState, Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, MgmtError>> + Send + 'static,
    R: Reply,
{
    move |State(state): State<ApiState>,
          Extension(auth): Extension<Arc<ManagementConfig>>,
          OriginalUri(uri): OriginalUri,
          headers: HeaderMap,
          body: Bytes| {
        let handler = handler.clone();
        Box::pin(async move {
            let verified = match auth.authenticate(scope, &uri, &headers, &body) {
                Ok(verified) => verified,
                Err(error) => return error.into_response(),
            };
            // Recorded in the shared store, so a replay to another instance is refused too.
            match state
                .store
                .use_once(&verified.replay_key, verified.remember_until)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    return MgmtError::message(StatusCode::UNAUTHORIZED, "Failed to verify JWT.")
                        .into_response();
                }
                Err(error) => return MgmtError::from(error).into_response(),
            }
            let params = verified.params;
            match handler(state, params).await {
                Ok(reply) => reply.into_reply(&uri),
                Err(error) => error.into_response(),
            }
        })
    }
}

fn op<F, Fut, R>(scope: &'static str, handler: F) -> MethodRouter<ApiState>
where
    F: Fn(ApiState, Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R, MgmtError>> + Send + 'static,
    R: Reply,
{
    post(signed(scope, handler))
}

/// The management routes (nested under `/management`), checked against `auth`'s signers and
/// scopes (`BARONG_MANAGEMENT_API_FILE`).
pub fn routes(state: &ApiState, auth: ManagementConfig) -> Router<ApiState> {
    use handlers as h;
    use service_accounts as sa;
    // A document arrives base64 inside the signed JSON, itself base64 in the JWS payload: about
    // 16/9 of the file. Twice the largest file, plus the usual limit, lets every file the upload
    // setting allows through; every other call keeps the usual limit.
    let max_file = usize::try_from(
        state
            .config
            .uploads
            .upload_size_max_range
            .saturating_mul(1024 * 1024),
    )
    .unwrap_or(usize::MAX);
    let documents_limit = max_file
        .saturating_mul(2)
        .saturating_add(state.max_body_size);
    Router::new()
        .route("/timestamp", op("tools", h::timestamp))
        .route("/users/get", op("read_users", h::users_get))
        .route("/users/list", op("read_users", listings::users))
        .route(
            "/labels/filter/users",
            op("read_users", listings::users_with_label),
        )
        .route("/profiles", op("write_users", kyc::profiles_create))
        .route("/phones/get", op("read_phones", kyc::phones_get))
        .route("/phones", op("write_phones", kyc::phones_create))
        .route("/phones/delete", op("write_phones", kyc::phones_delete))
        .route(
            "/documents",
            op("write_documents", kyc::documents_create)
                .layer(DefaultBodyLimit::max(documents_limit)),
        )
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
            op("read_service_accounts", sa::get),
        )
        .route(
            "/service_accounts/list",
            op("read_service_accounts", sa::list),
        )
        .route(
            "/service_accounts/create",
            op("write_service_accounts", sa::create),
        )
        .route(
            "/service_accounts/update",
            op("write_service_accounts", sa::update),
        )
        .route(
            "/service_accounts/delete",
            op("write_service_accounts", sa::delete),
        )
        .route("/api_keys", op("write_apikeys", api_keys::create))
        .route("/api_keys/update", op("write_apikeys", api_keys::update))
        .layer(DefaultBodyLimit::max(state.max_body_size))
        .layer(Extension(Arc::new(auth)))
}

/// Grape's presence checks for required, not-blank parameters, in declaration order.
pub fn require(params: &Params, names: &[&str]) -> Result<(), MgmtError> {
    check_presence(params, names, &[])
}

/// Grape's checks for required, not-blank parameters and optional ones that may not be blank
/// when given, in declaration order (the required ones are declared first).
pub fn check_presence(
    params: &Params,
    required: &[&str],
    not_blank: &[&str],
) -> Result<(), MgmtError> {
    let mut messages = Vec::new();
    for name in required {
        match params.get(*name) {
            None | Some(Value::Null) => {
                messages.push(format!("{name} is missing"));
                messages.push(format!("{name} is empty"));
            }
            Some(value) if is_blank(value) => messages.push(format!("{name} is empty")),
            Some(_) => {}
        }
    }
    for name in not_blank {
        if params
            .get(*name)
            .is_some_and(|v| !v.is_null() && is_blank(v))
        {
            messages.push(format!("{name} is empty"));
        }
    }
    refuse(messages)
}

/// The pagination parameters, refused as `page non_integer_page` and the like.
pub fn page(params: &Params, messages: &mut Vec<String>) -> Page {
    let mut keys = Vec::new();
    let page = super::pagination::page_params(&super::params::Params(params.clone()), &mut keys);
    for key in keys {
        let name = if key.ends_with("_page") {
            "page"
        } else {
            "limit"
        };
        messages.push(format!("{name} {key}"));
    }
    page
}

/// Grape's Boolean coercion with the parameter's custom message; `None` when absent.
pub fn boolean(
    params: &Params,
    name: &str,
    message: &str,
    messages: &mut Vec<String>,
) -> Option<bool> {
    match params.get(name)? {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" || s == "1" => Some(true),
        Value::String(s) if s == "false" || s == "0" => Some(false),
        _ => {
            messages.push(format!("{name} {message}"));
            None
        }
    }
}

/// Grape's Integer coercion (`<name> is invalid` when refused); `None` when absent.
pub fn integer(params: &Params, name: &str, messages: &mut Vec<String>) -> Option<i64> {
    let value = params.get(name).filter(|v| !v.is_null())?;
    let coerced = super::pagination::coerce_integer(value);
    if coerced.is_none() {
        messages.push(format!("{name} is invalid"));
    }
    coerced
}

/// 422 with the collected messages, if any.
pub fn refuse(messages: Vec<String>) -> Result<(), MgmtError> {
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

/// A parameter given as text and not blank (Grape's optional, not-blank parameters).
pub fn present(params: &Params, name: &str) -> Option<String> {
    text(params, name).filter(|v| !v.trim().is_empty())
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

/// Management `UserWithProfile`: the admin entity (profiles unmasked).
pub(crate) async fn user_entity(state: &ApiState, user: &User) -> Result<Value, MgmtError> {
    Ok(user_with_profile(state, user).await?)
}

/// Rails full messages for the validation keys management answers with.
pub fn full_messages(keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| match k.as_str() {
            "email.invalid" => "Email is invalid".to_owned(),
            "email.taken" => "Email has already been taken".to_owned(),
            "password.weak" | "password.password.password_too_weak" => "Password weak".to_owned(),
            "password.requirements" | "password.requirements.not_met" => {
                "Password requirements".to_owned()
            }
            "state.exists" => "State already exists".to_owned(),
            "state.inclusion" => "State is not included in the list".to_owned(),
            "email.blank" => "Email can't be blank".to_owned(),
            "role.doesnt_exist" => "Role doesnt_exist".to_owned(),
            "email_or_uid.not_uniq" => "Email or uid not_uniq".to_owned(),
            other => {
                let (attr, msg) = other.split_once('.').unwrap_or((other, "invalid"));
                let mut attr = attr.replace('_', " ");
                if let Some(first) = attr.get(0..1) {
                    attr = first.to_uppercase() + &attr[1..];
                }
                format!("{attr} {}", msg.replace('_', " "))
            }
        })
        .collect()
}

/// Tells the caches about a created profile's change and sends a submitted one to KYC.
pub(crate) async fn publish_profile(state: &ApiState, profile: &Profile, change: &UserChange) {
    publish_change(state, change).await;
    if profile.state == ProfileState::Submitted {
        queue_applicant(state, profile.id, change.user.email.clone());
    }
}
