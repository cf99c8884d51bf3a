//! Test harness: starts the real server on port 0 against a fresh SQLite
//! file or a fresh Postgres database, and drives it with HTTP and
//! WebSocket clients.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::accounts::{create_user, UserSpec};
use switchboard::config::{
    AttachmentSettings, DatabaseSettings, DemoSettings, LimitSettings, MailSettings,
    RoutingSettings, ServerSettings, Settings,
};
use switchboard::domain::account::{Media, Role};
use switchboard::domain::ids::{ProfileId, QueueId, UserId};
use switchboard::startup::Application;
use switchboard::store::{self, DynStore};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per store from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

pub const PASSWORD: &str = "password-123";
const WAIT: Duration = Duration::from_secs(10);

/// The Postgres server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Test databases, SQLite files and attachment folders older than this
/// are left over from earlier runs and are removed when a test binary
/// starts. Tests do not drop their own (a failed test's data stays for a
/// look), and without this every `cargo test` left ~135 Postgres databases
/// behind (1,469 and 12 GB after one day's runs on one machine). The age
/// keeps a run in progress in another process safe.
const LEFTOVER_AGE: Duration = Duration::from_secs(2 * 60 * 60);

static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Removes what earlier runs left, once per test binary.
async fn sweep_leftovers() {
    SWEPT
        .get_or_init(|| async {
            sweep_temp_files();
            sweep_postgres().await;
        })
        .await;
}

