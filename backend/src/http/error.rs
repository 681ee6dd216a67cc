//! The API's one error type: 4xx answers say exactly what was wrong with the request; a 500 is logged
//! and stays vague. Every error answer is JSON `{"error": "..."}`.

use axum::{
    Json,
    extract::rejection::JsonRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use tracing::error;

use crate::Error;

/// An API error: 4xx answers say what was wrong with the request; a 500 is logged and stays vague.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    MethodNotAllowed(String),
    /// No valid session (or a failed sign-in check): who is asking is not known.
    Unauthorized(String),
    /// Well formed and correctly signed, but by someone the agreement does not let do this.
    Forbidden(String),
    /// The request is well formed but the agreement is not in a state that allows it.
    Conflict(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    Internal(Error),
}

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What was wrong, in a sentence.
    pub error: String,
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError::Internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::MethodNotAllowed(m) => (StatusCode::METHOD_NOT_ALLOWED, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            ApiError::Internal(err) => {
                error!(error = %err, kind = err.label(), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error; the service logged the details".to_owned())
            }
        };
        (status, Json(ErrorBody { error: message })).into_response()
    }
}

/// A JSON body axum could not take, as a 4xx that says why: 415 without a JSON content type, 413 when
/// too large, else 400.
pub fn body_rejected(rejection: JsonRejection, expected: &str) -> ApiError {
    match rejection.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("the body must be JSON, sent with Content-Type: application/json".into())
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!("the body is too large: {expected}")),
        _ => ApiError::BadRequest(format!("the body must be JSON {expected}: {}", rejection.body_text())),
    }
}
