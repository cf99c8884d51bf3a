//! The WebSocket loop shared by agent and customer connections: reads
//! client frames (enforcing the frame limit), writes the replies of each
//! command, drains the connection's outbox, and closes on a kick or on
//! server shutdown.

use crate::outbox::{CloseReason, Frame, Inbox, KickSignal};
use crate::protocol::{ErrorCode, ServerEvent, MAX_FRAME_BYTES};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// Close codes the server uses.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const RESTARTING: u16 = 1012;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const REPLACED: u16 = 4001;
    pub const SESSION_ENDED: u16 = 4003;
}

/// Frames a connection may send in a burst, and per second after it.
pub const RATE_BURST: f64 = 60.0;
pub const RATE_PER_SEC: f64 = 20.0;

/// A token bucket per connection: a flood gets `rate_limited` errors and
/// is otherwise ignored, so one client cannot monopolise the actors.
struct RateLimit {
    tokens: f64,
    at: tokio::time::Instant,
}

impl RateLimit {
    fn new() -> Self {
        Self {
            tokens: RATE_BURST,
            at: tokio::time::Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * RATE_PER_SEC;
        self.tokens = (self.tokens + refill).min(RATE_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Configures an upgrade with our limits: small read buffers (idle sockets
/// stay cheap) and a hard cap above the protocol's frame limit, so frames
/// between the two get a typed error before the socket is closed.
pub fn limits(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(4096)
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

async fn send_all(socket: &mut WebSocket, frames: Vec<Frame>, kick: &KickSignal) -> Written {
    for frame in frames {
        tokio::select! {
            biased;
            reason = kick.kicked() => return Written::Kicked(reason),
            sent = socket.send(Message::Text(frame.as_ref().into())) => {
                if sent.is_err() {
                    return Written::Gone;
                }
            }
        }
    }
    Written::Sent
}

/// Writes frames; true to go on, false once the connection is over (a
/// kicked one was closed with its code).
async fn write(socket: &mut WebSocket, frames: Vec<Frame>, kick: &KickSignal) -> bool {
    match send_all(socket, frames, kick).await {
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
pub async fn drive<S: SocketSession>(
    mut socket: WebSocket,
    mut session: S,
    inbox: Inbox,
    mut shutdown: watch::Receiver<bool>,
    first: Vec<Frame>,
) {
    let Inbox { mut frames, kick } = inbox;
    let mut rate = RateLimit::new();
    if write(&mut socket, first, &kick).await {
        loop {
            tokio::select! {
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if text.len() > MAX_FRAME_BYTES {
                            if write(&mut socket, vec![too_big()], &kick).await {
                                close(&mut socket, close_code::TOO_BIG, "frame too large").await;
                            }
                            break;
                        }
                        if !rate.allow() {
                            let limited = ServerEvent::error(ErrorCode::RateLimited, "too many frames; slow down").to_frame();
                            if !write(&mut socket, vec![limited], &kick).await {
                                break;
                            }
                            continue;
                        }
                        let replies = session.handle(text.as_str()).await;
                        if !write(&mut socket, replies, &kick).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        let reply = if bytes.len() > MAX_FRAME_BYTES {
                            too_big()
                        } else {
                            ServerEvent::error(ErrorCode::InvalidRequest, "binary frames are not supported").to_frame()
                        };
                        if !write(&mut socket, vec![reply], &kick).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "websocket read failed");
                        close(&mut socket, close_code::TOO_BIG, "frame too large or invalid").await;
                        break;
                    }
                },
                frame = frames.recv() => match frame {
                    Some(frame) => {
                        if !write(&mut socket, vec![frame], &kick).await {
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
                    if write(&mut socket, vec![ServerEvent::ShuttingDown.to_frame()], &kick).await {
                        close(&mut socket, close_code::RESTARTING, "server restarting").await;
                    }
                    break;
                }
            }
        }
    }
    session.finish().await;
}
