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

super::sql::impl_sql_store!(SqliteStore, sqlx::Sqlite);
super::admin::impl_admin_store!(SqliteStore, sqlx::Sqlite);
