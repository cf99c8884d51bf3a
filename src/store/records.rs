//! Plain records passed across the store boundary.

use crate::domain::account::{AgentStatus, Role};
use crate::domain::conversation::{Audience, ConversationState, Party};
use crate::domain::ids::{AttachmentId, ConversationId, ProfileId, QueueId, UserId};
use std::collections::{HashMap, HashSet};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub capacity: u32,
    pub now: i64,
}

/// What a customer's widget resumes with: the conversation its token opens
/// and, for a chat started from a site, the origins that site allows.
#[derive(Debug, Clone)]
pub struct CustomerChat {
    pub record: ConversationRecord,
    pub site_origins: Option<Vec<String>>,
}

/// A chat a customer starts, for [`super::Store::create_customer_chats`]:
/// the conversation, the site it came from, and what is known of the
/// customer (in display order).
#[derive(Debug, Clone)]
pub struct NewCustomerChat {
    pub conversation: NewConversation,
    pub site: Option<crate::domain::ids::SiteId>,
    pub variables: Vec<crate::domain::customer::CustomerVariable>,
}

/// An agent's last chosen profile and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub user: UserId,
    pub profile: Option<ProfileId>,
    pub status: AgentStatus,
    pub now: i64,
}

/// A conversation to open.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: ConversationId,
    pub queue: QueueId,
    pub customer_token_hash: String,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub now: i64,
}

/// An agent's answer to an offer, for [`super::Store::answer_offers`]: the
/// chat, the agent it is offered to, the version it was offered at, and
/// whether the agent accepts (else rejects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferAnswer {
    pub chat: ConversationId,
    pub agent: UserId,
    pub version: i64,
    pub accept: bool,
}

/// A conversation row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: ConversationId,
    pub queue: QueueId,
    pub state: ConversationState,
    pub version: i64,
    pub offered_to: Option<UserId>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

/// A waiting or offered conversation, as routing needs it after a restart.
#[derive(Debug, Clone)]
pub struct QueuedConversation {
    pub record: ConversationRecord,
    pub rejected_by: Vec<UserId>,
}

/// The kinds of routing events; their names are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingEventKind {
    Queued,
    Offered,
    Accepted,
    Rejected,
    TimedOut,
    Withdrawn,
    Abandoned,
    Ended,
    Invited,
    InviteOffered,
    InviteAccepted,
    InviteRejected,
    InviteTimedOut,
    InviteCancelled,
    /// The last agent's console stayed away past the grace period: the
    /// active chat went back to the queue (agent: the one lost).
    Requeued,
}

impl RoutingEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Offered => "offered",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::TimedOut => "timed_out",
            Self::Withdrawn => "withdrawn",
            Self::Abandoned => "abandoned",
            Self::Ended => "ended",
            Self::Invited => "invited",
            Self::InviteOffered => "invite_offered",
            Self::InviteAccepted => "invite_accepted",
            Self::InviteRejected => "invite_rejected",
            Self::InviteTimedOut => "invite_timed_out",
            Self::InviteCancelled => "invite_cancelled",
            Self::Requeued => "requeued",
        }
    }
}

/// A stored routing event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingEventRecord {
    pub kind: String,
    pub agent: Option<UserId>,
    pub at: i64,
}

/// The kinds of chat-log events; their names are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Message,
    Joined,
    Left,
    Ended,
    /// An agent's offer of choices (data: the offer).
    Choices,
    /// The customer's answer (data: offer id and option).
    Choice,
    /// The customer dismissed an offer (data: offer id).
    ChoicesDismissed,
    /// An agent invited another agent or a queue (agents only).
    Invited,
    /// An invitation ended without a join (agents only; data: reason).
    InviteEnded,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Joined => "joined",
            Self::Left => "left",
            Self::Ended => "ended",
            Self::Choices => "choices",
            Self::Choice => "choice",
            Self::ChoicesDismissed => "choices_dismissed",
            Self::Invited => "invited",
            Self::InviteEnded => "invite_ended",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "message" => Self::Message,
            "joined" => Self::Joined,
            "left" => Self::Left,
            "ended" => Self::Ended,
            "choices" => Self::Choices,
            "choice" => Self::Choice,
            "choices_dismissed" => Self::ChoicesDismissed,
            "invited" => Self::Invited,
            "invite_ended" => Self::InviteEnded,
            _ => return None,
        })
    }
}

/// Who wrote an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Customer { name: String },
    Agent { id: UserId, name: String },
    System,
}

