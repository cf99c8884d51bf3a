//! Postgres faults under load, through the fault-injecting proxy in
//! [`crate::pg_proxy`]:
//!
//! - Postgres unreachable while customers chat: sends get a retryable
//!   `unavailable` and no ack, `/readyz` answers 503, nobody is shown a
//!   message the store does not have, and when Postgres is back the server
//!   serves again by itself and every resend is stored exactly once.
//! - Postgres terminating every backend (as a restart does): the server
//!   reconnects by itself.
//! - An ambiguous commit (the INSERT commits, its answer is lost with the
//!   connection), then the client's resend with the same `client_msg_id`:
//!   exactly one stored message, acknowledged as a duplicate.

use crate::helpers::{accept, fresh_database, postgres_admin_url, settings, Backend, TestApp, Ws};
use crate::pg_proxy::PgProxy;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard::domain::ids::ConversationId;
use switchboard::store::{self, DynStore};

/// Bound on waiting for the server to notice Postgres is back.
const RECOVERY: Duration = Duration::from_secs(30);

/// The real Postgres address from the admin URL.
fn upstream() -> std::net::SocketAddr {
    let admin = postgres_admin_url();
    let host = admin
        .split_once('@')
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("host in SWITCHBOARD_TEST_POSTGRES")
        .replace("localhost", "127.0.0.1");
    let host = if host.contains(':') {
        host
    } else {
        format!("{host}:5432")
    };
    host.parse().expect("a loopback address")
}

/// A server whose store reaches a fresh Postgres database through a proxy;
/// also a direct store for checking.
async fn proxied_app() -> (TestApp, PgProxy, DynStore) {
    let real = fresh_database(Backend::Postgres).await;
    let proxy = PgProxy::start(upstream()).await;
    let app = TestApp::spawn_with(settings(&proxy.url(&real))).await;
    let direct = store::connect(&real, 2).await.expect("direct store");
    (app, proxy, direct)
}

