//! The agent grace period (docs/protocol.md 6.5), on paused tokio time as in
//! `offer_timeout.rs`: the clock moves only when the test advances it.
//!
//! - Dropped mid-offer: the offer keeps its deadline, nobody else gets it,
//!   and it is shown again on reconnect; unanswered by the deadline it goes
//!   to the next agent and the dropped one is Not ready ("No answer").
//! - Dropped mid-chat: the customer is told the agent is reconnecting and
//!   that they are back; after the grace period the chat returns to the
//!   queue with its history, the next agent gets it, supervisors see an
//!   alert, and the lost agent's console no longer has it.
//! - Lost with the customer gone too: the chat ends.
//! - After a restart: an agent who had chats and never signs in again is
//!   lost the same way.
//! - An invitation the lost agent left pending is cancelled with the requeue.

use crate::helpers::{accept, agent_resuming, hold_the_clock, Backend, TestApp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use switchboard::domain::conversation::ConversationState;
use switchboard::domain::ids::ConversationId;

macro_rules! paused_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use crate::helpers::Backend;

                #[tokio::test(start_paused = true)]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await
                }

                #[tokio::test(start_paused = true)]
                async fn postgres() {
                    super::$name(Backend::Postgres).await
                }
            }
        )*
    };
}

paused_both_stores!(
    offer_of_a_dropped_agent_keeps_its_deadline,
    chat_of_a_lost_agent_goes_back_to_the_queue,
    lost_agent_with_the_customer_gone_ends_the_chat,
    agent_who_never_returns_after_a_restart_is_lost,
    pending_invitation_of_a_lost_agent_is_cancelled,
);

