//! The wire protocol: every frame a client may send and every event the
//! server sends, as typed enums tagged by `type`. Documented in
//! `docs/protocol.md`; keep the two in step.

use crate::domain::account::{AgentStatus, Profile, User};
use crate::domain::conversation::{Audience, ConversationState, Party};
use crate::domain::customer::CustomerVariable;
use crate::domain::ids::{ProfileId, QueueId, UserId};
use crate::outbox::Frame;
use crate::store::{AttachmentMeta, Author, ConversationRecord, EventKind, EventRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Largest accepted WebSocket frame (text or binary), in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Commands of the agent console. Unknown fields are refused
/// (`invalid_request`) rather than ignored, so a misspelt flag such as
/// `privat: true` never silently sends a public message. Field-less
/// commands are empty struct variants: serde ignores extra fields of unit
/// variants even with `deny_unknown_fields`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
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
    /// A message; with `private` it goes to the other agents only, and so
    /// do its attachments. With attachments the text may be empty.
    Send {
        conversation_id: String,
        client_msg_id: String,
        #[serde(default)]
        text: String,
        #[serde(default)]
        private: bool,
        /// Ids of files this agent uploaded to this conversation.
        #[serde(default)]
        attachments: Vec<String>,
    },
    Typing {
        conversation_id: String,
        typing: bool,
        /// Typing in private mode is shown to agents only.
        #[serde(default)]
        private: bool,
    },
    /// An offer of choices to the customer.
    OfferChoices {
        conversation_id: String,
        client_msg_id: String,
        prompt: String,
        options: Vec<String>,
    },
    /// Invite a named agent (`agent_id`) or any available agent of a queue
    /// (`queue_id`); with `transfer` the inviter leaves once they join.
    Invite {
        conversation_id: String,
        #[serde(default)]
        agent_id: Option<UserId>,
        #[serde(default)]
        queue_id: Option<QueueId>,
        #[serde(default)]
        transfer: bool,
    },
    CancelInvite {
        conversation_id: String,
    },
    /// Leave a conversation other agents stay in.
    Leave {
        conversation_id: String,
    },
    End {
        conversation_id: String,
    },
    Ping {},
}

/// The statuses an agent can choose.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatusChoice {
    Ready,
    NotReady,
}

/// Commands of the customer widget. `resume` must come first. Unknown
/// fields are refused, as for the console.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomerCommand {
    Resume {
        conversation_id: String,
        token: String,
        #[serde(default)]
        last_seq: i64,
    },
    /// A message. With attachments the text may be empty.
    Send {
        client_msg_id: String,
        #[serde(default)]
        text: String,
        /// Ids of files this customer uploaded to this conversation.
        #[serde(default)]
        attachments: Vec<String>,
    },
    Typing {
        typing: bool,
    },
    /// Answer an offer of choices with one option.
    Choose {
        client_msg_id: String,
        offer_id: String,
        option_id: u32,
    },
    /// Dismiss an offer of choices without answering.
    DismissChoices {
        client_msg_id: String,
        offer_id: String,
    },
    End {},
    Ping {},
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
    "offer_choices",
    "invite",
    "cancel_invite",
    "leave",
    "end",
    "ping",
    "resume",
    "choose",
    "dismiss_choices",
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
    /// Customers cannot send private messages or offers; agents cannot answer offers.
    NotAllowed,
    InvalidChoices,
    UnknownOffer,
    InvalidOption,
    AlreadyAnswered,
    /// An invitation is already pending for this chat.
    InvitePending,
    NoInvitePending,
    InvalidInvite,
    AlreadyInChat,
    /// The invited agent is not signed in, is at capacity or holds another offer.
    AgentUnavailable,
    /// The last agent cannot leave while the customer is connected: end or transfer.
    LastAgent,
    /// Too many frames on this connection or from this address: slow down
    /// (nothing was done); retryable.
    RateLimited,
    /// The page's `Origin` is not one of the conversation's site's origins.
    OriginNotAllowed,
    /// A `send` lists an attachment that is malformed, unknown, another
    /// sender's or conversation's, or already attached to a message.
    InvalidAttachment,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Whether nothing was done and the same command (with the same
    /// `client_msg_id`) should be sent again later: the store or an actor
    /// was unavailable, or the connection was over its rate.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::Unavailable | ErrorCode::RateLimited)
    }
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
    /// The inviter cancelled the invitation.
    Cancelled,
}

/// On an offer that is an invitation into a running chat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InviteView {
    pub inviter: String,
    /// The inviter leaves once you join.
    pub transfer: bool,
}

/// A user as shown to clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: crate::domain::account::Role,
    /// Maximum number of concurrent chats.
    pub capacity: u32,
    /// A disabled user cannot log in.
    pub disabled: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            capacity: u.capacity,
            disabled: u.disabled,
        }
    }
}

/// The customer data shown to agents. `variables` is the full list, each
/// with its `verified` flag (the lock icon); `name` and `email` repeat the
/// effective values for convenience, and `verified` says whether the site
/// vouched for the customer with a valid identity token.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct CustomerView {
    pub name: Option<String>,
    pub email: Option<String>,
    pub verified: bool,
    pub variables: Vec<CustomerVariable>,
}

