//! The generator's own SQL: it checks the run's results in the database the
//! server wrote (row counts against what was acknowledged, gap-free `seq`
//! and `public_seq`, persisted routing decisions) and finds the Postgres
//! backends whose CPU time belongs to the run. A run's conversations are
//! recognised by their customer name prefix (`lg-<run>-`).

use crate::error::Result;
use sqlx::{PgPool, SqlitePool};

/// A read connection to the server's database.
pub enum Db {
    Pg(PgPool),
    Lite(SqlitePool),
}

/// Portable SQL run on either pool, binding the run's name pattern once.
macro_rules! scalar {
    ($db:expr, $sql:expr, $pattern:expr) => {
        match $db {
            Db::Pg(pool) => {
                sqlx::query_scalar::<_, i64>($sql)
                    .bind($pattern)
                    .fetch_one(pool)
                    .await?
            }
            Db::Lite(pool) => {
                sqlx::query_scalar::<_, i64>($sql)
                    .bind($pattern)
                    .fetch_one(pool)
                    .await?
            }
        }
    };
}

const RUN_EVENTS: &str = "from events e join conversations c on c.id = e.conversation_id \
                          where c.customer_name like $1";

/// What the database holds for one run.
#[derive(Debug, Default)]
pub struct Stored {
    pub conversations: i64,
    pub messages: i64,
    /// Conversations whose `seq` is not exactly 1..=n.
    pub seq_gaps: i64,
    /// Conversations whose `public_seq` is not exactly 1..=n.
    pub public_seq_gaps: i64,
    pub offered: i64,
    pub accepted: i64,
    pub rejected: i64,
}

impl Db {
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(if url.starts_with("postgres") {
            Db::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await?,
            )
        } else {
            Db::Lite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await?,
            )
        })
    }

    /// Reads the run's rows; `tag` is the customer-name prefix.
    pub async fn stored(&self, tag: &str) -> Result<Stored> {
        let pattern = format!("{tag}%");
        let p = pattern.as_str();
        let conversations = scalar!(
            self,
            "select count(*) from conversations where customer_name like $1",
            p
        );
        let messages = scalar!(
            self,
            &format!("select count(*) {RUN_EVENTS} and e.kind = 'message'"),
            p
        );
        let seq_gaps = scalar!(
            self,
            &format!(
                "select count(*) from (select e.conversation_id, count(*) as n, min(e.seq) as lo, \
                 max(e.seq) as hi {RUN_EVENTS} group by e.conversation_id) t \
                 where t.lo <> 1 or t.hi <> t.n"
            ),
            p
        );
        let public_seq_gaps = scalar!(
            self,
            &format!(
                "select count(*) from (select e.conversation_id, count(*) as n, min(e.public_seq) as lo, \
                 max(e.public_seq) as hi {RUN_EVENTS} and e.public_seq is not null \
                 group by e.conversation_id) t where t.lo <> 1 or t.hi <> t.n"
            ),
            p
        );
        let routing = |kind: &str| {
            format!(
                "select count(*) from routing_events r join conversations c on c.id = r.conversation_id \
                 where c.customer_name like $1 and r.kind = '{kind}'"
            )
        };
        let offered = scalar!(self, &routing("offered"), p);
        let accepted = scalar!(self, &routing("accepted"), p);
        let rejected = scalar!(self, &routing("rejected"), p);
        Ok(Stored {
            conversations,
            messages,
            seq_gaps,
            public_seq_gaps,
            offered,
            accepted,
            rejected,
        })
    }

    /// Reads a reference relay's rows (`relay_messages`, Postgres only):
    /// messages and seq gaps; a relay has no public_seq, conversations or
    /// routing. `tag` is the conversation-id prefix.
    pub async fn stored_relay(&self, tag: &str) -> Result<Stored> {
        let pattern = format!("{tag}%");
        let p = pattern.as_str();
        let messages = scalar!(
            self,
            "select count(*) from relay_messages where conversation_id like $1",
            p
        );
        let seq_gaps = scalar!(
            self,
            "select count(*) from (select conversation_id, count(*) as n, min(seq) as lo, \
             max(seq) as hi from relay_messages where conversation_id like $1 \
             group by conversation_id) t where t.lo <> 1 or t.hi <> t.n",
            p
        );
        Ok(Stored {
            messages,
            seq_gaps,
            ..Stored::default()
        })
    }

    /// Postgres processes whose CPU counts toward the run: the backends of
    /// this database (the server's pool) and the shared WAL writer,
    /// checkpointer and background writer. Other databases on the same
    /// cluster (other engineers' tests) are left out. Empty on SQLite.
    pub async fn postgres_pids(&self) -> Result<Vec<u32>> {
        let Db::Pg(pool) = self else {
            return Ok(Vec::new());
        };
        let pids: Vec<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity \
             where (datname = current_database() and pid <> pg_backend_pid()) \
             or backend_type in ('walwriter', 'checkpointer', 'background writer')",
        )
        .fetch_all(pool)
        .await?;
        Ok(pids
            .into_iter()
            .filter_map(|p| u32::try_from(p).ok())
            .collect())
    }
}
