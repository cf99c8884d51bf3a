//! The only place that speaks SQL. One [`Store`] trait, two implementations
//! (Postgres for production, SQLite as the embedded default) generated from
//! one body of portable SQL in [`sql`], so both behave identically and run
//! the same test suite.
//!
//! Ownership of an offer or a chat is decided here with conditional updates
//! on `(state, version)`: a node's memory is only a cache of that decision.

pub mod admin;
mod postgres;
mod predefined;
mod records;
mod site_rows;
mod sql;
mod sqlite;

pub use admin::{AdminStore, DeleteOutcome, ProfileChanges, QueueChanges, UserChanges};
pub use postgres::PgStore;
pub use predefined::{NewPredefined, PredefinedRecord, ReorderOutcome, SharedFilter};
pub use records::*;
pub use sqlite::SqliteStore;

use crate::domain::account::{Media, Profile, Queue, User};
use crate::domain::customer::CustomerVariable;
use crate::domain::ids::{
    AttachmentId, ConversationId, PredefinedId, ProfileId, QueueId, SiteId, UserId,
};
use crate::domain::predefined::{Body, Heading, Scope};
use crate::domain::site::Site;
use async_trait::async_trait;
use std::sync::Arc;

/// Errors of the store layer. Callers map them to client-facing errors;
/// the details are only logged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (e.g. a username that exists).
    #[error("already exists")]
    Conflict,
    /// A referenced row does not exist.
    #[error("not found")]
    NotFound,
    /// The database could not be reached or the operation failed; retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::Unavailable(e.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A shared store handle.
pub type DynStore = Arc<dyn Store>;

