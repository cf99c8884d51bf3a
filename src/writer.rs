//! Group commit: one task gathers chat-log events of every conversation
//! into batches.
//!
//! Conversation actors hand it an event and wait for the commit. While the
//! store's transactions are in flight, new events queue up; the next
//! transaction takes all of them (up to [`MAX_BATCH`]) in one multi-row
//! insert. Durability thus costs one round trip per batch, not per message.
//!
//! Up to [`Store::concurrent_commits`] batches commit at once (one on
//! SQLite's single writer, a few on Postgres): one Postgres backend inserting
//! 512-row batches back to back tops out near 20k rows/s
//! (docs/performance.md). Batches in flight together may commit in any
//! order. That is safe because a conversation never has two events in
//! flight: its actor waits for each commit before it numbers the next event.
//!
//! [`Store::concurrent_commits`]: crate::store::Store::concurrent_commits

use crate::store::{DynStore, NewEvent, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most events committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Events that may wait for the writer before senders feel backpressure.
const QUEUE_CAPACITY: usize = 8192;

type Request = (NewEvent, oneshot::Sender<Result<(), StoreError>>);

/// Handle to the writer task.
#[derive(Clone)]
pub struct CommitWriter {
    tx: mpsc::Sender<Request>,
}

impl CommitWriter {
    /// Starts the writer task; it ends when every handle is dropped.
    pub fn spawn(store: DynStore) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// Stores `event` durably. Returns only after the commit (or its failure).
    pub async fn commit(&self, event: NewEvent) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?
    }
}

async fn run(store: DynStore, mut rx: mpsc::Receiver<Request>) {
    let slots = Arc::new(Semaphore::new(store.concurrent_commits().max(1)));
    loop {
        // A free slot first: while every slot is busy, events pile up in the
        // channel and the next batch takes them all.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some((event, reply)) = rx.recv().await else {
            return;
        };
        let mut events = vec![event];
        let mut replies = vec![reply];
        while events.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((event, reply)) => {
                    events.push(event);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            let result = store.append_events(&events).await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, batch = events.len(), "group commit failed");
            }
            for reply in replies {
                let _ = reply.send(result.clone());
            }
            drop(slot);
        });
    }
}
