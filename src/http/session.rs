//! Login, logout and "who am I" over HTTP with a server-side session.

use super::error::AppError;
use super::extract::{session_token, CurrentUser, PeerIp, SESSION_COOKIE};
use super::json::ApiJson;
use super::AppState;
use crate::auth::{
    dummy_hash, hash_password, random_token, token_hash, verify_password, MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
};
use crate::clock::wall_ms;
use crate::domain::account::Profile;
use crate::protocol::UserView;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/me/password", post(change_password))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct MeResponse {
    user: UserView,
    profiles: Vec<Profile>,
}

fn cookie(state: &AppState, value: &str, max_age_secs: u64) -> Result<HeaderValue, AppError> {
    let secure = if state.server.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .map_err(|e| AppError::Internal(e.into()))
}

async fn login(
    State(state): State<AppState>,
    PeerIp(ip): PeerIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, AppError> {
    if body.username.len() > 100 || body.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AppError::Unauthorized);
    }
    // Guessing is limited per account and address; the answer says only
    // "later", whether or not the account exists.
    if let Some(wait) = state.limits.login_locked(&body.username, ip) {
        return Err(AppError::TooManyAttempts {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let found = state.store.user_credentials(&body.username).await?;
    // Verify against a dummy hash for unknown users: same cost, same answer.
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, dummy_hash().to_owned()),
    };
    let password = body.password;
    let valid = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let user = match (user, valid) {
        (Some(user), true) => user,
        _ => {
            state.limits.login_failed(&body.username, ip);
            return Err(AppError::Unauthorized);
        }
    };
    if user.disabled {
        return Err(AppError::AccountDisabled);
    }
    state.limits.login_succeeded(&body.username, ip);
    let token = random_token();
    let now = wall_ms();
    let lifetime_secs = state.server.session_hours * 3600;
    state
        .store
        .create_session(
            &token_hash(&token),
            user.id,
            now,
            now + (lifetime_secs as i64) * 1000,
        )
        .await?;
    let profiles = state.store.profiles_of_user(user.id).await?;
    let mut response = Json(MeResponse {
        user: UserView::from(&user),
        profiles,
    })
    .into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie(&state, &token, lifetime_secs)?);
    Ok(response)
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(token) = session_token(&headers) {
        let hash = token_hash(&token);
        if let Some(user) = state.store.session_user(&hash, wall_ms()).await? {
            state.store.delete_session(&hash).await?;
            // An ended session must not keep a console connected.
            state.consoles.end_sessions(user.id);
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}

async fn me(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<MeResponse>, AppError> {
    let profiles = state.store.profiles_of_user(user.id).await?;
    Ok(Json(MeResponse {
        user: UserView::from(&user),
        profiles,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password after checking the current one, ends all
/// their sessions (this one included) and closes their console sockets.
/// A wrong current password counts as a failed login for the limiter.
async fn change_password(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PeerIp(ip): PeerIp,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, AppError> {
    let length = body.new_password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(AppError::BadRequest(format!(
            "password must be {MIN_PASSWORD_CHARS}–{MAX_PASSWORD_CHARS} characters"
        )));
    }
    if body.current_password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AppError::Unauthorized);
    }
    if let Some(wait) = state.limits.login_locked(&user.username, ip) {
        return Err(AppError::TooManyAttempts {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let Some((_, hash)) = state.store.user_credentials(&user.username).await? else {
        return Err(AppError::Unauthorized);
    };
    let (current, new) = (body.current_password, body.new_password);
    let new_hash = tokio::task::spawn_blocking(move || {
        verify_password(&current, &hash).then(|| hash_password(&new))
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let new_hash = match new_hash {
        Some(hashed) => hashed.map_err(AppError::Internal)?,
        None => {
            state.limits.login_failed(&user.username, ip);
            return Err(AppError::Unauthorized);
        }
    };
    state.store.change_password(user.id, &new_hash).await?;
    state.consoles.end_sessions(user.id);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}
