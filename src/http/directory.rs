//! The colleague directory: the other agents a console can invite by name,
//! with whether they are signed in and their status. No usernames, roles or
//! anything else an agent does not need to pick a colleague.

use super::error::AppError;
use super::extract::CurrentUser;
use super::AppState;
use crate::domain::account::{AgentStatus, Role};
use crate::domain::ids::UserId;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/colleagues", get(colleagues))
}

/// One other agent, as the invite picker shows them.
#[derive(Serialize)]
struct Colleague {
    id: UserId,
    display_name: String,
    /// Signed in on this server now.
    online: bool,
    /// `{"status":"ready"}`, `{"status":"not_ready","reason":…}` or
    /// `{"status":"offline"}` when not signed in.
    status: AgentStatus,
}

/// Every agent except the caller, online ones first, then by display name.
async fn colleagues(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<Json<Vec<Colleague>>, AppError> {
    let online: HashMap<UserId, AgentStatus> =
        state.router.online_agents().await.into_iter().collect();
    let mut list: Vec<Colleague> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.role == Role::Agent && u.id != me.id)
        .map(|u| {
            let status = online.get(&u.id).cloned();
            Colleague {
                id: u.id,
                display_name: u.display_name,
                online: status.is_some(),
                status: status.unwrap_or(AgentStatus::Offline),
            }
        })
        .collect();
    list.sort_by(|a, b| {
        b.online
            .cmp(&a.online)
            .then_with(|| {
                a.display_name
                    .to_lowercase()
                    .cmp(&b.display_name.to_lowercase())
            })
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(Json(list))
}
