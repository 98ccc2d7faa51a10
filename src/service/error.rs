//! The error of the REST API's rules: Barong's status with its error keys (or the `{"error":..}`
//! shape). `api::error` turns it into the response.

use axum::http::StatusCode;

use crate::limits::hashing::Refused;
use crate::store::StoreError;

/// An error answer of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

/// The two body shapes Barong uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorBody {
    /// `{"errors":[...]}`, the common shape.
    Keys(Vec<String>),
    /// `{"error":"..."}`, used for unknown routes and a few handlers.
    Message(String),
}

impl ApiError {
    /// One key with a status.
    pub fn new(status: StatusCode, key: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::Keys(vec![key.into()]),
        }
    }

    /// 422 with the given keys (parameter and model validation).
    pub fn unprocessable(keys: Vec<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody::Keys(keys),
        }
    }

    /// Barong's answer for a path (or method) no route serves.
    pub fn route_not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            body: ErrorBody::Message("Route is not found".into()),
        }
    }

    /// The database is gone: the request cannot be served now, retrying later may work.
    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server.unavailable")
    }

    /// Anything unexpected: logged by the caller, never detailed to the client.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server.internal_error")
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Self::unavailable()
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Self::internal()
            }
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Busy => busy(),
            Refused::Failed => Self::internal(),
        }
    }
}

/// `503 server.busy`: every password-hashing turn and queue place is taken (`limits::hashing`);
/// retrying later may work.
pub fn busy() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server.busy")
}

/// `429 <namespace>.too_many_attempts`: an abuse limit (`limits`) refused the attempt.
pub fn too_many(namespace: &str) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("{namespace}.too_many_attempts"),
    )
}
