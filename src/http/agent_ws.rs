//! The agent console's WebSocket: authenticated by the session cookie,
//! refused for foreign origins, then a loop of typed commands.

use super::attachments::message_input;
use super::error::AppError;
use super::extract::{CurrentUser, PeerIp};
use super::socket::{self, SocketSession};
use super::AppState;
use crate::conversation::audience::Rendered;
use crate::conversation::{Contribution, MAX_EVENTS_PER_CONVERSATION};
use crate::domain::account::{AgentStatus, Profile, User};
use crate::domain::conversation::Audience;
use crate::domain::conversation::Party;
use crate::domain::ids::ConversationId;
use crate::domain::message::{ClientMsgId, InputError};
use crate::outbox::{self, Frame, Outbox};
use crate::protocol::{decode, AgentCommand, ErrorCode, ServerEvent, StatusChoice, UserView};
use crate::routing::{Accepted, AgentSignIn};
use crate::transcript_mail::spawn_automatic_transcript;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;
use axum::response::Response;
use std::collections::{HashMap, HashSet};

/// Whether a browser `Origin` may open the console socket: the server's own
/// origin or one configured in `server.allowed_origins`. Requests without
/// `Origin` come from non-browser clients, which cannot be hijacked cross-site.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    RequestOrigin::of(headers).allowed(allowed)
}

/// The two headers the origin check needs, copied out of a request. A
/// socket that checks its origin later (the widget's, on `resume`) keeps
/// this rather than the `HeaderMap`: header values share hyper's 8 KiB read
/// buffer, so a kept map pinned that buffer for the socket's whole life
/// (docs/performance.md, S1).
pub struct RequestOrigin {
    /// None: no `Origin` header; Some(None): one that is not visible ASCII.
    origin: Option<Option<String>>,
    host: String,
}

impl RequestOrigin {
    pub fn of(headers: &HeaderMap) -> Self {
        let origin = headers
            .get(ORIGIN)
            .map(|o| o.to_str().ok().map(str::to_owned));
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_owned();
        Self { origin, host }
    }

    /// See [`origin_allowed`].
    pub fn allowed(&self, allowed: &[String]) -> bool {
        let origin = match &self.origin {
            None => return true,
            Some(None) => return false,
            Some(Some(origin)) => origin,
        };
        let host = &self.host;
        let own = [format!("http://{host}"), format!("https://{host}")];
        own.iter().any(|o| o == origin) || allowed.iter().any(|o| o == origin)
    }
}

pub async fn upgrade(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if !origin_allowed(&headers, &state.server.allowed_origins) {
        return Err(AppError::Forbidden);
    }
    let profiles = state.store.profiles_of_user(user.id).await?;
    Ok(socket::limits(ws).on_upgrade(move |ws| {
        let sockets = state.sockets.clone();
        let state_limits = state.limits.clone();
        let (outbox, inbox) = outbox::channel();
        let hello = ServerEvent::Hello {
            user: UserView::from(&user),
            profiles,
        }
        .to_frame();
        let shutdown = state.shutdown.clone();
        state.consoles.opened(user.id, outbox.clone());
        let session = AgentSession {
            state,
            user,
            outbox,
            signed_in: None,
            attached: HashSet::new(),
        };
        let guard = socket::FrameGuard::new(state_limits, ip);
        sockets.track_future(socket::drive(
            ws,
            session,
            inbox,
            shutdown,
            vec![hello],
            guard,
        ))
    }))
}

/// Chats that ended while the console was away, replayed per `sign_in`.
const MAX_CLOSED_RESUMES: usize = 100;

pub(super) struct AgentSession {
    pub(super) state: AppState,
    pub(super) user: User,
    pub(super) outbox: Outbox,
    signed_in: Option<Profile>,
    pub(super) attached: HashSet<ConversationId>,
}

fn error(code: ErrorCode, message: impl Into<String>) -> Vec<Frame> {
    vec![ServerEvent::error(code, message).to_frame()]
}

pub(super) fn conversation_error(
    code: ErrorCode,
    message: impl Into<String>,
    id: &str,
    client_msg_id: Option<&str>,
) -> Vec<Frame> {
    vec![ServerEvent::Error {
        code,
        message: message.into(),
        conversation_id: Some(id.to_owned()),
        client_msg_id: client_msg_id.map(str::to_owned),
        retryable: code.is_retryable(),
    }
    .to_frame()]
}