impl Author {
    /// The sender key idempotency is scoped by: `customer`, `agent:<id>` or `system`.
    pub fn sender_key(&self) -> String {
        match self {
            Author::Customer { .. } => "customer".to_owned(),
            Author::Agent { id, .. } => format!("agent:{id}"),
            Author::System => "system".to_owned(),
        }
    }
}

/// A chat-log event to store (its `seq` already assigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub conversation: ConversationId,
    pub seq: i64,
    /// Numbering of the events everyone sees (None for agents-only ones):
    /// what customers count and resume by, so private events leave no gap.
    pub public_seq: Option<i64>,
    pub kind: EventKind,
    pub audience: Audience,
    pub author: Author,
    pub body: String,
    /// JSON payload of structured kinds (choices, answers, invitations).
    pub data: Option<String>,
    pub client_msg_id: Option<String>,
    pub created_at: i64,
    /// Files attached to a message, in order. Storing the event binds them
    /// to it in the same transaction; reading it fills them in.
    pub attachments: Vec<AttachmentMeta>,
}

/// A stored chat-log event.
pub type EventRecord = NewEvent;

/// Where a conversation's log stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPosition {
    pub last_seq: i64,
    pub last_public_seq: i64,
    /// (sender key, client message id) → (seq, public seq).
    pub client_msg_ids: HashMap<(String, String), (i64, Option<i64>)>,
    /// Agents whose joining is already in the log.
    pub announced: HashSet<UserId>,
}

/// An invitation to create.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub conversation: ConversationId,
    pub inviter: UserId,
    pub target_agent: Option<UserId>,
    pub queue: Option<QueueId>,
    pub transfer: bool,
    pub now: i64,
}

/// An invitation row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    pub id: i64,
    pub conversation: ConversationId,
    pub inviter: UserId,
    pub target_agent: Option<UserId>,
    pub queue: Option<QueueId>,
    pub transfer: bool,
    pub state: String,
    pub offered_to: Option<UserId>,
    pub version: i64,
}

/// A site to create. The handler generates the secret.
#[derive(Debug, Clone)]
pub struct NewSite {
    pub name: String,
    pub key: String,
    pub allowed_origins: Vec<String>,
    pub default_queue: QueueId,
    pub identity_secret: String,
    pub require_verified: bool,
    pub allow_customer_attachments: bool,
    pub transcript_email: bool,
    pub now: i64,
}

/// Changes to a site's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SiteUpdate {
    pub name: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub default_queue: Option<QueueId>,
    pub require_verified: Option<bool>,
    pub allow_customer_attachments: Option<bool>,
    pub transcript_email: Option<bool>,
}

/// Which conversations a supervisor asks for. Every set field must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationFilter {
    pub queue: Option<QueueId>,
    /// An agent who took part at any time.
    pub agent: Option<UserId>,
    /// A substring of the customer's name or e-mail, case-insensitive.
    pub customer: Option<String>,
    /// A substring of any message's text (private ones included),
    /// case-insensitive.
    pub text: Option<String>,
    /// A substring of any message's text or of the customer's name or
    /// e-mail, case-insensitive (the free search box).
    pub any: Option<String>,
    /// `created_at >= from` (ms).
    pub from: Option<i64>,
    /// `created_at < to` (ms).
    pub to: Option<i64>,
    /// Any of these states; empty means every state.
    pub states: Vec<ConversationState>,
    /// Keyset cursor: only conversations after this `(created_at, id)` in
    /// newest-first order.
    pub before: Option<(i64, ConversationId)>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// A conversation as the supervisor's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub record: ConversationRecord,
    pub queue_name: String,
    /// Every agent who took part, in joining order: id and display name.
    pub agents: Vec<(UserId, String)>,
}

/// An uploaded, checked file to record; not yet bound to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub id: AttachmentId,
    pub conversation: ConversationId,
    /// Only this party may attach it to a message.
    pub uploader: Party,
    /// Display name, already cleaned.
    pub name: String,
    /// Decided from the content, never from the client.
    pub content_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub created_at: i64,
}

/// An attachment row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    pub id: AttachmentId,
    pub conversation: ConversationId,
    pub uploader: Party,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: i64,
    /// The message it is attached to; None until a message references it.
    pub event_seq: Option<i64>,
    /// Who may see it: the audience of that message.
    pub audience: Option<Audience>,
}

impl AttachmentRecord {
    /// What a message shows about this file.
    pub fn meta(&self) -> AttachmentMeta {
        AttachmentMeta {
            id: self.id.clone(),
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
        }
    }
}

/// What a message carries about each attached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentMeta {
    pub id: AttachmentId,
    pub name: String,
    pub content_type: String,
    pub size: i64,
}
