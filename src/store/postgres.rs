//! The production store: PostgreSQL.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Postgres implementation of [`super::Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
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
        Ok(Self { pool })
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
        let n = events.len();
        let mut conversation = Vec::with_capacity(n);
        let mut seq = Vec::with_capacity(n);
        let mut public_seq = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut audience = Vec::with_capacity(n);
        let mut author_kind = Vec::with_capacity(n);
        let mut author_id = Vec::with_capacity(n);
        let mut author_name = Vec::with_capacity(n);
        let mut body = Vec::with_capacity(n);
        let mut data = Vec::with_capacity(n);
        let mut sender = Vec::with_capacity(n);
        let mut client_msg_id = Vec::with_capacity(n);
        let mut created_at = Vec::with_capacity(n);
        for e in events {
            let (a_kind, a_id, a_name) = super::sql::author_columns(&e.author);
            conversation.push(e.conversation.as_str());
            seq.push(e.seq);
            public_seq.push(e.public_seq);
            kind.push(e.kind.as_str());
            audience.push(e.audience.as_str());
            author_kind.push(a_kind);
            author_id.push(a_id);
            author_name.push(a_name);
            body.push(e.body.as_str());
            data.push(e.data.as_deref());
            sender.push(e.author.sender_key());
            client_msg_id.push(e.client_msg_id.as_deref());
            created_at.push(e.created_at);
        }
        sqlx::query(
            "insert into events (conversation_id, seq, public_seq, kind, audience, author_kind, \
             author_id, author_name, body, data, sender, client_msg_id, created_at) \
             select * from unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], \
             $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
             $13::int8[]) \
             on conflict (conversation_id, sender, client_msg_id) do nothing",
        )
        .bind(conversation)
        .bind(seq)
        .bind(public_seq)
        .bind(kind)
        .bind(audience)
        .bind(author_kind)
        .bind(author_id)
        .bind(author_name)
        .bind(body)
        .bind(data)
        .bind(sender)
        .bind(client_msg_id)
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

super::sql::impl_sql_store!(PgStore, sqlx::Postgres);
super::admin::impl_admin_store!(PgStore, sqlx::Postgres);