/// Maps a text validation failure to its error code.
pub fn text_error(e: InputError) -> (ErrorCode, &'static str) {
    match e {
        InputError::Empty => (ErrorCode::TextEmpty, "message text is empty"),
        InputError::TooLong => (
            ErrorCode::TextTooLong,
            "message text is over 4000 characters",
        ),
        InputError::ControlCharacters => (
            ErrorCode::InvalidText,
            "message text contains control characters",
        ),
    }
}

impl SocketSession for AgentSession {
    async fn handle(&mut self, text: &str) -> Vec<Frame> {
        let command = match decode::<AgentCommand>(text) {
            Ok(command) => command,
            Err(e) => return error(e.code, e.message),
        };
        match command {
            AgentCommand::Ping {} => vec![ServerEvent::Pong.to_frame()],
            AgentCommand::SignIn { profile_id, resume } => self.sign_in(profile_id, resume).await,
            _ if self.signed_in.is_none() => {
                error(ErrorCode::NotSignedIn, "sign in with a profile first")
            }
            AgentCommand::SetStatus { status, reason } => self.set_status(status, reason).await,
            AgentCommand::Accept { conversation_id } => self.accept(&conversation_id).await,
            AgentCommand::Reject { conversation_id } => self.reject(&conversation_id).await,
            AgentCommand::Send {
                conversation_id,
                client_msg_id,
                text,
                private,
                attachments,
            } => {
                // A private message's attachments are private too: they are
                // bound with the message's audience.
                let audience = if private {
                    Audience::AgentsOnly
                } else {
                    Audience::Everyone
                };
                match message_input(text, &attachments) {
                    Ok((text, attachments)) => {
                        let contribution = Contribution::Message {
                            text,
                            audience,
                            attachments,
                        };
                        self.contribute(&conversation_id, client_msg_id, contribution)
                            .await
                    }
                    Err((code, message)) => {
                        conversation_error(code, message, &conversation_id, Some(&client_msg_id))
                    }
                }
            }
            AgentCommand::OfferChoices {
                conversation_id,
                client_msg_id,
                prompt,
                options,
            } => {
                let contribution = Contribution::OfferChoices { prompt, options };
                self.contribute(&conversation_id, client_msg_id, contribution)
                    .await
            }
            AgentCommand::Typing {
                conversation_id,
                typing,
                private,
            } => {
                let id = ConversationId::parse(&conversation_id);
                if let Some(id) = id.filter(|id| self.attached.contains(id)) {
                    let name = self.user.display_name.clone();
                    let party = Party::Agent(self.user.id);
                    self.state
                        .conversations
                        .typing(&id, party, &name, typing, private);
                }
                Vec::new()
            }
            AgentCommand::Invite {
                conversation_id,
                agent_id,
                queue_id,
                transfer,
            } => {
                self.invite(&conversation_id, agent_id, queue_id, transfer)
                    .await
            }
            AgentCommand::CancelInvite { conversation_id } => {
                self.cancel_invite(&conversation_id).await
            }
            AgentCommand::Leave { conversation_id } => self.leave(&conversation_id).await,
            AgentCommand::End { conversation_id } => self.end(&conversation_id).await,
        }
    }

    async fn finish(self) {
        let connection = self.outbox.connection();
        self.state.consoles.closed(self.user.id, connection);
        if self.signed_in.is_some() {
            self.state.router.sign_out(self.user.id, connection).await;
        }
        for id in &self.attached {
            self.state.conversations.detach(id, connection);
        }
    }
}

impl AgentSession {
    pub(super) fn party(&self) -> Party {
        Party::Agent(self.user.id)
    }

