//! The one place where failures become Barong's wire errors: `{"errors":["<key>", ...]}` with
//! Barong's status, or `{"error":"..."}` where Barong answers that shape. The error type itself
//! lives with the rules that raise it, in `service::error`.

use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use crate::service::error::{ApiError, ErrorBody};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.body {
            ErrorBody::Keys(keys) => json!({ "errors": keys }),
            ErrorBody::Message(message) => json!({ "error": message }),
        };
        (self.status, axum::Json(body)).into_response()
    }
}
