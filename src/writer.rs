//! Group commit: one task writes chat-log events for every conversation.
//!
//! Conversation actors hand it an event and wait for the commit. While one
//! transaction is in flight, new events queue up; the next transaction takes
//! all of them (up to [`MAX_BATCH`]) in one multi-row insert. Durability thus
//! costs one round trip per batch, not per message.

use crate::store::{DynStore, NewEvent, StoreError};
use tokio::sync::{mpsc, oneshot};

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
    let mut events = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some((event, reply)) = rx.recv().await {
        events.push(event);
        replies.push(reply);
        while events.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((event, reply)) => {
                    events.push(event);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let result = store.append_events(&events).await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, batch = events.len(), "group commit failed");
        }
        for reply in replies.drain(..) {
            let _ = reply.send(result.clone());
        }
        events.clear();
    }
}
