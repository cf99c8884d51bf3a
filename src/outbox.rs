//! The per-connection outgoing queue every actor writes to.
//!
//! Bounded on purpose: a client that stops reading must not make the server
//! grow memory. When a push finds the queue full the connection is *kicked*
//! (its socket task closes it); the client reconnects and resumes from its
//! last `seq`, so nothing is lost, only re-fetched from the store.

use crate::protocol::ServerEvent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// Events a connection may have queued before it counts as stuck.
pub const OUTBOX_CAPACITY: usize = 1024;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// One already-serialised text frame, shared by every recipient.
pub type Frame = Arc<str>;

/// Why a connection is being closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// It fell too far behind (close code 1013, "try again later").
    Overflow,
    /// The same agent connected again elsewhere (close code 4001).
    Replaced,
    /// The session was ended (logout, password change): close code 4003.
    SessionEnded,
    /// An actor the connection was attached to stopped abnormally (it
    /// panicked): close code 1012, so the client reconnects and resumes from
    /// the store, which restarts the actor.
    Restarting,
}

/// The sending half: cheap to clone, shared by actors.
#[derive(Clone, Debug)]
pub struct Outbox {
    connection: u64,
    tx: mpsc::Sender<Frame>,
    kick: Arc<Kick>,
}

#[derive(Debug, Default)]
struct Kick {
    notify: Notify,
    reason: std::sync::Mutex<Option<CloseReason>>,
}

/// The receiving half, owned by the socket task.
pub struct Inbox {
    pub frames: mpsc::Receiver<Frame>,
    pub kick: KickSignal,
}

/// Resolves when the server wants the connection closed.
pub struct KickSignal(Arc<Kick>);

impl KickSignal {
    /// Resolves when the connection must be closed, with the reason.
    pub async fn kicked(&self) -> CloseReason {
        let kick = &self.0;
        loop {
            let notified = kick.notify.notified();
            if let Some(reason) = *kick.reason.lock().unwrap_or_else(|p| p.into_inner()) {
                return reason;
            }
            notified.await;
        }
    }
}

/// A new connection's outbox and inbox.
pub fn channel() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
    let kick = Arc::new(Kick::default());
    (
        Outbox {
            connection: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
            tx,
            kick: kick.clone(),
        },
        Inbox {
            frames: rx,
            kick: KickSignal(kick),
        },
    )
}

impl Outbox {
    /// Identifies the connection (to ignore stale sign-outs and detaches).
    pub fn connection(&self) -> u64 {
        self.connection
    }

    /// Queues an event; returns false if the connection is gone or was kicked.
    pub fn push(&self, event: &ServerEvent) -> bool {
        self.push_frame(event.to_frame())
    }

    /// Queues a pre-serialised frame (fan-out serialises once).
    pub fn push_frame(&self, frame: Frame) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(CloseReason::Overflow);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the socket task to close the connection.
    pub fn close(&self, reason: CloseReason) {
        let mut slot = self.kick.reason.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        drop(slot);
        self.kick.notify.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
