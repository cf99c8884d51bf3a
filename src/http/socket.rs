//! The WebSocket loop shared by agent and customer connections: reads
//! client frames (enforcing the frame limit), writes the replies of each
//! command, drains the connection's outbox, and closes on a kick or on
//! server shutdown.

use super::limits::{AbuseLimits, Bucket};
use crate::outbox::{CloseReason, Frame, Frames, Inbox, KickSignal};
use crate::protocol::{ErrorCode, ServerEvent, MAX_FRAME_BYTES};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use futures_util::SinkExt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Close codes the server uses.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const RESTARTING: u16 = 1012;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const REPLACED: u16 = 4001;
    pub const SESSION_ENDED: u16 = 4003;
}

/// What limits one connection's frames: its own token bucket, its
/// address's shared one, and how many refusals it gets before it is closed.
pub struct FrameGuard {
    limits: Arc<AbuseLimits>,
    ip: IpAddr,
    own: Bucket,
    refused: u32,
}

/// What to do with one incoming text frame.
enum Admit {
    Handle,
    /// `rate_limited`, socket kept.
    Refuse,
    /// The client kept flooding after many refusals: close 1008.
    Close,
}

impl FrameGuard {
    pub fn new(limits: Arc<AbuseLimits>, ip: IpAddr) -> Self {
        let own = Bucket::full(limits.settings.frames_burst, std::time::Instant::now());
        Self {
            limits,
            ip,
            own,
            refused: 0,
        }
    }

    fn admit(&mut self) -> Admit {
        let settings = &self.limits.settings;
        let now = std::time::Instant::now();
        // Both buckets are charged only when the connection's own allows, so
        // one flooding connection does not drain its neighbours' share twice.
        if self
            .own
            .allow(settings.frames_burst, settings.frames_per_sec, now)
            && self.limits.ip_frame_allowed(self.ip)
        {
            return Admit::Handle;
        }
        self.refused += 1;
        if self.refused > settings.rate_limited_frames_before_close {
            Admit::Close
        } else {
            Admit::Refuse
        }
    }
}

/// The close code for a frame the WebSocket layer refused to decode.
fn read_error_close(error: axum::Error) -> Option<(u16, &'static str)> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let inner = error.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(_)) => Some((close_code::TOO_BIG, "frame too large")),
        Some(WsError::Utf8(_)) => Some((close_code::INVALID_DATA, "text frame is not UTF-8")),
        Some(WsError::Protocol(_)) => Some((close_code::PROTOCOL_ERROR, "protocol error")),
        // The connection itself is gone: nobody to tell.
        _ => None,
    }
}

/// Per-socket read buffer. Measured (docs/performance.md): 128 KiB, the
/// default, costs ~137 KB per idle connection; 4 KiB ~6 KB; 1 KiB ~3 KB;
/// 512 bytes saved another 0.5 KiB per idle customer in S1. Most client
/// frames fit; tungstenite reserves a longer frame's whole length once its
/// header is read and fills it with reads of this size.
const READ_BUFFER_BYTES: usize = 512;

/// Configures an upgrade with our limits: a small read buffer (an idle
/// socket stays cheap; tungstenite grows it for a bigger frame while it is
/// read, and our frames are small) and a hard cap above the protocol's frame limit, so frames
/// between the two get a typed error before the socket is closed.
pub fn limits(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(4096)
        .max_frame_size(2 * MAX_FRAME_BYTES)
        .max_message_size(2 * MAX_FRAME_BYTES)
}

/// One connection's command handling.
pub trait SocketSession: Send {
    /// Handles one text frame; returns frames to write at once, in order,
    /// before anything queued in the outbox.
    fn handle(&mut self, text: &str) -> impl Future<Output = Vec<Frame>> + Send;
    /// Cleans up after the connection closed.
    fn finish(self) -> impl Future<Output = ()> + Send;
}

/// Bound on writing a close frame: a client that stopped reading must not
/// keep the connection's task (and its memory) alive.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await;
}

/// Closes a connection the server kicked, with the reason's code.
async fn close_kicked(socket: &mut WebSocket, reason: CloseReason) {
    let (code, text) = match reason {
        CloseReason::Overflow => (
            close_code::TRY_AGAIN_LATER,
            "too far behind; reconnect and resume",
        ),
        CloseReason::Replaced => (close_code::REPLACED, "signed in from another connection"),
        CloseReason::SessionEnded => (close_code::SESSION_ENDED, "session ended"),
        CloseReason::Restarting => (close_code::RESTARTING, "restarted; reconnect and resume"),
    };
    close(socket, code, text).await;
}

/// How writing frames ended.
enum Written {
    Sent,
    /// The client is gone.
    Gone,
    /// The server kicked the connection, possibly while a write was blocked
    /// on a client that stopped reading: the kick wins over the write.
    Kicked(CloseReason),
}

/// Most frames already waiting in the outbox that ride along with one
/// write. Bounded so a connection that is always busy still reads its
/// client's frames in between.
const WRITE_BATCH: usize = 64;

