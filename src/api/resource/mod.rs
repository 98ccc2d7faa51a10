//! The resource namespace: the logged-in user's own account, authenticated by
//! the bearer JWT the authz path minted (see `api::auth::CurrentUser`).

pub(crate) mod api_keys;
mod data_storage;
pub(crate) mod documents;
pub(crate) mod labels;
mod otp;
mod passkeys;
mod phones;
mod profiles;
mod service_accounts;
pub(crate) mod sessions;
mod users;

use axum::Router;
use axum::routing::{delete, get, post, put};

use super::ApiState;

/// The resource routes (mounted under `/resource`).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/users/me",
            get(users::me)
                .put(users::update_me)
                .delete(users::delete_me),
        )
        .route("/users/password", put(users::change_password))
        .route("/users/activity/{topic}", get(users::activity))
        .route("/labels", get(labels::list).post(labels::create))
        .route(
            "/labels/{key}",
            get(labels::show)
                .patch(labels::update)
                .delete(labels::destroy),
        )
        .route("/otp/generate_qrcode", post(otp::generate_qrcode))
        .route("/otp/enable", post(otp::enable))
        .route("/otp/disable", post(otp::disable))
        .route("/otp/verify", post(otp::verify))
        .route("/passkeys", get(passkeys::list).post(passkeys::create))
        .route("/passkeys/options", post(passkeys::options))
        .route(
            "/passkeys/{id}",
            delete(passkeys::destroy).patch(passkeys::update),
        )
        .route("/api_keys", get(api_keys::list).post(api_keys::create))
        .route(
            "/api_keys/{kid}",
            delete(api_keys::destroy).patch(api_keys::update),
        )
        .route(
            "/sessions",
            get(sessions::list).delete(sessions::destroy_others),
        )
        .route("/sessions/{id}", delete(sessions::destroy))
        .route("/data_storage", post(data_storage::create))
        .route("/profiles", post(profiles::create).put(profiles::update))
        .route("/profiles/me", get(profiles::me))
        .route("/phones", get(phones::list).post(phones::create))
        .route("/phones/send_code", post(phones::send_code))
        .route("/phones/verify", post(phones::verify))
        .route(
            "/documents",
            get(documents::list)
                .post(documents::create)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/addresses",
            post(documents::create_address).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/service_accounts", get(service_accounts::list))
        .route(
            "/service_accounts/api_keys",
            get(service_accounts::list_keys_of).post(service_accounts::create),
        )
        .route(
            "/service_accounts/api_keys/{kid}",
            put(service_accounts::update).delete(service_accounts::destroy),
        )
}
