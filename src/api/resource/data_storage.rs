//! `resource/data_storage`: one JSON object per allowed title per user.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::ApiState;
use crate::api::auth::CurrentUser;
use crate::api::error::ApiError;
use crate::api::params::{Params, Validator};
use crate::domain::DATA_STORAGE_MAX;
use crate::service::changes::publish_change;
use crate::store::StoreError;

/// Titles no storage may use (they name Barong's own records).
const EXCLUDED_TITLES: &[&str] = &["document", "label", "profile", "phone", "user"];

/// `POST data_storage`: 201; also sets the private label `<title>:recorded`.
pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    params: Params,
) -> Result<Response, ApiError> {
    let mut v = Validator::new("resource.datastorage", &params);
    let title = v.required_string("title");
    let data = v.required_string("data");
    v.finish()?;
    let (title, data) = (title.unwrap_or_default(), data.unwrap_or_default());
    let mut errors = Vec::new();
    if data.chars().count() > DATA_STORAGE_MAX {
        errors.push("data.too_long".to_owned());
    }
    if !matches!(serde_json::from_str::<Value>(&data), Ok(Value::Object(_))) {
        errors.push("data.invalid_format".to_owned());
    }
    if title.chars().count() > 64 {
        errors.push("title.too_long".to_owned());
    }
    if !state.config.barong_yml.user_storage_titles.contains(&title) {
        errors.push("title.inclusion".to_owned());
    }
    if EXCLUDED_TITLES.contains(&title.to_lowercase().as_str()) {
        errors.push("title.exclusion".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(errors));
    }
    match state
        .store
        .create_data_storage(current.user.id, &title, &data, &state.state_rules)
        .await
    {
        Ok((_, change)) => {
            publish_change(&state, &change).await;
            Ok((StatusCode::CREATED, Json(json!(201))).into_response())
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::unprocessable(vec!["title.taken".into()])),
        Err(other) => Err(other.into()),
    }
}
