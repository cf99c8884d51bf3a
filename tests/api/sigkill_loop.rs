//! The SIGKILL loop: customers and agents chat against the real binary on a
//! fresh Postgres database while the server is killed with SIGKILL at random
//! moments and restarted (`SWITCHBOARD_SIGKILL_LOOPS` times, 20 by default).
//! Clients reconnect, resume and resend what was not acknowledged.
//!
//! Afterwards the clients' own records are checked against the database:
//! every acknowledged message is stored exactly once under the seq it was
//! acknowledged with, every participant received its audience's log in seq
//! order with no gap and no duplicate, no chat ever had two owners, and
//! every chat that was waiting when the server died was offered again (each
//! customer's chat was eventually answered, and each `withdrawn` in the
//! routing log is followed by another offer or the chat's end).

use crate::helpers::{ensure_fixtures, fresh_database, Backend, PASSWORD};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::accounts::{create_user, UserSpec};
use switchboard::domain::account::Role;
use switchboard::domain::ids::ProfileId;
use switchboard::store;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const CUSTOMERS: usize = 8;
const AGENTS: usize = 3;
/// Agents hold 6 chats between them, so about two chats always wait.
const AGENT_CAPACITY: u32 = 2;
/// Waiting chats whose customer vanished (a start whose answer was lost to a
/// kill) are abandoned after this; real customers reconnect well within it.
const GRACE_SECS: &str = "5";
/// An agent ends a chat whose customer has been away this long (such orphans
/// come from lost answers to `POST /api/chats`).
const ORPHAN_AFTER: Duration = Duration::from_secs(3);
/// Bound on the phases after the kills.
const SETTLE: Duration = Duration::from_secs(45);

fn kills() -> usize {
    std::env::var("SWITCHBOARD_SIGKILL_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Customers start new chats after finishing one.
    Running,
    /// Customers finish the chat they have and stop.
    Draining,
    /// Everybody stops.
    Done,
}

/// An acknowledgement a client received.
#[derive(Debug, Clone)]
struct Acked {
    conversation: String,
    /// `customer` or `agent:<id>`, as the store's `sender` column.
    sender: String,
    client_msg_id: String,
    /// In the sender's numbering (public seq for customers).
    seq: i64,
}

/// Everything the clients saw, for the final comparison with the database.
#[derive(Default)]
struct Records {
    acked: Vec<Acked>,
    /// Conversation → the public seqs its customer received, in order.
    customer_views: HashMap<String, Vec<i64>>,
    /// (agent id, conversation) → the seqs that agent received, in order.
    agent_views: HashMap<(i64, String), Vec<i64>>,
    /// Conversation → agents that got `chat_accepted` for it.
    accepted: HashMap<String, Vec<i64>>,
    /// Gaps, duplicates and unexpected errors seen live.
    violations: Vec<String>,
    /// Conversations customers started and finished.
    finished_chats: usize,
    resends: usize,
    reconnects: usize,
}

type Shared = Arc<Mutex<Records>>;

fn lock(records: &Shared) -> std::sync::MutexGuard<'_, Records> {
    records.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks that `seq` continues a view; records a violation if not.
fn take_seq(records: &Shared, who: &str, view: &mut Vec<i64>, seq: i64) {
    let last = view.last().copied().unwrap_or(0);
    if seq == last + 1 {
        view.push(seq);
    } else if seq <= last {
        lock(records)
            .violations
            .push(format!("{who}: duplicate seq {seq} after {last}"));
    } else {
        lock(records)
            .violations
            .push(format!("{who}: gap, seq {seq} after {last}"));
        view.push(seq);
    }
}

/// Starts the server binary with a short customer grace period.
async fn start_server(database_url: &str, attachments: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--root")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHBOARD__DATABASE__URL", database_url)
        .env("SWITCHBOARD__SERVER__BIND", "127.0.0.1:0")
        .env("SWITCHBOARD__ATTACHMENTS__DIR", attachments)
        .env("SWITCHBOARD__ROUTING__CUSTOMER_GRACE_SECS", GRACE_SECS)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start switchboard");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("Switchboard listening on http://") {
                return url.parse::<SocketAddr>().expect("address");
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server did not start in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Waits for the server to be up and opens a socket; None once `Done`.
async fn connect(
    addr: &mut watch::Receiver<Option<SocketAddr>>,
    phase: &watch::Receiver<Phase>,
    path: &str,
    cookie: Option<&str>,
) -> Option<Socket> {
    loop {
        if *phase.borrow() == Phase::Done {
            return None;
        }
        let current = *addr.borrow_and_update();
        if let Some(at) = current {
            let mut request = format!("ws://{at}{path}")
                .into_client_request()
                .expect("request");
            if let Some(cookie) = cookie {
                request
                    .headers_mut()
                    .insert("cookie", HeaderValue::from_str(cookie).expect("cookie"));
            }
            if let Ok(Ok((socket, _))) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio_tungstenite::connect_async(request),
            )
            .await
            {
                return Some(socket);
            }
        }
        // Backoff with jitter, or at once when the address changes.
        let pause = Duration::from_millis(rand::thread_rng().gen_range(20..120));
        let _ = tokio::time::timeout(pause, addr.changed()).await;
    }
}

