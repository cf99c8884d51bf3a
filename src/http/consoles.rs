//! Every open agent console socket, by user, signed in or not. Ending a
//! user's sessions (logout, password change, reset or disabled account)
//! closes all of them with close code 4003 (session ended), including a
//! console that has not signed in yet, which the router does not know.

use crate::domain::ids::UserId;
use crate::outbox::{CloseReason, Outbox};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Consoles {
    open: Arc<Mutex<HashMap<UserId, Vec<Outbox>>>>,
}

impl Consoles {
    /// A console socket of `user` is open.
    pub fn opened(&self, user: UserId, outbox: Outbox) {
        self.lock().entry(user).or_default().push(outbox);
    }

    /// The console socket with this connection id closed.
    pub fn closed(&self, user: UserId, connection: u64) {
        let mut open = self.lock();
        if let Some(outboxes) = open.get_mut(&user) {
            outboxes.retain(|o| o.connection() != connection);
            if outboxes.is_empty() {
                open.remove(&user);
            }
        }
    }

    /// The user's sessions ended: every console of theirs is closed.
    pub fn end_sessions(&self, user: UserId) {
        if let Some(outboxes) = self.lock().remove(&user) {
            for outbox in outboxes {
                outbox.close(CloseReason::SessionEnded);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Vec<Outbox>>> {
        // The map stays consistent even if a holder panicked: every
        // operation is a single insert or removal.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}
