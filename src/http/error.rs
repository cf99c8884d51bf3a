//! The one HTTP error type. Internal causes are logged here and never sent
//! to clients, who get a stable code and a short message.

use crate::domain::attachment::AttachmentError;
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
    /// 403: a state-changing request from another site's page (CSRF).
    #[error("cross-site requests are not allowed")]
    CrossOrigin,
    /// 429: too many failed logins for this account from this address;
    /// retry after the given seconds.
    #[error("too many attempts; try again later")]
    TooManyAttempts { retry_after_secs: u64 },
    /// 404
    #[error("not found")]
    NotFound,
    /// 409: e.g. a name that is taken.
    #[error("{0}")]
    Conflict(String),
    /// 409: the request needs a conversation that has ended.
    #[error("the conversation has not ended yet")]
    NotEnded,
    /// 409: the request needs a conversation an agent answered.
    #[error("the chat was never answered; download the transcript instead")]
    NotAnswered,
    /// 429: a per-conversation limit was reached; the message says which.
    #[error("{0}")]
    RateLimited(String),
    /// 503: e-mail is off on this server (`[mail] enabled = false`); not retryable.
    #[error("e-mail is not enabled on this server")]
    MailDisabled,
    /// 409: the conversation has ended.
    #[error("the conversation has ended")]
    ConversationEnded,
    /// 413, 415 or 422: an upload breaks the attachment rules.
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// 413: the request body is over the route's limit.
    #[error("the request is too large")]
    PayloadTooLarge,
    /// 507: no space is left to store uploads.
    #[error("no space left to store the upload")]
    InsufficientStorage,
    /// 403: the account is disabled (only said after a correct password).
    #[error("this account is disabled")]
    AccountDisabled,
    /// 409: chats are waiting or active in the queue.
    #[error("chats are waiting or active in this queue")]
    QueueBusy,
    /// 409: a site sends its chats to the queue.
    #[error("a site uses this queue as its default queue")]
    QueueUsedBySite,
    /// 409: chats from the site are waiting or active.
    #[error("chats from this site are waiting or active")]
    SiteBusy,
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
            AppError::CrossOrigin => (StatusCode::FORBIDDEN, "cross_origin"),
            AppError::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AppError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::NotEnded => (StatusCode::CONFLICT, "not_ended"),
            AppError::NotAnswered => (StatusCode::CONFLICT, "not_answered"),
            AppError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AppError::MailDisabled => (StatusCode::SERVICE_UNAVAILABLE, "mail_disabled"),
            AppError::ConversationEnded => (StatusCode::CONFLICT, "conversation_ended"),
            AppError::Attachment(refusal) => {
                let status = match refusal {
                    AttachmentError::TooManyFiles | AttachmentError::FileTooLarge => {
                        StatusCode::PAYLOAD_TOO_LARGE
                    }
                    AttachmentError::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    AttachmentError::EmptyFile => StatusCode::UNPROCESSABLE_ENTITY,
                };
                (status, refusal.code())
            }
            AppError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
            AppError::InsufficientStorage => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            AppError::AccountDisabled => (StatusCode::FORBIDDEN, "account_disabled"),
            AppError::QueueBusy => (StatusCode::CONFLICT, "queue_busy"),
            AppError::QueueUsedBySite => (StatusCode::CONFLICT, "queue_used_by_site"),
            AppError::SiteBusy => (StatusCode::CONFLICT, "site_busy"),
            AppError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut response = (
            status,
            Json(json!({ "error": code, "message": self.to_string() })),
        )
            .into_response();
        if let AppError::TooManyAttempts { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}