    async fn sign_in(
        &mut self,
        profile_id: crate::domain::ids::ProfileId,
        resume: HashMap<String, i64>,
    ) -> Vec<Frame> {
        let profiles = match self.state.store.profiles_of_user(self.user.id).await {
            Ok(p) => p,
            Err(_) => return error(ErrorCode::Unavailable, "store unavailable; retry"),
        };
        let Some(profile) = profiles.into_iter().find(|p| p.id == profile_id) else {
            return error(ErrorCode::InvalidProfile, "that profile is not yours");
        };
        let open = match self.state.store.open_conversations_of(self.user.id).await {
            Ok(open) => open,
            Err(_) => return error(ErrorCode::Unavailable, "store unavailable; retry"),
        };
        let sign_in = AgentSignIn {
            agent: self.user.id,
            profile: profile.clone(),
            capacity: self.user.capacity,
            open_chats: open.len() as u32,
            outbox: self.outbox.clone(),
        };
        let agent_state = match self.state.router.sign_in(sign_in).await {
            Ok(s) => s,
            Err(e) => return error(e.code(), e.to_string()),
        };
        self.signed_in = Some(profile.clone());
        let mut views = Vec::with_capacity(open.len());
        let mut backlog = Vec::new();
        let conversations = &self.state.conversations;
        let name = &self.user.display_name;
        for record in open {
            let after = resume.get(record.id.as_str()).copied().unwrap_or(0);
            // Joining is idempotent; it announces a join a crash cut short.
            if let Err(e) = conversations.join(&record.id, self.user.id, name).await {
                tracing::warn!(error = %e, conversation = %record.id, "could not rejoin conversation");
            }
            match conversations
                .attach(&record.id, self.party(), self.outbox.clone(), after)
                .await
            {
                Ok(attached) => {
                    views.push(attached.view);
                    backlog.extend(attached.backlog);
                    self.attached.insert(record.id);
                }
                Err(e) => {
                    tracing::warn!(error = %e, conversation = %record.id, "could not resume conversation")
                }
            }
        }
        backlog.extend(self.closed_backlog(&resume).await);
        let mut frames = vec![ServerEvent::SignedIn {
            profile,
            label: agent_state.status.label(agent_state.open_chats),
            status: agent_state.status,
            open_chats: agent_state.open_chats,
            conversations: views,
        }
        .to_frame()];
        frames.extend(backlog);
        frames
    }

