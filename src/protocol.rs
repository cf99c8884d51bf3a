//! The wire protocol: every frame a client may send and every event the
//! server sends, as typed enums tagged by `type`. Documented in
//! `docs/protocol.md`; keep the two in step.

use crate::domain::account::{AgentStatus, Profile, User};
use crate::domain::conversation::{Audience, ConversationState};
use crate::domain::ids::{ProfileId, QueueId, UserId};
use crate::outbox::Frame;
use crate::store::{Author, EventKind, EventRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Largest accepted WebSocket frame (text or binary), in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Commands of the agent console.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentCommand {
    /// Start taking work with one of the agent's profiles. `resume` maps
    /// conversation ids to the last `seq` the console has; missing ones
    /// are replayed from the start.
    SignIn {
        profile_id: ProfileId,
        #[serde(default)]
        resume: HashMap<String, i64>,
    },
    SetStatus {
        status: StatusChoice,
        #[serde(default)]
        reason: Option<String>,
    },
    Accept {
        conversation_id: String,
    },
    Reject {
        conversation_id: String,
    },
    Send {
        conversation_id: String,
        client_msg_id: String,
        text: String,
    },
    Typing {
        conversation_id: String,
        typing: bool,
    },
    End {
        conversation_id: String,
    },
    Ping,
}

/// The statuses an agent can choose.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatusChoice {
    Ready,
    NotReady,
}

/// Commands of the customer widget. `resume` must come first.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CustomerCommand {
    Resume {
        conversation_id: String,
        token: String,
        #[serde(default)]
        last_seq: i64,
    },
    Send {
        client_msg_id: String,
        text: String,
    },
    Typing {
        typing: bool,
    },
    End,
    Ping,
}

/// Every `type` a client may send; used to tell an unknown type from a
/// known one with bad fields.
pub const KNOWN_COMMAND_TYPES: &[&str] = &[
    "sign_in",
    "set_status",
    "accept",
    "reject",
    "send",
    "typing",
    "end",
    "ping",
    "resume",
];

/// Error codes sent in `error` events. Stable: clients switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedJson,
    UnknownType,
    InvalidRequest,
    FrameTooLarge,
    TextEmpty,
    TextTooLong,
    InvalidText,
    InvalidClientMsgId,
    NotFound,
    NotSignedIn,
    NotResumed,
    InvalidProfile,
    InvalidStatus,
    NotYourOffer,
    AlreadyAccepted,
    AlreadyRejected,
    OfferExpired,
    OfferWithdrawn,
    ConversationEnded,
    ConversationFull,
    NotParticipant,
    Unavailable,
    Internal,
}

/// How an offer disappeared from an agent's console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferEndReason {
    TimedOut,
    /// The customer left before anyone accepted.
    CustomerLeft,
    /// The server took it back (e.g. the store changed under it).
    Withdrawn,
}

/// A user as shown to clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: crate::domain::account::Role,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
        }
    }
}

/// The customer data shown to agents.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct CustomerView {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// A conversation as shown in a console tab or the widget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationView {
    pub conversation_id: String,
    pub queue_id: QueueId,
    pub queue_name: String,
    pub state: ConversationState,
    pub customer: CustomerView,
    pub customer_connected: bool,
    /// The highest `seq` stored for this conversation.
    pub last_seq: i64,
}

/// Who wrote an event, as clients see it (agents by display name only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum AuthorView {
    Customer { name: String },
    Agent { name: String },
    System,
}

/// Kinds of chat-log events.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKindView {
    Message,
    Joined,
    Left,
    Ended,
}

