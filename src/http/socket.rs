//! The WebSocket loop shared by agent and customer connections: reads
//! client frames (enforcing the frame limit), writes the replies of each
//! command, drains the connection's outbox, and closes on a kick or on
//! server shutdown.

use super::limits::{AbuseLimits, Bucket};
use crate::outbox::{CloseReason, Frame, Inbox};
use crate::protocol::{ErrorCode, ServerEvent, MAX_FRAME_BYTES};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
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
    mut guard: FrameGuard,
) {
    let Inbox { mut frames, kick } = inbox;
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
                        match guard.admit() {
                            Admit::Handle => {}
                            Admit::Refuse => {
                                let limited = ServerEvent::error(ErrorCode::RateLimited, "too many frames; slow down").to_frame();
                                if !send_all(&mut socket, vec![limited]).await {
                                    break;
                                }
                                continue;
                            }
                            Admit::Close => {
                                close(&mut socket, close_code::POLICY, "flooding").await;
                                break;
                            }
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
                        if let Some((code, reason)) = read_error_close(error) {
                            close(&mut socket, code, reason).await;
                        }
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
