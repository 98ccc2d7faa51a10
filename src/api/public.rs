//! Informational endpoints Barong serves under both `identity/` and `public/`: ping, time,
//! version, configs and password strength; plus the health checks under `public/`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, Validator, coerce_string};

/// The routes shared by both namespaces; `module` names the error-key prefix.
pub fn routes(module: &'static str) -> Router<ApiState> {
    Router::new()
        .route("/ping", get(ping))
        .route("/time", get(time))
        .route("/version", get(version))
        .route("/configs", get(configs))
        .route(
            "/password/validate",
            post(move |state, params| validate_password(module, state, params)),
        )
}

/// Liveness and readiness, under `public/` only.
pub fn health_routes() -> Router<ApiState> {
    Router::new()
        .route("/health/alive", get(alive))
        .route("/health/ready", get(ready))
}

async fn ping() -> Json<Value> {
    Json(json!({ "ping": "pong" }))
}

async fn time() -> Json<Value> {
    Json(json!({ "time": chrono::Utc::now().timestamp() }))
}

async fn version(State(state): State<ApiState>) -> Json<Value> {
    Json(state.version.as_ref().clone())
}

async fn configs(State(state): State<ApiState>) -> Json<Value> {
    Json(state.public_configs.as_ref().clone())
}

/// The process is up; says nothing about the database (that is `ready`).
async fn alive() -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(json!(200)))
}

/// Ready when the database answers within the timeout; 503 otherwise, so a load balancer
/// takes the instance out of rotation instead of sending it requests it cannot serve.
async fn ready(State(state): State<ApiState>) -> Result<(StatusCode, Json<Value>), ApiError> {
    match tokio::time::timeout(state.ready_timeout, state.store.ping()).await {
        Ok(Ok(())) => Ok((StatusCode::OK, Json(json!(200)))),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => Err(ApiError::unavailable()),
    }
}

/// `POST password/validate`: the entropy Barong computes, whatever the policy says.
async fn validate_password(
    module: &'static str,
    State(state): State<ApiState>,
    params: Params,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let scope = format!("{module}.general");
    let mut validator = Validator::new(&scope, &params);
    let password = validator.required_any("password").cloned();
    validator.finish()?;
    let text = password
        .as_ref()
        .and_then(coerce_string)
        .unwrap_or_else(|| password.map(|v| v.to_string()).unwrap_or_default());
    let entropy = state.password_policy.entropy(&text);
    Ok((StatusCode::CREATED, Json(json!({ "entropy": entropy }))))
}
