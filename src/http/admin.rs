//! Supervisor configuration over HTTP: queues, profiles and users.

use super::error::AppError;
use super::extract::{CurrentUser, Supervisor};
use super::json::ApiJson;
use super::AppState;
use crate::accounts::{create_user, UserSpec};
use crate::domain::account::{Media, Profile, Queue, Role};
use crate::domain::ids::{ProfileId, QueueId, UserId};
use crate::protocol::UserView;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/queues", get(list_queues).post(create_queue))
        .route("/api/profiles", get(list_profiles).post(create_profile))
        .route("/api/users", get(list_users).post(add_user))
        .route("/api/users/{id}/profiles", post(grant_profile))
}

/// A validated name: 1–80 characters, no control characters.
pub(super) fn clean_name(raw: &str, what: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "{what} must be 1–80 characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewQueue {
    name: String,
    #[serde(default = "default_timeout")]
    offer_timeout_secs: u32,
    #[serde(default)]
    priority: i32,
}

fn default_timeout() -> u32 {
    30
}

/// Queues are listed to any logged-in user (agents pick queues to invite to).
async fn list_queues(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<Queue>>, AppError> {
    Ok(Json(state.store.list_queues().await?))
}

async fn create_queue(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    ApiJson(body): ApiJson<NewQueue>,
) -> Result<(StatusCode, Json<Queue>), AppError> {
    let name = clean_name(&body.name, "queue name")?;
    if !(1..=3600).contains(&body.offer_timeout_secs) {
        return Err(AppError::BadRequest(
            "offer_timeout_secs must be 1–3600".into(),
        ));
    }
    let id = state
        .store
        .create_queue(&name, body.offer_timeout_secs, body.priority)
        .await?;
    let queue = Queue {
        id,
        name,
        offer_timeout_secs: body.offer_timeout_secs,
        priority: body.priority,
    };
    state.queues.changed();
    tracing::info!(supervisor = %by.username, queue = %queue.name, "queue created");
    state.router.queue_changed(queue.clone()).await;
    Ok((StatusCode::CREATED, Json(queue)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProfile {
    name: String,
    queue_ids: Vec<QueueId>,
    media: Vec<Media>,
}

async fn list_profiles(
    State(state): State<AppState>,
    _s: Supervisor,
) -> Result<Json<Vec<Profile>>, AppError> {
    Ok(Json(state.store.list_profiles().await?))
}

async fn create_profile(
    State(state): State<AppState>,
    _s: Supervisor,
    ApiJson(body): ApiJson<NewProfile>,
) -> Result<(StatusCode, Json<Profile>), AppError> {
    let name = clean_name(&body.name, "profile name")?;
    let id = state
        .store
        .create_profile(&name, &body.media, &body.queue_ids)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Profile {
            id,
            name,
            queues: body.queue_ids,
            media: body.media,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserRequest {
    username: String,
    display_name: Option<String>,
    role: Role,
    #[serde(default)]
    capacity: Option<u32>,
    password: Option<String>,
}

#[derive(Serialize)]
struct CreatedUser {
    user: UserView,
    /// Only present when the server generated the password; shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_password: Option<String>,
}

async fn list_users(
    State(state): State<AppState>,
    _s: Supervisor,
) -> Result<Json<Vec<UserView>>, AppError> {
    let users = state.store.list_users().await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

async fn add_user(
    State(state): State<AppState>,
    _s: Supervisor,
    ApiJson(body): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Json<CreatedUser>), AppError> {
    let spec = UserSpec {
        username: body.username,
        display_name: body.display_name,
        role: body.role,
        capacity: body.capacity,
        password: body.password,
    };
    let created = create_user(&state.store, spec).await.map_err(|e| match e {
        crate::accounts::AccountError::Invalid(message) => AppError::BadRequest(message),
        crate::accounts::AccountError::Taken => AppError::Conflict("username is taken".into()),
        crate::accounts::AccountError::Store(e) => e.into(),
        crate::accounts::AccountError::Internal(e) => AppError::Internal(e),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: UserView::from(&created.user),
            generated_password: created.generated_password,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    profile_id: ProfileId,
}

async fn grant_profile(
    State(state): State<AppState>,
    _s: Supervisor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Grant>,
) -> Result<StatusCode, AppError> {
    state
        .store
        .grant_profile(UserId(id), body.profile_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