    /// The rest of the chats the console resumes that ended while it was
    /// away (say, the customer ended one while the server restarted): their
    /// last events, `ended` included, would otherwise never reach it. Only
    /// chats this agent took part in; at most [`MAX_CLOSED_RESUMES`] of them.
    async fn closed_backlog(&self, resume: &HashMap<String, i64>) -> Vec<Frame> {
        let mut backlog = Vec::new();
        let closed = resume.iter().filter_map(|(raw, after)| {
            ConversationId::parse(raw)
                .filter(|id| !self.attached.contains(id))
                .map(|id| (id, *after))
        });
        for (id, after) in closed.take(MAX_CLOSED_RESUMES) {
            match self.state.store.took_part(&id, self.user.id).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, conversation = %id, "could not check a resumed chat");
                    continue;
                }
            }
            match self
                .state
                .store
                .events_after(&id, after.max(0), MAX_EVENTS_PER_CONVERSATION + 100)
                .await
            {
                Ok(events) => backlog.extend(
                    events
                        .iter()
                        .filter_map(|e| Rendered::new(e).frame_for(self.party())),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, conversation = %id, "could not replay a closed chat")
                }
            }
        }
        backlog
    }

    async fn set_status(&mut self, status: StatusChoice, reason: Option<String>) -> Vec<Frame> {
        let status = match status {
            StatusChoice::Ready => AgentStatus::Ready,
            StatusChoice::NotReady => match AgentStatus::not_ready(reason.as_deref().unwrap_or(""))
            {
                Ok(s) => s,
                Err(message) => return error(ErrorCode::InvalidStatus, message),
            },
        };
        match self.state.router.set_status(self.user.id, status).await {
            // The router pushes the new `status` event to this connection.
            Ok(_) => Vec::new(),
            Err(e) => error(e.code(), e.to_string()),
        }
    }

    async fn accept(&mut self, raw: &str) -> Vec<Frame> {
        let Some(id) = ConversationId::parse(raw) else {
            return conversation_error(
                ErrorCode::NotYourOffer,
                "this chat was never offered to you",
                raw,
                None,
            );
        };
        let accepted = match self.state.router.accept(self.user.id, id.clone()).await {
            Ok(accepted) => accepted,
            // A repeated accept of a chat that is already this agent's (the
            // first one's join or its answer was lost) completes the join.
            Err(e) if e.code() == ErrorCode::AlreadyAccepted && self.is_in(&id).await => {
                Accepted::Chat
            }
            Err(e) => return conversation_error(e.code(), e.to_string(), raw, None),
        };
        let conversations = self.state.conversations.clone();
        // The accept is stored from here on: a saturated store must not
        // leave the chat accepted but never shown, so retry briefly.
        let joined =
            retry_unavailable(|| conversations.join(&id, self.user.id, &self.user.display_name))
                .await;
        if let Err(e) = joined {
            return conversation_error(e.code(), e.to_string(), raw, None);
        }
        if let Accepted::Invite {
            inviter,
            transfer: true,
        } = accepted
        {
            self.complete_transfer(&id, inviter).await;
        }
        let party = self.party();
        let attached =
            retry_unavailable(|| conversations.attach(&id, party, self.outbox.clone(), 0)).await;
        match attached {
            Ok(attached) => {
                self.attached.insert(id);
                let mut frames = vec![ServerEvent::ChatAccepted {
                    conversation: attached.view,
                }
                .to_frame()];
                frames.extend(attached.backlog);
                frames
            }
            Err(e) => conversation_error(e.code(), e.to_string(), raw, None),
        }
    }

    /// Whether the store has this agent in the active chat `id` now (not
    /// left, not ended).
    async fn is_in(&self, id: &ConversationId) -> bool {
        match self.state.store.open_conversations_of(self.user.id).await {
            Ok(open) => open.iter().any(|c| &c.id == id),
            Err(_) => false,
        }
    }

    async fn reject(&mut self, raw: &str) -> Vec<Frame> {
        let Some(id) = ConversationId::parse(raw) else {
            return conversation_error(
                ErrorCode::NotYourOffer,
                "this chat was never offered to you",
                raw,
                None,
            );
        };
        match self.state.router.reject(self.user.id, id.clone()).await {
            Ok(()) => vec![ServerEvent::ChatRejected {
                conversation_id: id.0.clone(),
            }
            .to_frame()],
            Err(e) => conversation_error(e.code(), e.to_string(), raw, None),
        }
    }

    /// Stores a message or an offer of choices and acknowledges it.
    async fn contribute(
        &mut self,
        raw: &str,
        client_msg_id: String,
        contribution: Contribution,
    ) -> Vec<Frame> {
        let Some(id) = ConversationId::parse(raw) else {
            return conversation_error(
                ErrorCode::NotFound,
                "conversation not found",
                raw,
                Some(&client_msg_id),
            );
        };
        let Ok(msg_id) = ClientMsgId::parse(client_msg_id.clone()) else {
            return conversation_error(
                ErrorCode::InvalidClientMsgId,
                "client_msg_id must be 1–64 printable ASCII characters",
                raw,
                None,
            );
        };
        let name = self.user.display_name.clone();
        match self
            .state
            .conversations
            .send(&id, self.party(), &name, msg_id, contribution)
            .await
        {
            Ok(ack) => vec![ServerEvent::Ack {
                conversation_id: id.0.clone(),
                client_msg_id,
                seq: ack.seq_for(self.party()),
                duplicate: ack.duplicate,
            }
            .to_frame()],
            Err(e) => conversation_error(e.code(), e.to_string(), raw, Some(&client_msg_id)),
        }
    }

    async fn end(&mut self, raw: &str) -> Vec<Frame> {
        let Some(id) = ConversationId::parse(raw) else {
            return conversation_error(ErrorCode::NotFound, "conversation not found", raw, None);
        };
        let name = self.user.display_name.clone();
        match self.state.conversations.end(&id, self.party(), &name).await {
            Ok((_, agents)) => {
                self.state.router.chat_finished(id.clone(), agents).await;
                spawn_automatic_transcript(self.state.store.clone(), self.state.mailer.clone(), id);
                Vec::new()
            }
            Err(e) => conversation_error(e.code(), e.to_string(), raw, None),
        }
    }
}

/// Delays between the tries of a step that follows a stored accept.
const ACCEPT_RETRY_DELAYS_MS: [u64; 3] = [100, 400, 1_500];

/// Runs `step` again while it fails with the retryable `unavailable` (a
/// store that is saturated or restarting), up to about two seconds.
async fn retry_unavailable<T, F, Fut>(mut step: F) -> Result<T, crate::conversation::ChatError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::conversation::ChatError>>,
{
    let mut delays = ACCEPT_RETRY_DELAYS_MS.iter();
    loop {
        match step().await {
            Err(e) if e.code() == ErrorCode::Unavailable => match delays.next() {
                Some(ms) => tokio::time::sleep(std::time::Duration::from_millis(*ms)).await,
                None => return Err(e),
            },
            other => return other,
        }
    }
}
