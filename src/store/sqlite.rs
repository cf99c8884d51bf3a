//! The embedded zero-config store: SQLite in WAL mode with full fsync, so an
//! acknowledged message survives a crash just as on Postgres.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

/// SQLite implementation of [`super::Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            // SQLite has one writer; more connections only add lock waits.
            // An in-memory database exists per connection, so it needs exactly one.
            .max_connections(if in_memory { 1 } else { 4 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

impl SqliteStore {
    /// SQLite has one writer: concurrent commits would only wait for its lock.
    const CONCURRENT_COMMITS: usize = 1;

    /// One autocommitted multi-row insert of events without attachments
    /// (the group-commit writer's batches). SQLite prepares in-process, so
    /// a statement per batch size is cheap; only small ones are cached.
    async fn append_rows(&self, events: &[super::NewEvent]) -> Result<(), sqlx::Error> {
        Self::events_insert(events)
            .build()
            .persistent(events.len() <= super::sql::MAX_CACHED_INSERT_ROWS)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl SqliteStore {
    /// Conditional offers (see `Store::try_offers`) in one transaction, a
    /// statement each: SQLite runs them in-process, so a statement costs
    /// microseconds and only the commit is worth sharing.
    async fn offer_rows(
        &self,
        offers: &[(ConversationId, UserId, i64)],
        now: i64,
    ) -> StoreResult<Vec<Option<i64>>> {
        let mut tx = self.pool.begin().await?;
        let mut results = Vec::with_capacity(offers.len());
        for (id, agent, version) in offers {
            let updated: Option<(i64,)> = sqlx::query_as(
                "update conversations set state = 'offered', offered_to = $2, version = version + 1 \
                 where id = $1 and state = 'waiting' and version = $3 returning version",
            )
            .bind(id.as_str())
            .bind(agent.0)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
            if updated.is_some() {
                Self::record_routing(&mut tx, id, RoutingEventKind::Offered, Some(*agent), now)
                    .await?;
            }
            results.push(updated.map(|(v,)| v));
        }
        tx.commit().await?;
        Ok(results)
    }

    /// A batch of new chats (see `Store::create_customer_chats`) in one
    /// transaction, statements each: SQLite runs them in-process, so only
    /// the commit is worth sharing.
    async fn create_rows(
        &self,
        chats: &[super::NewCustomerChat],
    ) -> StoreResult<Vec<ConversationRecord>> {
        let mut tx = self.pool.begin().await?;
        let mut records = Vec::with_capacity(chats.len());
        for chat in chats {
            let c = &chat.conversation;
            let row: ConversationRow = sqlx::query_as(&format!(
                "insert into conversations (id, queue_id, state, version, customer_token_hash, \
                 customer_name, customer_email, created_at, site_id) \
                 values ($1, $2, 'waiting', 1, $3, $4, $5, $6, $7) returning {CONVERSATION_COLUMNS}"
            ))
            .bind(c.id.as_str())
            .bind(c.queue.0)
            .bind(&c.customer_token_hash)
            .bind(&c.customer_name)
            .bind(&c.customer_email)
            .bind(c.now)
            .bind(chat.site.map(|s| s.0))
            .fetch_one(&mut *tx)
            .await?;
            if !chat.variables.is_empty() {
                // At most a few dozen rows (the token's limits), far under
                // the bound-parameter limit.
                let mut builder = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "insert into customer_variables (conversation_id, name, value, verified, position) ",
                );
                builder.push_values(
                    chat.variables.iter().enumerate(),
                    |mut row, (position, v)| {
                        row.push_bind(c.id.0.clone())
                            .push_bind(v.name.clone())
                            .push_bind(v.value.clone())
                            .push_bind(flag(v.verified))
                            .push_bind(position as i32);
                    },
                );
                builder.build().execute(&mut *tx).await?;
            }
            Self::record_routing(&mut tx, &c.id, RoutingEventKind::Queued, None, c.now).await?;
            records.push(row.into_record());
        }
        tx.commit().await?;
        Ok(records)
    }

    /// Ends chats: one transaction, statements each (in-process on SQLite).
    async fn finish_rows(
        &self,
        events: &[super::NewEvent],
    ) -> StoreResult<Vec<Option<(ConversationState, Vec<UserId>)>>> {
        self.finish_in_transaction(events).await
    }

    /// Answers to offers (see `Store::answer_offers`) in one transaction, a
    /// statement each, for the same reason as `offer_rows`.
    async fn answer_rows(
        &self,
        answers: &[OfferAnswer],
        now: i64,
    ) -> StoreResult<Vec<Option<i64>>> {
        let mut tx = self.pool.begin().await?;
        let mut results = Vec::with_capacity(answers.len());
        for a in answers {
            results.push(if a.accept {
                Self::accept_in(&mut tx, &a.chat, a.agent, a.version, now).await?
            } else {
                Self::release_in(
                    &mut tx,
                    &a.chat,
                    a.agent,
                    a.version,
                    RoutingEventKind::Rejected,
                    now,
                )
                .await?
            });
        }
        tx.commit().await?;
        Ok(results)
    }
}

super::sql::impl_sql_store!(SqliteStore, sqlx::Sqlite);
super::admin::impl_admin_store!(SqliteStore, sqlx::Sqlite);
