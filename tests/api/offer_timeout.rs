//! Offer timeouts, on paused tokio time: no sleeps, exact deadlines.
//!
//! Auto-advance of paused time is inhibited while a `spawn_blocking` task
//! runs; the test holds one for its whole length, so time moves only when the
//! test calls `advance` and never jumps while the store is doing I/O.

use crate::helpers::{hold_the_clock, Backend, TestApp};
use std::time::Duration;
use switchboard::domain::ids::ConversationId;

#[tokio::test(start_paused = true)]
async fn sqlite() {
    unanswered_offer_times_out_and_sets_no_answer(Backend::Sqlite).await
}

#[tokio::test(start_paused = true)]
async fn postgres() {
    unanswered_offer_times_out_and_sets_no_answer(Backend::Postgres).await
}

#[tokio::test(start_paused = true)]
async fn grace_sqlite() {
    customer_gone_past_the_grace_period_abandons(Backend::Sqlite).await
}

#[tokio::test(start_paused = true)]
async fn grace_postgres() {
    customer_gone_past_the_grace_period_abandons(Backend::Postgres).await
}

async fn customer_gone_past_the_grace_period_abandons(backend: Backend) {
    let (hold, clock) = hold_the_clock();
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    // Two tabs of one customer; the chat is offered to alice.
    let (id, token, first_tab) = app.new_customer("Carla").await;
    let second_tab = app.customer(&id, &token, 0).await;
    alice.expect("chat_offered").await;
    alice
        .send(serde_json::json!({"type": "reject", "conversation_id": id}))
        .await;
    alice.expect("chat_rejected").await;

    // One tab closes: the customer is still there, nothing is abandoned.
    first_tab.close().await;
    alice.until_pong().await;
    tokio::time::advance(Duration::from_secs(61)).await;
    alice.until_pong().await;
    let cid = ConversationId(id.clone());
    assert_eq!(
        app.store
            .conversation(&cid)
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "waiting"
    );

    // The last tab closes: after the 60 s grace the chat is abandoned.
    second_tab.close().await;
    alice.until_pong().await;
    tokio::time::advance(Duration::from_secs(59)).await;
    alice.until_pong().await;
    assert_eq!(
        app.store
            .conversation(&cid)
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "waiting"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    // A reload within the grace would have resumed; now it is over.
    let mut late = app.customer(&id, &token, 0).await;
    let ended = late.expect_event("ended").await;
    assert_eq!(ended["text"], "Carla left before an agent answered");
    assert_eq!(
        app.store
            .conversation(&cid)
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "abandoned"
    );

    drop(hold);
    let _ = clock.await;
}

async fn unanswered_offer_times_out_and_sets_no_answer(backend: Backend) {
    let (hold, no_auto_advance) = hold_the_clock();

    let app = TestApp::spawn(backend).await;
    let alice_id = app.add_agent("alice", 3).await;
    app.add_agent("bob", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let mut bob = app.ready_agent("bob").await;
    let (id, _token, _customer) = app.new_customer("Carla").await;
    let offer = alice.expect("chat_offered").await;
    assert_eq!(
        offer["expires_in_ms"], 30_000,
        "the queue's default offer timeout"
    );

    tokio::time::advance(Duration::from_millis(29_999)).await;
    let early = alice.until_pong().await;
    assert!(
        early.iter().all(|f| f["type"] != "offer_withdrawn"),
        "not yet: {early:?}"
    );

    tokio::time::advance(Duration::from_millis(1)).await;
    let withdrawn = alice.expect("offer_withdrawn").await;
    assert_eq!(withdrawn["conversation_id"], id.as_str());
    assert_eq!(withdrawn["reason"], "timed_out");
    let status = alice.expect("status").await;
    assert_eq!(
        status["status"],
        serde_json::json!({"status": "not_ready", "reason": "No answer"})
    );
    assert_eq!(status["label"], "Not ready: No answer (0)");

    // It counts as a reject: bob gets it, alice is not offered anything more.
    let offer = bob.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    alice
        .send(serde_json::json!({"type": "accept", "conversation_id": id}))
        .await;
    assert_eq!(alice.expect_error().await["code"], "offer_expired");

    let presence = app.store.load_presence(alice_id).await.unwrap().unwrap();
    assert_eq!(presence.status.label(0), "Not ready: No answer (0)");
    let kinds: Vec<String> = app
        .store
        .routing_events(&ConversationId(id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["queued", "offered", "timed_out", "offered"]);

    drop(hold);
    let _ = no_auto_advance.await;
}
