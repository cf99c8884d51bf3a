//! Records of predefined messages passed across the store boundary, and the
//! mapping from their rows. The SQL itself is in [`super::sql`].

use crate::domain::ids::{PredefinedId, QueueId, UserId};
use crate::domain::predefined::{Body, Heading, Scope, ScopeKind};

/// A predefined message to create. Heading and body are already validated;
/// its position is the end of its scope's list.
#[derive(Debug, Clone)]
pub struct NewPredefined {
    pub heading: Heading,
    pub body: Body,
    pub scope: Scope,
    pub created_by: UserId,
    pub now: i64,
}

/// A stored predefined message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredefinedRecord {
    pub id: PredefinedId,
    pub heading: String,
    pub body: String,
    pub scope: Scope,
    pub position: i64,
    pub created_by: UserId,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which shared messages a supervisor lists; every field narrows the list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedFilter {
    /// Never [`ScopeKind::Personal`]: the shared list has no personal messages.
    pub kind: Option<ScopeKind>,
    pub queue: Option<QueueId>,
    pub agent: Option<UserId>,
}

/// The answer to a reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReorderOutcome {
    Reordered,
    /// The ids were not exactly the messages of that scope; nothing changed.
    Incomplete,
}

/// The columns every predefined-message query selects, in [`PredefinedRow`] order.
pub(super) const PREDEFINED_COLUMNS: &str =
    "id, heading, body, scope, queue_id, agent_id, position, created_by, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(super) struct PredefinedRow {
    id: i64,
    heading: String,
    body: String,
    scope: String,
    queue_id: Option<i64>,
    agent_id: Option<i64>,
    position: i64,
    created_by: i64,
    created_at: i64,
    updated_at: i64,
}

impl PredefinedRow {
    /// None for a row whose scope columns do not fit together. The check
    /// constraint rules that out; if it happens anyway the row is dropped
    /// rather than shown to a wider audience than intended.
    pub(super) fn into_record(self) -> Option<PredefinedRecord> {
        let Some(scope) = Scope::from_columns(&self.scope, self.queue_id, self.agent_id) else {
            tracing::warn!(
                id = self.id,
                "predefined message with inconsistent scope skipped"
            );
            return None;
        };
        Some(PredefinedRecord {
            id: PredefinedId(self.id),
            heading: self.heading,
            body: self.body,
            scope,
            position: self.position,
            created_by: UserId(self.created_by),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Rows to records, dropping inconsistent ones.
pub(super) fn into_records(rows: Vec<PredefinedRow>) -> Vec<PredefinedRecord> {
    rows.into_iter()
        .filter_map(PredefinedRow::into_record)
        .collect()
}