/// Writes `frames`, then whatever the outbox already holds (up to
/// [`WRITE_BATCH`]), with one flush at the end. The order is the one the
/// frames would have had one by one; only the flushes are fewer. With
/// thousands of sockets each flush is a syscall and a wake-up of the
/// client, and a sender's `ack` and its own `event`, or an agent's events
/// of several chats, are usually ready together (docs/performance.md).
async fn send_all(
    socket: &mut WebSocket,
    frames: Vec<Frame>,
    mut queued: Option<&mut Frames>,
    kick: &KickSignal,
) -> Written {
    let text = |frame: Frame| Message::Text(frame.as_ref().into());
    let feed_all = async {
        for frame in frames {
            socket.feed(text(frame)).await?;
        }
        if let Some(queued) = queued.as_deref_mut() {
            for _ in 0..WRITE_BATCH {
                // Empty or closed: the main loop sees a closed outbox itself.
                let Some(frame) = queued.try_recv() else {
                    break;
                };
                socket.feed(text(frame)).await?;
            }
        }
        socket.flush().await
    };
    tokio::select! {
        biased;
        reason = kick.kicked() => Written::Kicked(reason),
        sent = feed_all => match sent {
            Ok(()) => Written::Sent,
            Err(_) => Written::Gone,
        },
    }
}

/// Writes frames (and what the outbox holds, when given); true to go on,
/// false once the connection is over (a kicked one was closed with its code).
async fn write(
    socket: &mut WebSocket,
    frames: Vec<Frame>,
    queued: Option<&mut Frames>,
    kick: &KickSignal,
) -> bool {
    match send_all(socket, frames, queued, kick).await {
        Written::Sent => true,
        Written::Gone => false,
        Written::Kicked(reason) => {
            close_kicked(socket, reason).await;
            false
        }
    }
}

fn too_big() -> Frame {
    ServerEvent::error(
        ErrorCode::FrameTooLarge,
        format!("frames are limited to {MAX_FRAME_BYTES} bytes"),
    )
    .to_frame()
}

/// Runs a connection until either side closes it.
///
/// A plain `fn` returning an `async move` block, not an `async fn`: the
/// block uses its captures in place, where an `async fn` would keep a
/// second copy of the socket and the session (~700 bytes per idle
/// connection). The command and cleanup futures are boxed for the same
/// reason: an idle connection's task is sized by its largest await, and
/// most connections are idle (docs/performance.md, S1).
#[allow(clippy::manual_async_fn)] // on purpose, see above
pub fn drive<S: SocketSession>(
    mut socket: WebSocket,
    mut session: S,
    inbox: Inbox,
    mut shutdown: watch::Receiver<bool>,
    first: Vec<Frame>,
    mut guard: FrameGuard,
) -> impl Future<Output = ()> + Send {
    async move {
        let Inbox { mut frames, kick } = inbox;
        if write(&mut socket, first, Some(&mut frames), &kick).await {
            loop {
                tokio::select! {
                    message = socket.recv() => match message {
                        Some(Ok(Message::Text(text))) => {
                            if text.len() > MAX_FRAME_BYTES {
                                if write(&mut socket, vec![too_big()], None, &kick).await {
                                    close(&mut socket, close_code::TOO_BIG, "frame too large").await;
                                }
                                break;
                            }
                            match guard.admit() {
                                Admit::Handle => {}
                                Admit::Refuse => {
                                    let limited = ServerEvent::error(ErrorCode::RateLimited, "too many frames; slow down").to_frame();
                                    if !write(&mut socket, vec![limited], Some(&mut frames), &kick).await {
                                        break;
                                    }
                                    continue;
                                }
                                Admit::Close => {
                                    close(&mut socket, close_code::POLICY, "flooding").await;
                                    break;
                                }
                            }
                            let replies = Box::pin(session.handle(text.as_str())).await;
                            if !write(&mut socket, replies, Some(&mut frames), &kick).await {
                                break;
                            }
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            let reply = if bytes.len() > MAX_FRAME_BYTES {
                                too_big()
                            } else {
                                ServerEvent::error(ErrorCode::InvalidRequest, "binary frames are not supported").to_frame()
                            };
                            if !write(&mut socket, vec![reply], Some(&mut frames), &kick).await {
                                break;
                            }
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | None => break,
                        Some(Err(error)) => {
                            tracing::debug!(%error, "websocket read failed");
                            if let Some((code, reason)) = read_error_close(error) {
                                close(&mut socket, code, reason).await;
                            }
                            break;
                        }
                    },
                    frame = frames.recv() => match frame {
                        Some(frame) => {
                            if !write(&mut socket, vec![frame], Some(&mut frames), &kick).await {
                                break;
                            }
                        }
                        None => break,
                    },
                    reason = kick.kicked() => {
                        close_kicked(&mut socket, reason).await;
                        break;
                    }
                    _ = shutdown.changed() => {
                        if write(&mut socket, vec![ServerEvent::ShuttingDown.to_frame()], None, &kick).await {
                            close(&mut socket, close_code::RESTARTING, "server restarting").await;
                        }
                        break;
                    }
                }
            }
        }
        Box::pin(session.finish()).await;
    }
}
