//! Starting a chat from the customer widget: creates a waiting conversation
//! and returns its id and the customer's bearer token (shown once; only its
//! hash is stored).

use super::error::AppError;
use super::json::ApiJson;
use super::AppState;
use crate::auth::{random_token, token_hash};
use crate::clock::wall_ms;
use crate::domain::ids::{ConversationId, QueueId};
use crate::store::NewConversation;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/chats", post(start_chat))
}

const MAX_NAME_CHARS: usize = 100;
const MAX_EMAIL_CHARS: usize = 254;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartChat {
    /// The queue, by id or by name.
    queue_id: Option<QueueId>,
    queue: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Serialize)]
struct ChatStarted {
    conversation_id: String,
    token: String,
}

fn optional_field(raw: Option<String>, max: usize, what: &str) -> Result<Option<String>, AppError> {
    let Some(value) = raw.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "{what} must be at most {max} characters without control characters"
        )));
    }
    Ok(Some(value))
}

async fn start_chat(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StartChat>,
) -> Result<(StatusCode, Json<ChatStarted>), AppError> {
    let name = optional_field(body.name, MAX_NAME_CHARS, "name")?;
    let email = optional_field(body.email, MAX_EMAIL_CHARS, "email")?;
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(AppError::BadRequest(
            "email is not an e-mail address".into(),
        ));
    }
    let queues = state.store.list_queues().await?;
    let queue = queues
        .into_iter()
        .find(|q| Some(q.id) == body.queue_id || body.queue.as_deref() == Some(q.name.as_str()))
        .ok_or(AppError::NotFound)?;
    let token = random_token();
    let record = state
        .store
        .create_conversation(NewConversation {
            id: ConversationId::random(),
            queue: queue.id,
            customer_token_hash: token_hash(&token),
            customer_name: name,
            customer_email: email,
            now: wall_ms(),
        })
        .await?;
    let conversation_id = record.id.0.clone();
    state.router.enqueue(record).await;
    Ok((
        StatusCode::CREATED,
        Json(ChatStarted {
            conversation_id,
            token,
        }),
    ))
}
