//! The customer widget's WebSocket. The first frame must be `resume` with
//! the conversation id and its bearer token; a token of another
//! conversation is answered exactly like an unknown one (not found).

use super::agent_ws::RequestOrigin;
use super::attachments::message_input;
use super::extract::PeerIp;
use super::socket::{self, SocketSession};
use super::AppState;
use crate::auth::token_hash;
use crate::conversation::Contribution;
use crate::domain::conversation::{Audience, Party};
use crate::domain::ids::ConversationId;
use crate::domain::message::ClientMsgId;
use crate::outbox::{self, Frame, Outbox};
use crate::protocol::{decode, CustomerCommand, ErrorCode, ServerEvent};
use crate::transcript_mail::spawn_automatic_transcript;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

pub async fn upgrade(
    State(state): State<AppState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Only the two headers the origin check needs outlive the handler: the
    // map's values would pin hyper's read buffer.
    let origin = RequestOrigin::of(&headers);
    drop(headers);
    // The connection's task is `drive`'s future itself (no async block
    // around it holding a second copy of its inputs): thousands of idle
    // customers each keep one.
    socket::limits(ws).on_upgrade(move |ws| {
        let sockets = state.sockets.clone();
        let (outbox, inbox) = outbox::channel();
        let shutdown = state.shutdown.clone();
        let state_limits = state.limits.clone();
        let session = CustomerSession {
            state,
            outbox,
            chat: None,
            origin,
        };
        let guard = socket::FrameGuard::new(state_limits, ip);
        sockets.track_future(socket::drive(
            ws,
            session,
            inbox,
            shutdown,
            Vec::new(),
            guard,
        ))
    })
}

struct ResumedChat {
    id: ConversationId,
    name: String,
}

struct CustomerSession {
    state: AppState,
    outbox: Outbox,
    chat: Option<ResumedChat>,
    /// The upgrade request's `Origin` (and `Host`), checked against the
    /// conversation's site on `resume`.
    origin: RequestOrigin,
}

fn error(code: ErrorCode, message: impl Into<String>, client_msg_id: Option<String>) -> Vec<Frame> {
    vec![ServerEvent::Error {
        code,
        message: message.into(),
        conversation_id: None,
        client_msg_id,
        retryable: code.is_retryable(),
    }
    .to_frame()]
}

impl SocketSession for CustomerSession {
    async fn handle(&mut self, text: &str) -> Vec<Frame> {
        let command = match decode::<CustomerCommand>(text) {
            Ok(command) => command,
            Err(e) => return error(e.code, e.message, None),
        };
        if let CustomerCommand::Resume {
            conversation_id,
            token,
            last_seq,
        } = command
        {
            return self.resume(&conversation_id, &token, last_seq).await;
        }
        if let CustomerCommand::Ping {} = command {
            return vec![ServerEvent::Pong.to_frame()];
        }
        let Some(chat) = &self.chat else {
            return error(ErrorCode::NotResumed, "send `resume` first", None);
        };
        let conversations = &self.state.conversations;
        match command {
            CustomerCommand::Resume { .. } => Vec::new(),
            CustomerCommand::Ping {} => vec![ServerEvent::Pong.to_frame()],
            CustomerCommand::Typing { typing } => {
                conversations.typing(&chat.id, Party::Customer, &chat.name, typing, false);
                Vec::new()
            }
            CustomerCommand::Send {
                client_msg_id,
                text,
                attachments,
            } => match message_input(text, &attachments) {
                Ok((text, attachments)) => {
                    let contribution = Contribution::Message {
                        text,
                        audience: Audience::Everyone,
                        attachments,
                    };
                    self.contribute(client_msg_id, contribution).await
                }
                Err((code, message)) => error(code, message, Some(client_msg_id)),
            },
            CustomerCommand::Choose {
                client_msg_id,
                offer_id,
                option_id,
            } => {
                let answer = Contribution::Answer {
                    offer_id,
                    option_id: Some(option_id),
                };
                self.contribute(client_msg_id, answer).await
            }
            CustomerCommand::DismissChoices {
                client_msg_id,
                offer_id,
            } => {
                let answer = Contribution::Answer {
                    offer_id,
                    option_id: None,
                };
                self.contribute(client_msg_id, answer).await
            }
            CustomerCommand::End {} => match conversations
                .end(&chat.id, Party::Customer, &chat.name)
                .await
            {
                Ok((_, agents)) => {
                    self.state
                        .router
                        .chat_finished(chat.id.clone(), agents)
                        .await;
                    spawn_automatic_transcript(
                        self.state.store.clone(),
                        self.state.mailer.clone(),
                        chat.id.clone(),
                    );
                    Vec::new()
                }
                Err(e) => error(e.code(), e.to_string(), None),
            },
        }
    }