/// Everything the server sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// First frame to an agent: who they are and which profiles they may use.
    Hello {
        user: UserView,
        profiles: Vec<Profile>,
    },
    /// Answer to `sign_in`.
    SignedIn {
        profile: Profile,
        status: AgentStatus,
        label: String,
        open_chats: u32,
        conversations: Vec<ConversationView>,
    },
    /// The agent's status or open-chat count changed.
    Status {
        status: AgentStatus,
        label: String,
        open_chats: u32,
    },
    /// A chat is offered to this agent.
    ChatOffered {
        conversation_id: String,
        queue_id: QueueId,
        queue_name: String,
        customer: CustomerView,
        expires_in_ms: u64,
    },
    /// An offer to this agent is gone without the agent answering it.
    OfferWithdrawn {
        conversation_id: String,
        reason: OfferEndReason,
    },
    /// Answer to `accept`: the agent is now in the conversation.
    ChatAccepted {
        conversation: ConversationView,
    },
    /// Answer to `reject`.
    ChatRejected {
        conversation_id: String,
    },
    /// Answer to the customer's `resume`.
    Resumed {
        conversation: ConversationView,
    },
    /// A stored chat-log event. `seq` increases by one per conversation.
    Event {
        conversation_id: String,
        seq: i64,
        at: i64,
        kind: EventKindView,
        author: AuthorView,
        text: String,
        /// Present on messages: the sender's id, so a sender recognises its own.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        audience: Audience,
    },
    /// The sender's message is stored under `seq`. `duplicate` marks the
    /// answer to a resend of an already stored message.
    Ack {
        conversation_id: String,
        client_msg_id: String,
        seq: i64,
        duplicate: bool,
    },
    /// Someone started or stopped typing (not stored).
    Typing {
        conversation_id: String,
        author: AuthorView,
        typing: bool,
    },
    /// The customer's connection came or went (agents only, not stored).
    CustomerPresence {
        conversation_id: String,
        connected: bool,
    },
    /// A waiting customer's place in the queue.
    QueuePosition {
        conversation_id: String,
        position: u32,
        estimated_wait_secs: Option<u32>,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
    },
    Pong,
    /// The server is stopping; reconnect and resume.
    ShuttingDown,
}

impl ServerEvent {
    /// Serialises once for any number of recipients.
    pub fn to_frame(&self) -> Frame {
        // Serialising these types cannot fail: no maps with non-string keys,
        // no custom serialisers that error.
        serde_json::to_string(self)
            .unwrap_or_else(|_| {
                r#"{"type":"error","code":"internal","message":"internal error"}"#.into()
            })
            .into()
    }

    /// An `error` event.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerEvent::Error {
            code,
            message: message.into(),
            conversation_id: None,
            client_msg_id: None,
        }
    }

    /// The chat-log event as a client sees it.
    pub fn from_record(e: &EventRecord) -> Self {
        let author = match &e.author {
            Author::Customer { name } => AuthorView::Customer { name: name.clone() },
            Author::Agent { name, .. } => AuthorView::Agent { name: name.clone() },
            Author::System => AuthorView::System,
        };
        let kind = match e.kind {
            EventKind::Message => EventKindView::Message,
            EventKind::Joined => EventKindView::Joined,
            EventKind::Left => EventKindView::Left,
            EventKind::Ended => EventKindView::Ended,
        };
        ServerEvent::Event {
            conversation_id: e.conversation.0.clone(),
            seq: e.seq,
            at: e.created_at,
            kind,
            author,
            text: e.body.clone(),
            client_msg_id: e.client_msg_id.clone(),
            audience: e.audience,
        }
    }
}

/// Why a client frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
}

/// Decodes a client frame, telling malformed JSON, unknown types and bad
/// fields apart. The extra parse only happens on the error path.
pub fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    serde_json::from_str::<T>(text).map_err(|err| {
        #[derive(Deserialize)]
        struct TypeOnly {
            #[serde(rename = "type")]
            kind: String,
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Err(_) => DecodeError {
                code: ErrorCode::MalformedJson,
                message: "frame is not valid JSON".into(),
            },
            Ok(value) => match serde_json::from_value::<TypeOnly>(value) {
                Ok(t) if !KNOWN_COMMAND_TYPES.contains(&t.kind.as_str()) => DecodeError {
                    code: ErrorCode::UnknownType,
                    message: "unknown message type".into(),
                },
                Ok(_) => DecodeError {
                    code: ErrorCode::InvalidRequest,
                    message: format!("invalid fields: {err}"),
                },
                Err(_) => DecodeError {
                    code: ErrorCode::InvalidRequest,
                    message: "a frame must be an object with a string `type`".into(),
                },
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_tells_errors_apart() {
        let bad = decode::<AgentCommand>("{nope").unwrap_err();
        assert_eq!(bad.code, ErrorCode::MalformedJson);
        let unknown = decode::<AgentCommand>(r#"{"type":"launch_missiles"}"#).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UnknownType);
        let fields = decode::<AgentCommand>(r#"{"type":"accept"}"#).unwrap_err();
        assert_eq!(fields.code, ErrorCode::InvalidRequest);
        let not_object = decode::<AgentCommand>("[1,2]").unwrap_err();
        assert_eq!(not_object.code, ErrorCode::InvalidRequest);
        assert!(matches!(
            decode::<AgentCommand>(r#"{"type":"accept","conversation_id":"x"}"#),
            Ok(AgentCommand::Accept { .. })
        ));
    }

    #[test]
    fn events_are_tagged_by_type() {
        let frame = ServerEvent::error(ErrorCode::TextTooLong, "too long").to_frame();
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "text_too_long");
        assert!(v.get("conversation_id").is_none());
    }
}
