//! A JSON WebSocket client over a TCP stream from [`crate::net::connect`],
//! upgraded with `tokio_tungstenite::client_async_with_config` (small
//! buffers, so thousands of idle client sockets stay cheap on the shared box).

use crate::error::{LoadError, Result};
use crate::net::{self, Sources, Target};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long setup steps wait for one expected frame.
pub const SETUP_WAIT: Duration = Duration::from_secs(30);

/// One WebSocket connection speaking JSON frames.
pub struct Ws {
    stream: WebSocketStream<TcpStream>,
}

/// What [`Ws::recv`] produced.
pub enum Incoming {
    Frame(Value),
    /// The server closed the socket (with its close code, if any).
    Closed(Option<u16>),
}

impl Ws {
    /// Connects to `path` on the target, with a session cookie for agents.
    pub async fn open(
        target: &Target,
        sources: &Sources,
        path: &str,
        cookie: Option<&str>,
    ) -> Result<Self> {
        let tcp = net::connect(target, sources).await?;
        let mut request = format!("ws://{}{path}", target.authority).into_client_request()?;
        if let Some(cookie) = cookie {
            let value = HeaderValue::from_str(cookie)
                .map_err(|_| LoadError::Protocol("session cookie is not a header value".into()))?;
            request.headers_mut().insert("cookie", value);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_write_buffer_size(1 << 20);
        let (stream, _) =
            tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await?;
        Ok(Self { stream })
    }

    pub async fn send(&mut self, frame: &Value) -> Result<()> {
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await?;
        Ok(())
    }

    /// The next JSON frame or the close. Cancel-safe (a `select!` arm).
    pub async fn recv(&mut self) -> Result<Incoming> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    let value = serde_json::from_str(text.as_str())
                        .map_err(|e| LoadError::Protocol(format!("server sent non-JSON: {e}")))?;
                    return Ok(Incoming::Frame(value));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Incoming::Closed(frame.map(|f| u16::from(f.code))))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(Incoming::Closed(None)),
            }
        }
    }

    /// Waits for a frame of `kind`, skipping others; fails on an error frame.
    pub async fn expect(&mut self, kind: &str) -> Result<Value> {
        let wait = async {
            loop {
                match self.recv().await? {
                    Incoming::Frame(frame) if frame["type"] == kind => return Ok(frame),
                    Incoming::Frame(frame) if frame["type"] == "error" => {
                        return Err(LoadError::Protocol(format!(
                            "error while waiting for {kind}: {frame}"
                        )))
                    }
                    Incoming::Frame(_) => continue,
                    Incoming::Closed(code) => {
                        return Err(LoadError::Protocol(format!(
                            "closed ({code:?}) while waiting for {kind}"
                        )))
                    }
                }
            }
        };
        tokio::time::timeout(SETUP_WAIT, wait)
            .await
            .map_err(|_| LoadError::Timeout(format!("waiting for {kind}")))?
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