impl CustomerView {
    /// The view of a conversation's customer from its record and variables.
    pub fn new(record: &ConversationRecord, variables: Vec<CustomerVariable>) -> Self {
        Self {
            name: record.customer_name.clone(),
            email: record.customer_email.clone(),
            verified: variables.iter().any(|v| v.verified),
            variables,
        }
    }
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

/// A file attached to a message, as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachmentView {
    pub id: String,
    /// Display name only; never a path.
    pub name: String,
    /// Decided by the server from the content.
    pub content_type: String,
    /// In bytes.
    pub size: i64,
}

impl From<&AttachmentMeta> for AttachmentView {
    fn from(a: &AttachmentMeta) -> Self {
        Self {
            id: a.id.0.clone(),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
        }
    }
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
    Choices,
    Choice,
    ChoicesDismissed,
    Invited,
    InviteEnded,
}

/// Structured payloads of events (`data`), by kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum EventData {
    /// `choices`: the offer.
    Choices(crate::domain::choices::ChoiceOffer),
    /// `choice`: the answer, linked to its offer.
    Choice {
        offer_id: String,
        option_id: u32,
        label: String,
    },
    /// `invited`: who was invited and whether it is a transfer.
    Invited { target: String, transfer: bool },
    /// `invite_ended`: why it ended without a join.
    InviteEnded { target: String, reason: String },
    /// `choices_dismissed`.
    Dismissed { offer_id: String },
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
        /// Present when the offer is an invitation into a running chat.
        #[serde(skip_serializing_if = "Option::is_none")]
        invite: Option<InviteView>,
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
        /// Agents: the conversation's seq. Customers: the numbering of the
        /// events they may see (so private events leave no gap).
        seq: i64,
        at: i64,
        kind: EventKindView,
        author: AuthorView,
        text: String,
        /// Present on messages: the sender's id, so a sender recognises its own.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        audience: Audience,
        /// The structured part of choices, answers and invitations.
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<EventData>,
        /// Files attached to a message, in order; download each with
        /// `GET /api/attachments/{id}`. Absent when there are none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentView>,
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
    /// Whether any agent of an active chat is connected (customers only,
    /// not stored): `false` when the last agent's console drops ("your
    /// agent is reconnecting"), `true` when one comes back. If none comes
    /// back within the grace period the chat returns to the queue
    /// (docs/protocol.md 6.5).
    AgentPresence {
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
        /// Present (true) when the same command may simply be sent again
        /// later: see [`ErrorCode::is_retryable`].
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retryable: bool,
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
            retryable: code.is_retryable(),
        }
    }

    /// The chat-log event as `party` sees it. Callers must have checked
    /// that the event's audience admits `party` (see `conversation::audience`).
    pub fn from_record(e: &EventRecord, party: Party) -> Self {
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
            EventKind::Choices => EventKindView::Choices,
            EventKind::Choice => EventKindView::Choice,
            EventKind::ChoicesDismissed => EventKindView::ChoicesDismissed,
            EventKind::Invited => EventKindView::Invited,
            EventKind::InviteEnded => EventKindView::InviteEnded,
        };
        let seq = match party {
            Party::Customer => e.public_seq.unwrap_or(e.seq),
            Party::Agent(_) => e.seq,
        };
        ServerEvent::Event {
            conversation_id: e.conversation.0.clone(),
            seq,
            at: e.created_at,
            kind,
            author,
            text: e.body.clone(),
            client_msg_id: e.client_msg_id.clone(),
            audience: e.audience,
            data: e.data.as_deref().and_then(|d| serde_json::from_str(d).ok()),
            attachments: e.attachments.iter().map(AttachmentView::from).collect(),
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
    fn unknown_fields_are_refused_on_every_command() {
        for frame in [
            r#"{"type":"ping","x":1}"#,
            r#"{"type":"end","conversation_id":"c","x":1}"#,
            r#"{"type":"send","conversation_id":"c","client_msg_id":"m","privat":true}"#,
        ] {
            let error = decode::<AgentCommand>(frame).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest, "{frame}");
        }
        for frame in [r#"{"type":"ping","x":1}"#, r#"{"type":"end","x":null}"#] {
            let error = decode::<CustomerCommand>(frame).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest, "{frame}");
        }
        assert!(matches!(
            decode::<AgentCommand>(r#"{"type":"ping"}"#),
            Ok(AgentCommand::Ping {})
        ));
        assert!(matches!(
            decode::<CustomerCommand>(r#"{"type":"end"}"#),
            Ok(CustomerCommand::End {})
        ));
    }

    #[test]
    fn events_are_tagged_by_type() {
        let frame = ServerEvent::error(ErrorCode::TextTooLong, "too long").to_frame();
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "text_too_long");
        assert!(v.get("conversation_id").is_none());
        assert!(v.get("retryable").is_none(), "only retryable errors say so");
    }

    #[test]
    fn unavailable_and_rate_limited_are_retryable() {
        for code in [ErrorCode::Unavailable, ErrorCode::RateLimited] {
            let frame = ServerEvent::error(code, "later").to_frame();
            let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(v["retryable"], true, "{code:?}");
        }
        assert!(!ErrorCode::ConversationEnded.is_retryable());
    }
}