    async fn finish(self) {
        if let Some(chat) = self.chat {
            let connection = self.outbox.connection();
            self.state.conversations.detach(&chat.id, connection);
            // Also for a chat that was active at resume: it may have gone
            // back to the queue since (its agent was lost), and the router
            // then holds this connection. It ignores chats it does not route.
            self.state
                .router
                .customer_detached(chat.id, connection)
                .await;
        }
    }
}

impl CustomerSession {
    /// Stores a message or an answer and acknowledges it with the
    /// customer's own numbering.
    async fn contribute(
        &mut self,
        client_msg_id: String,
        contribution: Contribution,
    ) -> Vec<Frame> {
        let Some(chat) = &self.chat else {
            return error(ErrorCode::NotResumed, "send `resume` first", None);
        };
        let Ok(msg_id) = ClientMsgId::parse(client_msg_id.clone()) else {
            return error(
                ErrorCode::InvalidClientMsgId,
                "client_msg_id must be 1–64 printable ASCII characters",
                None,
            );
        };
        match self
            .state
            .conversations
            .send(&chat.id, Party::Customer, &chat.name, msg_id, contribution)
            .await
        {
            Ok(ack) => vec![ServerEvent::Ack {
                conversation_id: chat.id.0.clone(),
                client_msg_id,
                seq: ack.seq_for(Party::Customer),
                duplicate: ack.duplicate,
            }
            .to_frame()],
            Err(e) => error(e.code(), e.to_string(), Some(client_msg_id)),
        }
    }

    async fn resume(&mut self, raw_id: &str, token: &str, last_seq: i64) -> Vec<Frame> {
        if self.chat.is_some() {
            return error(
                ErrorCode::InvalidRequest,
                "this connection is already resumed",
                None,
            );
        }
        let not_found = || error(ErrorCode::NotFound, "conversation not found", None);
        let Some(id) = ConversationId::parse(raw_id) else {
            return not_found();
        };
        if token.len() > 128 {
            return not_found();
        }
        let record = match self.state.store.customer_chat(&token_hash(token)).await {
            Ok(Some(chat)) if chat.record.id == id => {
                // A site's widget may be opened only from that site's pages
                // (or our own frame); a foreign page holding a stolen token
                // gets nothing.
                if let Some(origins) = &chat.site_origins {
                    if !self.origin.allowed(origins) {
                        return error(
                            ErrorCode::OriginNotAllowed,
                            "this page may not open the chat",
                            None,
                        );
                    }
                }
                chat.record
            }
            Ok(_) => return not_found(),
            Err(_) => return error(ErrorCode::Unavailable, "store unavailable; retry", None),
        };
        let attached = match self
            .state
            .conversations
            .attach(&id, Party::Customer, self.outbox.clone(), last_seq)
            .await
        {
            Ok(a) => a,
            Err(e) => return error(e.code(), e.to_string(), None),
        };
        let queued = attached.view.state.is_queued();
        if queued {
            self.state
                .router
                .customer_attached(id.clone(), self.outbox.clone())
                .await;
        }
        self.chat = Some(ResumedChat {
            id,
            name: record.customer_name.unwrap_or_else(|| "Customer".into()),
        });
        let mut frames = vec![ServerEvent::Resumed {
            conversation: attached.view,
        }
        .to_frame()];
        frames.extend(attached.backlog);
        frames
    }
}
