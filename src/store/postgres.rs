//! The production store: PostgreSQL.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Connections of the router's lane (`PgStore::routing`): one batch in
/// flight at a time, plus one for a decision made while it commits.
const ROUTING_CONNECTIONS: u32 = 2;

/// Postgres implementation of [`super::Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    /// The router's own connections for its batched decisions: in a burst
    /// the shared pool has hundreds of requests queued (chats being
    /// created, customers connecting), and the router, which everyone's
    /// offers wait for, queued behind them for hundreds of milliseconds
    /// per batch (docs/performance.md, S3).
    routing: sqlx::PgPool,
}

impl PgStore {
    /// Connects and runs the Postgres migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // Fail fast when Postgres is down so callers can answer `unavailable`.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let routing = PgPoolOptions::new()
            .max_connections(ROUTING_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(PgConnectOptions::from_str(url)?)
            .await?;
        Ok(Self { pool, routing })
    }
}

impl PgStore {
    /// The group-commit writer's transactions in flight: one backend
    /// inserting back to back tops out near 20k rows/s on our 2-core box
    /// (docs/performance.md); a few in parallel share the fsyncs and use
    /// both cores, while leaving most of the pool to everything else.
    const CONCURRENT_COMMITS: usize = 3;

    /// One autocommitted insert of events without attachments (the
    /// group-commit writer's batches), as one row of arrays: a single
    /// statement for every batch size, prepared and planned once per
    /// connection. A multi-row `VALUES` insert is a different statement per
    /// batch size: cached, sqlx kept up to 100 of them per connection
    /// (+38 MB in one S2 step); uncached, Postgres parsed and planned 13
    /// parameters per row each time, ~90 µs per row, which made the one
    /// writer the bottleneck at 10k msg/s (docs/performance.md).
    async fn append_rows(&self, events: &[super::NewEvent]) -> Result<(), sqlx::Error> {
        let args = EventColumns::of(events).arguments()?;
        sqlx::query_with(
            "insert into events (conversation_id, seq, public_seq, kind, audience, author_kind, \
             author_id, author_name, body, data, sender, client_msg_id, created_at) \
             select * from unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], \
             $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
             $13::int8[]) \
             on conflict (conversation_id, sender, client_msg_id) do nothing",
            args,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl PgStore {
    /// Conditional offers (see `Store::try_offers`) as one autocommitted
    /// statement over arrays: the update and its routing events together.
    /// A statement per offer inside a transaction cost a round trip each,
    /// ~0.5 ms under load, so a 512-offer batch took ~0.5 s while the
    /// router waited (docs/performance.md, S3).
    async fn offer_rows(
        &self,
        offers: &[(ConversationId, UserId, i64)],
        now: i64,
    ) -> StoreResult<Vec<Option<i64>>> {
        let ids: Vec<&str> = offers.iter().map(|(id, _, _)| id.as_str()).collect();
        let agents: Vec<i64> = offers.iter().map(|(_, agent, _)| agent.0).collect();
        let versions: Vec<i64> = offers.iter().map(|(_, _, version)| *version).collect();
        let updated: Vec<(String, i64)> = sqlx::query_as(
            "with input as ( \
               select * from unnest($1::text[], $2::int8[], $3::int8[]) as t(id, agent, version) \
             ), updated as ( \
               update conversations c set state = 'offered', offered_to = input.agent, \
                 version = c.version + 1 \
               from input \
               where c.id = input.id and c.state = 'waiting' and c.version = input.version \
               returning c.id, c.queue_id, c.version, c.offered_to \
             ), logged as ( \
               insert into routing_events (conversation_id, queue_id, kind, agent_id, at) \
               select id, queue_id, 'offered', offered_to, $4 from updated \
             ) \
             select id, version from updated",
        )
        .bind(&ids)
        .bind(&agents)
        .bind(&versions)
        .bind(now)
        .fetch_all(&self.routing)
        .await?;
        Ok(in_order(offers.iter().map(|(id, _, _)| id), updated))
    }

    /// Answers to offers (see `Store::answer_offers`) as one autocommitted
    /// statement, for the same reason as `offer_rows`: the conditional
    /// update, the accepting agents' participation, the rejecting agents'
    /// bar and every routing event.
    async fn answer_rows(
        &self,
        answers: &[OfferAnswer],
        now: i64,
    ) -> StoreResult<Vec<Option<i64>>> {
        let ids: Vec<&str> = answers.iter().map(|a| a.chat.as_str()).collect();
        let agents: Vec<i64> = answers.iter().map(|a| a.agent.0).collect();
        let versions: Vec<i64> = answers.iter().map(|a| a.version).collect();
        let accepts: Vec<bool> = answers.iter().map(|a| a.accept).collect();
        let updated: Vec<(String, i64)> = sqlx::query_as(
            "with input as ( \
               select * from unnest($1::text[], $2::int8[], $3::int8[], $4::bool[]) \
                 as t(id, agent, version, accept) \
             ), updated as ( \
               update conversations c set \
                 state = case when input.accept then 'active' else 'waiting' end, \
                 offered_to = null, version = c.version + 1 \
               from input \
               where c.id = input.id and c.state = 'offered' and c.offered_to = input.agent \
                 and c.version = input.version \
               returning c.id, c.queue_id, c.version, input.agent, input.accept \
             ), joined as ( \
               insert into conversation_agents (conversation_id, agent_id, joined_at) \
               select id, agent, $5 from updated where accept \
               on conflict (conversation_id, agent_id) do update set left_at = null \
             ), barred as ( \
               insert into rejections (conversation_id, agent_id) \
               select id, agent from updated where not accept on conflict do nothing \
             ), logged as ( \
               insert into routing_events (conversation_id, queue_id, kind, agent_id, at) \
               select id, queue_id, case when accept then 'accepted' else 'rejected' end, agent, $5 \
               from updated \
             ) \
             select id, version from updated",
        )
        .bind(&ids)
        .bind(&agents)
        .bind(&versions)
        .bind(&accepts)
        .bind(now)
        .fetch_all(&self.routing)
        .await?;
        Ok(in_order(answers.iter().map(|a| &a.chat), updated))
    }
}

impl PgStore {
    /// A batch of new chats with their customers' data and their `queued`
    /// routing events as one autocommitted statement of arrays (the same
    /// statement for every batch size, prepared once per connection). As a
    /// transaction per chat it was five round trips holding a pooled
    /// connection; in a burst of 10,000 joins those connections were what
    /// every other request queued for (S3). The foreign keys of the two
    /// child inserts are checked at the end of the statement, when the
    /// conversation rows exist.
    async fn create_rows(
        &self,
        chats: &[super::NewCustomerChat],
    ) -> StoreResult<Vec<ConversationRecord>> {
        let n = chats.len();
        let mut ids = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut token_hashes = Vec::with_capacity(n);
        let mut names = Vec::with_capacity(n);
        let mut emails = Vec::with_capacity(n);
        let mut created = Vec::with_capacity(n);
        let mut sites = Vec::with_capacity(n);
        let (mut var_chat, mut var_name, mut var_value, mut var_verified, mut var_position) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for chat in chats {
            let c = &chat.conversation;
            ids.push(c.id.as_str());
            queues.push(c.queue.0);
            token_hashes.push(c.customer_token_hash.as_str());
            names.push(c.customer_name.as_deref());
            emails.push(c.customer_email.as_deref());
            created.push(c.now);
            sites.push(chat.site.map(|s| s.0));
            for (position, v) in chat.variables.iter().enumerate() {
                var_chat.push(c.id.as_str());
                var_name.push(v.name.as_str());
                var_value.push(v.value.as_str());
                var_verified.push(i32::from(v.verified));
                var_position.push(position as i32);
            }
        }
        let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
            "with input as ( \
               select * from unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], \
                 $6::int8[], $7::int8[]) with ordinality \
                 as t(id, queue_id, token_hash, name, email, created_at, site_id, position) \
             ), created as ( \
               insert into conversations (id, queue_id, state, version, customer_token_hash, \
                 customer_name, customer_email, created_at, site_id) \
               select id, queue_id, 'waiting', 1, token_hash, name, email, created_at, site_id \
               from input order by position returning {CONVERSATION_COLUMNS} \
             ), variables as ( \
               insert into customer_variables (conversation_id, name, value, verified, position) \
               select * from unnest($8::text[], $9::text[], $10::text[], $11::int4[], $12::int4[]) \
             ), queued as ( \
               insert into routing_events (conversation_id, queue_id, kind, agent_id, at) \
               select id, queue_id, 'queued', null, created_at from input order by position \
             ) \
             select * from created"
        ))
        .bind(&ids)
        .bind(&queues)
        .bind(&token_hashes)
        .bind(&names)
        .bind(&emails)
        .bind(&created)
        .bind(&sites)
        .bind(&var_chat)
        .bind(&var_name)
        .bind(&var_value)
        .bind(&var_verified)
        .bind(&var_position)
        .fetch_all(&self.pool)
        .await?;
        // `returning` promises no order: put the records in the batch's.
        let mut by_id: std::collections::HashMap<String, ConversationRecord> = rows
            .into_iter()
            .map(|row| {
                let record = row.into_record();
                (record.id.0.clone(), record)
            })
            .collect();
        chats
            .iter()
            .map(|chat| {
                by_id.remove(chat.conversation.id.as_str()).ok_or_else(|| {
                    StoreError::Unavailable("a created chat was not returned".into())
                })
            })
            .collect()
    }
}