fn sweep_temp_files() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > LEFTOVER_AGE);
        if old && entry.file_name().to_string_lossy().starts_with("sb_test_") {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Databases are named `sb_test_<unix seconds>_<uuid>`; older names
/// without the time are all leftovers.
async fn sweep_postgres() {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await else {
        return;
    };
    let names: Vec<(String,)> =
        sqlx::query_as("select datname from pg_database where datname like 'sb\\_test\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    let now = unix_secs();
    for (name,) in names {
        let created = name
            .strip_prefix("sb_test_")
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(secs, _)| secs.parse::<u64>().ok());
        if created.is_none_or(|at| now.saturating_sub(at) > LEFTOVER_AGE.as_secs()) {
            // One still in use by another run fails to drop: left for later.
            let _ = sqlx::query(&format!("drop database if exists {name}"))
                .execute(&mut conn)
                .await;
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database(backend: Backend) -> String {
    sweep_leftovers().await;
    let name = format!("sb_test_{}_{}", unix_secs(), uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            format!("sqlite:{}", path.display())
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect(
                "Postgres must be reachable for the Postgres tests (SWITCHBOARD_TEST_POSTGRES)",
            );
            sqlx::query(&format!("create database {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin);
            format!("{base}/{name}")
        }
    }
}

pub fn settings(database_url: &str) -> Settings {
    Settings {
        server: ServerSettings {
            bind: "127.0.0.1:0".into(),
            allowed_origins: vec!["https://console.example".into()],
            session_hours: 1,
            secure_cookies: false,
            static_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/static").into(),
        },
        database: DatabaseSettings {
            url: database_url.into(),
            max_connections: 8,
        },
        routing: RoutingSettings {
            customer_grace_secs: 60,
            agent_grace_secs: 60,
        },
        demo: DemoSettings { enabled: false },
        mail: MailSettings::default(),
        attachments: AttachmentSettings {
            dir: attachments_dir(database_url).display().to_string(),
            customers_may_upload: true,
        },
        limits: test_limits(),
    }
}

/// Every test connects from 127.0.0.1, many sockets at once: the
/// per-address limits are raised (tests/api/abuse.rs lowers them again to
/// test them); per-connection ones stay at their defaults.
pub fn test_limits() -> LimitSettings {
    LimitSettings {
        connections_per_ip: 1_000,
        ip_frames_burst: 100_000,
        ip_frames_per_sec: 100_000,
        ..LimitSettings::default()
    }
}

/// The attachment directory of a test database: derived from its URL, so a
/// restarted server finds the files again and no two tests share one.
pub fn attachments_dir(database_url: &str) -> std::path::PathBuf {
    let name: String = database_url
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("db")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    std::env::temp_dir().join(format!("{name}_attachments"))
}

/// A running server.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub store: DynStore,
    pub database_url: String,
    /// Where this server keeps attachment files.
    pub attachments_dir: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub http: reqwest::Client,
    pub queue: QueueId,
    pub profile: ProfileId,
}

impl TestApp {
    /// Starts a server on a fresh database with a queue "Support", a chat
    /// profile for it and agents alice and bob.
    pub async fn spawn(backend: Backend) -> TestApp {
        let url = fresh_database(backend).await;
        Self::spawn_with(settings(&url)).await
    }

    pub async fn spawn_with(settings: Settings) -> TestApp {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "switchboard=warn".into()),
            )
            .try_init();
        let url = settings.database.url.clone();
        let store = store::connect(&url, 4).await.expect("store");
        let (queue, profile) = ensure_fixtures(&store).await;
        Self::start(settings, store, queue, profile).await
    }

    async fn start(
        settings: Settings,
        store: DynStore,
        queue: QueueId,
        profile: ProfileId,
    ) -> TestApp {
        let url = settings.database.url.clone();
        let attachments_dir = std::path::PathBuf::from(&settings.attachments.dir);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let app = Application::build_with_store(settings, listener, store.clone())
            .await
            .expect("build app");
        let addr = app.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = app
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        TestApp {
            addr,
            store,
            database_url: url,
            attachments_dir,
            stop: Some(stop),
            task: Some(task),
            http: reqwest::Client::new(),
            queue,
            profile,
        }
    }

    /// Stops the server (as a restart would) and starts a new one on the same database.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown().await;
        let store = store::connect(&self.database_url, 4).await.expect("store");
        Self::start(
            settings(&self.database_url),
            store,
            self.queue,
            self.profile,
        )
        .await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates an agent with the test password, allowed the test profile.
    pub async fn add_agent(&self, username: &str, capacity: u32) -> UserId {
        let created = create_user(
            &self.store,
            UserSpec {
                username: username.into(),
                display_name: Some(capitalised(username)),
                role: Role::Agent,
                capacity: Some(capacity),
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .expect("create agent");
        self.store
            .grant_profile(created.user.id, self.profile)
            .await
            .expect("grant");
        created.user.id
    }

    pub async fn add_supervisor(&self, username: &str) -> UserId {
        create_user(
            &self.store,
            UserSpec {
                username: username.into(),
                display_name: None,
                role: Role::Supervisor,
                capacity: None,
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .expect("create supervisor")
        .user
        .id
    }

    /// Logs in and returns the session cookie (`sb_session=…`).
    pub async fn login(&self, username: &str) -> String {
        let response = self
            .http
            .post(self.url("/api/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status(), 200, "login of {username}");
        let cookie = response
            .headers()
            .get("set-cookie")
            .expect("session cookie")
            .to_str()
            .expect("ascii cookie");
        cookie.split(';').next().expect("cookie pair").to_owned()
    }

    /// Logs in, opens the console socket and signs in with the test profile.
    pub async fn agent(&self, username: &str) -> Ws {
        let cookie = self.login(username).await;
        let mut ws = Ws::connect(self, "/ws/agent", Some(&cookie), None)
            .await
            .expect("agent socket");
        ws.expect("hello").await;
        ws.send(json!({"type": "sign_in", "profile_id": self.profile}))
            .await;
        ws.expect("signed_in").await;
        ws
    }

    /// An agent who is signed in and Ready.
    pub async fn ready_agent(&self, username: &str) -> Ws {
        let mut ws = self.agent(username).await;
        ws.send(json!({"type": "set_status", "status": "ready"}))
            .await;
        let status = ws.expect("status").await;
        assert_eq!(status["status"]["status"], "ready");
        ws
    }

    /// Starts a chat in the test queue: (conversation id, token).
    pub async fn start_chat(&self, name: &str) -> (String, String) {
        let response = self
            .http
            .post(self.url("/api/chats"))
            .json(&json!({"queue_id": self.queue, "name": name, "email": format!("{}@example.com", name.to_lowercase())}))
            .send()
            .await
            .expect("start chat");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        (
            body["conversation_id"].as_str().expect("id").to_owned(),
            body["token"].as_str().expect("token").to_owned(),
        )
    }

    /// A customer connected to their chat; returns the socket after `resumed`.
    pub async fn customer(&self, id: &str, token: &str, last_seq: i64) -> Ws {
        let mut ws = Ws::connect(self, "/ws/customer", None, None)
            .await
            .expect("customer socket");
        ws.send(
            json!({"type": "resume", "conversation_id": id, "token": token, "last_seq": last_seq}),
        )
        .await;
        ws.expect("resumed").await;
        ws
    }

    /// Starts a chat and connects its customer.
    pub async fn new_customer(&self, name: &str) -> (String, String, Ws) {
        let (id, token) = self.start_chat(name).await;
        let ws = self.customer(&id, &token, 0).await;
        (id, token, ws)
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Queue "Support" and profile "Support chat", created once per database.
pub async fn ensure_fixtures(store: &DynStore) -> (QueueId, ProfileId) {
    let queues = store.list_queues().await.expect("queues");
    if let Some(q) = queues.iter().find(|q| q.name == "Support") {
        let profiles = store.list_profiles().await.expect("profiles");
        let p = profiles
            .iter()
            .find(|p| p.name == "Support chat")
            .expect("profile");
        return (q.id, p.id);
    }
    let queue = store.create_queue("Support", 30, 0).await.expect("queue");
    let profile = store
        .create_profile("Support chat", &[Media::Chat], &[queue])
        .await
        .expect("profile");
    (queue, profile)
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A JSON WebSocket client.
pub struct Ws {
    stream: Stream,
    pub closed_with: Option<u16>,
}

impl Ws {
    pub async fn connect(
        app: &TestApp,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        Self::connect_to(app.addr, path, cookie, origin).await
    }

    pub async fn connect_to(
        addr: std::net::SocketAddr,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut request = format!("ws://{addr}{path}").into_client_request()?;
        if let Some(cookie) = cookie {
            request.headers_mut().insert(
                "cookie",
                HeaderValue::from_str(cookie).expect("cookie header"),
            );
        }
        if let Some(origin) = origin {
            request.headers_mut().insert(
                "origin",
                HeaderValue::from_str(origin).expect("origin header"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Ws {
            stream,
            closed_with: None,
        })
    }

    pub async fn send(&mut self, value: Value) {
        self.stream
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("ws send");
    }

    /// Sends without panicking; false if the connection is gone.
    pub async fn try_send(&mut self, value: Value) -> bool {
        self.stream
            .send(Message::Text(value.to_string().into()))
            .await
            .is_ok()
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("ws send");
    }

    /// The next JSON frame, or None if the socket closed.
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(WAIT).await
    }

    /// Like [`Ws::next`], for the few answers that may take longer than
    /// the usual wait (a replay of megabytes on a busy machine).
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(wait, self.stream.next())
                .await
                .expect("timed out waiting for a frame");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("server sent JSON"))
                }
                Some(Ok(Message::Close(frame))) => {
                    self.closed_with = frame.map(|f| u16::from(f.code));
                    return None;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next JSON frame with no time bound (for a task that idles), or
    /// None if the socket closed.
    pub async fn recv(&mut self) -> Option<Value> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("server sent JSON"))
                }
                Some(Ok(Message::Close(frame))) => {
                    self.closed_with = frame.map(|f| u16::from(f.code));
                    return None;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Skips frames until one of type `kind` arrives.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("socket closed while waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
            assert_ne!(
                frame["type"], "error",
                "unexpected error while waiting for {kind}: {frame}"
            );
        }
    }

    /// Skips frames until an error arrives and returns its code.
    pub async fn expect_error(&mut self) -> Value {
        loop {
            let frame = self
                .next()
                .await
                .expect("socket closed while waiting for an error");
            if frame["type"] == "error" {
                return frame;
            }
        }
    }

    /// Skips frames until a chat-log event of `kind` arrives.
    pub async fn expect_event(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.expect("event").await;
            if frame["kind"] == kind {
                return frame;
            }
        }
    }

    /// Sends a message and waits for its ack; returns the seq.
    pub async fn say(
        &mut self,
        conversation_id: Option<&str>,
        client_msg_id: &str,
        text: &str,
    ) -> i64 {
        let mut frame = json!({"type": "send", "client_msg_id": client_msg_id, "text": text});
        if let Some(id) = conversation_id {
            frame["conversation_id"] = json!(id);
        }
        self.send(frame).await;
        let ack = self.expect("ack").await;
        assert_eq!(ack["client_msg_id"], client_msg_id);
        ack["seq"].as_i64().expect("seq")
    }

    /// Sends a ping and waits for the pong; proves the socket is open and
    /// every frame sent before was handled.
    pub async fn roundtrip(&mut self) {
        self.send(json!({"type": "ping"})).await;
        self.expect("pong").await;
    }

    /// Sends a ping and returns every frame that arrives before the pong.
    pub async fn until_pong(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut frames = Vec::new();
        loop {
            let frame = self.next().await.expect("socket closed before pong");
            if frame["type"] == "pong" {
                return frames;
            }
            frames.push(frame);
        }
    }

    /// Receives frames until nothing arrives for `quiet`; returns them.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Ok(Some(Ok(message))) = tokio::time::timeout(quiet, self.stream.next()).await {
            if let Message::Text(text) = message {
                frames.push(serde_json::from_str(&text).expect("json"));
            }
        }
        frames
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// An agent accepts the offer they just got for `id`.
pub async fn accept(agent: &mut Ws, id: &str) -> Value {
    let offer = agent.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id);
    agent
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    agent.expect("chat_accepted").await
}

/// Holds a blocking task so paused tokio time only moves on `advance`
/// (auto-advance is inhibited while a `spawn_blocking` task runs). Drop the
/// sender, then await the task, at the end of the test.
pub fn hold_the_clock() -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let task = tokio::task::spawn_blocking(move || {
        let _ = held.recv();
    });
    (hold, task)
}

/// An agent console that signs in with the session `cookie`, resuming
/// `resume` (conversation → last seq); returns it with its `signed_in`.
pub async fn agent_resuming(
    app: &TestApp,
    cookie: &str,
    resume: &std::collections::HashMap<String, i64>,
) -> (Ws, Value) {
    let mut ws = Ws::connect(app, "/ws/agent", Some(cookie), None)
        .await
        .expect("agent socket");
    ws.expect("hello").await;
    ws.send(json!({"type": "sign_in", "profile_id": app.profile, "resume": resume}))
        .await;
    let signed_in = ws.expect("signed_in").await;
    (ws, signed_in)
}
