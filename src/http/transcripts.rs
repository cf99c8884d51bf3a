//! The customer's transcript after the end: a plain-text download and an
//! e-mail to an address they enter. Both authenticate with the customer's
//! bearer token; a token of another conversation is answered exactly like
//! an unknown id (404), as on the customer socket.

use super::error::AppError;
use super::json::ApiJson;
use super::AppState;
use crate::auth::token_hash;
use crate::domain::ids::ConversationId;
use crate::mail::{parse_address, MailError};
use crate::store::ConversationRecord;
use crate::transcript_mail::{customer_transcript, email_transcript, TranscriptError};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/chats/{id}/transcript", get(download))
        .route("/api/chats/{id}/transcript/email", post(email))
}

/// Longest customer token looked up; longer ones cannot be ours.
const MAX_TOKEN_BYTES: usize = 128;

impl From<TranscriptError> for AppError {
    fn from(e: TranscriptError) -> Self {
        match e {
            TranscriptError::NotFound => AppError::NotFound,
            TranscriptError::NotEnded => AppError::NotEnded,
            TranscriptError::NotAnswered => AppError::NotAnswered,
            TranscriptError::RateLimited => AppError::RateLimited(e.to_string()),
            TranscriptError::Store(e) => e.into(),
            TranscriptError::Mail(MailError::Disabled) => AppError::MailDisabled,
            TranscriptError::Mail(cause) => {
                tracing::warn!(%cause, "transcript e-mail not sent");
                AppError::Unavailable
            }
        }
    }
}

/// The token from `Authorization: Bearer <token>` (also read by attachments).
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The conversation named in the path, proven by the customer's bearer
/// token. No header: 401. A malformed id, an unknown token or a token of
/// another conversation: 404, all alike.
pub struct CustomerChat(pub ConversationRecord);

impl FromRequestParts<AppState> for CustomerChat {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)
            .ok_or(AppError::Unauthorized)?
            .to_owned();
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound)?;
        let id = ConversationId::parse(&raw).ok_or(AppError::NotFound)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AppError::NotFound);
        }
        state
            .store
            .conversation_by_token(&token_hash(&token))
            .await?
            .filter(|record| record.id == id)
            .map(CustomerChat)
            .ok_or(AppError::NotFound)
    }
}

/// `GET /api/chats/{id}/transcript`: the transcript as a text file.
async fn download(
    State(state): State<AppState>,
    CustomerChat(chat): CustomerChat,
) -> Result<impl IntoResponse, AppError> {
    let (_, transcript) = customer_transcript(&state.store, &chat.id).await?;
    // The id is a normalised UUID, so it is safe inside the quoted filename.
    let disposition = format!("attachment; filename=\"transcript-{}.txt\"", chat.id);
    Ok((
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (CONTENT_DISPOSITION, disposition),
            // A private conversation: no shared cache may keep it.
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        transcript.to_text(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    email: String,
}

#[derive(Serialize)]
struct EmailAccepted {
    email: String,
}

/// `POST /api/chats/{id}/transcript/email`: mails the transcript to the
/// address in the body. 202 once the SMTP server took the message.
async fn email(
    State(state): State<AppState>,
    CustomerChat(chat): CustomerChat,
    ApiJson(body): ApiJson<EmailRequest>,
) -> Result<(StatusCode, Json<EmailAccepted>), AppError> {
    let to = parse_address(&body.email)
        .ok_or_else(|| AppError::BadRequest("email is not a valid e-mail address".into()))?;
    let email = to.to_string();
    email_transcript(&state.store, &state.mailer, &chat.id, to).await?;
    tracing::info!(conversation = %chat.id, "transcript e-mailed");
    Ok((StatusCode::ACCEPTED, Json(EmailAccepted { email })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc123"));
        assert_eq!(bearer_token(&headers), Some("abc123"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  abc123 "));
        assert_eq!(bearer_token(&headers), Some("abc123"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc123"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