impl PgStore {
    /// Ends chats (see `Store::finish_conversations`) as one autocommitted
    /// statement over arrays: closes the conversations, closes their open
    /// participations, stores the end events and the routing events. As a
    /// transaction per chat it was seven round trips, the largest cost of a
    /// chat's end (S3 profile, docs/performance.md). The writes happen only
    /// for chats that were still open (rows of `closed`). Participations
    /// are found by chat only and the open ones told apart by their row
    /// before the update: with `left_at is null` in the condition, Postgres
    /// ANDs in the partial index of *every* open participation (2,000
    /// entries read per end in S3). End events with files (none is made
    /// today) take the transaction, which binds them.
    async fn finish_rows(
        &self,
        events: &[super::NewEvent],
    ) -> StoreResult<Vec<Option<(ConversationState, Vec<UserId>)>>> {
        if events.iter().any(|e| !e.attachments.is_empty()) {
            return self.finish_in_transaction(events).await;
        }
        let args = EventColumns::of(events).arguments()?;
        let closed: Vec<(String, String, Vec<i64>)> = sqlx::query_as_with(
            "with input as ( \
               select * from unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], \
                 $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[], \
                 $12::text[], $13::int8[]) \
                 as t(id, seq, public_seq, kind, audience, author_kind, author_id, author_name, \
                   body, data, sender, client_msg_id, at) \
             ), closed as ( \
               update conversations c set \
                 state = case when c.state = 'active' then 'ended' else 'abandoned' end, \
                 offered_to = null, version = c.version + 1, ended_at = input.at, \
                 ended_by = input.sender \
               from input \
               where c.id = input.id and c.state in ('waiting', 'offered', 'active') \
               returning c.id, c.state, c.queue_id, input.at \
             ), agents as ( \
               update conversation_agents ca set left_at = coalesce(ca.left_at, closed.at) \
               from closed, conversation_agents before \
               where ca.conversation_id = closed.id and before.conversation_id = closed.id \
                 and before.agent_id = ca.agent_id \
               returning ca.conversation_id, ca.agent_id, before.left_at \
             ), event as ( \
               insert into events (conversation_id, seq, public_seq, kind, audience, author_kind, \
                 author_id, author_name, body, data, sender, client_msg_id, created_at) \
               select i.id, i.seq, i.public_seq, i.kind, i.audience, i.author_kind, i.author_id, \
                 i.author_name, i.body, i.data, i.sender, i.client_msg_id, i.at \
               from input i join closed on closed.id = i.id \
               on conflict (conversation_id, sender, client_msg_id) do nothing \
             ), routing as ( \
               insert into routing_events (conversation_id, queue_id, kind, agent_id, at) \
               select id, queue_id, \
                 case when state = 'abandoned' then 'abandoned' else 'ended' end, null, at \
               from closed \
             ) \
             select closed.id, closed.state, \
               coalesce((select array_agg(a.agent_id) from agents a \
                 where a.conversation_id = closed.id and a.left_at is null), '{}') \
             from closed",
            args,
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_id: std::collections::HashMap<String, (ConversationState, Vec<UserId>)> = closed
            .into_iter()
            .map(|(id, state, agents)| {
                let state = ConversationState::parse(&state).unwrap_or(ConversationState::Ended);
                (id, (state, agents.into_iter().map(UserId).collect()))
            })
            .collect();
        Ok(events
            .iter()
            .map(|e| by_id.remove(e.conversation.as_str()))
            .collect())
    }
}

/// Chat-log events as one array per column, for the statements over
/// arrays (one prepared statement for every batch size).
struct EventColumns<'a> {
    conversation: Vec<&'a str>,
    seq: Vec<i64>,
    public_seq: Vec<Option<i64>>,
    kind: Vec<&'static str>,
    audience: Vec<&'static str>,
    author_kind: Vec<&'static str>,
    author_id: Vec<Option<i64>>,
    author_name: Vec<&'a str>,
    body: Vec<&'a str>,
    data: Vec<Option<&'a str>>,
    sender: Vec<String>,
    client_msg_id: Vec<Option<&'a str>>,
    created_at: Vec<i64>,
}

