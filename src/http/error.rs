//! The one HTTP error type. Internal causes are logged here and never sent
//! to clients, who get a stable code and a short message.

use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed or fails validation.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid session (or wrong credentials).
    #[error("authentication required")]
    Unauthorized,
    /// 403: authenticated but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// 404
    #[error("not found")]
    NotFound,
    /// 409: e.g. a name that is taken.
    #[error("{0}")]
    Conflict(String),
    /// 503: the store is down; retry.
    #[error("service unavailable")]
    Unavailable,
    /// 500: logged, never shown.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => AppError::Conflict("already exists".into()),
            StoreError::NotFound => AppError::NotFound,
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                AppError::Unavailable
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        (
            status,
            Json(json!({ "error": code, "message": self.to_string() })),
        )
            .into_response()
    }
}
