//! The SQL both stores run. Written once as a macro body over the sqlx
//! database type, so Postgres and SQLite cannot drift apart: every statement
//! here is portable (`$n` parameters, `RETURNING`, `ON CONFLICT DO NOTHING`).

use super::records::*;
pub(super) use super::site_rows::*;
use crate::domain::account::{AgentStatus, Media, Profile, Queue, Role, User};
use crate::domain::conversation::{Audience, ConversationState, Party};
use crate::domain::ids::{AttachmentId, ConversationId, ProfileId, QueueId, UserId};

/// Largest number of rows in one multi-row insert (SQLite allows 32,766
/// bound parameters; ten columns per row keeps well below it).
pub(super) const MAX_ROWS_PER_INSERT: usize = 1000;

/// Multi-row inserts of up to this many events are prepared once per
/// connection and cached; bigger ones are prepared per use. Every batch
/// size is a different statement, and sqlx caches up to 100 per pooled
/// connection: with the group-commit writer's batches of 1–512 rows that
/// cache grew the server by ~38 MB in one S2 step at 8,000 msg/s
/// (docs/performance.md). Small batches, the common case at low rates,
/// keep the cached plan.
pub(super) const MAX_CACHED_INSERT_ROWS: usize = 32;

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    role: String,
    capacity: i32,
    disabled: i32,
}

