//! Starting chats in batches: every `POST /api/chats` hands its new chat to
//! one group-commit task (`crate::group_commit`), which stores all the chats
//! waiting at that moment in one statement. In a burst of joins, a
//! statement and a commit per chat was the largest single cost of a chat on
//! Postgres (docs/performance.md, S3).
//!
//! One chat must not fail the others of its batch: if a batch is refused
//! for what a chat refers to (its site deleted a moment ago: a foreign key)
//! rather than for the store being unreachable, each chat of it is tried
//! alone, so only that one gets the error.

use crate::group_commit::{isolating_refusals, Batching, GroupCommit};
use crate::store::{ConversationRecord, DynStore, NewCustomerChat, StoreError};
use std::future::Future;
use std::pin::Pin;

/// Most chats created in one statement.
const MAX_BATCH: usize = 256;
/// Smallest batch worth a transaction next to one already in flight.
const MIN_PARALLEL_BATCH: usize = 32;
/// Chats that may wait before `POST /api/chats` feels backpressure.
const QUEUE_CAPACITY: usize = 4096;

/// Handle to the chat-creation task.
#[derive(Clone)]
pub struct ChatCreator {
    group: GroupCommit<NewCustomerChat, Result<ConversationRecord, StoreError>>,
}

impl ChatCreator {
    /// Starts the task; it ends when every handle is dropped.
    pub fn spawn(store: DynStore) -> Self {
        let batching = Batching {
            max_batch: MAX_BATCH,
            min_parallel_batch: MIN_PARALLEL_BATCH,
            queue_capacity: QUEUE_CAPACITY,
            parallel: store.concurrent_commits(),
        };
        let group = GroupCommit::spawn(
            "chat creation",
            batching,
            move |chats: Vec<NewCustomerChat>| {
                let store = store.clone();
                async move { isolating_refusals(&store, &chats, create_chats).await }
            },
        );
        Self { group }
    }

    /// Stores a new chat, its customer's data and its `queued` event.
    /// Returns only after the commit (or its failure).
    pub async fn create(&self, chat: NewCustomerChat) -> Result<ConversationRecord, StoreError> {
        self.group.submit(chat).await?
    }
}

fn create_chats<'a>(
    store: &'a DynStore,
    chats: &'a [NewCustomerChat],
) -> Pin<Box<dyn Future<Output = Result<Vec<ConversationRecord>, StoreError>> + Send + 'a>> {
    store.create_customer_chats(chats)
}