async fn send(socket: &mut Socket, frame: Value) -> bool {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .is_ok()
}

/// The next JSON frame; None when the socket is gone. Waits at most `wait`
/// (Some(Value::Null) on a timeout, so callers can do periodic work).
async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    match tokio::time::timeout(wait, socket.next()).await {
        Err(_) => Some(Value::Null),
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str(&text).ok(),
        Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => None,
        Ok(Some(Ok(_))) => Some(Value::Null),
    }
}

/// POST with retries until it gets an answer from a live server.
async fn post_json(
    http: &reqwest::Client,
    addr: &mut watch::Receiver<Option<SocketAddr>>,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    loop {
        let current = *addr.borrow_and_update();
        if let Some(at) = current {
            if let Ok(response) = http
                .post(format!("http://{at}{path}"))
                .json(body)
                .timeout(Duration::from_secs(3))
                .send()
                .await
            {
                if response.status().is_success() {
                    return response;
                }
            }
        }
        let pause = Duration::from_millis(rand::thread_rng().gen_range(20..120));
        let _ = tokio::time::timeout(pause, addr.changed()).await;
    }
}

/// One customer: chats one after another until draining; in each, sends a
/// few messages (one in flight, resent until acknowledged) and ends it.
async fn customer(
    index: usize,
    queue: i64,
    mut addr: watch::Receiver<Option<SocketAddr>>,
    phase: watch::Receiver<Phase>,
    records: Shared,
) {
    let http = reqwest::Client::new();
    let mut chat_no = 0;
    while *phase.borrow() == Phase::Running {
        chat_no += 1;
        let started: Value = post_json(
            &http,
            &mut addr,
            "/api/chats",
            &json!({"queue_id": queue, "name": format!("Customer {index}")}),
        )
        .await
        .json()
        .await
        .expect("chat json");
        let id = started["conversation_id"].as_str().expect("id").to_owned();
        let token = started["token"].as_str().expect("token").to_owned();
        let who = format!("customer {index} in {id}");
        let target = rand::thread_rng().gen_range(4..10);
        let mut view: Vec<i64> = Vec::new();
        let mut pending: VecDeque<String> = VecDeque::new();
        let mut sent: HashSet<String> = HashSet::new();
        let mut made = 0;
        let mut acked = 0;
        let mut joined = false;
        let mut ended = false;
        let mut first = true;
        while !ended {
            let Some(mut socket) = connect(&mut addr, &phase, "/ws/customer", None).await else {
                return;
            };
            if !first {
                lock(&records).reconnects += 1;
            }
            first = false;
            let last = view.last().copied().unwrap_or(0);
            if !send(
                &mut socket,
                json!({"type": "resume", "conversation_id": id, "token": token, "last_seq": last}),
            )
            .await
            {
                continue;
            }
            let mut in_flight: Option<(String, Instant)> = None;
            let mut end_sent = false;
            let mut next_send = Instant::now();
            loop {
                let Some(frame) = next(&mut socket, Duration::from_millis(50)).await else {
                    break;
                };
                match frame["type"].as_str() {
                    Some("event") => {
                        let seq = frame["seq"].as_i64().expect("seq");
                        take_seq(&records, &who, &mut view, seq);
                        match frame["kind"].as_str() {
                            Some("joined") => joined = true,
                            Some("ended") => ended = true,
                            _ => {}
                        }
                    }
                    Some("ack") => {
                        let cmid = frame["client_msg_id"].as_str().unwrap_or("").to_owned();
                        if pending.front() == Some(&cmid) {
                            pending.pop_front();
                            in_flight = None;
                            acked += 1;
                            lock(&records).acked.push(Acked {
                                conversation: id.clone(),
                                sender: "customer".into(),
                                client_msg_id: cmid,
                                seq: frame["seq"].as_i64().expect("ack seq"),
                            });
                        }
                    }
                    Some("error") => match frame["code"].as_str() {
                        Some("unavailable" | "rate_limited") => in_flight = None,
                        Some("conversation_ended") => {
                            // A message that never got its ack is not
                            // acknowledged: the chat ended first.
                            pending.clear();
                            in_flight = None;
                        }
                        _ => lock(&records)
                            .violations
                            .push(format!("{who}: unexpected {frame}")),
                    },
                    _ => {}
                }
                if ended {
                    break;
                }
                let now = Instant::now();
                if in_flight
                    .as_ref()
                    .is_some_and(|(_, at)| now - *at > Duration::from_secs(2))
                {
                    in_flight = None; // no answer: resend
                }
                if in_flight.is_none() && now >= next_send {
                    if pending.is_empty() && made < target {
                        made += 1;
                        pending.push_back(format!("c{index}-{chat_no}-{made}"));
                    }
                    if let Some(cmid) = pending.front().cloned() {
                        if !send(&mut socket, json!({"type": "send", "client_msg_id": cmid, "text": format!("hello {cmid}")})).await {
                            break;
                        }
                        if !sent.insert(cmid.clone()) {
                            lock(&records).resends += 1;
                        }
                        in_flight = Some((cmid, now));
                        next_send =
                            now + Duration::from_millis(rand::thread_rng().gen_range(60..200));
                    } else if joined && acked >= target && !end_sent {
                        end_sent = true;
                        if !send(&mut socket, json!({"type": "end"})).await {
                            break;
                        }
                    }
                }
            }
        }
        let mut r = lock(&records);
        r.customer_views.insert(id, view);
        r.finished_chats += 1;
    }
}

