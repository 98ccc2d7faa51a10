//! `resource/users/...`: the current user's account.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::entities::user_full_info;
use crate::api::error::ApiError;

/// `GET users/me`: UserWithFullInfo, without `csrf_token`.
pub async fn me(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_full_info(&state, &current.user, None).await?))
}