async fn ready(app: &TestApp) -> u16 {
    match app.http.get(app.url("/readyz")).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// What one chatting customer acknowledged and saw.
#[derive(Default, Debug)]
struct Chatter {
    /// client_msg_id → public seq of the ack.
    acked: BTreeMap<String, i64>,
    /// Public seqs of the events received, in order.
    seen: Vec<i64>,
    /// client_msg_id of each event received, by seq.
    seen_ids: HashMap<i64, Option<String>>,
    unavailable: usize,
}

/// A customer sending as fast as acks allow, one message in flight, resent
/// after `unavailable` until acknowledged, until `stop`; then it waits for
/// the events of its acknowledged messages.
async fn chatter(
    mut ws: Ws,
    name: String,
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
) -> Chatter {
    let mut out = Chatter::default();
    let mut n = 0;
    let mut current: Option<String> = None;
    loop {
        if current.is_none() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            n += 1;
            current = Some(format!("{name}-{n}"));
        }
        let cmid = current.clone().expect("message");
        ws.send(json!({"type": "send", "client_msg_id": cmid, "text": format!("load {cmid}")}))
            .await;
        loop {
            let frame = ws.next().await.expect("customer socket open");
            match frame["type"].as_str() {
                Some("ack") if frame["client_msg_id"] == cmid.as_str() => {
                    out.acked
                        .insert(cmid.clone(), frame["seq"].as_i64().expect("seq"));
                    current = None;
                    break;
                }
                Some("error") => {
                    assert_eq!(frame["code"], "unavailable", "{frame}");
                    assert_eq!(frame["retryable"], true, "{frame}");
                    assert_eq!(frame["client_msg_id"], cmid.as_str());
                    out.unavailable += 1;
                    refused.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                Some("event") => record(&mut out, &frame),
                _ => {}
            }
        }
    }
    let last_acked = out.acked.values().copied().max().unwrap_or(0);
    while out.seen.last().copied().unwrap_or(0) < last_acked {
        let frame = ws.expect("event").await;
        record(&mut out, &frame);
    }
    out
}

fn record(out: &mut Chatter, frame: &Value) {
    let seq = frame["seq"].as_i64().expect("seq");
    out.seen.push(seq);
    out.seen_ids
        .insert(seq, frame["client_msg_id"].as_str().map(str::to_owned));
}

/// A customer's view must be the stored public log (from 1, no gap, no
/// duplicate, nothing the store lacks) and hold every acknowledged message.
async fn check_chatter(direct: &DynStore, id: &str, c: &Chatter) {
    let log = direct
        .events_after_public(&ConversationId(id.to_owned()), 0, 100_000)
        .await
        .expect("log");
    let stored: HashMap<i64, Option<String>> = log
        .iter()
        .map(|e| (e.public_seq.expect("public"), e.client_msg_id.clone()))
        .collect();
    assert_eq!(
        c.seen,
        (1..=c.seen.len() as i64).collect::<Vec<_>>(),
        "gap or duplicate"
    );
    for (seq, cmid) in &c.seen_ids {
        assert_eq!(stored.get(seq), Some(cmid), "shown but not stored: {seq}");
    }
    for (cmid, seq) in &c.acked {
        let hits: Vec<_> = log
            .iter()
            .filter(|e| e.client_msg_id.as_deref() == Some(cmid))
            .collect();
        assert_eq!(hits.len(), 1, "{cmid} stored {} times", hits.len());
        assert_eq!(hits[0].public_seq, Some(*seq));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_under_load() {
    // Arrange: an agent with five chats; four customers send continuously.
    let (app, proxy, direct) = proxied_app().await;
    app.add_agent("alice", 5).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    let load_names = ["Dan", "Eve", "Fay", "Gus"];
    for name in load_names {
        let (chat, _token, ws) = app.new_customer(name).await;
        accept(&mut alice, &chat).await;
        let task = chatter(ws, name.to_lowercase(), stop.clone(), refused.clone());
        load.push((chat, tokio::spawn(task)));
    }
    carla.say(None, "c1", "before the outage").await;
    assert_eq!(ready(&app).await, 200);

    // Act: Postgres becomes unreachable under load.
    proxy.cut();

    // Assert: a send is refused as retryable and not acknowledged.
    carla
        .send(json!({"type": "send", "client_msg_id": "c2", "text": "during the outage"}))
        .await;
    let error = loop {
        let frame = carla.next().await.expect("socket stays open");
        assert_ne!(
            frame["type"], "ack",
            "acknowledged without a store: {frame}"
        );
        if frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(
        (&error["code"], &error["retryable"], &error["client_msg_id"]),
        (&json!("unavailable"), &json!(true), &json!("c2"))
    );
    assert_eq!(ready(&app).await, 503, "not ready without Postgres");
    let start = app
        .http
        .post(app.url("/api/chats"))
        .json(&json!({"queue_id": app.queue, "name": "Fay"}))
        .send()
        .await
        .expect("start chat");
    assert_eq!(start.status(), 503);
    let body: Value = start.json().await.expect("json");
    assert_eq!(body["error"], "unavailable");
    // Nothing unstored was shown: the agent has no trace of c2.
    for frame in alice.until_pong().await {
        assert_ne!(
            frame["client_msg_id"], "c2",
            "shown but not stored: {frame}"
        );
    }

    // The load ran into the outage too before it ends.
    tokio::time::timeout(RECOVERY, async {
        while refused.load(Ordering::SeqCst) < load_names.len() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the load never met the outage");

    // Act: Postgres is back.
    proxy.restore();

    // Assert: ready again by itself, and the resend is stored once.
    tokio::time::timeout(RECOVERY, async {
        while ready(&app).await != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server did not come back by itself");
    let ack = tokio::time::timeout(RECOVERY, async {
        loop {
            carla
                .send(json!({"type": "send", "client_msg_id": "c2", "text": "during the outage"}))
                .await;
            let frame = carla.next().await.expect("socket open");
            if frame["type"] == "ack" {
                return frame;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("resend acknowledged");
    assert_eq!(ack["client_msg_id"], "c2");
    let event = alice.expect_event("message").await;
    let event = if event["client_msg_id"] == "c2" {
        event
    } else {
        loop {
            let e = alice.expect_event("message").await;
            if e["client_msg_id"] == "c2" {
                break e;
            }
        }
    };
    assert_eq!(event["conversation_id"], id.as_str());

    // A Postgres restart terminates every backend: the server reconnects.
    let database = proxy_database_name(&app.database_url);
    let mut admin_conn = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&postgres_admin_url())
            .await
            .expect("admin")
    };
    sqlx::query(
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = $1 and pid <> pg_backend_pid()",
    )
    .bind(&database)
    .execute(&mut admin_conn)
    .await
    .expect("terminate backends");
    let seq = tokio::time::timeout(RECOVERY, async {
        let mut attempt = 0;
        loop {
            attempt += 1;
            carla
                .send(json!({"type": "send", "client_msg_id": "c3", "text": "after the restart"}))
                .await;
            let frame = carla.next().await.expect("socket open");
            if frame["type"] == "ack" {
                return (frame["seq"].as_i64().expect("seq"), attempt);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("served again after the backends were terminated");
    assert!(seq.0 > ack["seq"].as_i64().expect("seq"));

    // The load went on through all of it: nothing acknowledged was lost or doubled.
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    let mut refused = 0;
    for (chat, task) in load {
        let c = task.await.expect("chatter");
        check_chatter(&direct, &chat, &c).await;
        total += c.acked.len();
        refused += c.unavailable;
    }
    let carla_log = direct
        .events_after(&ConversationId(id.clone()), 0, 1000)
        .await
        .expect("log");
    let c2: Vec<_> = carla_log
        .iter()
        .filter(|e| e.client_msg_id.as_deref() == Some("c2"))
        .collect();
    assert_eq!(c2.len(), 1, "c2 stored once");
    println!(
        "postgres outage under load: {total} acknowledged by the load, {refused} sends refused as unavailable, 0 lost, 0 duplicated"
    );
}

fn proxy_database_name(url: &str) -> String {
    url.rsplit('/')
        .next()
        .and_then(|d| d.split('?').next())
        .expect("database")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_commit_then_retry_stores_one_message() {
    // Arrange: a customer in a chat with an agent.
    let (app, proxy, direct) = proxied_app().await;
    app.add_agent("alice", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    carla.say(None, "c1", "before").await;

    // Act: the next INSERT commits, but its answer is lost with the connection.
    proxy.lose_next_insert_reply();
    carla
        .send(json!({"type": "send", "client_msg_id": "c2", "text": "was it stored?"}))
        .await;
    let error = carla.expect_error().await;
    assert_eq!(proxy.lost_replies(), 1, "the commit's answer was lost");
    assert_eq!(
        (&error["code"], &error["retryable"]),
        (&json!("unavailable"), &json!(true))
    );
    // The client retries with the same client message id.
    carla
        .send(json!({"type": "send", "client_msg_id": "c2", "text": "was it stored?"}))
        .await;
    let ack = carla.expect("ack").await;

    // Assert: it had landed, so the retry is a duplicate of the one row.
    assert_eq!(ack["duplicate"], true, "{ack}");
    let log = direct
        .events_after(&ConversationId(id.clone()), 0, 100)
        .await
        .expect("log");
    let rows: Vec<_> = log
        .iter()
        .filter(|e| e.client_msg_id.as_deref() == Some("c2"))
        .collect();
    assert_eq!(rows.len(), 1, "exactly one stored message");
    assert_eq!(rows[0].public_seq, ack["seq"].as_i64());
    // Both sides get the message once, and the numbering goes on without a gap.
    let seen = alice.expect_event("message").await;
    let seen = if seen["client_msg_id"] == "c2" {
        seen
    } else {
        alice.expect_event("message").await
    };
    assert_eq!(seen["client_msg_id"], "c2");
    let next = carla.say(None, "c3", "after").await;
    assert_eq!(next, ack["seq"].as_i64().expect("seq") + 1);
}

/// The accept is stored, then the agent's join is an ambiguous commit (its
/// `joined` event lands, the answer is lost with the connection): the server
/// retries the join by itself, so the agent gets the chat (not
/// `unavailable`), announced once, and the customer sees the agent join once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_lost_after_a_stored_accept_is_retried_by_the_server() {
    // Arrange: an offer waiting for alice's answer.
    let (app, proxy, direct) = proxied_app().await;
    app.add_agent("alice", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, mut carla) = app.new_customer("Carla").await;
    let offer = alice.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());

    // Act: the accept's statement is a select; the next INSERT is the join.
    proxy.lose_next_insert_reply();
    alice
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    let answer = alice.expect("chat_accepted").await;

    // Assert: the join's answer was lost, and the agent still got the chat.
    assert_eq!(proxy.lost_replies(), 1, "the join's commit answer was lost");
    assert_eq!(answer["conversation"]["state"], "active", "{answer}");
    let log = direct
        .events_after(&ConversationId(id.clone()), 0, 100)
        .await
        .expect("log");
    let joins = log
        .iter()
        .filter(|e| e.kind == switchboard::store::EventKind::Joined)
        .count();
    assert_eq!(joins, 1, "announced once: {log:?}");
    carla.expect_event("joined").await;
    let next = carla.say(None, "c1", "hello").await;
    let said = alice.expect_event("message").await;
    assert_eq!(said["client_msg_id"], "c1");
    assert!(next > 0);
}
