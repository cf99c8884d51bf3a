//! `GET /api/live`: the supervisors' live view of queues and agents. The
//! numbers come from the router actor (what it routes by), the names from
//! the store. It shows this node's router only.

use super::error::AppError;
use super::extract::Supervisor;
use super::AppState;
use crate::clock::wall_ms;
use crate::domain::account::{AgentStatus, Role};
use crate::domain::ids::{QueueId, UserId};
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{extract::State, Json, Router};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/live", get(live))
}

#[derive(Serialize)]
struct QueueLive {
    id: QueueId,
    name: String,
    waiting: u32,
    longest_wait_secs: u64,
    agents_ready: u32,
}

#[derive(Serialize)]
struct AgentLive {
    id: UserId,
    username: String,
    display_name: String,
    /// `ready`, `not_ready` or `offline` (no console connected).
    status: &'static str,
    /// The reason of a `not_ready` status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pause_reason: Option<String>,
    open_chats: u32,
    capacity: u32,
    /// The console dropped and the agent grace period is running: their
    /// customers are told "reconnecting"; after it their chats are handed on.
    reconnecting: bool,
}

/// Something to look at (docs/protocol.md 6.5): an agent lost after the
/// grace period, and what happened to each of their chats.
#[derive(Serialize)]
struct AlertLive {
    at: i64,
    /// `agent_lost`, `chat_requeued` or `chat_ended`.
    kind: &'static str,
    agent_id: UserId,
    agent_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<String>,
}

#[derive(Serialize)]
struct LiveView {
    /// Server time of the snapshot (ms since the epoch).
    at: i64,
    queues: Vec<QueueLive>,
    agents: Vec<AgentLive>,
    /// Recent alerts, newest first (the last 50 since the server started).
    alerts: Vec<AlertLive>,
}

async fn live(
    State(state): State<AppState>,
    _s: Supervisor,
) -> Result<impl IntoResponse, AppError> {
    let routing = state
        .router
        .live()
        .await
        .map_err(|_| AppError::Unavailable)?;
    let queues = state.store.list_queues().await?;
    let users = state.store.list_users().await?;
    let queues = queues
        .into_iter()
        .map(|q| {
            let load = routing.queues.iter().find(|l| l.queue == q.id);
            QueueLive {
                id: q.id,
                name: q.name,
                waiting: load.map_or(0, |l| l.waiting),
                longest_wait_secs: load.map_or(0, |l| l.longest_wait_secs),
                agents_ready: load.map_or(0, |l| l.agents_ready),
            }
        })
        .collect();
    let alerts = routing
        .alerts
        .iter()
        .map(|a| AlertLive {
            at: a.at_ms,
            kind: a.kind.as_str(),
            agent_id: a.agent,
            agent_name: users
                .iter()
                .find(|u| u.id == a.agent)
                .map_or_else(String::new, |u| u.display_name.clone()),
            conversation_id: a.conversation.as_ref().map(|c| c.0.clone()),
        })
        .collect();
    let agents = users
        .into_iter()
        .filter(|u| {
            !u.disabled && (u.role == Role::Agent || routing.agents.iter().any(|a| a.agent == u.id))
        })
        .map(|u| {
            let load = routing.agents.iter().find(|a| a.agent == u.id);
            let (status, pause_reason) = match load.map(|a| &a.status) {
                Some(AgentStatus::Ready) => ("ready", None),
                Some(AgentStatus::NotReady { reason }) => ("not_ready", Some(reason.clone())),
                Some(AgentStatus::Offline) | None => ("offline", None),
            };
            AgentLive {
                id: u.id,
                username: u.username,
                display_name: u.display_name,
                status,
                pause_reason,
                open_chats: load.map_or(0, |a| a.open_chats),
                capacity: load.map_or(u.capacity, |a| a.capacity),
                reconnecting: load.is_some_and(|a| !a.connected),
            }
        })
        .collect();
    Ok((
        [(CACHE_CONTROL, "no-store")],
        Json(LiveView {
            at: wall_ms(),
            queues,
            agents,
            alerts,
        }),
    ))
}
