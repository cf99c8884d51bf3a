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