impl UserRow {
    pub(super) fn into_user(self) -> User {
        User {
            id: UserId(self.id),
            username: self.username,
            display_name: self.display_name,
            // The column has a check constraint; an unknown value cannot be stored.
            role: Role::parse(&self.role).unwrap_or(Role::Agent),
            capacity: self.capacity.max(1) as u32,
            disabled: self.disabled != 0,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CredentialRow {
    #[sqlx(flatten)]
    pub(super) user: UserRow,
    pub(super) password_hash: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct QueueRow {
    id: i64,
    name: String,
    offer_timeout_secs: i32,
    priority: i32,
}

impl QueueRow {
    pub(super) fn into_queue(self) -> Queue {
        Queue {
            id: QueueId(self.id),
            name: self.name,
            offer_timeout_secs: self.offer_timeout_secs.max(1) as u32,
            priority: self.priority,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ProfileRow {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) media: String,
}

pub(super) fn parse_media(raw: &str) -> Vec<Media> {
    raw.split(',')
        .filter_map(|m| Media::parse(m.trim()))
        .collect()
}

pub(super) fn join_media(media: &[Media]) -> String {
    media
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl ProfileRow {
    pub(super) fn into_profile(self, queues: Vec<QueueId>) -> Profile {
        Profile {
            id: ProfileId(self.id),
            name: self.name,
            queues,
            media: parse_media(&self.media),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct PresenceRow {
    user_id: i64,
    profile_id: Option<i64>,
    status: String,
    reason: Option<String>,
    updated_at: i64,
}

pub(super) fn status_columns(status: &AgentStatus) -> (&'static str, Option<&str>) {
    match status {
        AgentStatus::Ready => ("ready", None),
        AgentStatus::NotReady { reason } => ("not_ready", Some(reason.as_str())),
        AgentStatus::Offline => ("offline", None),
    }
}

impl PresenceRow {
    pub(super) fn into_presence(self) -> Presence {
        let status = match (self.status.as_str(), self.reason) {
            ("ready", _) => AgentStatus::Ready,
            ("not_ready", Some(reason)) => AgentStatus::NotReady { reason },
            _ => AgentStatus::Offline,
        };
        Presence {
            user: UserId(self.user_id),
            profile: self.profile_id.map(ProfileId),
            status,
            now: self.updated_at,
        }
    }
}

/// A conversation with the origins of the site it came from (the widget's
/// resume, in one query).
#[derive(sqlx::FromRow)]
pub(super) struct CustomerChatRow {
    #[sqlx(flatten)]
    conversation: ConversationRow,
    site_origins: Option<String>,
}

impl CustomerChatRow {
    pub(super) fn into_chat(self) -> CustomerChat {
        CustomerChat {
            record: self.conversation.into_record(),
            site_origins: self
                .site_origins
                .as_deref()
                .map(super::site_rows::split_origins),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ConversationRow {
    id: String,
    queue_id: i64,
    state: String,
    version: i64,
    offered_to: Option<i64>,
    customer_name: Option<String>,
    customer_email: Option<String>,
    created_at: i64,
    ended_at: Option<i64>,
}

impl ConversationRow {
    pub(super) fn into_record(self) -> ConversationRecord {
        ConversationRecord {
            id: ConversationId(self.id),
            queue: QueueId(self.queue_id),
            state: ConversationState::parse(&self.state).unwrap_or(ConversationState::Ended),
            version: self.version,
            offered_to: self.offered_to.map(UserId),
            customer_name: self.customer_name,
            customer_email: self.customer_email,
            created_at: self.created_at,
            ended_at: self.ended_at,
        }
    }
}

pub(super) const CONVERSATION_COLUMNS: &str =
    "id, queue_id, state, version, offered_to, customer_name, customer_email, created_at, ended_at";

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    conversation_id: String,
    seq: i64,
    public_seq: Option<i64>,
    kind: String,
    audience: String,
    author_kind: String,
    author_id: Option<i64>,
    author_name: String,
    body: String,
    data: Option<String>,
    client_msg_id: Option<String>,
    created_at: i64,
}

pub(super) fn author_columns(author: &Author) -> (&'static str, Option<i64>, &str) {
    match author {
        Author::Customer { name } => ("customer", None, name.as_str()),
        Author::Agent { id, name } => ("agent", Some(id.0), name.as_str()),
        Author::System => ("system", None, ""),
    }
}

impl EventRow {
    pub(super) fn into_event(self) -> EventRecord {
        let author = match (self.author_kind.as_str(), self.author_id) {
            ("customer", _) => Author::Customer {
                name: self.author_name,
            },
            ("agent", Some(id)) => Author::Agent {
                id: UserId(id),
                name: self.author_name,
            },
            _ => Author::System,
        };
        NewEvent {
            conversation: ConversationId(self.conversation_id),
            seq: self.seq,
            public_seq: self.public_seq,
            kind: EventKind::parse(&self.kind).unwrap_or(EventKind::Message),
            // Unknown audiences are treated as the most restrictive one.
            audience: Audience::parse(&self.audience).unwrap_or(Audience::AgentsOnly),
            author,
            body: self.body,
            data: self.data,
            client_msg_id: self.client_msg_id,
            created_at: self.created_at,
            // Filled in from the attachments table by the read that needs them.
            attachments: Vec::new(),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct InviteRow {
    id: i64,
    conversation_id: String,
    inviter_id: i64,
    target_agent_id: Option<i64>,
    queue_id: Option<i64>,
    transfer: i32,
    state: String,
    offered_to: Option<i64>,
    version: i64,
}

pub(super) const INVITE_COLUMNS: &str =
    "id, conversation_id, inviter_id, target_agent_id, queue_id, transfer, state, offered_to, version";

impl InviteRow {
    pub(super) fn into_record(self) -> InviteRecord {
        InviteRecord {
            id: self.id,
            conversation: ConversationId(self.conversation_id),
            inviter: UserId(self.inviter_id),
            target_agent: self.target_agent_id.map(UserId),
            queue: self.queue_id.map(QueueId),
            transfer: self.transfer != 0,
            state: self.state,
            offered_to: self.offered_to.map(UserId),
            version: self.version,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RoutingEventRow {
    kind: String,
    agent_id: Option<i64>,
    at: i64,
}

impl RoutingEventRow {
    pub(super) fn into_record(self) -> RoutingEventRecord {
        RoutingEventRecord {
            kind: self.kind,
            agent: self.agent_id.map(UserId),
            at: self.at,
        }
    }
}

/// The conversation columns, qualified for queries that join `c` with other
/// tables, then the queue's name.
pub(super) const SUMMARY_COLUMNS: &str = "c.id as id, c.queue_id as queue_id, c.state as state, \
     c.version as version, c.offered_to as offered_to, c.customer_name as customer_name, \
     c.customer_email as customer_email, c.created_at as created_at, c.ended_at as ended_at, \
     q.name as queue_name";

#[derive(sqlx::FromRow)]
pub(super) struct SummaryRow {
    #[sqlx(flatten)]
    record: ConversationRow,
    queue_name: String,
}

impl SummaryRow {
    pub(super) fn id(&self) -> &str {
        &self.record.id
    }

    pub(super) fn into_summary(self, agents: Vec<(UserId, String)>) -> ConversationSummary {
        ConversationSummary {
            record: self.record.into_record(),
            queue_name: self.queue_name,
            agents,
        }
    }
}

/// A `like` pattern matching `needle` anywhere, for `lower(column) like $n
/// escape '\'`: lower-cased, with the pattern characters escaped so that
/// `%` and `_` match themselves.
pub(super) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[derive(sqlx::FromRow)]
pub(super) struct AttachmentRow {
    id: String,
    conversation_id: String,
    uploader_kind: String,
    uploader_id: Option<i64>,
    name: String,
    content_type: String,
    size: i64,
    sha256: String,
    created_at: i64,
    event_seq: Option<i64>,
    audience: Option<String>,
}

pub(super) const ATTACHMENT_COLUMNS: &str =
    "id, conversation_id, uploader_kind, uploader_id, name, \
     content_type, size, sha256, created_at, event_seq, audience";

pub(super) fn uploader_columns(uploader: Party) -> (&'static str, Option<i64>) {
    match uploader {
        Party::Customer => ("customer", None),
        Party::Agent(id) => ("agent", Some(id.0)),
    }
}

impl AttachmentRow {
    pub(super) fn into_record(self) -> AttachmentRecord {
        let uploader = match (self.uploader_kind.as_str(), self.uploader_id) {
            ("agent", Some(id)) => Party::Agent(UserId(id)),
            // A check constraint allows only these two shapes.
            _ => Party::Customer,
        };
        AttachmentRecord {
            id: AttachmentId(self.id),
            conversation: ConversationId(self.conversation_id),
            uploader,
            name: self.name,
            content_type: self.content_type,
            size: self.size,
            sha256: self.sha256,
            created_at: self.created_at,
            event_seq: self.event_seq,
            // Unknown audiences are treated as the most restrictive one.
            audience: self
                .audience
                .map(|a| Audience::parse(&a).unwrap_or(Audience::AgentsOnly)),
        }
    }
}

/// Implements [`super::Store`] for a struct with a `pool: sqlx::Pool<$db>` field.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        use $crate::store::sql::*;
        use $crate::store::*;
        use $crate::domain::account::{Media, Profile, Queue, User};
        use $crate::domain::conversation::ConversationState;
        use $crate::domain::ids::{AttachmentId, ConversationId, ProfileId, QueueId, UserId};

        impl $store {
            pub(super) async fn record_routing(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &ConversationId,
                kind: RoutingEventKind,
                agent: Option<UserId>,
                now: i64,
            ) -> StoreResult<()> {
                sqlx::query(
                    "insert into routing_events (conversation_id, queue_id, kind, agent_id, at) \
                     select id, queue_id, $2, $3, $4 from conversations where id = $1",
                )
                .bind(id.as_str())
                .bind(kind.as_str())
                .bind(agent.map(|a| a.0))
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// offered to `agent` at `version` → waiting, recording why (a
            /// reject or timeout bars the agent), inside a transaction.
            pub(super) async fn release_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &ConversationId,
                agent: UserId,
                version: i64,
                kind: RoutingEventKind,
                now: i64,
            ) -> StoreResult<Option<i64>> {
                let updated: Option<(i64,)> = sqlx::query_as(
                    "update conversations set state = 'waiting', offered_to = null, version = version + 1 \
                     where id = $1 and state = 'offered' and offered_to = $2 and version = $3 returning version",
                )
                .bind(id.as_str())
                .bind(agent.0)
                .bind(version)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((new_version,)) = updated else { return Ok(None) };
                if matches!(kind, RoutingEventKind::Rejected | RoutingEventKind::TimedOut) {
                    sqlx::query(
                        "insert into rejections (conversation_id, agent_id) values ($1, $2) on conflict do nothing",
                    )
                    .bind(id.as_str())
                    .bind(agent.0)
                    .execute(&mut **tx)
                    .await?;
                }
                Self::record_routing(tx, id, kind, Some(agent), now).await?;
                Ok(Some(new_version))
            }

            /// offered to `agent` at `version` → active with the agent as
            /// participant, inside a transaction; None if the row changed.
            pub(super) async fn accept_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &ConversationId,
                agent: UserId,
                version: i64,
                now: i64,
            ) -> StoreResult<Option<i64>> {
                let updated: Option<(i64,)> = sqlx::query_as(
                    "update conversations set state = 'active', offered_to = null, version = version + 1 \
                     where id = $1 and state = 'offered' and offered_to = $2 and version = $3 returning version",
                )
                .bind(id.as_str())
                .bind(agent.0)
                .bind(version)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((new_version,)) = updated else { return Ok(None) };
                sqlx::query(
                    "insert into conversation_agents (conversation_id, agent_id, joined_at) values ($1, $2, $3) \
                     on conflict (conversation_id, agent_id) do update set left_at = null",
                )
                .bind(id.as_str())
                .bind(agent.0)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Self::record_routing(tx, id, RoutingEventKind::Accepted, Some(agent), now).await?;
                Ok(Some(new_version))
            }

            /// Multi-row insert of chat-log events inside a transaction.
            async fn insert_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[NewEvent],
            ) -> Result<(), sqlx::Error> {
                Self::events_insert(events)
                    .build()
                    .persistent(events.len() <= MAX_CACHED_INSERT_ROWS)
                    .execute(&mut **tx)
                    .await?;
                // Binding in the same transaction: a message is never stored
                // without its files, nor a file bound to a message that is not.
                // `event_seq is null` keeps a file bound to its first message.
                for e in events {
                    for (position, a) in e.attachments.iter().enumerate() {
                        sqlx::query(
                            "update attachments set event_seq = $1, audience = $2, position = $3 \
                             where id = $4 and conversation_id = $5 and event_seq is null",
                        )
                        .bind(e.seq)
                        .bind(e.audience.as_str())
                        .bind(position as i32)
                        .bind(a.id.as_str())
                        .bind(e.conversation.as_str())
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                Ok(())
            }

            /// Ends chats (see `Store::finish_conversations`) in one
            /// transaction, statements each: SQLite's way, and Postgres' for
            /// end events with files.
            async fn finish_in_transaction(&self, events: &[NewEvent]) -> StoreResult<Vec<Option<(ConversationState, Vec<UserId>)>>> {
                let mut tx = self.pool.begin().await?;
                let mut results = Vec::with_capacity(events.len());
                for event in events {
                    results.push(Self::finish_in(&mut tx, event).await?);
                }
                tx.commit().await?;
                Ok(results)
            }

            /// Ends one chat inside `tx`; writes nothing if it was closed.
            async fn finish_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                event: &NewEvent,
            ) -> StoreResult<Option<(ConversationState, Vec<UserId>)>> {
                let ended_by = event.author.sender_key();
                let closed: Option<(String,)> = sqlx::query_as(
                    "update conversations set \
                     state = case when state = 'active' then 'ended' else 'abandoned' end, \
                     offered_to = null, version = version + 1, ended_at = $2, ended_by = $3 \
                     where id = $1 and state in ('waiting', 'offered', 'active') returning state",
                )
                .bind(event.conversation.as_str())
                .bind(event.created_at)
                .bind(ended_by)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((state,)) = closed else { return Ok(None) };
                let state = ConversationState::parse(&state).unwrap_or(ConversationState::Ended);
                // By chat only, as in `conversation_agents`: the open ones
                // are picked here and closed with `coalesce`.
                let agents: Vec<(i64, Option<i64>)> = sqlx::query_as(
                    "select agent_id, left_at from conversation_agents where conversation_id = $1",
                )
                .bind(event.conversation.as_str())
                .fetch_all(&mut **tx)
                .await?;
                let agents: Vec<(i64,)> = agents
                    .into_iter()
                    .filter(|(_, left_at)| left_at.is_none())
                    .map(|(a, _)| (a,))
                    .collect();
                sqlx::query(
                    "update conversation_agents set left_at = coalesce(left_at, $2) where conversation_id = $1",
                )
                .bind(event.conversation.as_str())
                .bind(event.created_at)
                .execute(&mut **tx)
                .await?;
                Self::insert_events(tx, std::slice::from_ref(event)).await?;
                let kind = if state == ConversationState::Abandoned {
                    RoutingEventKind::Abandoned
                } else {
                    RoutingEventKind::Ended
                };
                Self::record_routing(tx, &event.conversation, kind, None, event.created_at).await?;
                Ok(Some((state, agents.into_iter().map(|(a,)| UserId(a)).collect())))
            }

            /// The multi-row insert of chat-log events (one statement).
            fn events_insert(events: &[NewEvent]) -> sqlx::QueryBuilder<'static, $db> {
                let mut builder = sqlx::QueryBuilder::<$db>::new(
                    "insert into events (conversation_id, seq, public_seq, kind, audience, author_kind, author_id, \
                     author_name, body, data, sender, client_msg_id, created_at) ",
                );
                builder.push_values(events, |mut row, e| {
                    let (author_kind, author_id, author_name) = author_columns(&e.author);
                    row.push_bind(e.conversation.0.clone())
                        .push_bind(e.seq)
                        .push_bind(e.public_seq)
                        .push_bind(e.kind.as_str())
                        .push_bind(e.audience.as_str())
                        .push_bind(author_kind)
                        .push_bind(author_id)
                        .push_bind(author_name.to_owned())
                        .push_bind(e.body.clone())
                        .push_bind(e.data.clone())
                        .push_bind(e.author.sender_key())
                        .push_bind(e.client_msg_id.clone())
                        .push_bind(e.created_at);
                });
                // A resend that raced an uncertain commit is skipped; any other
                // conflict (a seq taken twice) fails the batch loudly.
                builder.push(" on conflict (conversation_id, sender, client_msg_id) do nothing");
                builder
            }

            /// Fills in the files of the events read (ordered by seq). The
            /// customer's read path asks for the public ones only.
            async fn with_attachments(
                &self,
                id: &ConversationId,
                mut events: Vec<EventRecord>,
                public_only: bool,
            ) -> StoreResult<Vec<EventRecord>> {
                let (Some(first), Some(last)) = (events.first(), events.last()) else {
                    return Ok(events);
                };
                let audience = if public_only { "and audience = 'everyone'" } else { "" };
                let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(&format!(
                    "select id, name, content_type, size, event_seq from attachments \
                     where conversation_id = $1 and event_seq >= $2 and event_seq <= $3 {audience} \
                     order by event_seq, position"
                ))
                .bind(id.as_str())
                .bind(first.seq)
                .bind(last.seq)
                .fetch_all(&self.pool)
                .await?;
                for (attachment, name, content_type, size, seq) in rows {
                    if let Ok(i) = events.binary_search_by_key(&seq, |e| e.seq) {
                        events[i].attachments.push(AttachmentMeta {
                            id: AttachmentId(attachment),
                            name,
                            content_type,
                            size,
                        });
                    }
                }
                Ok(events)
            }

            /// A conditional state change of an offered/pending invitation.
            #[allow(clippy::too_many_arguments)]
            async fn move_invite(
                &self,
                invite: i64,
                agent: UserId,
                version: i64,
                from: &str,
                to: &str,
                offered_to: Option<i64>,
                kind: RoutingEventKind,
                now: i64,
            ) -> StoreResult<Option<i64>> {
                let mut tx = self.pool.begin().await?;
                // When releasing, the row must be offered to this agent.
                let guard = if from == "offered" { "and offered_to = $5" } else { "and $5 = $5" };
                let updated: Option<(i64, String)> = sqlx::query_as(&format!(
                    "update invites set state = $2, offered_to = $3, version = version + 1 \
                     where id = $1 and state = $4 {guard} and version = $6 returning version, conversation_id"
                ))
                .bind(invite)
                .bind(to)
                .bind(offered_to)
                .bind(from)
                .bind(agent.0)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((new_version, conversation)) = updated else { return Ok(None) };
                Self::record_routing(&mut tx, &ConversationId(conversation), kind, Some(agent), now).await?;
                tx.commit().await?;
                Ok(Some(new_version))
            }

            async fn profile_queues(&self, profile: i64) -> StoreResult<Vec<QueueId>> {
                let rows: Vec<(i64,)> = sqlx::query_as(
                    "select queue_id from profile_queues where profile_id = $1 order by queue_id",
                )
                .bind(profile)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(q,)| QueueId(q)).collect())
            }

            /// Adds every agent who took part to each row, with one query.
            async fn summaries_from_rows(&self, rows: Vec<SummaryRow>) -> StoreResult<Vec<ConversationSummary>> {
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "select a.conversation_id, u.id, u.display_name from conversation_agents a \
                     join users u on u.id = a.agent_id where a.conversation_id in (",
                );
                let mut ids = query.separated(", ");
                for row in &rows {
                    ids.push_bind(row.id().to_owned());
                }
                ids.push_unseparated(") order by a.joined_at, u.id");
                let agents: Vec<(String, i64, String)> =
                    query.build_query_as().fetch_all(&self.pool).await?;
                let mut by_chat: std::collections::HashMap<String, Vec<(UserId, String)>> = Default::default();
                for (chat, id, name) in agents {
                    by_chat.entry(chat).or_default().push((UserId(id), name));
                }
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        let agents = by_chat.remove(row.id()).unwrap_or_default();
                        row.into_summary(agents)
                    })
                    .collect())
            }

            async fn profiles_from_rows(&self, rows: Vec<ProfileRow>) -> StoreResult<Vec<Profile>> {
                let mut profiles = Vec::with_capacity(rows.len());
                for row in rows {
                    let queues = self.profile_queues(row.id).await?;
                    profiles.push(row.into_profile(queues));
                }
                Ok(profiles)
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("select 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_user(&self, user: NewUser) -> StoreResult<UserId> {
                let (id,): (i64,) = sqlx::query_as(
                    "insert into users (username, display_name, password_hash, role, capacity, created_at) \
                     values ($1, $2, $3, $4, $5, $6) returning id",
                )
                .bind(&user.username)
                .bind(&user.display_name)
                .bind(&user.password_hash)
                .bind(user.role.as_str())
                .bind(user.capacity as i32)
                .bind(user.now)
                .fetch_one(&self.pool)
                .await?;
                Ok(UserId(id))
            }

            async fn count_users(&self) -> StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as("select count(*) from users")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }

            async fn user_credentials(&self, username: &str) -> StoreResult<Option<(User, String)>> {
                let row: Option<CredentialRow> = sqlx::query_as(
                    "select id, username, display_name, role, capacity, disabled, password_hash from users where username = $1",
                )
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|r| (r.user.into_user(), r.password_hash)))
            }

            async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
                let row: Option<UserRow> = sqlx::query_as(
                    "select id, username, display_name, role, capacity, disabled from users where id = $1",
                )
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(UserRow::into_user))
            }

            async fn list_users(&self) -> StoreResult<Vec<User>> {
                let rows: Vec<UserRow> = sqlx::query_as(
                    "select id, username, display_name, role, capacity, disabled from users order by id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(UserRow::into_user).collect())
            }

            async fn create_session(&self, token_hash: &str, user: UserId, now: i64, expires_at: i64) -> StoreResult<()> {
                sqlx::query(
                    "insert into sessions (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(user.0)
                .bind(now)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session_user(&self, token_hash: &str, now: i64) -> StoreResult<Option<User>> {
                let row: Option<UserRow> = sqlx::query_as(
                    "select u.id, u.username, u.display_name, u.role, u.capacity, u.disabled \
                     from sessions s join users u on u.id = s.user_id \
                     where s.token_hash = $1 and s.expires_at > $2 and u.disabled = 0",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(UserRow::into_user))
            }

            async fn change_password(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("update users set password_hash = $1 where id = $2")
                    .bind(password_hash)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("delete from sessions where user_id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
                sqlx::query("delete from sessions where token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_queue(&self, name: &str, offer_timeout_secs: u32, priority: i32) -> StoreResult<QueueId> {
                let (id,): (i64,) = sqlx::query_as(
                    "insert into queues (name, offer_timeout_secs, priority) values ($1, $2, $3) returning id",
                )
                .bind(name)
                .bind(offer_timeout_secs as i32)
                .bind(priority)
                .fetch_one(&self.pool)
                .await?;
                Ok(QueueId(id))
            }

            async fn list_queues(&self) -> StoreResult<Vec<Queue>> {
                let rows: Vec<QueueRow> = sqlx::query_as(
                    "select id, name, offer_timeout_secs, priority from queues where deleted_at is null order by id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(QueueRow::into_queue).collect())
            }

            async fn create_profile(&self, name: &str, media: &[Media], queues: &[QueueId]) -> StoreResult<ProfileId> {
                let mut tx = self.pool.begin().await?;
                let (id,): (i64,) = sqlx::query_as(
                    "insert into profiles (name, media) values ($1, $2) returning id",
                )
                .bind(name)
                .bind(join_media(media))
                .fetch_one(&mut *tx)
                .await?;
                for queue in queues {
                    sqlx::query("insert into profile_queues (profile_id, queue_id) values ($1, $2)")
                        .bind(id)
                        .bind(queue.0)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(ProfileId(id))
            }

            async fn list_profiles(&self) -> StoreResult<Vec<Profile>> {
                let rows: Vec<ProfileRow> =
                    sqlx::query_as("select id, name, media from profiles order by id")
                        .fetch_all(&self.pool)
                        .await?;
                self.profiles_from_rows(rows).await
            }

            async fn grant_profile(&self, user: UserId, profile: ProfileId) -> StoreResult<()> {
                sqlx::query(
                    "insert into user_profiles (user_id, profile_id) values ($1, $2) on conflict do nothing",
                )
                .bind(user.0)
                .bind(profile.0)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn profiles_of_user(&self, user: UserId) -> StoreResult<Vec<Profile>> {
                let rows: Vec<ProfileRow> = sqlx::query_as(
                    "select p.id, p.name, p.media from profiles p \
                     join user_profiles up on up.profile_id = p.id \
                     where up.user_id = $1 order by p.id",
                )
                .bind(user.0)
                .fetch_all(&self.pool)
                .await?;
                self.profiles_from_rows(rows).await
            }

            async fn save_presence(&self, presence: &Presence) -> StoreResult<()> {
                let (status, reason) = status_columns(&presence.status);
                sqlx::query(
                    "insert into agent_presence (user_id, profile_id, status, reason, updated_at) \
                     values ($1, $2, $3, $4, $5) \
                     on conflict (user_id) do update set profile_id = excluded.profile_id, \
                     status = excluded.status, reason = excluded.reason, updated_at = excluded.updated_at",
                )
                .bind(presence.user.0)
                .bind(presence.profile.map(|p| p.0))
                .bind(status)
                .bind(reason)
                .bind(presence.now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn load_presence(&self, user: UserId) -> StoreResult<Option<Presence>> {
                let row: Option<PresenceRow> = sqlx::query_as(
                    "select user_id, profile_id, status, reason, updated_at from agent_presence where user_id = $1",
                )
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(PresenceRow::into_presence))
            }

            async fn conversation(&self, id: &ConversationId) -> StoreResult<Option<ConversationRecord>> {
                let row: Option<ConversationRow> = sqlx::query_as(&format!(
                    "select {CONVERSATION_COLUMNS} from conversations where id = $1"
                ))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(ConversationRow::into_record))
            }

            async fn conversation_by_token(&self, token_hash: &str) -> StoreResult<Option<ConversationRecord>> {
                let row: Option<ConversationRow> = sqlx::query_as(&format!(
                    "select {CONVERSATION_COLUMNS} from conversations where customer_token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(ConversationRow::into_record))
            }

            async fn customer_chat(&self, token_hash: &str) -> StoreResult<Option<CustomerChat>> {
                let row: Option<CustomerChatRow> = sqlx::query_as(&format!(
                    "select {CONVERSATION_COLUMNS}, \
                     (select s.allowed_origins from sites s where s.id = conversations.site_id) as site_origins \
                     from conversations where customer_token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(CustomerChatRow::into_chat))
            }

            async fn queued_conversations(&self) -> StoreResult<Vec<QueuedConversation>> {
                let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
                    "select {CONVERSATION_COLUMNS} from conversations \
                     where ended_at is null and state in ('waiting', 'offered') order by created_at, id"
                ))
                .fetch_all(&self.pool)
                .await?;
                let rejections: Vec<(String, i64)> = sqlx::query_as(
                    "select r.conversation_id, r.agent_id from rejections r \
                     join conversations c on c.id = r.conversation_id \
                     where c.ended_at is null and c.state in ('waiting', 'offered')",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut by_chat: std::collections::HashMap<String, Vec<UserId>> = Default::default();
                for (chat, agent) in rejections {
                    by_chat.entry(chat).or_default().push(UserId(agent));
                }
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        let record = row.into_record();
                        let rejected_by = by_chat.remove(record.id.as_str()).unwrap_or_default();
                        QueuedConversation { record, rejected_by }
                    })
                    .collect())
            }

            async fn open_conversations_of(&self, agent: UserId) -> StoreResult<Vec<ConversationRecord>> {
                let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
                    "select {CONVERSATION_COLUMNS} from conversations c \
                     where c.state = 'active' and exists (select 1 from conversation_agents a \
                     where a.conversation_id = c.id and a.agent_id = $1 and a.left_at is null) \
                     order by c.created_at, c.id"
                ))
                .bind(agent.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(ConversationRow::into_record).collect())
            }

            async fn conversation_agents(&self, id: &ConversationId) -> StoreResult<Vec<UserId>> {
                // `left_at is null` is checked here, not in SQL: with it,
                // Postgres on a young table (not analyzed yet) ANDed the
                // partial index of open participations (every open chat's
                // row) with the primary key, scanning thousands of index
                // entries per call in a burst (docs/performance.md, S3).
                let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
                    "select agent_id, left_at from conversation_agents \
                     where conversation_id = $1 order by joined_at, agent_id",
                )
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter(|(_, left_at)| left_at.is_none())
                    .map(|(a, _)| UserId(a))
                    .collect())
            }

            async fn try_offer(&self, id: &ConversationId, agent: UserId, version: i64, now: i64) -> StoreResult<Option<i64>> {
                let mut tx = self.pool.begin().await?;
                let updated: Option<(i64,)> = sqlx::query_as(
                    "update conversations set state = 'offered', offered_to = $2, version = version + 1 \
                     where id = $1 and state = 'waiting' and version = $3 returning version",
                )
                .bind(id.as_str())
                .bind(agent.0)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((new_version,)) = updated else { return Ok(None) };
                Self::record_routing(&mut tx, id, RoutingEventKind::Offered, Some(agent), now).await?;
                tx.commit().await?;
                Ok(Some(new_version))
            }

            async fn try_offers(&self, offers: &[(ConversationId, UserId, i64)], now: i64) -> StoreResult<Vec<Option<i64>>> {
                if offers.is_empty() {
                    return Ok(Vec::new());
                }
                self.offer_rows(offers, now).await
            }

            async fn release_offer(&self, id: &ConversationId, agent: UserId, version: i64, kind: RoutingEventKind, now: i64) -> StoreResult<Option<i64>> {
                let mut tx = self.pool.begin().await?;
                let released = Self::release_in(&mut tx, id, agent, version, kind, now).await?;
                tx.commit().await?;
                Ok(released)
            }

            async fn accept_offer(&self, id: &ConversationId, agent: UserId, version: i64, now: i64) -> StoreResult<Option<i64>> {
                let mut tx = self.pool.begin().await?;
                let accepted = Self::accept_in(&mut tx, id, agent, version, now).await?;
                tx.commit().await?;
                Ok(accepted)
            }

            async fn answer_offers(&self, answers: &[OfferAnswer], now: i64) -> StoreResult<Vec<Option<i64>>> {
                if answers.is_empty() {
                    return Ok(Vec::new());
                }
                self.answer_rows(answers, now).await
            }

            async fn finish_conversations(&self, events: &[NewEvent]) -> StoreResult<Vec<Option<(ConversationState, Vec<UserId>)>>> {
                if events.is_empty() {
                    return Ok(Vec::new());
                }
                self.finish_rows(events).await
            }

            async fn create_invite(&self, invite: NewInvite) -> StoreResult<InviteRecord> {
                let mut tx = self.pool.begin().await?;
                let row: InviteRow = sqlx::query_as(&format!(
                    "insert into invites (conversation_id, inviter_id, target_agent_id, queue_id, transfer, \
                     state, version, created_at) values ($1, $2, $3, $4, $5, 'pending', 1, $6) \
                     returning {INVITE_COLUMNS}"
                ))
                .bind(invite.conversation.as_str())
                .bind(invite.inviter.0)
                .bind(invite.target_agent.map(|a| a.0))
                .bind(invite.queue.map(|q| q.0))
                .bind(i32::from(invite.transfer))
                .bind(invite.now)
                .fetch_one(&mut *tx)
                .await?;
                Self::record_routing(&mut tx, &invite.conversation, RoutingEventKind::Invited, invite.target_agent, invite.now).await?;
                tx.commit().await?;
                Ok(row.into_record())
            }

            async fn try_offer_invite(&self, invite: i64, agent: UserId, version: i64, now: i64) -> StoreResult<Option<i64>> {
                self.move_invite(invite, agent, version, "pending", "offered", Some(agent.0), RoutingEventKind::InviteOffered, now).await
            }

            async fn release_invite(&self, invite: i64, agent: UserId, version: i64, kind: RoutingEventKind, now: i64) -> StoreResult<Option<i64>> {
                self.move_invite(invite, agent, version, "offered", "pending", None, kind, now).await
            }

            async fn accept_invite(&self, invite: i64, agent: UserId, version: i64, now: i64) -> StoreResult<Option<i64>> {
                let mut tx = self.pool.begin().await?;
                let updated: Option<(i64, String)> = sqlx::query_as(
                    "update invites set state = 'accepted', version = version + 1, ended_at = $4 \
                     where id = $1 and state = 'offered' and offered_to = $2 and version = $3 \
                     and exists (select 1 from conversations c \
                                 where c.id = invites.conversation_id and c.state = 'active') \
                     returning version, conversation_id",
                )
                .bind(invite)
                .bind(agent.0)
                .bind(version)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((new_version, conversation)) = updated else { return Ok(None) };
                sqlx::query(
                    "insert into conversation_agents (conversation_id, agent_id, joined_at) values ($1, $2, $3) \
                     on conflict (conversation_id, agent_id) do update set left_at = null",
                )
                .bind(&conversation)
                .bind(agent.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let id = ConversationId(conversation);
                Self::record_routing(&mut tx, &id, RoutingEventKind::InviteAccepted, Some(agent), now).await?;
                tx.commit().await?;
                Ok(Some(new_version))
            }

            async fn close_invite(&self, invite: i64, kind: RoutingEventKind, now: i64) -> StoreResult<bool> {
                let state = match kind {
                    RoutingEventKind::InviteRejected => "rejected",
                    RoutingEventKind::InviteTimedOut => "timed_out",
                    _ => "cancelled",
                };
                let mut tx = self.pool.begin().await?;
                let closed: Option<(String, Option<i64>)> = sqlx::query_as(
                    "update invites set state = $2, version = version + 1, ended_at = $3 \
                     where id = $1 and state in ('pending', 'offered') returning conversation_id, offered_to",
                )
                .bind(invite)
                .bind(state)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((conversation, agent)) = closed else { return Ok(false) };
                Self::record_routing(&mut tx, &ConversationId(conversation), kind, agent.map(UserId), now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn open_invites(&self) -> StoreResult<Vec<InviteRecord>> {
                let rows: Vec<InviteRow> = sqlx::query_as(&format!(
                    "select {INVITE_COLUMNS} from invites where state in ('pending', 'offered') order by id"
                ))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(InviteRow::into_record).collect())
            }

            async fn leave_conversation(&self, agent: UserId, event: &NewEvent) -> StoreResult<bool> {
                let mut tx = self.pool.begin().await?;
                let left = sqlx::query(
                    "update conversation_agents set left_at = $3 \
                     where conversation_id = $1 and agent_id = $2 and left_at is null",
                )
                .bind(event.conversation.as_str())
                .bind(agent.0)
                .bind(event.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !left {
                    return Ok(false);
                }
                Self::insert_events(&mut tx, std::slice::from_ref(event)).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn requeue_conversation(&self, agent: UserId, event: &NewEvent) -> StoreResult<Option<ConversationRecord>> {
                let mut tx = self.pool.begin().await?;
                let id = event.conversation.as_str();
                let row: Option<ConversationRow> = sqlx::query_as(&format!(
                    "update conversations set state = 'waiting', offered_to = null, version = version + 1 \
                     where id = $1 and state = 'active' and exists (select 1 from conversation_agents \
                     where conversation_id = $1 and agent_id = $2 and left_at is null) \
                     returning {CONVERSATION_COLUMNS}"
                ))
                .bind(id)
                .bind(agent.0)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(None) };
                // By chat only (see `conversation_agents`).
                sqlx::query(
                    "update conversation_agents set left_at = coalesce(left_at, $2) where conversation_id = $1",
                )
                .bind(id)
                .bind(event.created_at)
                .execute(&mut *tx)
                .await?;
                Self::insert_events(&mut tx, std::slice::from_ref(event)).await?;
                Self::record_routing(&mut tx, &event.conversation, RoutingEventKind::Requeued, Some(agent), event.created_at).await?;
                tx.commit().await?;
                Ok(Some(row.into_record()))
            }

            async fn agents_in_active_chats(&self) -> StoreResult<Vec<UserId>> {
                let rows: Vec<(i64,)> = sqlx::query_as(
                    "select distinct a.agent_id from conversation_agents a \
                     join conversations c on c.id = a.conversation_id \
                     where c.state = 'active' and a.left_at is null order by a.agent_id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(a,)| UserId(a)).collect())
            }

            async fn routing_events(&self, id: &ConversationId) -> StoreResult<Vec<RoutingEventRecord>> {
                let rows: Vec<RoutingEventRow> = sqlx::query_as(
                    "select kind, agent_id, at from routing_events where conversation_id = $1 order by id",
                )
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(RoutingEventRow::into_record).collect())
            }

            fn concurrent_commits(&self) -> usize {
                Self::CONCURRENT_COMMITS
            }

            async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                if events.len() <= MAX_ROWS_PER_INSERT && events.iter().all(|e| e.attachments.is_empty()) {
                    // One statement is atomic and durable on its own
                    // (autocommit): this saves the BEGIN and COMMIT round
                    // trips, a third of the writer's waits per batch
                    // (docs/performance.md). Attachments are bound in the
                    // same transaction as their message, so a batch with
                    // any takes the transaction below.
                    self.append_rows(events).await?;
                    return Ok(());
                }
                let mut tx = self.pool.begin().await?;
                for chunk in events.chunks(MAX_ROWS_PER_INSERT) {
                    Self::insert_events(&mut tx, chunk).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn events_after(&self, id: &ConversationId, seq: i64, limit: i64) -> StoreResult<Vec<EventRecord>> {
                let rows: Vec<EventRow> = sqlx::query_as(
                    "select conversation_id, seq, public_seq, kind, audience, author_kind, author_id, author_name, body, \
                     data, client_msg_id, created_at from events where conversation_id = $1 and seq > $2 \
                     order by seq limit $3",
                )
                .bind(id.as_str())
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let events = rows.into_iter().map(EventRow::into_event).collect();
                self.with_attachments(id, events, false).await
            }

            async fn events_after_public(&self, id: &ConversationId, public_seq: i64, limit: i64) -> StoreResult<Vec<EventRecord>> {
                // The audience condition repeats the filter every customer
                // read goes through: a private event cannot come back here.
                let rows: Vec<EventRow> = sqlx::query_as(
                    "select conversation_id, seq, public_seq, kind, audience, author_kind, author_id, author_name, body, \
                     data, client_msg_id, created_at from events where conversation_id = $1 and public_seq > $2 \
                     and audience = 'everyone' order by seq limit $3",
                )
                .bind(id.as_str())
                .bind(public_seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let events = rows.into_iter().map(EventRow::into_event).collect();
                self.with_attachments(id, events, true).await
            }

            async fn log_position(&self, id: &ConversationId) -> StoreResult<LogPosition> {
                let (last_seq, last_public_seq): (Option<i64>, Option<i64>) =
                    sqlx::query_as("select max(seq), max(public_seq) from events where conversation_id = $1")
                        .bind(id.as_str())
                        .fetch_one(&self.pool)
                        .await?;
                let ids: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
                    "select sender, client_msg_id, seq, public_seq from events \
                     where conversation_id = $1 and client_msg_id is not null",
                )
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
                let announced: Vec<(i64,)> = sqlx::query_as(
                    "select distinct author_id from events \
                     where conversation_id = $1 and kind = 'joined' and author_id is not null",
                )
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(LogPosition {
                    last_seq: last_seq.unwrap_or(0),
                    last_public_seq: last_public_seq.unwrap_or(0),
                    client_msg_ids: ids
                        .into_iter()
                        .map(|(sender, msg, seq, public)| ((sender, msg), (seq, public)))
                        .collect(),
                    announced: announced.into_iter().map(|(a,)| UserId(a)).collect(),
                })
            }

            async fn find_client_msg(
                &self,
                id: &ConversationId,
                sender: &str,
                client_msg_id: &str,
            ) -> StoreResult<Option<(i64, Option<i64>)>> {
                // Served by the unique index on (conversation_id, sender, client_msg_id).
                let row: Option<(i64, Option<i64>)> = sqlx::query_as(
                    "select seq, public_seq from events \
                     where conversation_id = $1 and sender = $2 and client_msg_id = $3",
                )
                .bind(id.as_str())
                .bind(sender)
                .bind(client_msg_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row)
            }

            // --- predefined messages ---
            async fn create_predefined(&self, new: NewPredefined) -> StoreResult<PredefinedRecord> {
                use $crate::store::predefined::{PredefinedRow, PREDEFINED_COLUMNS};
                // One statement, so the new message lands after the last one
                // of its scope without a separate read.
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "insert into predefined_messages (heading, body, scope, queue_id, agent_id, \
                     position, created_by, created_at, updated_at) select ",
                );
                b.push_bind(new.heading.as_str().to_owned())
                    .push(", ")
                    .push_bind(new.body.as_str().to_owned())
                    .push(", ")
                    .push_bind(new.scope.kind().as_str())
                    .push(", ")
                    .push_bind(new.scope.queue().map(|q| q.0))
                    .push(", ")
                    .push_bind(new.scope.agent().map(|a| a.0))
                    .push(", coalesce(max(position), 0) + 1, ")
                    .push_bind(new.created_by.0)
                    .push(", ")
                    .push_bind(new.now)
                    .push(", ")
                    .push_bind(new.now)
                    .push(" from predefined_messages where ");
                Self::push_predefined_target(&mut b, new.scope);
                b.push(format!(" returning {PREDEFINED_COLUMNS}"));
                let row: PredefinedRow = b.build_query_as().fetch_one(&self.pool).await?;
                row.into_record()
                    .ok_or_else(|| StoreError::Unavailable("stored an inconsistent scope".into()))
            }

            async fn predefined(&self, id: $crate::domain::ids::PredefinedId) -> StoreResult<Option<PredefinedRecord>> {
                use $crate::store::predefined::{PredefinedRow, PREDEFINED_COLUMNS};
                let row: Option<PredefinedRow> = sqlx::query_as(&format!(
                    "select {PREDEFINED_COLUMNS} from predefined_messages where id = $1"
                ))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(PredefinedRow::into_record))
            }

            async fn shared_predefined(&self, filter: SharedFilter) -> StoreResult<Vec<PredefinedRecord>> {
                use $crate::store::predefined::{into_records, PredefinedRow, PREDEFINED_COLUMNS};
                let mut b = sqlx::QueryBuilder::<$db>::new(format!(
                    "select {PREDEFINED_COLUMNS} from predefined_messages where scope <> 'personal'"
                ));
                if let Some(kind) = filter.kind {
                    b.push(" and scope = ").push_bind(kind.as_str());
                }
                if let Some(queue) = filter.queue {
                    b.push(" and queue_id = ").push_bind(queue.0);
                }
                if let Some(agent) = filter.agent {
                    b.push(" and agent_id = ").push_bind(agent.0);
                }
                b.push(
                    " order by case scope when 'everyone' then 0 when 'queue' then 1 else 2 end, \
                     queue_id, agent_id, position, id",
                );
                let rows: Vec<PredefinedRow> = b.build_query_as().fetch_all(&self.pool).await?;
                Ok(into_records(rows))
            }

            async fn personal_predefined(&self, owner: UserId) -> StoreResult<Vec<PredefinedRecord>> {
                use $crate::store::predefined::{into_records, PredefinedRow, PREDEFINED_COLUMNS};
                let rows: Vec<PredefinedRow> = sqlx::query_as(&format!(
                    "select {PREDEFINED_COLUMNS} from predefined_messages \
                     where scope = 'personal' and agent_id = $1 order by position, id"
                ))
                .bind(owner.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(into_records(rows))
            }

            async fn applicable_predefined(&self, agent: UserId, queue: QueueId) -> StoreResult<Vec<PredefinedRecord>> {
                use $crate::store::predefined::{into_records, PredefinedRow, PREDEFINED_COLUMNS};
                let rows: Vec<PredefinedRow> = sqlx::query_as(&format!(
                    "select {PREDEFINED_COLUMNS} from predefined_messages \
                     where scope = 'everyone' or (scope = 'queue' and queue_id = $1) \
                     or (scope in ('agent', 'personal') and agent_id = $2) \
                     order by case scope when 'everyone' then 0 when 'queue' then 1 \
                     when 'agent' then 2 else 3 end, position, id"
                ))
                .bind(queue.0)
                .bind(agent.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(into_records(rows))
            }

            async fn update_predefined(
                &self,
                id: $crate::domain::ids::PredefinedId,
                heading: &$crate::domain::predefined::Heading,
                body: &$crate::domain::predefined::Body,
                now: i64,
            ) -> StoreResult<Option<PredefinedRecord>> {
                use $crate::store::predefined::{PredefinedRow, PREDEFINED_COLUMNS};
                let row: Option<PredefinedRow> = sqlx::query_as(&format!(
                    "update predefined_messages set heading = $1, body = $2, updated_at = $3 \
                     where id = $4 returning {PREDEFINED_COLUMNS}"
                ))
                .bind(heading.as_str())
                .bind(body.as_str())
                .bind(now)
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(PredefinedRow::into_record))
            }

            async fn delete_predefined(&self, id: $crate::domain::ids::PredefinedId) -> StoreResult<bool> {
                let done = sqlx::query("delete from predefined_messages where id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn reorder_predefined(
                &self,
                scope: $crate::domain::predefined::Scope,
                ids: &[$crate::domain::ids::PredefinedId],
            ) -> StoreResult<ReorderOutcome> {
                use $crate::domain::ids::PredefinedId;
                use $crate::domain::predefined::is_complete_order;
                // Writes come first, so SQLite takes its write lock at the
                // start instead of upgrading a read snapshot (which fails
                // at once if another writer got in between). Rows are
                // updated in id order so two concurrent reorders on
                // Postgres lock them in the same order and cannot deadlock.
                let mut by_id: Vec<(PredefinedId, i64)> =
                    ids.iter().zip(1_i64..).map(|(&id, position)| (id, position)).collect();
                by_id.sort_unstable();
                let mut tx = self.pool.begin().await?;
                for (id, position) in by_id {
                    let mut b = sqlx::QueryBuilder::<$db>::new("update predefined_messages set position = ");
                    b.push_bind(position).push(" where id = ").push_bind(id.0).push(" and ");
                    Self::push_predefined_target(&mut b, scope);
                    b.build().execute(&mut *tx).await?;
                }
                let mut b = sqlx::QueryBuilder::<$db>::new("select id from predefined_messages where ");
                Self::push_predefined_target(&mut b, scope);
                let stored: Vec<(i64,)> = b.build_query_as().fetch_all(&mut *tx).await?;
                let stored: Vec<PredefinedId> = stored.into_iter().map(|(id,)| PredefinedId(id)).collect();
                if !is_complete_order(&stored, ids) {
                    tx.rollback().await?;
                    return Ok(ReorderOutcome::Incomplete);
                }
                tx.commit().await?;
                Ok(ReorderOutcome::Reordered)
            }

            // --- sites and customer identity ---

            async fn create_site(&self, site: NewSite) -> StoreResult<$crate::domain::site::Site> {
                let row: SiteRow = sqlx::query_as(&format!(
                    "insert into sites (name, site_key, allowed_origins, default_queue_id, identity_secret, \
                     require_verified, allow_customer_attachments, transcript_email, created_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {SITE_COLUMNS}"
                ))
                .bind(&site.name)
                .bind(&site.key)
                .bind(join_origins(&site.allowed_origins))
                .bind(site.default_queue.0)
                .bind(&site.identity_secret)
                .bind(flag(site.require_verified))
                .bind(flag(site.allow_customer_attachments))
                .bind(flag(site.transcript_email))
                .bind(site.now)
                .fetch_one(&self.pool)
                .await?;
                Ok(row.into_site())
            }

            async fn list_sites(&self) -> StoreResult<Vec<$crate::domain::site::Site>> {
                let rows: Vec<SiteRow> =
                    sqlx::query_as(&format!("select {SITE_COLUMNS} from sites order by id"))
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(SiteRow::into_site).collect())
            }

            async fn site(&self, id: $crate::domain::ids::SiteId) -> StoreResult<Option<$crate::domain::site::Site>> {
                let row: Option<SiteRow> =
                    sqlx::query_as(&format!("select {SITE_COLUMNS} from sites where id = $1"))
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(SiteRow::into_site))
            }

            async fn site_by_key(&self, key: &str) -> StoreResult<Option<$crate::domain::site::Site>> {
                let row: Option<SiteRow> =
                    sqlx::query_as(&format!("select {SITE_COLUMNS} from sites where site_key = $1"))
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(SiteRow::into_site))
            }

            async fn update_site(&self, id: $crate::domain::ids::SiteId, update: &SiteUpdate) -> StoreResult<Option<$crate::domain::site::Site>> {
                // One statement, so two supervisors editing different fields
                // at once cannot undo each other's change.
                let row: Option<SiteRow> = sqlx::query_as(&format!(
                    "update sites set name = coalesce($2, name), \
                     allowed_origins = coalesce($3, allowed_origins), \
                     default_queue_id = coalesce($4, default_queue_id), \
                     require_verified = coalesce($5, require_verified), \
                     allow_customer_attachments = coalesce($6, allow_customer_attachments), \
                     transcript_email = coalesce($7, transcript_email) \
                     where id = $1 returning {SITE_COLUMNS}"
                ))
                .bind(id.0)
                .bind(update.name.as_deref())
                .bind(update.allowed_origins.as_deref().map(join_origins))
                .bind(update.default_queue.map(|q| q.0))
                .bind(update.require_verified.map(flag))
                .bind(update.allow_customer_attachments.map(flag))
                .bind(update.transcript_email.map(flag))
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(SiteRow::into_site))
            }

            async fn set_site_secret(&self, id: $crate::domain::ids::SiteId, secret: &str) -> StoreResult<Option<$crate::domain::site::Site>> {
                let row: Option<SiteRow> = sqlx::query_as(&format!(
                    "update sites set identity_secret = $2 where id = $1 returning {SITE_COLUMNS}"
                ))
                .bind(id.0)
                .bind(secret)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(SiteRow::into_site))
            }

            async fn create_customer_chats(
                &self,
                chats: &[NewCustomerChat],
            ) -> StoreResult<Vec<ConversationRecord>> {
                if chats.is_empty() {
                    return Ok(Vec::new());
                }
                self.create_rows(chats).await
            }

            async fn customer_variables(&self, id: &ConversationId) -> StoreResult<Vec<$crate::domain::customer::CustomerVariable>> {
                let rows: Vec<VariableRow> = sqlx::query_as(
                    "select name, value, verified from customer_variables \
                     where conversation_id = $1 order by position, name",
                )
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(VariableRow::into_variable).collect())
            }

            async fn site_of_conversation(&self, id: &ConversationId) -> StoreResult<Option<$crate::domain::site::Site>> {
                let row: Option<SiteRow> = sqlx::query_as(&format!(
                    "select {SITE_COLUMNS} from sites \
                     where id = (select site_id from conversations where id = $1)"
                ))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(SiteRow::into_site))
            }

            // --- transcripts and chat log ---

            async fn search_conversations(&self, filter: &ConversationFilter) -> StoreResult<Vec<ConversationSummary>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "select {SUMMARY_COLUMNS} from conversations c join queues q on q.id = c.queue_id where 1 = 1"
                ));
                if let Some(queue) = filter.queue {
                    query.push(" and c.queue_id = ").push_bind(queue.0);
                }
                if let Some(agent) = filter.agent {
                    query
                        .push(" and exists (select 1 from conversation_agents a where a.conversation_id = c.id and a.agent_id = ")
                        .push_bind(agent.0)
                        .push(")");
                }
                if let Some(customer) = &filter.customer {
                    let pattern = contains_pattern(customer);
                    query
                        .push(" and (lower(c.customer_name) like ")
                        .push_bind(pattern.clone())
                        .push(" escape '\\' or lower(c.customer_email) like ")
                        .push_bind(pattern)
                        .push(" escape '\\')");
                }
                if let Some(text) = &filter.text {
                    query
                        .push(" and exists (select 1 from events e where e.conversation_id = c.id \
                               and e.kind = 'message' and lower(e.body) like ")
                        .push_bind(contains_pattern(text))
                        .push(" escape '\\')");
                }
                if let Some(any) = &filter.any {
                    let pattern = contains_pattern(any);
                    query
                        .push(" and (lower(c.customer_name) like ")
                        .push_bind(pattern.clone())
                        .push(" escape '\\' or lower(c.customer_email) like ")
                        .push_bind(pattern.clone())
                        .push(" escape '\\' or exists (select 1 from events e where e.conversation_id = c.id \
                               and e.kind = 'message' and lower(e.body) like ")
                        .push_bind(pattern)
                        .push(" escape '\\'))");
                }
                if let Some(from) = filter.from {
                    query.push(" and c.created_at >= ").push_bind(from);
                }
                if let Some(to) = filter.to {
                    query.push(" and c.created_at < ").push_bind(to);
                }
                if !filter.states.is_empty() {
                    query.push(" and c.state in (");
                    let mut states = query.separated(", ");
                    for state in &filter.states {
                        states.push_bind(state.as_str());
                    }
                    states.push_unseparated(")");
                }
                if let Some((created_at, id)) = &filter.before {
                    query
                        .push(" and (c.created_at < ")
                        .push_bind(*created_at)
                        .push(" or (c.created_at = ")
                        .push_bind(*created_at)
                        .push(" and c.id < ")
                        .push_bind(id.0.clone())
                        .push("))");
                }
                query
                    .push(" order by c.created_at desc, c.id desc limit ")
                    .push_bind(filter.limit);
                let rows: Vec<SummaryRow> = query.build_query_as().fetch_all(&self.pool).await?;
                self.summaries_from_rows(rows).await
            }

            async fn conversation_summary(&self, id: &ConversationId) -> StoreResult<Option<ConversationSummary>> {
                let row: Option<SummaryRow> = sqlx::query_as(&format!(
                    "select {SUMMARY_COLUMNS} from conversations c join queues q on q.id = c.queue_id where c.id = $1"
                ))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(self.summaries_from_rows(vec![row]).await?.pop())
            }

            async fn claim_transcript_email(&self, id: &ConversationId, now: i64, min_interval_ms: i64, max_sends: i64) -> StoreResult<bool> {
                // A single conditional upsert: the row lock (Postgres) or the
                // single writer (SQLite) makes check and count one step.
                let claimed: Option<(i64,)> = sqlx::query_as(
                    "insert into transcript_emails (conversation_id, sent, last_at) values ($1, 1, $2) \
                     on conflict (conversation_id) do update set sent = transcript_emails.sent + 1, \
                     last_at = excluded.last_at \
                     where transcript_emails.sent < $3 and transcript_emails.last_at <= $4 \
                     returning sent",
                )
                .bind(id.as_str())
                .bind(now)
                .bind(max_sends)
                .bind(now - min_interval_ms)
                .fetch_optional(&self.pool)
                .await?;
                Ok(claimed.is_some())
            }

            async fn claim_automatic_transcript(&self, id: &ConversationId, now: i64) -> StoreResult<bool> {
                let inserted = sqlx::query(
                    "insert into transcript_auto_emails (conversation_id, sent_at) values ($1, $2) \
                     on conflict (conversation_id) do nothing",
                )
                .bind(id.as_str())
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(inserted.rows_affected() == 1)
            }

            // --- attachments ---

            async fn create_attachments(&self, attachments: &[NewAttachment]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                for a in attachments {
                    let (uploader_kind, uploader_id) = uploader_columns(a.uploader);
                    sqlx::query(
                        "insert into attachments (id, conversation_id, uploader_kind, uploader_id, name, \
                         content_type, size, sha256, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(a.id.as_str())
                    .bind(a.conversation.as_str())
                    .bind(uploader_kind)
                    .bind(uploader_id)
                    .bind(&a.name)
                    .bind(&a.content_type)
                    .bind(a.size)
                    .bind(&a.sha256)
                    .bind(a.created_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn attachment(&self, id: &AttachmentId) -> StoreResult<Option<AttachmentRecord>> {
                let row: Option<AttachmentRow> = sqlx::query_as(&format!(
                    "select {ATTACHMENT_COLUMNS} from attachments where id = $1"
                ))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(AttachmentRow::into_record))
            }

            async fn attachments(&self, ids: &[AttachmentId]) -> StoreResult<Vec<AttachmentRecord>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut builder = sqlx::QueryBuilder::<$db>::new(format!(
                    "select {ATTACHMENT_COLUMNS} from attachments where id in ("
                ));
                let mut list = builder.separated(", ");
                for id in ids {
                    list.push_bind(id.as_str().to_owned());
                }
                builder.push(")");
                let rows: Vec<AttachmentRow> = builder.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(AttachmentRow::into_record).collect())
            }

            async fn conversation_attachments(&self, id: &ConversationId) -> StoreResult<Vec<AttachmentRecord>> {
                let rows: Vec<AttachmentRow> = sqlx::query_as(&format!(
                    "select {ATTACHMENT_COLUMNS} from attachments where conversation_id = $1 \
                     order by created_at, id"
                ))
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(AttachmentRow::into_record).collect())
            }

            async fn took_part(&self, id: &ConversationId, agent: UserId) -> StoreResult<bool> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "select agent_id from conversation_agents where conversation_id = $1 and agent_id = $2",
                )
                .bind(id.as_str())
                .bind(agent.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.is_some())
            }
        }

        impl $store {
            /// Appends the condition selecting the messages of one scope and target.
            fn push_predefined_target(
                b: &mut sqlx::QueryBuilder<'_, $db>,
                scope: $crate::domain::predefined::Scope,
            ) {
                use $crate::domain::predefined::Scope;
                b.push("scope = ").push_bind(scope.kind().as_str());
                match scope {
                    Scope::Everyone => {}
                    Scope::Queue(queue) => {
                        b.push(" and queue_id = ").push_bind(queue.0);
                    }
                    Scope::Agent(agent) | Scope::Personal(agent) => {
                        b.push(" and agent_id = ").push_bind(agent.0);
                    }
                }
            }
        }
    };
}

pub(crate) use impl_sql_store;
