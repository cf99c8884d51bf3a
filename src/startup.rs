//! Builds the application on a given listener and runs it until a shutdown
//! future resolves. Tests bind port 0 and pass a oneshot as the shutdown.

use crate::attachments::LocalDiskStore;
use crate::chat_creation::ChatCreator;
use crate::config::Settings;
use crate::conversation::Conversations;
use crate::http::limits::AbuseLimits;
use crate::http::{app, serve, AppState};
use crate::mail;
use crate::queue_directory::QueueDirectory;
use crate::routing::{Router, RouterConfig};
use crate::seed;
use crate::store::{self, DynStore};
use crate::writer::CommitWriter;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connections the kernel may queue for `accept`: as many as it allows (it
/// caps the request at `net.core.somaxconn`, 4,096 on our machines, as Go's
/// listeners do). tokio's `TcpListener::bind` asks for 1,024: bursts of thousands of widgets connecting at once (S3,
/// S4) overflowed it (`TcpExtListenOverflows`), and each dropped connection
/// attempt cost its customer a one-second SYN retransmit.
pub const LISTEN_BACKLOG: u32 = 65_535;

/// Binds `addr` (host:port; a name may resolve to several addresses, the
/// first that binds wins) with [`LISTEN_BACKLOG`].
pub async fn bind_listener(addr: &str) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As tokio's bind does: a restart may bind while old connections
        // of the previous process sit in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr} names no address"),
        )
    }))
}

/// Raises this process's soft limit on open files to its hard limit, once.
///
/// Every socket, database connection and attachment is a file; the usual
/// soft limit of 1024 is reached by a few hundred chats, and then accepts
/// fail and the database pool waits for a connection it cannot open. Go and
/// nginx do the same at start; the hard limit stays the administrator's.
pub fn raise_open_file_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
    });
}

/// A built, not yet running, server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown_tx: watch::Sender<bool>,
}

impl Application {
    /// Connects the store named in `settings`, seeds an empty database and
    /// builds the server on `listener`.
    pub async fn build(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        raise_open_file_limit();
        let store =
            store::connect(&settings.database.url, settings.database.max_connections).await?;
        Self::build_with_store(settings, listener, store).await
    }

    /// Like [`Application::build`] with an already opened store.
    pub async fn build_with_store(
        settings: Settings,
        listener: TcpListener,
        store: DynStore,
    ) -> anyhow::Result<Self> {
        raise_open_file_limit();
        let mailer = mail::from_settings(&settings.mail)?;
        seed::first_start(&store, settings.demo.enabled).await?;
        let blobs = LocalDiskStore::open(&settings.attachments.dir).with_context(|| {
            format!(
                "attachments.dir {:?} is not usable",
                settings.attachments.dir
            )
        })?;
        let writer = CommitWriter::spawn(store.clone());
        let conversations = Conversations::new(store.clone(), writer);
        let router = Router::spawn(
            store.clone(),
            conversations.clone(),
            RouterConfig {
                customer_grace: settings.routing.customer_grace(),
                agent_grace: settings.routing.agent_grace(),
            },
        )
        .await?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let state = AppState {
            chats: ChatCreator::spawn(store.clone()),
            queues: Arc::new(QueueDirectory::new(store.clone())),
            store,
            router,
            conversations,
            server: Arc::new(settings.server),
            mailer,
            blobs: Arc::new(blobs),
            attachments: Arc::new(settings.attachments),
            shutdown,
            limits: Arc::new(AbuseLimits::new(settings.limits)),
            sockets: tokio_util::task::TaskTracker::new(),
            consoles: Default::default(),
        };
        Ok(Self {
            listener,
            state,
            shutdown_tx,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves: then stops accepting, tells every
    /// socket the server is restarting (`shutting_down`, close 1012), waits
    /// for requests in flight and for each socket to finish its command in
    /// progress (so an acknowledged commit is never cut off), each bounded
    /// by `limits.shutdown_grace_secs`.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shutdown_tx = self.shutdown_tx;
        let signal = async move {
            shutdown.await;
            let _ = shutdown_tx.send(true);
        };
        let limits = self.state.limits.settings.clone();
        let grace = limits.shutdown_grace();
        let sockets = self.state.sockets.clone();
        serve::serve(self.listener, app(self.state), &limits, grace, signal).await?;
        sockets.close();
        if tokio::time::timeout(grace, sockets.wait()).await.is_err() {
            tracing::warn!(
                open = sockets.len(),
                "WebSockets still open after the shutdown grace period"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod listen_tests {
    use super::*;

    /// More connections than tokio's default backlog of 1,024 complete
    /// their handshake while the server accepts none of them (a server busy
    /// with a burst): none waits for a SYN retransmit.
    #[tokio::test]
    async fn a_burst_beyond_tokios_default_backlog_is_queued_not_dropped() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if somaxconn < 1_600 {
            eprintln!(
                "net.core.somaxconn is {somaxconn}: the kernel allows no more than tokio asks"
            );
            return;
        }
        raise_open_file_limit();
        let listener = bind_listener("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connects = (0..1_500).map(|_| {
            tokio::time::timeout(
                std::time::Duration::from_millis(800),
                tokio::net::TcpStream::connect(addr),
            )
        });
        let results = futures_util::future::join_all(connects).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(connected, 1_500, "every connection is queued for accept");
        drop(listener);
    }

    #[tokio::test]
    async fn an_address_that_names_nothing_is_an_error() {
        assert!(bind_listener("127.0.0.1:notaport").await.is_err());
    }
}
