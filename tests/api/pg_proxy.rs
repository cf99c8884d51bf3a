//! A fault-injecting TCP proxy in front of Postgres, on loopback.
//!
//! - [`PgProxy::cut`] makes Postgres unreachable: every open connection is
//!   dropped and new ones are closed as soon as they arrive, until
//!   [`PgProxy::restore`].
//! - [`PgProxy::lose_next_insert_reply`] makes the next `INSERT` commit and
//!   then loses its answer: the proxy reads the server's messages, holds
//!   back everything from the `INSERT`'s CommandComplete on, waits for the
//!   ReadyForQuery that follows the commit and closes the connection. The
//!   client cannot know whether its write landed (an ambiguous commit).
//!
//! Connections must use `sslmode=disable`, so that the server's byte stream
//! is plain protocol messages (type byte, 32-bit length, body) from the
//! first byte.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Control {
    down: AtomicBool,
    lose_insert_reply: AtomicBool,
    /// How many answers were lost (to check the fault really happened).
    lost_replies: AtomicUsize,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// The proxy; it stops when dropped.
pub struct PgProxy {
    pub addr: SocketAddr,
    control: Arc<Control>,
    accept: JoinHandle<()>,
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_connections();
    }
}

impl PgProxy {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let control = Arc::new(Control::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, control.clone()));
        PgProxy {
            addr,
            control,
            accept,
        }
    }

    /// The URL of `database_url`'s database, reached through this proxy.
    pub fn url(&self, database_url: &str) -> String {
        let (_, rest) = database_url.split_once('@').expect("user@host in the URL");
        let (_, database) = rest.split_once('/').expect("database in the URL");
        let user = database_url
            .split_once("://")
            .and_then(|(_, r)| r.split_once('@'))
            .map(|(u, _)| u)
            .expect("user");
        format!("postgres://{user}@{}/{database}?sslmode=disable", self.addr)
    }

    /// Postgres becomes unreachable: open connections are dropped, new ones refused.
    pub fn cut(&self) {
        self.control.down.store(true, Ordering::SeqCst);
        self.drop_connections();
    }

    /// Postgres is reachable again.
    pub fn restore(&self) {
        self.control.down.store(false, Ordering::SeqCst);
    }

    /// The next INSERT commits but its answer is lost with the connection.
    pub fn lose_next_insert_reply(&self) {
        self.control.lose_insert_reply.store(true, Ordering::SeqCst);
    }

    /// How many answers were lost so far.
    pub fn lost_replies(&self) -> usize {
        self.control.lost_replies.load(Ordering::SeqCst)
    }

    fn drop_connections(&self) {
        let mut connections = self
            .control
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for task in connections.drain(..) {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, control: Arc<Control>) {
    while let Ok((client, _)) = listener.accept().await {
        if control.down.load(Ordering::SeqCst) {
            drop(client); // unreachable: closed at once
            continue;
        }
        let task = tokio::spawn(pipe(client, upstream, control.clone()));
        let mut connections = control
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        connections.retain(|t| !t.is_finished());
        connections.push(task);
    }
}

/// Forwards one connection both ways until either side closes.
async fn pipe(client: TcpStream, upstream: SocketAddr, control: Arc<Control>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream_half = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream_half = async {
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        // Set once this connection's INSERT answer is being lost.
        let mut losing = false;
        loop {
            let Ok(n) = server_read.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            pending.extend_from_slice(&chunk[..n]);
            // Forward whole messages; keep a partial one for the next read.
            let mut forward_to = 0;
            while pending.len() >= forward_to + 5 {
                let kind = pending[forward_to];
                let len = u32::from_be_bytes(
                    pending[forward_to + 1..forward_to + 5]
                        .try_into()
                        .expect("four bytes"),
                ) as usize;
                let end = forward_to + 1 + len;
                if pending.len() < end {
                    break;
                }
                let body = &pending[forward_to + 5..end];
                if !losing && kind == b'C' && body.starts_with(b"INSERT") {
                    losing = control
                        .lose_insert_reply
                        .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok();
                }
                if losing {
                    if kind == b'Z' {
                        // Committed; the client never hears of it.
                        control.lost_replies.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                } else if client_write
                    .write_all(&pending[forward_to..end])
                    .await
                    .is_err()
                {
                    return;
                }
                forward_to = end;
            }
            pending.drain(..forward_to);
        }
    };
    // Whichever side stops first ends the connection (both halves drop).
    tokio::select! {
        _ = upstream_half => {}
        _ = downstream_half => {}
    }
}
