//! HTTP and WebSocket transport. Handlers decode, call a store or an actor
//! handle, and encode; rules live in `domain` and the actors.

mod admin;
mod agent_actions;
pub mod agent_ws;
mod attachments;
mod chat_log;
mod chats;
pub mod consoles;
pub mod csrf;
mod customer_ws;
mod directory;
pub mod error;
mod extract;
mod headers;
mod health;
mod json;
pub mod limits;
mod live;
mod manage;
mod predefined;
pub mod serve;
mod session;
mod sites;
pub mod socket;
mod transcripts;
mod widget_config;

use crate::attachments::DynBlobStore;
use crate::config::{AttachmentSettings, ServerSettings};
use crate::conversation::Conversations;
use crate::mail::DynMailer;
use crate::routing::Router as ChatRouter;
use crate::store::DynStore;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

/// Everything a handler may use. Cheap to clone: handles and `Arc`s only.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    /// Group-commits the chats customers start.
    pub chats: crate::chat_creation::ChatCreator,
    /// The live queues in memory, for starting chats.
    pub queues: Arc<crate::queue_directory::QueueDirectory>,
    pub router: ChatRouter,
    pub conversations: Conversations,
    pub server: Arc<ServerSettings>,
    /// Sends transcript e-mail; refuses everything when mail is off.
    pub mailer: DynMailer,
    /// Where attachment files are kept.
    pub blobs: DynBlobStore,
    pub attachments: Arc<AttachmentSettings>,
    /// Turns true when the server is shutting down; sockets close on it.
    pub shutdown: watch::Receiver<bool>,
    /// Abuse limits and their in-memory state.
    pub limits: Arc<limits::AbuseLimits>,
    /// Every upgraded WebSocket holds a token of this while it runs, so
    /// shutdown can wait for them to finish their last command.
    pub sockets: TaskTracker,
    /// Every open console socket by user, to close them when the user's
    /// sessions end.
    pub consoles: consoles::Consoles,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let static_files = ServeDir::new(&state.server.static_dir);
    Router::new()
        .merge(health::router())
        .merge(session::router())
        .merge(admin::router())
        .merge(manage::router())
        .merge(live::router())
        .merge(chats::router())
        .merge(predefined::router())
        .merge(sites::router())
        .merge(transcripts::router())
        .merge(chat_log::router())
        .merge(attachments::router())
        .merge(directory::router())
        .merge(widget_config::router())
        .route("/ws/agent", get(agent_ws::upgrade))
        .route("/ws/customer", get(customer_ws::upgrade))
        .fallback_service(static_files)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::refuse_cross_site,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::security_headers,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
