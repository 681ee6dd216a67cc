//! The API's one error type: 4xx answers say exactly what was wrong with the request; a 500 is logged
//! and stays vague. Every error answer is JSON `{"error": "..."}`.

use axum::{
    Json,
    extract::rejection::JsonRejection,
    http::{StatusCode, header},
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
    /// Well formed and correctly signed, but it cannot be carried out as it stands (an order over its
    /// limit or the account's balance, closed terms).
    Unprocessable(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    /// The request was not answered (or its body not received) in time.
    RequestTimeout(String),
    /// This client (or everyone) is over a limit; it may try again after `retry_after_secs`.
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// The service has too much outstanding to take this now (everyone's limit, not this client's).
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
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
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs, .. } | ApiError::Unavailable { retry_after_secs, .. } => {
                Some(*retry_after_secs)
            }
            _ => None,
        };
        let (status, message) = self.status_and_message();
        let body = Json(ErrorBody { error: message });
        match retry_after {
            Some(seconds) => (status, [(header::RETRY_AFTER, seconds.to_string())], body).into_response(),
            None => (status, body).into_response(),
        }
    }
}

impl ApiError {
    fn status_and_message(self) -> (StatusCode, String) {
        match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::MethodNotAllowed(m) => (StatusCode::METHOD_NOT_ALLOWED, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            ApiError::RequestTimeout(m) => (StatusCode::REQUEST_TIMEOUT, m),
            ApiError::TooManyRequests { message, .. } => (StatusCode::TOO_MANY_REQUESTS, message),
            ApiError::Unavailable { message, .. } => (StatusCode::SERVICE_UNAVAILABLE, message),
            ApiError::Internal(err) => {
                error!(error = %err, kind = err.label(), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error; the service logged the details".to_owned())
            }
        }
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