/// A fresh client each time: after the test moves the paused clock, the
/// server has closed the shared client's idle keep-alive connections.
async fn live(app: &TestApp, cookie: &str) -> Value {
    let response = reqwest::Client::new()
        .get(app.url("/api/live"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("live");
    assert_eq!(response.status(), 200);
    response.json().await.expect("live json")
}

fn agent_row<'a>(live: &'a Value, username: &str) -> &'a Value {
    live["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["username"] == username)
        .unwrap_or_else(|| panic!("{username} not in {live}"))
}

/// Waits (moving the paused clock in 10 ms steps, far below any deadline)
/// until the router has seen `username`'s console go away.
async fn until_away(app: &TestApp, cookie: &str, username: &str) {
    for _ in 0..500 {
        if agent_row(&live(app, cookie).await, username)["reconnecting"] == true {
            return;
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    panic!("the router never saw {username}'s console go away");
}

async fn routing_kinds(app: &TestApp, id: &str) -> Vec<String> {
    app.store
        .routing_events(&ConversationId(id.to_owned()))
        .await
        .expect("routing events")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn offer_of_a_dropped_agent_keeps_its_deadline(backend: Backend) {
    let (hold, clock) = hold_the_clock();
    // Arrange: alice (idle longest) and bob ready; alice is offered carla's chat.
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    app.add_agent("bob", 1).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let alice_session = app.login("alice").await;
    let mut alice = app.ready_agent("alice").await;
    let mut bob = app.ready_agent("bob").await;
    let (id, _token, _carla) = app.new_customer("Carla").await;
    assert_eq!(
        alice.expect("chat_offered").await["conversation_id"],
        id.as_str()
    );

    // Act 1: alice's connection vanishes; 10 s later she is back.
    drop(alice);
    until_away(&app, &sue, "alice").await;
    tokio::time::advance(Duration::from_secs(10)).await;
    let frames = bob.until_pong().await;
    assert!(
        frames.iter().all(|f| f["type"] != "chat_offered"),
        "the offer stays alice's while she is away: {frames:?}"
    );
    let (mut alice, _) = agent_resuming(&app, &alice_session, &HashMap::new()).await;

    // Assert 1: the same offer again, with what is left of its 30 s.
    let again = alice.expect("chat_offered").await;
    assert_eq!(again["conversation_id"], id.as_str());
    let left = again["expires_in_ms"].as_u64().expect("expires_in_ms");
    assert!(
        (15_000..=20_000).contains(&left),
        "the deadline kept running: {left} ms left"
    );

    // Act 2: she drops again and does not answer before the deadline.
    drop(alice);
    until_away(&app, &sue, "alice").await;
    tokio::time::advance(Duration::from_secs(21)).await;

    // Assert 2: bob gets it; alice, back, is Not ready "No answer".
    accept(&mut bob, &id).await;
    let (_alice, signed_in) = agent_resuming(&app, &alice_session, &HashMap::new()).await;
    assert_eq!(signed_in["status"]["status"], "not_ready", "{signed_in}");
    assert_eq!(signed_in["status"]["reason"], "No answer", "{signed_in}");
    assert_eq!(
        routing_kinds(&app, &id).await,
        ["queued", "offered", "timed_out", "offered", "accepted"]
    );
    drop(hold);
    let _ = clock.await;
}

async fn chat_of_a_lost_agent_goes_back_to_the_queue(backend: Backend) {
    let (hold, clock) = hold_the_clock();
    // Arrange: alice in a chat with carla; bob signed in but Not ready.
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 2).await;
    app.add_agent("bob", 2).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let alice_session = app.login("alice").await;
    let mut alice = app.ready_agent("alice").await;
    let mut bob = app.agent("bob").await;
    let (id, _token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    carla.say(None, "c1", "my order is late").await;
    let seen = alice.expect_event("message").await["seq"]
        .as_i64()
        .expect("seq");

    // Act 1: alice drops; carla is told; alice is back within the grace period.
    drop(alice);
    let away = carla.expect("agent_presence").await;
    assert_eq!(
        away,
        json!({"type": "agent_presence", "conversation_id": id, "connected": false})
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    let resume = HashMap::from([(id.clone(), seen)]);
    let (alice, signed_in) = agent_resuming(&app, &alice_session, &resume).await;

    // Assert 1: still her chat; carla hears she is back.
    assert_eq!(
        signed_in["conversations"][0]["conversation_id"],
        id.as_str()
    );
    assert_eq!(carla.expect("agent_presence").await["connected"], true);

    // Act 2: alice drops again and stays away past the 60 s grace period.
    drop(alice);
    assert_eq!(carla.expect("agent_presence").await["connected"], false);
    until_away(&app, &sue, "alice").await;
    tokio::time::advance(Duration::from_secs(61)).await;

    // Assert 2: carla is told and gets her place in the queue.
    let left = carla.expect_event("left").await;
    assert!(
        left["text"]
            .as_str()
            .is_some_and(|t| t.contains("back in the queue")),
        "{left}"
    );
    // Queue positions go out at most every 200 ms (protocol 6.6), and
    // this clock only moves when told.
    tokio::time::advance(Duration::from_millis(250)).await;
    assert_eq!(carla.expect("queue_position").await["position"], 1);
    // Supervisors see the alerts; alice is gone from the live view.
    let view = live(&app, &sue).await;
    let alerts: Vec<(&str, &str)> = view["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or_default(),
                a["conversation_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        alerts,
        [("chat_requeued", id.as_str()), ("agent_lost", "")],
        "{view}"
    );
    assert_eq!(view["alerts"][0]["agent_name"], "Alice");
    assert_eq!(agent_row(&view, "alice")["status"], "offline");

    // Act 3: bob becomes ready and takes the chat.
    bob.send(json!({"type": "set_status", "status": "ready"}))
        .await;
    let accepted = accept(&mut bob, &id).await;
    assert_eq!(accepted["conversation"]["state"], "active");
    carla.say(None, "c2", "hello again").await;

    // Assert 3: bob sees the whole history, the customer's and the lost
    // agent's parts included; the chat is his alone.
    let mut texts = Vec::new();
    loop {
        let event = bob.expect("event").await;
        texts.push(event["text"].as_str().unwrap_or_default().to_owned());
        if event["text"] == "hello again" {
            break;
        }
    }
    assert!(texts.iter().any(|t| t == "my order is late"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("lost their connection")),
        "{texts:?}"
    );
    let cid = ConversationId(id.clone());
    let record = app
        .store
        .conversation(&cid)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(record.state, ConversationState::Active);
    let agents = app.store.conversation_agents(&cid).await.expect("agents");
    assert_eq!(agents.len(), 1);
    let kinds = routing_kinds(&app, &id).await;
    assert_eq!(
        kinds,
        ["queued", "offered", "accepted", "requeued", "offered", "accepted"]
    );
    // Alice, back at last, no longer has it: her resume gets nothing of it.
    let (_alice, signed_in) = agent_resuming(&app, &alice_session, &resume).await;
    assert_eq!(signed_in["conversations"], json!([]), "{signed_in}");
    drop(hold);
    let _ = clock.await;
}

async fn lost_agent_with_the_customer_gone_ends_the_chat(backend: Backend) {
    let (hold, clock) = hold_the_clock();
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;

    // Act: carla closes her tab, then alice's console drops for good.
    carla.close().await;
    let gone = alice.expect("customer_presence").await;
    assert_eq!(gone["connected"], false);
    drop(alice);
    until_away(&app, &sue, "alice").await;
    tokio::time::advance(Duration::from_secs(61)).await;
    let mut ended = false;
    for _ in 0..500 {
        let view = live(&app, &sue).await;
        if view["alerts"][0]["kind"] == "chat_ended" {
            ended = true;
            break;
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }

    // Assert: ended (not requeued for nobody), with the reason in the log.
    assert!(ended, "no chat_ended alert");
    let cid = ConversationId(id.clone());
    let record = app
        .store
        .conversation(&cid)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(record.state, ConversationState::Ended);
    let log = app.store.events_after(&cid, 0, 100).await.expect("log");
    let last = log.last().expect("events");
    assert!(last.body.contains("lost their connection"), "{}", last.body);
    drop(hold);
    let _ = clock.await;
}

async fn agent_who_never_returns_after_a_restart_is_lost(backend: Backend) {
    let (hold, clock) = hold_the_clock();
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, token, _carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;

    // Act: the server restarts; carla comes back, alice never does.
    let app = app.restart().await;
    let mut carla = app.customer(&id, &token, 0).await;
    carla.roundtrip().await;
    tokio::time::advance(Duration::from_secs(61)).await;

    // Assert: her chat goes back to the queue for carla.
    let left = carla.expect_event("left").await;
    assert!(left["text"]
        .as_str()
        .is_some_and(|t| t.contains("back in the queue")));
    // Queue positions go out at most every 200 ms (protocol 6.6), and
    // this clock only moves when told.
    tokio::time::advance(Duration::from_millis(250)).await;
    assert_eq!(carla.expect("queue_position").await["position"], 1);
    let cid = ConversationId(id.clone());
    let record = app
        .store
        .conversation(&cid)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(record.state, ConversationState::Waiting);
    drop(alice);
    drop(hold);
    let _ = clock.await;
}

async fn pending_invitation_of_a_lost_agent_is_cancelled(backend: Backend) {
    let (hold, clock) = hold_the_clock();
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    app.add_supervisor("sue").await;
    let sue = app.login("sue").await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    // A queue invitation nobody can take yet: it stays pending.
    alice
        .send(json!({"type": "invite", "conversation_id": id, "queue_id": app.queue}))
        .await;
    alice.expect_event("invited").await;
    assert_eq!(app.store.open_invites().await.expect("invites").len(), 1);

    // Act: alice's console drops for good.
    drop(alice);
    until_away(&app, &sue, "alice").await;
    tokio::time::advance(Duration::from_secs(61)).await;

    // Assert: the chat is back in the queue and the invitation is over.
    carla.expect_event("left").await;
    // The router closes the invitation right after the requeue it sees
    // from the conversation (the customer may hear of the requeue first).
    // That is a store write (an fsync on SQLite), so the wait is bounded
    // in real time: a count of quick reads could run out before one slow
    // fsync on a busy disk. The paused clock stays where it is.
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !app.store.open_invites().await.expect("invites").is_empty()
        && std::time::Instant::now() < until
    {
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(5)))
            .await
            .expect("real-time pause");
    }
    let cid = ConversationId(id.clone());
    let record = app
        .store
        .conversation(&cid)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(record.state, ConversationState::Waiting);
    assert!(app.store.open_invites().await.expect("invites").is_empty());
    assert!(routing_kinds(&app, &id)
        .await
        .contains(&"invite_cancelled".to_owned()));
    drop(hold);
    let _ = clock.await;
}
