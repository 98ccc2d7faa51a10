//! The resource namespace (reference §6.4): the logged-in user's own account, authenticated by
//! the bearer JWT the authz path minted (see `api::auth::CurrentUser`).

mod users;

use axum::Router;
use axum::routing::get;

use super::ApiState;

/// The resource routes (mounted under `/resource`).
pub fn routes() -> Router<ApiState> {
    Router::new().route("/users/me", get(users::me))
}
