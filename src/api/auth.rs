//! Authentication of resource and admin requests, as Barong's APIs do it: the gateway forwards
//! the `Authorization: Bearer <jwt>` the authz path minted; we verify it and load the user.
//! Any problem with the token is `401 jwt.decode_and_verify`; a valid token whose uid names no
//! user is `404 record.not_found`. (Barong does not re-check the user's state here.)

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde_json::{Map, Value};

use super::ApiState;
use super::error::ApiError;
use crate::domain::User;
use crate::service::error::Key;

/// The user a bearer token speaks for, with the token's claims.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub claims: Map<String, Value>,
}

fn unauthorized() -> ApiError {
    ApiError::from(Key::JwtDecodeAndVerify)
}

impl FromRequestParts<ApiState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        // Verified once per request: a layer (the admin audit) and the handler both ask.
        if let Some(current) = parts.extensions.get::<CurrentUser>() {
            return Ok(current.clone());
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        let claims = state.bearer.verify(token).map_err(|error| {
            tracing::debug!(%error, "bearer refused");
            unauthorized()
        })?;
        let uid = claims
            .get("uid")
            .and_then(Value::as_str)
            .ok_or_else(unauthorized)?
            .to_owned();
        let user = state
            .store
            .find_user_by_uid(&uid)
            .await?
            .ok_or_else(|| ApiError::from(Key::RecordNotFound))?;
        let current = Self { user, claims };
        parts.extensions.insert(current.clone());
        Ok(current)
    }
}
