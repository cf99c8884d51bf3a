//! The queue list in memory, for the hot path of starting a chat: every
//! `POST /api/chats` looked the list up in the database, a round trip that
//! in a burst of joins waited for a pooled connection ahead of the chat's
//! creation and so let later joins overtake earlier ones
//! (docs/performance.md, S3).
//!
//! The server's own queue changes (create, rename, delete) refresh it. A
//! queue another process added (the `switchboard queue add` command) is
//! found by reloading on a miss, so a lookup never answers "no such queue"
//! from an old copy.

use crate::domain::account::Queue;
use crate::store::{DynStore, StoreResult};
use std::sync::{Arc, RwLock};

/// The live queues, loaded on first use.
pub struct QueueDirectory {
    store: DynStore,
    cached: RwLock<Cached>,
}

#[derive(Default)]
struct Cached {
    /// Counts the server's queue changes: a reload that started before a
    /// change does not keep what it read.
    generation: u64,
    queues: Option<Arc<Vec<Queue>>>,
}

impl QueueDirectory {
    pub fn new(store: DynStore) -> Self {
        Self {
            store,
            cached: RwLock::new(Cached::default()),
        }
    }

    /// The first live queue `wanted` accepts: from memory, or from the
    /// store when memory has none.
    pub async fn find(&self, wanted: impl Fn(&Queue) -> bool) -> StoreResult<Option<Queue>> {
        if let Some(queue) = self
            .cached()
            .and_then(|q| q.iter().find(|q| wanted(q)).cloned())
        {
            return Ok(Some(queue));
        }
        let fresh = self.reload().await?;
        Ok(fresh.iter().find(|q| wanted(q)).cloned())
    }

    /// Forgets the copy after the server changed a queue; the next lookup
    /// reads the store.
    pub fn changed(&self) {
        if let Ok(mut cached) = self.cached.write() {
            cached.generation += 1;
            cached.queues = None;
        }
    }

    fn cached(&self) -> Option<Arc<Vec<Queue>>> {
        self.cached.read().ok().and_then(|c| c.queues.clone())
    }

    fn generation(&self) -> Option<u64> {
        self.cached.read().ok().map(|c| c.generation)
    }

    async fn reload(&self) -> StoreResult<Arc<Vec<Queue>>> {
        let started = self.generation();
        let fresh = Arc::new(self.store.list_queues().await?);
        if let Ok(mut cached) = self.cached.write() {
            if Some(cached.generation) == started {
                cached.queues = Some(fresh.clone());
            }
        }
        Ok(fresh)
    }
}
