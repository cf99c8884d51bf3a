//! The chat-log writer: conversation actors hand it an event and wait for
//! its commit; events of every conversation are group-committed
//! (`crate::group_commit`) in one multi-row insert per batch.
//!
//! Up to [`Store::concurrent_commits`] batches commit at once (one on
//! SQLite's single writer, a few on Postgres): one Postgres backend
//! inserting 512-row batches back to back tops out near 20k rows/s
//! (docs/performance.md). Batches in flight together may commit in any
//! order. That is safe because a conversation never has two events in
//! flight: its actor waits for each commit before it numbers the next event.
//!
//! [`Store::concurrent_commits`]: crate::store::Store::concurrent_commits

use crate::group_commit::{Batching, GroupCommit};
use crate::store::{DynStore, NewEvent, StoreError};

/// Most events committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Smallest batch worth a transaction next to one already in flight.
const MIN_PARALLEL_BATCH: usize = 64;
/// Events that may wait for the writer before senders feel backpressure.
const QUEUE_CAPACITY: usize = 8192;

/// Handle to the writer task.
#[derive(Clone)]
pub struct CommitWriter {
    group: GroupCommit<NewEvent, ()>,
}

impl CommitWriter {
    /// Starts the writer task; it ends when every handle is dropped.
    pub fn spawn(store: DynStore) -> Self {
        let batching = Batching {
            max_batch: MAX_BATCH,
            min_parallel_batch: MIN_PARALLEL_BATCH,
            queue_capacity: QUEUE_CAPACITY,
            parallel: store.concurrent_commits(),
        };
        let group =
            GroupCommit::spawn("chat-log writer", batching, move |events: Vec<NewEvent>| {
                let store = store.clone();
                async move {
                    store.append_events(&events).await?;
                    Ok(vec![(); events.len()])
                }
            });
        Self { group }
    }

    /// Stores `event` durably. Returns only after the commit (or its failure).
    pub async fn commit(&self, event: NewEvent) -> Result<(), StoreError> {
        self.group.submit(event).await
    }
}