/// Everything the server persists.
#[async_trait]
pub trait Store: AdminStore + Send + Sync + 'static {
    /// Answers when the database does (readiness).
    async fn ping(&self) -> StoreResult<()>;

    // --- accounts and sessions ---
    async fn create_user(&self, user: NewUser) -> StoreResult<UserId>;
    async fn count_users(&self) -> StoreResult<i64>;
    /// The user and their password hash.
    async fn user_credentials(&self, username: &str) -> StoreResult<Option<(User, String)>>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn create_session(
        &self,
        token_hash: &str,
        user: UserId,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// The user of a live session.
    async fn session_user(&self, token_hash: &str, now: i64) -> StoreResult<Option<User>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Sets a new password hash and ends every session of the user, in one
    /// transaction: a stolen session does not outlive a password change.
    async fn change_password(&self, user: UserId, password_hash: &str) -> StoreResult<()>;

    // --- queues and profiles ---
    async fn create_queue(
        &self,
        name: &str,
        offer_timeout_secs: u32,
        priority: i32,
    ) -> StoreResult<QueueId>;
    async fn list_queues(&self) -> StoreResult<Vec<Queue>>;
    async fn create_profile(
        &self,
        name: &str,
        media: &[Media],
        queues: &[QueueId],
    ) -> StoreResult<ProfileId>;
    async fn list_profiles(&self) -> StoreResult<Vec<Profile>>;
    async fn grant_profile(&self, user: UserId, profile: ProfileId) -> StoreResult<()>;
    /// Profiles a user may log in with.
    async fn profiles_of_user(&self, user: UserId) -> StoreResult<Vec<Profile>>;
    async fn save_presence(&self, presence: &Presence) -> StoreResult<()>;
    async fn load_presence(&self, user: UserId) -> StoreResult<Option<Presence>>;

    // --- conversations and routing ---
    /// Creates a waiting conversation without site or customer data and
    /// records `queued`: `create_customer_chats` with one chat.
    async fn create_conversation(
        &self,
        conversation: NewConversation,
    ) -> StoreResult<ConversationRecord> {
        let chat = NewCustomerChat {
            conversation,
            site: None,
            variables: Vec::new(),
        };
        let mut records = self
            .create_customer_chats(std::slice::from_ref(&chat))
            .await?;
        records
            .pop()
            .ok_or_else(|| StoreError::Unavailable("a created chat was not returned".into()))
    }
    async fn conversation(&self, id: &ConversationId) -> StoreResult<Option<ConversationRecord>>;
    async fn conversation_by_token(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<ConversationRecord>>;
    /// The conversation a customer's token opens, with its site's allowed
    /// origins: the widget's resume in one query.
    async fn customer_chat(&self, token_hash: &str) -> StoreResult<Option<CustomerChat>>;
    /// Waiting and offered conversations, with who rejected them, oldest first.
    async fn queued_conversations(&self) -> StoreResult<Vec<QueuedConversation>>;
    /// Active conversations an agent is in.
    async fn open_conversations_of(&self, agent: UserId) -> StoreResult<Vec<ConversationRecord>>;
    /// Agents currently in a conversation.
    async fn conversation_agents(&self, id: &ConversationId) -> StoreResult<Vec<UserId>>;
    /// waiting → offered to `agent`, if the row still has `version`.
    /// Returns the new version, or None if someone else changed it first.
    async fn try_offer(
        &self,
        id: &ConversationId,
        agent: UserId,
        version: i64,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// Several `try_offer`s (chat, agent, version) persisted together, with
    /// one result each in the same order. Each is conditional on its own
    /// row, as in `try_offer`; the SQL stores commit them in one
    /// transaction, so a routing burst pays one commit per batch.
    async fn try_offers(
        &self,
        offers: &[(ConversationId, UserId, i64)],
        now: i64,
    ) -> StoreResult<Vec<Option<i64>>> {
        let mut results = Vec::with_capacity(offers.len());
        for (id, agent, version) in offers {
            results.push(self.try_offer(id, *agent, *version, now).await?);
        }
        Ok(results)
    }
    /// offered to `agent` → waiting, recording why. A reject or timeout also
    /// bars the agent from this chat.
    async fn release_offer(
        &self,
        id: &ConversationId,
        agent: UserId,
        version: i64,
        kind: RoutingEventKind,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// offered to `agent` → active with `agent` as participant.
    async fn accept_offer(
        &self,
        id: &ConversationId,
        agent: UserId,
        version: i64,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// Several answers to offers persisted together, one result each in
    /// the same order: an accept as `accept_offer`, a reject as
    /// `release_offer` with [`RoutingEventKind::Rejected`], each conditional
    /// on its own row. The SQL stores commit them in one transaction (as
    /// `try_offers`), so a burst of answers pays one commit, not one each.
    async fn answer_offers(
        &self,
        answers: &[OfferAnswer],
        now: i64,
    ) -> StoreResult<Vec<Option<i64>>> {
        let mut results = Vec::with_capacity(answers.len());
        for a in answers {
            results.push(if a.accept {
                self.accept_offer(&a.chat, a.agent, a.version, now).await?
            } else {
                self.release_offer(&a.chat, a.agent, a.version, RoutingEventKind::Rejected, now)
                    .await?
            });
        }
        Ok(results)
    }
    /// Appends each chat's final event and closes the chat: an active chat
    /// becomes ended, a waiting or offered one abandoned. The whole batch is
    /// one transaction (chat ends are group-committed, `crate::writer`).
    /// Returns, per event in order, that state and the agents who were in
    /// the chat, or None if it was already closed (then nothing is written
    /// for it).
    async fn finish_conversations(
        &self,
        events: &[NewEvent],
    ) -> StoreResult<Vec<Option<(crate::domain::conversation::ConversationState, Vec<UserId>)>>>;
    /// One chat's end: `finish_conversations` with one event.
    async fn finish_conversation(
        &self,
        event: &NewEvent,
    ) -> StoreResult<Option<(crate::domain::conversation::ConversationState, Vec<UserId>)>> {
        let mut results = self
            .finish_conversations(std::slice::from_ref(event))
            .await?;
        results
            .pop()
            .ok_or_else(|| StoreError::Unavailable("no result for a chat's end".into()))
    }
    /// Records an invitation; `Conflict` if one is already pending for the chat.
    async fn create_invite(&self, invite: NewInvite) -> StoreResult<InviteRecord>;
    /// pending → offered to `agent`, if the row still has `version`.
    async fn try_offer_invite(
        &self,
        invite: i64,
        agent: UserId,
        version: i64,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// offered to `agent` → pending again (rejected / timed out / withdrawn).
    async fn release_invite(
        &self,
        invite: i64,
        agent: UserId,
        version: i64,
        kind: RoutingEventKind,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// offered to `agent` → accepted, with `agent` added to the conversation.
    async fn accept_invite(
        &self,
        invite: i64,
        agent: UserId,
        version: i64,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// pending/offered → a final state (`rejected`, `timed_out`, `cancelled`).
    async fn close_invite(
        &self,
        invite: i64,
        kind: RoutingEventKind,
        now: i64,
    ) -> StoreResult<bool>;
    /// Pending and offered invitations (recovery).
    async fn open_invites(&self) -> StoreResult<Vec<InviteRecord>>;
    /// An agent leaves an active conversation: marks them gone and appends
    /// the `left` event, in one transaction. False if they were not in it.
    async fn leave_conversation(&self, agent: UserId, event: &NewEvent) -> StoreResult<bool>;
    /// The last agent of an active conversation is lost (their console
    /// stayed away): active → waiting, the agent marked gone, the event
    /// appended and a `requeued` routing event recorded, in one
    /// transaction. Returns the row as it now is, or None if the chat was
    /// not active with that agent in it.
    async fn requeue_conversation(
        &self,
        agent: UserId,
        event: &NewEvent,
    ) -> StoreResult<Option<ConversationRecord>>;
    /// Agents who are in at least one active conversation, by id.
    async fn agents_in_active_chats(&self) -> StoreResult<Vec<UserId>>;
    /// Every routing event of a conversation, in order.
    async fn routing_events(&self, id: &ConversationId) -> StoreResult<Vec<RoutingEventRecord>>;

    // --- the chat log ---
    /// How many [`Store::append_events`] may usefully run at once (the
    /// group-commit writer's transactions in flight).
    fn concurrent_commits(&self) -> usize;
    /// Appends events of any conversations in one transaction (group commit).
    /// Rows whose `(conversation, client_msg_id)` exists are skipped.
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()>;
    /// Events after `seq`, in order, at most `limit`.
    async fn events_after(
        &self,
        id: &ConversationId,
        seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>>;
    /// Events everyone may see with `public_seq` after the given one, in
    /// order: the customer's read path.
    async fn events_after_public(
        &self,
        id: &ConversationId,
        public_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>>;
    /// The highest seq, every (sender, client message id) with its seq and
    /// the agents already announced, to resume numbering, deduplication and
    /// join announcements after a restart.
    async fn log_position(&self, id: &ConversationId) -> StoreResult<LogPosition>;
    /// The seq and public seq of the message `sender` stored with
    /// `client_msg_id` in this conversation, if any (resend detection).
    async fn find_client_msg(
        &self,
        id: &ConversationId,
        sender: &str,
        client_msg_id: &str,
    ) -> StoreResult<Option<(i64, Option<i64>)>>;

    // --- predefined messages ---
    /// Creates a message at the end of its scope's list. An unknown queue
    /// or agent is `NotFound`.
    async fn create_predefined(&self, new: NewPredefined) -> StoreResult<PredefinedRecord>;
    async fn predefined(&self, id: PredefinedId) -> StoreResult<Option<PredefinedRecord>>;
    /// Shared messages (never personal ones) matching `filter`: everyone,
    /// then queue, then agent scoped, each by target, position and id.
    async fn shared_predefined(&self, filter: SharedFilter) -> StoreResult<Vec<PredefinedRecord>>;
    /// An owner's personal messages, by position and id.
    async fn personal_predefined(&self, owner: UserId) -> StoreResult<Vec<PredefinedRecord>>;
    /// What `agent` may pick in a chat of `queue`: the messages for
    /// everyone, then that queue's, then those aimed at the agent, then
    /// the agent's personal ones; each group by position and id.
    async fn applicable_predefined(
        &self,
        agent: UserId,
        queue: QueueId,
    ) -> StoreResult<Vec<PredefinedRecord>>;
    /// Replaces heading and body. None if the message does not exist.
    async fn update_predefined(
        &self,
        id: PredefinedId,
        heading: &Heading,
        body: &Body,
        now: i64,
    ) -> StoreResult<Option<PredefinedRecord>>;
    /// Deletes a message; false if it did not exist.
    async fn delete_predefined(&self, id: PredefinedId) -> StoreResult<bool>;
    /// Gives the messages of `scope` the order of `ids`, in one transaction.
    /// `ids` must name each of them exactly once, or nothing changes.
    async fn reorder_predefined(
        &self,
        scope: Scope,
        ids: &[PredefinedId],
    ) -> StoreResult<ReorderOutcome>;

    // --- sites and customer identity ---
    /// Creates a site. A taken name or key is `Conflict`; an unknown queue `NotFound`.
    async fn create_site(&self, site: NewSite) -> StoreResult<Site>;
    async fn list_sites(&self) -> StoreResult<Vec<Site>>;
    async fn site(&self, id: SiteId) -> StoreResult<Option<Site>>;
    /// The site a widget names by its public key.
    async fn site_by_key(&self, key: &str) -> StoreResult<Option<Site>>;
    /// Changes a site's settings in one statement; None if there is no such site.
    async fn update_site(&self, id: SiteId, update: &SiteUpdate) -> StoreResult<Option<Site>>;
    /// Replaces a site's identity secret; tokens signed with the old one stop verifying.
    async fn set_site_secret(&self, id: SiteId, secret: &str) -> StoreResult<Option<Site>>;
    /// Like `create_conversation` for each chat, and in the same transaction
    /// records the site each came from and its customer's variables (in
    /// order), so a chat never exists without the data its agent will be
    /// shown. One transaction for the whole batch (chat creation is
    /// group-committed, `crate::chat_creation`); the records come back in
    /// the batch's order.
    async fn create_customer_chats(
        &self,
        chats: &[NewCustomerChat],
    ) -> StoreResult<Vec<ConversationRecord>>;
    /// A conversation's customer variables, in display order.
    async fn customer_variables(&self, id: &ConversationId) -> StoreResult<Vec<CustomerVariable>>;
    /// The site a conversation was started from, if any.
    async fn site_of_conversation(&self, id: &ConversationId) -> StoreResult<Option<Site>>;

    // --- transcripts and chat log ---
    /// Conversations matching `filter`, newest first (`created_at`, then id,
    /// descending), at most `filter.limit`.
    async fn search_conversations(
        &self,
        filter: &ConversationFilter,
    ) -> StoreResult<Vec<ConversationSummary>>;
    /// One conversation with its queue name and every agent who took part.
    async fn conversation_summary(
        &self,
        id: &ConversationId,
    ) -> StoreResult<Option<ConversationSummary>>;
    /// Counts one more transcript e-mail of a conversation if the limits
    /// allow it: fewer than `max_sends` so far and none in the last
    /// `min_interval_ms`. Atomic, so concurrent requests cannot overshoot.
    /// Returns false when refused.
    async fn claim_transcript_email(
        &self,
        id: &ConversationId,
        now: i64,
        min_interval_ms: i64,
        max_sends: i64,
    ) -> StoreResult<bool>;
    /// Marks the automatic transcript e-mail of a conversation as sent;
    /// false if it already was, so it goes out at most once.
    async fn claim_automatic_transcript(&self, id: &ConversationId, now: i64) -> StoreResult<bool>;

    // --- attachments ---
    /// Records checked, stored uploads, all or none. They stay invisible
    /// until a message binds them (see [`NewEvent::attachments`]).
    async fn create_attachments(&self, attachments: &[NewAttachment]) -> StoreResult<()>;
    async fn attachment(&self, id: &AttachmentId) -> StoreResult<Option<AttachmentRecord>>;
    /// Those of `ids` that exist, in any order.
    async fn attachments(&self, ids: &[AttachmentId]) -> StoreResult<Vec<AttachmentRecord>>;
    /// Every attachment of a conversation, bound or not, oldest first.
    async fn conversation_attachments(
        &self,
        id: &ConversationId,
    ) -> StoreResult<Vec<AttachmentRecord>>;
    /// Whether an agent is or ever was in a conversation: what they could
    /// see while in it stays theirs to download after they left or it ended.
    async fn took_part(&self, id: &ConversationId, agent: UserId) -> StoreResult<bool>;
}

/// Opens the store named by `url` (`postgres://…` or `sqlite:…`) and runs its migrations.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DynStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, max_connections).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        anyhow::bail!("database.url must start with postgres:// or sqlite:")
    }
}
