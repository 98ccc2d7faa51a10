//! What wraps every REST request: the request id, the request timeout, metrics, Barong's CORS
//! (`BARONG_API_CORS_*`) and the security headers.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;
use crate::observe::{REQUEST_ID, request_id};
use crate::service::error::Key;

/// Barong's CORS methods (rack-cors `methods: %i[get post delete put patch options head]`).
const CORS_METHODS: &str = "GET, POST, DELETE, PUT, PATCH, OPTIONS, HEAD";

/// The middleware: see the module doc.
pub async fn harden(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    // The request carries the id on, so the trace span (built inside) names it.
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS
        && origin.is_some()
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let no_store = {
        let path = request.uri().path();
        ["/identity/", "/resource/"]
            .iter()
            .any(|p| path.contains(p))
    };
    let mut response = if preflight {
        preflight_response(request.headers())
    } else {
        let timeout = Duration::from_secs(state.config.server.request_timeout);
        match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::from(Key::ServerRequestTimeout).into_response(),
        }
    };
    let headers = response.headers_mut();
    if let Some(origin) = origin {
        cors_headers(&state, &origin, headers);
    }
    security_headers(&state, no_store, headers);
    headers.insert(REQUEST_ID, id);
    state
        .observe
        .requests
        .rest
        .record(response.status().as_u16(), started.elapsed());
    response
}

/// rack-cors answers a preflight itself, 200 and an empty body; the CORS headers are added by
/// [`cors_headers`] when the origin matches. Any request header is allowed (`headers: :any`).
fn preflight_response(request: &HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    response
}

/// Barong's CORS: a listed origin (or any, with `*`) gets `Access-Control-Allow-Origin`,
/// `-Methods`, `-Max-Age` and, when enabled, `-Credentials: true`; any other origin gets none.
fn cors_headers(state: &ApiState, origin: &HeaderValue, headers: &mut HeaderMap) {
    let config = &state.config;
    let any = config.cors_allows_any_origin();
    let listed = origin
        .to_str()
        .ok()
        .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
        .is_some_and(|o| config.cors.api_cors_origins.contains(&o));
    if !any && !listed {
        headers.remove(header::ACCESS_CONTROL_ALLOW_HEADERS);
        return;
    }
    // With credentials a browser refuses `*`, so the origin is echoed (as rack-cors does).
    let allow_origin = if any && !config.cors.api_cors_allow_credentials {
        HeaderValue::from_static("*")
    } else {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        origin.clone()
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(CORS_METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(config.cors.api_cors_max_age),
    );
    if config.cors.api_cors_allow_credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// Headers every REST answer carries: no MIME sniffing, no framing, no referrer; `no-store` on
/// account data (identity, resource); HSTS when this listener serves HTTPS itself.
fn security_headers(state: &ApiState, no_store: bool, headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if no_store {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config.tls.tls_cert_path.is_some() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}