/// One chat as an agent sees it.
#[derive(Default)]
struct AgentChat {
    view: Vec<i64>,
    ended: bool,
    customer_connected: bool,
    away_since: Option<Instant>,
    end_sent: bool,
}

/// One agent: accepts every offer, writes in its chats, ends chats whose
/// customer stays away, and resumes everything after each reconnect.
async fn agent(
    user: i64,
    profile: ProfileId,
    cookie: String,
    mut addr: watch::Receiver<Option<SocketAddr>>,
    phase: watch::Receiver<Phase>,
    records: Shared,
) {
    let mut chats: BTreeMap<String, AgentChat> = BTreeMap::new();
    let mut pending: VecDeque<(String, String)> = VecDeque::new();
    let mut made = 0;
    let mut first = true;
    let sender = format!("agent:{user}");
    'connections: loop {
        let Some(mut socket) = connect(&mut addr, &phase, "/ws/agent", Some(&cookie)).await else {
            break;
        };
        if !first {
            lock(&records).reconnects += 1;
        }
        first = false;
        let resume: HashMap<&String, i64> = chats
            .iter()
            .filter(|(_, c)| !c.ended)
            .map(|(id, c)| (id, c.view.last().copied().unwrap_or(0)))
            .collect();
        if !send(
            &mut socket,
            json!({"type": "sign_in", "profile_id": profile, "resume": resume}),
        )
        .await
        {
            continue;
        }
        let mut in_flight: Option<Instant> = None;
        let mut next_send = Instant::now();
        for chat in chats.values_mut() {
            chat.end_sent = false;
        }
        loop {
            if *phase.borrow() == Phase::Done {
                break 'connections;
            }
            let Some(frame) = next(&mut socket, Duration::from_millis(50)).await else {
                continue 'connections;
            };
            match frame["type"].as_str() {
                Some("signed_in") => {
                    for view in frame["conversations"].as_array().into_iter().flatten() {
                        let id = view["conversation_id"].as_str().unwrap_or("").to_owned();
                        let chat = chats.entry(id).or_default();
                        chat.customer_connected = view["customer_connected"] == true;
                        chat.away_since = (!chat.customer_connected).then(Instant::now);
                    }
                    if !send(
                        &mut socket,
                        json!({"type": "set_status", "status": "ready"}),
                    )
                    .await
                    {
                        continue 'connections;
                    }
                }
                Some("chat_offered") => {
                    let id = frame["conversation_id"].clone();
                    if !send(
                        &mut socket,
                        json!({"type": "accept", "conversation_id": id}),
                    )
                    .await
                    {
                        continue 'connections;
                    }
                }
                Some("chat_accepted") => {
                    let view = &frame["conversation"];
                    let id = view["conversation_id"].as_str().unwrap_or("").to_owned();
                    lock(&records)
                        .accepted
                        .entry(id.clone())
                        .or_default()
                        .push(user);
                    let chat = chats.entry(id).or_default();
                    chat.customer_connected = view["customer_connected"] == true;
                    chat.away_since = (!chat.customer_connected).then(Instant::now);
                }
                Some("event") => {
                    let id = frame["conversation_id"].as_str().unwrap_or("").to_owned();
                    let who = format!("agent {user} in {id}");
                    let chat = chats.entry(id).or_default();
                    take_seq(
                        &records,
                        &who,
                        &mut chat.view,
                        frame["seq"].as_i64().expect("seq"),
                    );
                    if frame["kind"] == "ended" {
                        chat.ended = true;
                    }
                }
                Some("customer_presence") => {
                    let id = frame["conversation_id"].as_str().unwrap_or("").to_owned();
                    let chat = chats.entry(id).or_default();
                    chat.customer_connected = frame["connected"] == true;
                    chat.away_since = (!chat.customer_connected).then(Instant::now);
                }
                Some("ack") => {
                    let cmid = frame["client_msg_id"].as_str().unwrap_or("").to_owned();
                    if pending.front().map(|(_, m)| m) == Some(&cmid) {
                        let (id, cmid) = pending.pop_front().expect("pending");
                        in_flight = None;
                        lock(&records).acked.push(Acked {
                            conversation: id,
                            sender: sender.clone(),
                            client_msg_id: cmid,
                            seq: frame["seq"].as_i64().expect("ack seq"),
                        });
                    }
                }
                Some("error") => {
                    let about_pending = frame["client_msg_id"].is_string()
                        && pending.front().map(|(_, m)| m.as_str())
                            == frame["client_msg_id"].as_str();
                    match frame["code"].as_str() {
                        Some("unavailable" | "rate_limited") => in_flight = None,
                        Some("conversation_ended" | "not_participant") if about_pending => {
                            pending.pop_front();
                            in_flight = None;
                        }
                        // Lost races for offers, and ending a chat the customer ended first.
                        Some(
                            "offer_withdrawn" | "offer_expired" | "not_your_offer"
                            | "already_accepted" | "conversation_ended" | "not_participant",
                        ) => {}
                        _ => lock(&records)
                            .violations
                            .push(format!("agent {user}: unexpected {frame}")),
                    }
                }
                _ => {}
            }
            let now = Instant::now();
            if in_flight.is_some_and(|at| now - at > Duration::from_secs(2)) {
                in_flight = None;
            }
            if in_flight.is_none() && now >= next_send {
                if pending.is_empty() {
                    let live: Vec<&String> = chats
                        .iter()
                        .filter(|(_, c)| !c.ended && !c.view.is_empty())
                        .map(|(id, _)| id)
                        .collect();
                    if !live.is_empty() {
                        made += 1;
                        let id = live[rand::thread_rng().gen_range(0..live.len())].clone();
                        pending.push_back((id, format!("a{user}-{made}")));
                    }
                }
                if let Some((id, cmid)) = pending.front().cloned() {
                    if !send(&mut socket, json!({"type": "send", "conversation_id": id, "client_msg_id": cmid, "text": format!("reply {cmid}")})).await {
                        continue 'connections;
                    }
                    in_flight = Some(now);
                    next_send = now + Duration::from_millis(rand::thread_rng().gen_range(100..300));
                }
            }
            for (id, chat) in chats.iter_mut() {
                let orphaned = chat.away_since.is_some_and(|at| now - at > ORPHAN_AFTER);
                if !chat.ended && !chat.end_sent && orphaned && !chat.view.is_empty() {
                    chat.end_sent = true;
                    if !send(&mut socket, json!({"type": "end", "conversation_id": id})).await {
                        continue 'connections;
                    }
                }
            }
        }
    }
    let mut r = lock(&records);
    for (id, chat) in chats {
        r.agent_views.insert((user, id), chat.view);
    }
}

