//! Group commit: one task gathers requests of many callers into batches and
//! commits each batch in one transaction, so durability costs one round trip
//! per batch instead of one per request.
//!
//! Callers hand it an item and wait for their share of the batch's result.
//! While transactions are in flight, new items queue up; the next
//! transaction takes all of them (up to [`Batching::max_batch`]).
//!
//! Up to `parallel` batches commit at once (one on SQLite's single writer, a
//! few on Postgres). A batch starts next to one in flight only once it has
//! [`Batching::min_parallel_batch`] items; a smaller one waits for the
//! commit in flight, so at low rates batches stay as big (and commits as
//! few) as with one transaction at a time. Batches in flight together may
//! commit in any order: users whose items must commit in order (a
//! conversation's events) wait for each commit before sending the next.
//!
//! Used by the chat-log writer (`crate::writer`) and by chat creation
//! (`crate::chat_creation`).

use crate::store::{DynStore, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

/// How big batches get and how many requests may wait.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Most items committed in one transaction.
    pub max_batch: usize,
    /// Smallest batch worth a transaction next to one already in flight.
    pub min_parallel_batch: usize,
    /// Items that may wait before callers feel backpressure.
    pub queue_capacity: usize,
    /// Transactions in flight at once.
    pub parallel: usize,
}

type Reply<R> = oneshot::Sender<Result<R, StoreError>>;

/// Handle to a group-commit task; it ends when every handle is dropped.
pub struct GroupCommit<T, R> {
    tx: mpsc::Sender<(T, Reply<R>)>,
    what: &'static str,
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            what: self.what,
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the task. `commit` stores a whole batch in one transaction and
    /// returns one result per item, in the batch's order; `what` names the
    /// batches in logs.
    pub fn spawn<F, Fut>(what: &'static str, batching: Batching, commit: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<R>, StoreError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(batching.queue_capacity.max(1));
        tokio::spawn(run(what, batching, Arc::new(commit), rx));
        Self { tx, what }
    }

    /// Stores `item` as part of the next batch. Returns only after the
    /// batch's commit (or its failure).
    pub async fn submit(&self, item: T) -> Result<R, StoreError> {
        let stopped = || StoreError::Unavailable(format!("{} stopped", self.what));
        let (reply, answer) = oneshot::channel();
        self.tx.send((item, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A store call committing a whole batch, one result per item in order.
pub type BatchCall<T, R> =
    for<'a> fn(
        &'a DynStore,
        &'a [T],
    ) -> Pin<Box<dyn Future<Output = Result<Vec<R>, StoreError>> + Send + 'a>>;

/// Commits `items` in one call; if the store refuses the batch for what an
/// item refers to (anything but `Unavailable`: a foreign key, a uniqueness
/// rule), commits each item alone, so only the refused one gets the error
/// and the items batched with it are stored. An unreachable store fails
/// the whole batch, retryable.
pub async fn isolating_refusals<T, R>(
    store: &DynStore,
    items: &[T],
    commit: BatchCall<T, R>,
) -> Result<Vec<Result<R, StoreError>>, StoreError> {
    match commit(store, items).await {
        Ok(results) => Ok(results.into_iter().map(Ok).collect()),
        Err(StoreError::Unavailable(reason)) => Err(StoreError::Unavailable(reason)),
        Err(refused) if items.len() == 1 => Ok(vec![Err(refused)]),
        Err(refused) => {
            tracing::info!(error = %refused, batch = items.len(), "batch refused; committing one by one");
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                let one = commit(store, std::slice::from_ref(item)).await;
                results.push(one.and_then(|mut results| {
                    results.pop().ok_or_else(|| {
                        StoreError::Unavailable("a batch of one gave no result".into())
                    })
                }));
            }
            Ok(results)
        }
    }
}

async fn run<T, R, F, Fut>(
    what: &'static str,
    batching: Batching,
    commit: Arc<F>,
    mut rx: mpsc::Receiver<(T, Reply<R>)>,
) where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<R>, StoreError>> + Send + 'static,
{
    let slots_total = batching.parallel.max(1);
    let max_batch = batching.max_batch.max(1);
    let slots = Arc::new(Semaphore::new(slots_total));
    // Signalled whenever a commit finishes.
    let finished = Arc::new(Notify::new());
    loop {
        // A free slot first: while every slot is busy, items pile up in the
        // channel and the next batch takes them all.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some((item, reply)) = rx.recv().await else {
            return;
        };
        let mut items = vec![item];
        let mut replies = vec![reply];
        loop {
            while items.len() < max_batch {
                match rx.try_recv() {
                    Ok((item, reply)) => {
                        items.push(item);
                        replies.push(reply);
                    }
                    Err(_) => break,
                }
            }
            let in_flight = slots_total - slots.available_permits() - 1;
            if in_flight == 0
                || items.len() >= batching.min_parallel_batch
                || items.len() >= max_batch
            {
                break;
            }
            // Small, and another commit is running: let the batch grow
            // until that commit ends (or it is big enough to go alongside).
            // A wake-up may be stale (a commit that ended while nobody
            // waited): the loop counts the commits in flight again.
            tokio::select! {
                _ = finished.notified() => continue,
                next = rx.recv() => match next {
                    Some((item, reply)) => {
                        items.push(item);
                        replies.push(reply);
                    }
                    None => break,
                },
            }
        }
        let commit = commit.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            let batch = items.len();
            let result = commit(items).await;
            match result {
                Ok(results) if results.len() == batch => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(result));
                    }
                }
                Ok(results) => {
                    // A store bug, not a caller's: nobody is told their
                    // item is stored when the answer cannot say which is.
                    tracing::error!(
                        what,
                        batch,
                        answered = results.len(),
                        "group commit answered the wrong number of items"
                    );
                    let error = StoreError::Unavailable(format!("{what}: wrong number of results"));
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
                Err(error) => {
                    tracing::warn!(what, %error, batch, "group commit failed");
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
            drop(slot);
            finished.notify_one();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn batching(parallel: usize) -> Batching {
        Batching {
            max_batch: 8,
            min_parallel_batch: 4,
            queue_capacity: 64,
            parallel,
        }
    }

    #[tokio::test]
    async fn each_caller_gets_its_own_result_and_batches_form_under_load() {
        let commits = Arc::new(AtomicUsize::new(0));
        let counted = commits.clone();
        let group = GroupCommit::spawn("test", batching(1), move |items: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(items.into_iter().map(|i| i * 10).collect())
            }
        });
        let calls: Vec<_> = (0..40u32)
            .map(|i| {
                let group = group.clone();
                tokio::spawn(async move { (i, group.submit(i).await) })
            })
            .collect();
        for call in calls {
            let (i, result) = call.await.expect("task");
            assert_eq!(result.expect("stored"), i * 10);
        }
        let commits = commits.load(Ordering::SeqCst);
        assert!(commits < 40, "40 items took {commits} commits");
        assert!(
            commits >= 5,
            "at most 8 per batch, so at least 5 commits; got {commits}"
        );
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_item_in_it() {
        let group = GroupCommit::spawn("test", batching(2), |_items: Vec<u32>| async {
            Err::<Vec<u32>, _>(StoreError::Unavailable("down".into()))
        });
        let result = group.submit(1).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_wrong_number_of_results_is_an_error_not_a_guess() {
        let group = GroupCommit::spawn("test", batching(1), |_items: Vec<u32>| async {
            Ok(Vec::<u32>::new())
        });
        assert!(matches!(
            group.submit(7).await,
            Err(StoreError::Unavailable(_))
        ));
    }
}
