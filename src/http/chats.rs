//! Starting a chat from the customer widget: creates a waiting conversation
//! and returns its id and the customer's bearer token (shown once; only its
//! hash is stored).
//!
//! A chat may name its site (the widget's `data-site`). The site then
//! supplies the default queue, limits which origins may start chats, and
//! verifies the customer's identity token: only values from a valid token
//! are marked verified; what the customer typed is stored unverified.

use super::agent_ws::origin_allowed;
use super::error::AppError;
use super::json::ApiJson;
use super::AppState;
use crate::auth::{random_token, token_hash};
use crate::clock::wall_ms;
use crate::conversation::NewChat;
use crate::domain::customer::{self, TypedDetails};
use crate::domain::identity::{self, VerifiedIdentity};
use crate::domain::ids::{ConversationId, QueueId};
use crate::domain::site::{parse_key, Site};
use crate::store::{NewConversation, NewCustomerChat};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
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
    /// The queue, by id or by name. Optional with a site (its default queue).
    queue_id: Option<QueueId>,
    queue: Option<String>,
    /// The site's public key.
    site: Option<String>,
    /// The JWT the site's backend signed for this customer.
    identity_token: Option<String>,
    /// Typed into the pre-chat form: stored unverified.
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

fn typed_details(name: Option<String>, email: Option<String>) -> Result<TypedDetails, AppError> {
    let name = optional_field(name, MAX_NAME_CHARS, "name")?;
    let email = optional_field(email, MAX_EMAIL_CHARS, "email")?;
    if email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(AppError::BadRequest(
            "email is not an e-mail address".into(),
        ));
    }
    Ok(TypedDetails { name, email })
}

/// The site named by `key`, if the request may start a chat on it: a
/// browser's `Origin` must be one of the site's origins, or the server's
/// own (the widget frame). Requests without `Origin` are not from a browser.
async fn site_for(state: &AppState, key: &str, headers: &HeaderMap) -> Result<Site, AppError> {
    let key = parse_key(key).map_err(|_| AppError::NotFound)?;
    let site = state
        .store
        .site_by_key(&key)
        .await?
        .ok_or(AppError::NotFound)?;
    if !origin_allowed(headers, &site.allowed_origins) {
        tracing::info!(site = %site.key, "chat refused: origin not allowed for the site");
        return Err(AppError::Forbidden);
    }
    Ok(site)
}

/// What a valid token vouches for. A missing or invalid token never yields
/// verified data; on a site that requires it, the chat is refused (401).
fn verify_identity(site: &Site, token: Option<&str>) -> Result<Option<VerifiedIdentity>, AppError> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let verified = token.and_then(|token| {
        let now_secs = wall_ms() / 1000;
        let secret = site.identity_secret.as_bytes();
        match identity::verify(token, secret, &site.key, now_secs) {
            Ok(identity) => Some(identity),
            Err(reason) => {
                // The reason helps the site's developers; the token itself
                // is never logged.
                tracing::warn!(site = %site.key, %reason, "identity token refused");
                None
            }
        }
    });
    if verified.is_none() && site.require_verified {
        return Err(AppError::Unauthorized);
    }
    Ok(verified)
}

async fn start_chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StartChat>,
) -> Result<(StatusCode, Json<ChatStarted>), AppError> {
    let typed = typed_details(body.name, body.email)?;
    let site = match body.site.as_deref() {
        Some(key) => Some(site_for(&state, key, &headers).await?),
        None if body.identity_token.is_some() => {
            return Err(AppError::BadRequest(
                "identity_token needs the site it was signed for".into(),
            ))
        }
        None => None,
    };
    let wanted = body.queue_id.is_some() || body.queue.is_some();
    let default_queue = site.as_ref().map(|s| s.default_queue_id);
    let queue = state
        .queues
        .find(|q| {
            if wanted {
                Some(q.id) == body.queue_id || body.queue.as_deref() == Some(q.name.as_str())
            } else {
                Some(q.id) == default_queue
            }
        })
        .await?
        .ok_or(AppError::NotFound)?;
    let identity = match &site {
        Some(site) => verify_identity(site, body.identity_token.as_deref())?,
        None => None,
    };
    let variables = customer::merge(typed, identity.as_ref());
    let token = random_token();
    let conversation = NewConversation {
        id: ConversationId::random(),
        queue: queue.id,
        customer_token_hash: token_hash(&token),
        customer_name: customer::value_of(&variables, customer::NAME).map(str::to_owned),
        customer_email: customer::value_of(&variables, customer::EMAIL).map(str::to_owned),
        now: wall_ms(),
    };
    let record = state
        .chats
        .create(NewCustomerChat {
            conversation,
            site: site.map(|s| s.id),
            variables: variables.clone(),
        })
        .await?;
    let conversation_id = record.id.0.clone();
    state.conversations.started(NewChat {
        record: record.clone(),
        variables: variables.clone(),
        queue_name: queue.name.clone(),
    });
    state.router.enqueue(record, variables).await;
    Ok((
        StatusCode::CREATED,
        Json(ChatStarted {
            conversation_id,
            token,
        }),
    ))
}
