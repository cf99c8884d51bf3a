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
//! (docs/performance.md). A batch starts next to one in flight only once it
//! has [`MIN_PARALLEL_BATCH`] events; a smaller one waits for the commit in
//! flight as before, so at low rates batches stay as big (and commits as
//! few) as with one writer. Batches in flight together may commit in any
//! order. That is safe because a conversation never has two events in
//! flight: its actor waits for each commit before it numbers the next event.
//!
//! [`Store::concurrent_commits`]: crate::store::Store::concurrent_commits

use crate::store::{DynStore, NewEvent, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

/// Most events committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Smallest batch worth a transaction next to one already in flight.
const MIN_PARALLEL_BATCH: usize = 64;
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
    let slots_total = store.concurrent_commits().max(1);
    let slots = Arc::new(Semaphore::new(slots_total));
    // Signalled whenever a commit finishes.
    let finished = Arc::new(Notify::new());
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
        loop {
            while events.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok((event, reply)) => {
                        events.push(event);
                        replies.push(reply);
                    }
                    Err(_) => break,
                }
            }
            let in_flight = slots_total - slots.available_permits() - 1;
            if in_flight == 0 || events.len() >= MIN_PARALLEL_BATCH || events.len() >= MAX_BATCH {
                break;
            }
            // Small, and another commit is running: let the batch grow
            // until that commit ends (or it is big enough to go alongside).
            tokio::select! {
                _ = finished.notified() => break,
                next = rx.recv() => match next {
                    Some((event, reply)) => {
                        events.push(event);
                        replies.push(reply);
                    }
                    None => break,
                },
            }
        }
        let store = store.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            let result = store.append_events(&events).await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, batch = events.len(), "group commit failed");
            }
            for reply in replies {
                let _ = reply.send(result.clone());
            }
            drop(slot);
            finished.notify_one();
        });
    }
}