impl<'a> EventColumns<'a> {
    fn of(events: &'a [super::NewEvent]) -> Self {
        let n = events.len();
        let mut c = Self {
            conversation: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            public_seq: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            audience: Vec::with_capacity(n),
            author_kind: Vec::with_capacity(n),
            author_id: Vec::with_capacity(n),
            author_name: Vec::with_capacity(n),
            body: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            sender: Vec::with_capacity(n),
            client_msg_id: Vec::with_capacity(n),
            created_at: Vec::with_capacity(n),
        };
        for e in events {
            let (author_kind, author_id, author_name) = super::sql::author_columns(&e.author);
            c.conversation.push(e.conversation.as_str());
            c.seq.push(e.seq);
            c.public_seq.push(e.public_seq);
            c.kind.push(e.kind.as_str());
            c.audience.push(e.audience.as_str());
            c.author_kind.push(author_kind);
            c.author_id.push(author_id);
            c.author_name.push(author_name);
            c.body.push(e.body.as_str());
            c.data.push(e.data.as_deref());
            c.sender.push(e.author.sender_key());
            c.client_msg_id.push(e.client_msg_id.as_deref());
            c.created_at.push(e.created_at);
        }
        c
    }

    /// The columns as the arguments `$1`…`$13`, in the `events` table's
    /// order (conversation_id, seq, public_seq, kind, audience, author_kind,
    /// author_id, author_name, body, data, sender, client_msg_id,
    /// created_at).
    fn arguments(&self) -> Result<sqlx::postgres::PgArguments, sqlx::Error> {
        use sqlx::Arguments;
        let mut args = sqlx::postgres::PgArguments::default();
        let encode = sqlx::Error::Encode;
        args.add(&self.conversation).map_err(encode)?;
        args.add(&self.seq).map_err(encode)?;
        args.add(&self.public_seq).map_err(encode)?;
        args.add(&self.kind).map_err(encode)?;
        args.add(&self.audience).map_err(encode)?;
        args.add(&self.author_kind).map_err(encode)?;
        args.add(&self.author_id).map_err(encode)?;
        args.add(&self.author_name).map_err(encode)?;
        args.add(&self.body).map_err(encode)?;
        args.add(&self.data).map_err(encode)?;
        args.add(&self.sender).map_err(encode)?;
        args.add(&self.client_msg_id).map_err(encode)?;
        args.add(&self.created_at).map_err(encode)?;
        Ok(args)
    }
}

/// The new version of each requested row, in the request's order; None
/// for a row the conditional update did not change.
fn in_order<'a>(
    requested: impl Iterator<Item = &'a ConversationId>,
    updated: Vec<(String, i64)>,
) -> Vec<Option<i64>> {
    let versions: std::collections::HashMap<String, i64> = updated.into_iter().collect();
    requested
        .map(|id| versions.get(id.as_str()).copied())
        .collect()
}

super::sql::impl_sql_store!(PgStore, sqlx::Postgres);
super::admin::impl_admin_store!(PgStore, sqlx::Postgres);
