//! Request extractors: the logged-in user (from the session cookie) and the
//! supervisor role check.

use super::error::AppError;
use super::AppState;
use crate::auth::token_hash;
use crate::clock::wall_ms;
use crate::domain::account::{Role, User};
use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::HeaderMap;

pub const SESSION_COOKIE: &str = "sb_session";

/// The session token from the `Cookie` header, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// A user with a live session.
pub struct CurrentUser(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = session_token(&parts.headers).ok_or(AppError::Unauthorized)?;
        state
            .store
            .session_user(&token_hash(&token), wall_ms())
            .await?
            .map(CurrentUser)
            .ok_or(AppError::Unauthorized)
    }
}

/// A logged-in supervisor; agents get 403.
pub struct Supervisor(pub User);

impl FromRequestParts<AppState> for Supervisor {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if user.role == Role::Supervisor {
            Ok(Supervisor(user))
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// The client's IP address, from the connection (never from a forwarded
/// header, which anyone can forge). Unspecified when the app is served
/// without connection info (e.g. in-process tests).
pub struct PeerIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        Ok(PeerIp(ip))
    }
}
