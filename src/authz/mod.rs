//! The authz listener: `ANY /api/v2/auth/{path}`, the decision Envoy's `ext_authz` and nginx's
//! `auth_request` ask for on every request. Served straight on hyper (no router, no middleware
//! stack) because this is the hot path.

pub mod rules;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

pub use rules::Rules;

/// Everything the decision needs, shared by all connections.
pub struct AuthzState {
    pub rules: Rules,
}

/// The route prefix of decisions; what follows is the original path without its leading slash.
const AUTH_PREFIX: &str = "/api/v2/auth/";

/// Answers one request of the authz listener.
pub async fn handle<B>(
    state: Arc<AuthzState>,
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match request.uri().path().strip_prefix(AUTH_PREFIX) {
        Some(path) => decide(&state, original_method(&request), path),
        None => json_response(StatusCode::NOT_FOUND, r#"{"error":"Route is not found"}"#),
    };
    tracing::debug!(
        method = %request.method(),
        path = %request.uri().path(),
        status = response.status().as_u16(),
        "authz"
    );
    Ok(response)
}

/// nginx's subrequest is always a GET: the real verb arrives in `X-Original-Method`.
fn original_method<B>(request: &Request<B>) -> Method {
    request
        .headers()
        .get("x-original-method")
        .or_else(|| request.headers().get("x-forwarded-method"))
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
        .unwrap_or_else(|| request.method().clone())
}

/// Barong's order: block rules, then pass rules, then the principal (sessions and API keys are
/// not wired in yet, so every non-public path is refused as having no session).
fn decide(state: &AuthzState, _method: Method, path: &str) -> Response<Full<Bytes>> {
    if state.rules.is_blocked(path) {
        return deny(StatusCode::UNAUTHORIZED, "authz.permission_denied");
    }
    if state.rules.is_public(path) {
        return allow_public();
    }
    deny(StatusCode::UNAUTHORIZED, "authz.invalid_session")
}

/// 200 with an empty body and `Content-Length: 0`, so nginx keeps the upstream connection alive.
fn allow_public() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

/// Barong's authz error body (exactly one key), repeated in two headers for nginx: its
/// `auth_request` turns any status but 401/403 into a 500 and drops the body, so the shipped
/// config restores both from `X-Barong-Status` and `X-Barong-Error`.
fn deny(status: StatusCode, key: &'static str) -> Response<Full<Bytes>> {
    let body = format!(r#"{{"errors":["{key}"]}}"#);
    let mut response = json_response(status, &body);
    let headers = response.headers_mut();
    headers.insert("x-barong-status", HeaderValue::from(status.as_u16()));
    if let Ok(value) = HeaderValue::from_str(&body) {
        headers.insert("x-barong-error", value);
    }
    response
}

fn json_response(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
