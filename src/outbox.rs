//! The per-connection outgoing queue every actor writes to.
//!
//! Bounded on purpose: a client that stops reading must not make the server
//! grow memory. When a push finds the queue full the connection is *kicked*
//! (its socket task closes it); the client reconnects and resumes from its
//! last `seq`, so nothing is lost, only re-fetched from the store.

use crate::protocol::ServerEvent;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

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
pub struct Outbox {
    connection: u64,
    shared: Arc<Shared>,
}

/// One connection's queue and kick, in one allocation. A hand-made queue
/// rather than a tokio `mpsc` channel: that channel allocates its first
/// block of 32 slots and a cache-padded header up front (~1 KB per socket,
/// most of them idle; docs/performance.md, S1), where a `VecDeque` holds
/// only what is queued and gives a burst's memory back once drained.
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the socket task: a frame was queued or the last sender left.
    frames_ready: Notify,
    kick: Notify,
    reason: Mutex<Option<CloseReason>>,
}

struct Queue {
    frames: VecDeque<Frame>,
    /// Live `Outbox` clones; at 0 the receiver sees the end.
    senders: usize,
    /// False once the socket task dropped its [`Frames`].
    receiving: bool,
}

/// A drained queue that grew beyond this many slots gives its memory back.
const KEEP_SLOTS: usize = 64;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The receiving half, owned by the socket task.
pub struct Inbox {
    pub frames: Frames,
    pub kick: KickSignal,
}

/// The frames queued for one connection, in order.
pub struct Frames(Arc<Shared>);

impl Frames {
    /// The next frame; None once every `Outbox` is gone and the queue is
    /// empty. Cancel-safe: a frame is taken only by a poll that returns it.
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            let notified = self.0.frames_ready.notified();
            {
                let mut queue = lock(&self.0.queue);
                if let Some(frame) = queue.pop() {
                    return Some(frame);
                }
                if queue.senders == 0 {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The next frame if one is queued now.
    pub fn try_recv(&mut self) -> Option<Frame> {
        lock(&self.0.queue).pop()
    }
}

impl Queue {
    fn pop(&mut self) -> Option<Frame> {
        let frame = self.frames.pop_front();
        if self.frames.is_empty() && self.frames.capacity() > KEEP_SLOTS {
            self.frames = VecDeque::new();
        }
        frame
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        let mut queue = lock(&self.0.queue);
        queue.receiving = false;
        queue.frames = VecDeque::new();
    }
}

/// Resolves when the server wants the connection closed.
pub struct KickSignal(Arc<Shared>);

impl KickSignal {
    /// Resolves when the connection must be closed, with the reason.
    pub async fn kicked(&self) -> CloseReason {
        let shared = &self.0;
        loop {
            let notified = shared.kick.notified();
            if let Some(reason) = *lock(&shared.reason) {
                return reason;
            }
            notified.await;
        }
    }
}

/// A new connection's outbox and inbox.
pub fn channel() -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            frames: VecDeque::new(),
            senders: 1,
            receiving: true,
        }),
        frames_ready: Notify::new(),
        kick: Notify::new(),
        reason: Mutex::new(None),
    });
    (
        Outbox {
            connection: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
            shared: shared.clone(),
        },
        Inbox {
            frames: Frames(shared.clone()),
            kick: KickSignal(shared),
        },
    )
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        lock(&self.shared.queue).senders += 1;
        Self {
            connection: self.connection,
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let last = {
            let mut queue = lock(&self.shared.queue);
            queue.senders -= 1;
            queue.senders == 0
        };
        if last {
            self.shared.frames_ready.notify_one();
        }
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
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
        {
            let mut queue = lock(&self.shared.queue);
            if !queue.receiving {
                return false;
            }
            if queue.frames.len() >= OUTBOX_CAPACITY {
                drop(queue);
                self.close(CloseReason::Overflow);
                return false;
            }
            queue.frames.push_back(frame);
        }
        self.shared.frames_ready.notify_one();
        true
    }

    /// Asks the socket task to close the connection.
    pub fn close(&self, reason: CloseReason) {
        let mut slot = lock(&self.shared.reason);
        if slot.is_none() {
            *slot = Some(reason);
        }
        drop(slot);
        self.shared.kick.notify_one();
    }

    /// Whether the socket task is gone.
    pub fn is_closed(&self) -> bool {
        !lock(&self.shared.queue).receiving
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Arc::from(text)
    }

    #[tokio::test]
    async fn frames_arrive_in_order_and_end_with_the_last_sender() {
        let (outbox, mut inbox) = channel();
        let second = outbox.clone();
        assert!(outbox.push_frame(frame("a")));
        assert!(second.push_frame(frame("b")));
        assert_eq!(inbox.frames.recv().await.as_deref(), Some("a"));
        assert_eq!(inbox.frames.try_recv().as_deref(), Some("b"));
        assert_eq!(inbox.frames.try_recv(), None);
        drop(outbox);
        assert!(second.push_frame(frame("c")));
        drop(second);
        // What was queued still arrives, then the end.
        assert_eq!(inbox.frames.recv().await.as_deref(), Some("c"));
        assert_eq!(inbox.frames.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_push() {
        let (outbox, mut inbox) = channel();
        let waiter = tokio::spawn(async move { inbox.frames.recv().await });
        tokio::task::yield_now().await;
        assert!(outbox.push_frame(frame("x")));
        assert_eq!(waiter.await.ok().flatten().as_deref(), Some("x"));
    }

    #[tokio::test]
    async fn a_full_queue_kicks_the_connection_and_refuses() {
        let (outbox, inbox) = channel();
        for i in 0..OUTBOX_CAPACITY {
            assert!(outbox.push_frame(frame(&i.to_string())));
        }
        assert!(!outbox.push_frame(frame("one too many")));
        assert_eq!(inbox.kick.kicked().await, CloseReason::Overflow);
        // The first reason stays.
        outbox.close(CloseReason::Replaced);
        assert_eq!(inbox.kick.kicked().await, CloseReason::Overflow);
    }

    #[test]
    fn after_the_socket_task_is_gone_pushes_are_refused() {
        let (outbox, inbox) = channel();
        assert!(!outbox.is_closed());
        drop(inbox);
        assert!(outbox.is_closed());
        assert!(!outbox.push_frame(frame("late")));
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let (outbox, mut inbox) = channel();
        for i in 0..500 {
            assert!(outbox.push_frame(frame(&i.to_string())));
        }
        while inbox.frames.try_recv().is_some() {}
        assert_eq!(lock(&outbox.shared.queue).frames.capacity(), 0);
    }
}
