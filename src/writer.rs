//! The chat-log writer: conversation actors hand it an event and wait for
//! its commit; events of every conversation are group-committed
//! (`crate::group_commit`) in one multi-row insert per batch. Chat ends
//! (the final event and the conversation's closing, `Store::finish_conversations`)
//! are group-committed the same way, in their own batches: in a burst,
//! thousands of chats end within seconds, and a statement and a commit each
//! was the largest cost of a chat on Postgres (docs/performance.md, S3).
//!
//! Up to [`Store::concurrent_commits`] batches commit at once (one on
//! SQLite's single writer, a few on Postgres): one Postgres backend
//! inserting 512-row batches back to back tops out near 20k rows/s
//! (docs/performance.md). Batches in flight together may commit in any
//! order. That is safe because a conversation never has two events in
//! flight: its actor waits for each commit before it numbers the next event.
//!
//! [`Store::concurrent_commits`]: crate::store::Store::concurrent_commits

use crate::domain::conversation::ConversationState;
use crate::domain::ids::UserId;
use crate::group_commit::{isolating_refusals, Batching, GroupCommit};
use crate::store::{DynStore, NewEvent, StoreError};
use std::future::Future;
use std::pin::Pin;

/// Most events committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Smallest batch worth a transaction next to one already in flight.
const MIN_PARALLEL_BATCH: usize = 64;
/// Events that may wait for the writer before senders feel backpressure.
const QUEUE_CAPACITY: usize = 8192;
/// Most chat ends committed in one statement.
const MAX_ENDS: usize = 256;
/// Chat ends that may wait before actors feel backpressure.
const ENDS_CAPACITY: usize = 4096;

/// What a chat's end did: its final state and the agents who were in it,
/// or None if it was already closed.
pub type Finished = Option<(ConversationState, Vec<UserId>)>;

/// Handle to the writer task.
#[derive(Clone)]
pub struct CommitWriter {
    group: GroupCommit<NewEvent, ()>,
    ends: GroupCommit<NewEvent, Result<Finished, StoreError>>,
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
        let events_store = store.clone();
        let group =
            GroupCommit::spawn("chat-log writer", batching, move |events: Vec<NewEvent>| {
                let store = events_store.clone();
                async move {
                    store.append_events(&events).await?;
                    Ok(vec![(); events.len()])
                }
            });
        let end_batching = Batching {
            max_batch: MAX_ENDS,
            queue_capacity: ENDS_CAPACITY,
            ..batching
        };
        // A chat's end refused for its own reason (its seq taken) must not
        // fail the other chats ending in the same batch.
        let ends = GroupCommit::spawn("chat ends", end_batching, move |events: Vec<NewEvent>| {
            let store = store.clone();
            async move { isolating_refusals(&store, &events, finish_chats).await }
        });
        Self { group, ends }
    }

    /// Stores `event` durably. Returns only after the commit (or its failure).
    pub async fn commit(&self, event: NewEvent) -> Result<(), StoreError> {
        self.group.submit(event).await
    }

    /// Appends a chat's final event and closes the chat
    /// (`Store::finish_conversations`). Returns only after the commit. A
    /// chat has at most one end in flight: its actor waits for it.
    pub async fn finish(&self, event: NewEvent) -> Result<Finished, StoreError> {
        self.ends.submit(event).await?
    }
}

fn finish_chats<'a>(
    store: &'a DynStore,
    events: &'a [NewEvent],
) -> Pin<Box<dyn Future<Output = Result<Vec<Finished>, StoreError>> + Send + 'a>> {
    store.finish_conversations(events)
}
