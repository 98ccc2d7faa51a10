//! `admin/profiles` (§10.9): profiles live in the KYC store, which this server does not have
//! yet; until it does these endpoints check the ability and answer 501.

use axum::http::StatusCode;

use super::Admin;
use crate::api::error::ApiError;
use crate::domain::abilities::{Action, Resource};

fn not_implemented() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "admin.profiles.not_implemented",
    )
}

/// `GET profiles`.
pub async fn list(admin: Admin) -> Result<(), ApiError> {
    admin.authorize(Action::Read, Resource::Profile)?;
    Err(not_implemented())
}

/// `PUT profiles`.
pub async fn update(admin: Admin) -> Result<(), ApiError> {
    admin.authorize(Action::Update, Resource::Profile)?;
    Err(not_implemented())
}

/// `POST profiles` (no ability check in Barong).
pub async fn create(_admin: Admin) -> Result<(), ApiError> {
    Err(not_implemented())
}
