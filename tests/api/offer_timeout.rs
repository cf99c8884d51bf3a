//! Offer timeouts, on paused tokio time: no sleeps, exact deadlines.
//!
//! Auto-advance of paused time is inhibited while a `spawn_blocking` task
//! runs; the test holds one for its whole length, so time moves only when the
//! test calls `advance` and never jumps while the store is doing I/O.

use crate::helpers::{Backend, TestApp};
use serde_json::Value;
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

/// Frames that arrive before the answer to a ping.
async fn frames_before_pong(ws: &mut crate::helpers::Ws) -> Vec<Value> {
    ws.send(serde_json::json!({"type": "ping"})).await;
    let mut frames = Vec::new();
    loop {
        let frame = ws.next().await.expect("socket open");
        if frame["type"] == "pong" {
            return frames;
        }
        frames.push(frame);
    }
}

async fn unanswered_offer_times_out_and_sets_no_answer(backend: Backend) {
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let no_auto_advance = tokio::task::spawn_blocking(move || {
        let _ = held.recv();
    });

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
    let early = frames_before_pong(&mut alice).await;
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
