//! Accepts TCP connections and serves the app on them with hyper-util,
//! because `axum::serve` has neither a header read timeout (slowloris) nor
//! a way to refuse connections per address. Each connection carries a
//! permit for its whole life, upgraded WebSockets included; over the limit
//! a connection is answered 429 (its address has too many) or 503 (the
//! server has too many) with `too_many_connections`, and closed.

use crate::config::LimitSettings;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Counts open connections per address and in total.
struct Counter {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// This address has too many connections open: 429.
    Address,
    /// The server has too many connections open: 503.
    Server,
}

#[derive(Clone)]
struct ConnectionLimits {
    counter: Arc<Mutex<Counter>>,
    per_ip: usize,
    total: usize,
}

/// Held by a connection (and by its upgraded socket) while it is open.
struct Permit {
    counter: Arc<Mutex<Counter>>,
    ip: IpAddr,
}

impl ConnectionLimits {
    fn new(settings: &LimitSettings) -> Self {
        Self {
            counter: Arc::new(Mutex::new(Counter {
                per_ip: HashMap::new(),
                total: 0,
            })),
            per_ip: settings.connections_per_ip,
            total: settings.connections_total,
        }
    }

    fn admit(&self, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut counter = self.counter.lock().unwrap_or_else(|p| p.into_inner());
        if counter.total >= self.total {
            return Err(Refusal::Server);
        }
        let open = counter.per_ip.entry(ip).or_insert(0);
        if *open >= self.per_ip {
            return Err(Refusal::Address);
        }
        *open += 1;
        counter.total += 1;
        Ok(Permit {
            counter: self.counter.clone(),
            ip,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counter = self.counter.lock().unwrap_or_else(|p| p.into_inner());
        counter.total = counter.total.saturating_sub(1);
        if let Some(open) = counter.per_ip.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                counter.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A TCP stream that holds its permit until it is dropped, so a WebSocket
/// handed off by hyper still counts.
struct Counted {
    stream: TcpStream,
    _permit: Option<Permit>,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

fn refusal_response(refusal: Refusal) -> Response {
    let (status, message) = match refusal {
        Refusal::Address => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from your address",
        ),
        Refusal::Server => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the server has too many connections",
        ),
    };
    let body = serde_json::json!({"error": "too_many_connections", "message": message});
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting and waits up to `grace` for requests in flight. Upgraded
/// WebSockets are not waited for here (the caller tracks them).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &LimitSettings,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let connections = ConnectionLimits::new(limits);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Without TCP_NODELAY, a frame written right after another (an
        // event after an ack, or events of several chats to one console)
        // waits for the client's delayed ACK: ~40 ms at p99 in the S2
        // benchmark (docs/performance.md).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let admitted = connections.admit(peer.ip());
        let refusal = admitted.as_ref().err().copied();
        let io = TokioIo::new(Counted {
            stream,
            _permit: admitted.ok(),
        });
        let app = app.clone();
        let service = tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            let app = app.clone();
            async move {
                if let Some(refusal) = refusal {
                    return Ok(refusal_response(refusal));
                }
                request.extensions_mut().insert(ConnectInfo(peer));
                app.oneshot(request).await
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(io, TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown grace period");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_count_per_address_and_in_total() {
        let limits = ConnectionLimits::new(&LimitSettings {
            connections_per_ip: 2,
            connections_total: 3,
            ..LimitSettings::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limits.admit(a).unwrap();
        let _second = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).err(), Some(Refusal::Address));
        let _third = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).err(), Some(Refusal::Server));
        drop(first);
        assert!(
            limits.admit(a).is_ok(),
            "a closed connection frees its slot"
        );
    }
}