async fn login(
    http: &reqwest::Client,
    addr: &mut watch::Receiver<Option<SocketAddr>>,
    username: &str,
) -> String {
    let response = post_json(
        http,
        addr,
        "/api/login",
        &json!({"username": username, "password": PASSWORD}),
    )
    .await;
    response.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

/// (conversation, seq, public seq, sender, client message id) of a stored event.
type EventRow = (String, i64, Option<i64>, String, Option<String>);
/// (conversation, sender, client message id): a message's identity.
type MessageKey<'a> = (&'a str, &'a str, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loop_loses_and_duplicates_nothing() {
    // Arrange: a fresh Postgres database with a queue, a profile and agents.
    let url = fresh_database(Backend::Postgres).await;
    let attachments = crate::helpers::attachments_dir(&url);
    let (queue, profile, agents) = {
        let store = store::connect(&url, 2).await.expect("store");
        let (queue, profile) = ensure_fixtures(&store).await;
        let mut agents = Vec::new();
        for i in 0..AGENTS {
            let created = create_user(
                &store,
                UserSpec {
                    username: format!("agent{i}"),
                    display_name: Some(format!("Agent {i}")),
                    role: Role::Agent,
                    capacity: Some(AGENT_CAPACITY),
                    password: Some(PASSWORD.into()),
                },
            )
            .await
            .expect("agent");
            store
                .grant_profile(created.user.id, profile)
                .await
                .expect("grant");
            agents.push(created.user.id.0);
        }
        (queue, profile, agents)
    };
    let (mut server, first_addr) = start_server(&url, &attachments).await;
    let (addr_tx, mut addr_rx) = watch::channel(Some(first_addr));
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let records: Shared = Arc::default();
    let http = reqwest::Client::new();
    let mut agent_tasks = Vec::new();
    for (i, user) in agents.iter().enumerate() {
        let cookie = login(&http, &mut addr_rx, &format!("agent{i}")).await;
        agent_tasks.push(tokio::spawn(agent(
            *user,
            profile,
            cookie,
            addr_rx.clone(),
            phase_rx.clone(),
            records.clone(),
        )));
    }
    let customer_tasks: Vec<_> = (0..CUSTOMERS)
        .map(|i| {
            tokio::spawn(customer(
                i,
                queue.0,
                addr_rx.clone(),
                phase_rx.clone(),
                records.clone(),
            ))
        })
        .collect();

    // Act: SIGKILL at random moments, restart at once on the same database.
    let started = Instant::now();
    let kills = kills();
    for _ in 0..kills {
        let pause = rand::thread_rng().gen_range(300..1500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.start_kill().expect("SIGKILL");
        let _ = server.wait().await;
        addr_tx.send_replace(None);
        let (restarted, addr) = start_server(&url, &attachments).await;
        server = restarted;
        addr_tx.send_replace(Some(addr));
    }
    let killing = started.elapsed();

    // Customers finish the chat they are in; every waiting chat must be
    // offered again and answered for that to happen.
    phase_tx.send_replace(Phase::Draining);
    tokio::time::timeout(SETTLE, async {
        for task in customer_tasks {
            task.await.expect("customer task");
        }
    })
    .await
    .expect("customers could not finish their chats: a waiting chat was never offered again");
    // Orphans (chats whose start answer was lost) end or are abandoned.
    let pool = sqlx::PgPool::connect(&url).await.expect("pool");
    tokio::time::timeout(SETTLE, async {
        loop {
            let (live,): (i64,) = sqlx::query_as(
                "select count(*) from conversations where state in ('waiting', 'offered', 'active')",
            )
            .fetch_one(&pool)
            .await
            .expect("count");
            if live == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("chats still live after the run");
    // Give agents a moment to read the last `ended` events, then stop them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    phase_tx.send_replace(Phase::Done);
    for task in agent_tasks {
        task.await.expect("agent task");
    }
    drop(server);

    // Assert.
    let records = std::mem::take(&mut *lock(&records));
    assert!(records.violations.is_empty(), "{:#?}", records.violations);
    let rows: Vec<EventRow> = sqlx::query_as(
        "select conversation_id, seq, public_seq, sender, client_msg_id from events order by conversation_id, seq",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    let mut log: HashMap<&str, Vec<(i64, Option<i64>)>> = HashMap::new();
    let mut by_msg: HashMap<MessageKey<'_>, Vec<(i64, Option<i64>)>> = HashMap::new();
    for (conversation, seq, public_seq, sender, cmid) in &rows {
        log.entry(conversation)
            .or_default()
            .push((*seq, *public_seq));
        if let Some(cmid) = cmid {
            by_msg
                .entry((conversation, sender, cmid))
                .or_default()
                .push((*seq, *public_seq));
        }
    }
    // Every acknowledged message: stored exactly once, under its ack's seq.
    let mut lost = 0;
    let mut duplicated = 0;
    for a in &records.acked {
        match by_msg.get(&(
            a.conversation.as_str(),
            a.sender.as_str(),
            a.client_msg_id.as_str(),
        )) {
            None => lost += 1,
            Some(stored) if stored.len() > 1 => duplicated += 1,
            Some(stored) => {
                let (seq, public_seq) = stored[0];
                let expected = if a.sender == "customer" {
                    public_seq
                } else {
                    Some(seq)
                };
                assert_eq!(expected, Some(a.seq), "{a:?} stored under another seq");
            }
        }
    }
    // The log itself has no gaps in either numbering.
    for (conversation, events) in &log {
        let seqs: Vec<i64> = events.iter().map(|e| e.0).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "gap in {conversation}"
        );
        let public: Vec<i64> = events.iter().filter_map(|e| e.1).collect();
        assert_eq!(
            public,
            (1..=public.len() as i64).collect::<Vec<_>>(),
            "public gap in {conversation}"
        );
    }
    // Every participant received its audience's whole log, in order, once.
    for (conversation, view) in &records.customer_views {
        let public: Vec<i64> = log[conversation.as_str()]
            .iter()
            .filter_map(|e| e.1)
            .collect();
        assert_eq!(view, &public, "customer of {conversation} saw another log");
    }
    let mut delivered = records.customer_views.values().map(Vec::len).sum::<usize>();
    for ((agent, conversation), view) in &records.agent_views {
        if view.is_empty() {
            continue; // knew of it only from an offer or a lost race
        }
        let seqs: Vec<i64> = log[conversation.as_str()].iter().map(|e| e.0).collect();
        assert_eq!(
            view, &seqs,
            "agent {agent} in {conversation} saw another log"
        );
        delivered += view.len();
    }
    // No chat ever had two owners: not in the store, not on the consoles.
    let owners: Vec<(String, i64)> = sqlx::query_as(
        "select conversation_id, count(*) from conversation_agents group by conversation_id having count(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .expect("owners");
    assert!(owners.is_empty(), "chats with two owners: {owners:?}");
    for (conversation, agents) in &records.accepted {
        let distinct: HashSet<&i64> = agents.iter().collect();
        assert_eq!(distinct.len(), 1, "{conversation} accepted by {agents:?}");
    }
    let accepts: Vec<(String, i64)> = sqlx::query_as(
        "select conversation_id, count(*) from routing_events where kind = 'accepted' \
         group by conversation_id having count(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .expect("accepts");
    assert!(accepts.is_empty(), "accepted twice: {accepts:?}");
    // No offer lost: after every withdrawal (a kill) the chat was offered
    // again, unless it ended first; and nothing is left waiting.
    let routing: Vec<(String, String)> = sqlx::query_as(
        "select conversation_id, kind from routing_events order by conversation_id, id",
    )
    .fetch_all(&pool)
    .await
    .expect("routing events");
    let states: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("select id, state from conversations")
            .fetch_all(&pool)
            .await
            .expect("states")
            .into_iter()
            .collect();
    let mut withdrawn = 0;
    let mut by_chat: HashMap<&str, Vec<&str>> = HashMap::new();
    for (conversation, kind) in &routing {
        by_chat.entry(conversation).or_default().push(kind);
    }
    for (conversation, kinds) in &by_chat {
        for (i, kind) in kinds.iter().enumerate() {
            if *kind == "withdrawn" {
                withdrawn += 1;
                let reoffered = kinds[i + 1..].contains(&"offered");
                let abandoned = states[*conversation] == "abandoned";
                assert!(
                    reoffered || abandoned,
                    "{conversation} withdrawn and never offered again: {kinds:?}"
                );
            }
        }
    }
    let answered = records.customer_views.len();
    let summary = format!(
        "{kills} SIGKILLs, {} acknowledged, {lost} lost, {duplicated} duplicated; {} chats answered and ended, \
         {delivered} events delivered without gap or duplicate, {withdrawn} offers withdrawn by kills and offered again, \
         {} reconnects, {} resends; {:.1} s of kills",
        records.acked.len(),
        answered,
        records.reconnects,
        records.resends,
        killing.as_secs_f64(),
    );
    println!("{summary}");
    assert_eq!((lost, duplicated), (0, 0), "{summary}");
    assert!(
        records.finished_chats > 0 && records.acked.len() > kills,
        "{summary}"
    );
}
