//! The one error type of the HTTP API: every failure renders as
//! `{"error": "...", "field": "..."}` with the matching status code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use swarmscope_model::DecodeError;
use swarmscope_store::{StoreError, WriteError};

/// An API failure: status, message, and the field or parameter to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, in one sentence.
    pub message: String,
    /// The field, parameter or header at fault, if one is.
    pub field: Option<String>,
    /// Seconds after which a retry may succeed (sent as Retry-After).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Names the field, parameter or header at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 for a bad parameter.
    pub fn bad_param(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message).field(param)
    }

    /// 401: no valid credentials.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or invalid API key (send Authorization: Bearer KEY)",
        )
        .field("Authorization")
    }

    /// 403: valid credentials without the right.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404 for an unknown resource.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 for a failure of ours.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 500 whose details (SQL text, paths) stay in the collector's log: the
    /// response names only what failed and an error id to find the log line.
    pub fn internal_logged(what: &str, detail: &str) -> Self {
        let error_id = format!("{:016x}", rand::random::<u64>());
        tracing::error!(error_id, error = detail, "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} (error id {error_id}; the collector's log has the details)"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.message, "field": self.field}));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: e.message,
            field: e.field,
            retry_after: None,
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        let status = match &e {
            WriteError::QueueFull { .. } | WriteError::Closed => StatusCode::SERVICE_UNAVAILABLE,
            WriteError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            WriteError::Commit(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after = match &e {
            WriteError::QueueFull { .. } | WriteError::Closed => Some(1),
            WriteError::DiskFull(_) => Some(30),
            WriteError::Commit(_) => None,
        };
        if let WriteError::Commit(detail) = &e {
            return ApiError::internal_logged("write failed", detail);
        }
        ApiError {
            status,
            message: e.to_string(),
            field: None,
            retry_after,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal_logged("store read failed", &e.to_string())
    }
}

/// JSON 404 for unknown routes.
pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path())).field("path")
}

/// JSON 405 for known routes with the wrong method.
pub(crate) async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here"),
    )
    .field("method")
}

/// A handler panic becomes a JSON 500; the server keeps serving.
pub(crate) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::internal("internal error").into_response()
}
