//! The WebSocket loop shared by agent and customer connections: reads
//! client frames (enforcing the frame limit), writes the replies of each
//! command, drains the connection's outbox, and closes on a kick or on
//! server shutdown.

use crate::outbox::{CloseReason, Frame, Inbox};
use crate::protocol::{ErrorCode, ServerEvent, MAX_FRAME_BYTES};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use std::future::Future;
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

/// Per-socket read buffer. Measured (docs/performance.md): 128 KiB, the
/// default, costs ~137 KB per idle connection; 4 KiB ~6 KB; 1 KiB ~3 KB.
const READ_BUFFER_BYTES: usize = 1024;

/// Configures an upgrade with our limits: a 1 KiB read buffer (an idle
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

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

async fn send_all(socket: &mut WebSocket, frames: Vec<Frame>) -> bool {
    for frame in frames {
        if socket
            .send(Message::Text(frame.as_ref().into()))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
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
    if send_all(&mut socket, first).await {
        loop {
            tokio::select! {
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if text.len() > MAX_FRAME_BYTES {
                            let _ = send_all(&mut socket, vec![too_big()]).await;
                            close(&mut socket, close_code::TOO_BIG, "frame too large").await;
                            break;
                        }
                        if !rate.allow() {
                            let limited = ServerEvent::error(ErrorCode::RateLimited, "too many frames; slow down").to_frame();
                            if !send_all(&mut socket, vec![limited]).await {
                                break;
                            }
                            continue;
                        }
                        let replies = session.handle(text.as_str()).await;
                        if !send_all(&mut socket, replies).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        let reply = if bytes.len() > MAX_FRAME_BYTES {
                            too_big()
                        } else {
                            ServerEvent::error(ErrorCode::InvalidRequest, "binary frames are not supported").to_frame()
                        };
                        if !send_all(&mut socket, vec![reply]).await {
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
                        if !send_all(&mut socket, vec![frame]).await {
                            break;
                        }
                    }
                    None => break,
                },
                reason = kick.kicked() => {
                    let (code, text) = match reason {
                        CloseReason::Overflow => (close_code::TRY_AGAIN_LATER, "too far behind; reconnect and resume"),
                        CloseReason::Replaced => (close_code::REPLACED, "signed in from another connection"),
                        CloseReason::SessionEnded => (close_code::SESSION_ENDED, "session ended"),
                    };
                    close(&mut socket, code, text).await;
                    break;
                }
                _ = shutdown.changed() => {
                    let _ = send_all(&mut socket, vec![ServerEvent::ShuttingDown.to_frame()]).await;
                    close(&mut socket, close_code::RESTARTING, "server restarting").await;
                    break;
                }
            }
        }
    }
    session.finish().await;
}
