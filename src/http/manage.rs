//! Supervisors changing and deleting what `admin` creates: queues, profiles
//! and users (display name, role, capacity, disabled, password reset).

use super::admin::clean_name;
use super::error::AppError;
use super::extract::Supervisor;
use super::json::ApiJson;
use super::AppState;
use crate::auth::{hash_password, random_password, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::clock::wall_ms;
use crate::domain::account::{Media, Profile, Queue, Role};
use crate::domain::ids::{ProfileId, QueueId, UserId};
use crate::protocol::UserView;
use crate::store::{DeleteOutcome, ProfileChanges, QueueChanges, UserChanges};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/queues/{id}", put(update_queue).delete(delete_queue))
        .route(
            "/api/profiles/{id}",
            put(update_profile).delete(delete_profile),
        )
        .route("/api/users/{id}", put(update_user))
        .route("/api/users/{id}/password", post(reset_password))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueEdit {
    name: Option<String>,
    offer_timeout_secs: Option<u32>,
    priority: Option<i32>,
}

async fn update_queue(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<QueueEdit>,
) -> Result<Json<Queue>, AppError> {
    if body
        .offer_timeout_secs
        .is_some_and(|t| !(1..=3600).contains(&t))
    {
        return Err(AppError::BadRequest(
            "offer_timeout_secs must be 1–3600".into(),
        ));
    }
    let changes = QueueChanges {
        name: body
            .name
            .map(|n| clean_name(&n, "queue name"))
            .transpose()?,
        offer_timeout_secs: body.offer_timeout_secs,
        priority: body.priority,
    };
    let queue = state
        .store
        .update_queue(QueueId(id), &changes)
        .await?
        .ok_or(AppError::NotFound)?;
    state.queues.changed();
    tracing::info!(supervisor = %by.username, queue = %queue.name, "queue changed");
    state.router.queue_changed(queue.clone()).await;
    Ok(Json(queue))
}

async fn delete_queue(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    match state.store.delete_queue(QueueId(id), wall_ms()).await? {
        DeleteOutcome::Deleted => {
            state.queues.changed();
            tracing::info!(supervisor = %by.username, queue = id, "queue deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteOutcome::NotFound => Err(AppError::NotFound),
        DeleteOutcome::Busy => Err(AppError::QueueBusy),
        DeleteOutcome::DefaultOfSite => Err(AppError::QueueUsedBySite),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileEdit {
    name: Option<String>,
    queue_ids: Option<Vec<QueueId>>,
    media: Option<Vec<Media>>,
}

/// Most queues one profile may serve.
const MAX_PROFILE_QUEUES: usize = 200;

async fn update_profile(
    State(state): State<AppState>,
    _s: Supervisor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ProfileEdit>,
) -> Result<Json<Profile>, AppError> {
    if let Some(queues) = &body.queue_ids {
        if queues.len() > MAX_PROFILE_QUEUES {
            return Err(AppError::BadRequest(format!(
                "a profile serves at most {MAX_PROFILE_QUEUES} queues"
            )));
        }
        let known = state.store.list_queues().await?;
        if let Some(unknown) = queues.iter().find(|q| !known.iter().any(|k| k.id == **q)) {
            return Err(AppError::BadRequest(format!("unknown queue {}", unknown.0)));
        }
    }
    let changes = ProfileChanges {
        name: body
            .name
            .map(|n| clean_name(&n, "profile name"))
            .transpose()?,
        media: body.media,
        queues: body.queue_ids,
    };
    let profile = state
        .store
        .update_profile(ProfileId(id), &changes)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(profile))
}

async fn delete_profile(
    State(state): State<AppState>,
    _s: Supervisor,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    if state.store.delete_profile(ProfileId(id)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEdit {
    display_name: Option<String>,
    role: Option<Role>,
    capacity: Option<u32>,
    disabled: Option<bool>,
}

async fn update_user(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<UserEdit>,
) -> Result<Json<UserView>, AppError> {
    let id = UserId(id);
    // A supervisor cannot lock themselves out.
    if id == by.id && (body.disabled == Some(true) || body.role == Some(Role::Agent)) {
        return Err(AppError::BadRequest(
            "you cannot disable yourself or take away your own supervisor role".into(),
        ));
    }
    if body.capacity.is_some_and(|c| !(1..=50).contains(&c)) {
        return Err(AppError::BadRequest("capacity must be 1–50".into()));
    }
    let changes = UserChanges {
        display_name: body
            .display_name
            .map(|n| clean_name(&n, "display name"))
            .transpose()?,
        role: body.role,
        capacity: body.capacity,
        disabled: body.disabled,
    };
    let user = state
        .store
        .update_user(id, &changes)
        .await?
        .ok_or(AppError::NotFound)?;
    if user.disabled {
        // Their sessions stop working and an open console is closed now.
        state.store.end_sessions(user.id).await?;
        state.consoles.end_sessions(user.id);
    }
    tracing::info!(supervisor = %by.username, user = %user.username, "user changed");
    Ok(Json(UserView::from(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    /// Generated (and returned once) when omitted.
    password: Option<String>,
}

#[derive(Serialize)]
struct ResetDone {
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_password: Option<String>,
}

/// Sets a new password and ends the user's sessions, so whoever knew the
/// old one is logged out.
async fn reset_password(
    State(state): State<AppState>,
    Supervisor(by): Supervisor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<PasswordReset>,
) -> Result<Json<ResetDone>, AppError> {
    let id = UserId(id);
    let (password, generated) = match body.password {
        Some(p) => (p, false),
        None => (random_password(), true),
    };
    let length = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(AppError::BadRequest(format!(
            "password must be {MIN_PASSWORD_CHARS}–{MAX_PASSWORD_CHARS} characters"
        )));
    }
    let to_hash = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&to_hash))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(AppError::Internal)?;
    if !state.store.set_password_hash(id, &hash).await? {
        return Err(AppError::NotFound);
    }
    if id != by.id {
        state.store.end_sessions(id).await?;
        state.consoles.end_sessions(id);
    }
    tracing::info!(supervisor = %by.username, user = id.0, "password reset");
    Ok(Json(ResetDone {
        generated_password: generated.then_some(password),
    }))
}
