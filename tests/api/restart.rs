//! A graceful restart: sockets are told, and after the restart chats resume
//! from the store and a pending offer is routed again.

use crate::both_stores;
use crate::helpers::{accept, Backend, TestApp};
use serde_json::json;
use switchboard::domain::ids::ConversationId;

both_stores!(restart_resumes_chats_and_reroutes_pending_offers);

async fn restart_resumes_chats_and_reroutes_pending_offers(backend: Backend) {
    // Arrange: one active chat and one chat offered to bob.
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    app.add_agent("bob", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let (active, active_token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &active).await;
    carla.say(None, "c1", "before the restart").await;
    let mut bob = app.ready_agent("bob").await;
    let (offered, offered_token, mut dan) = app.new_customer("Dan").await;
    bob.expect("chat_offered").await;

    // Act: restart. Every socket is told first.
    let app = {
        let restarted = app.restart();
        let restarted = restarted.await;
        for ws in [&mut alice, &mut bob, &mut carla, &mut dan] {
            ws.expect("shutting_down").await;
            assert!(ws.next().await.is_none());
            assert_eq!(ws.closed_with, Some(1012));
        }
        restarted
    };

    // Assert: the active chat resumes with its history.
    let mut carla = app.customer(&active, &active_token, 0).await;
    let history = carla.expect_event("message").await;
    let history_joined = history["seq"].as_i64().unwrap();
    assert!(history_joined >= 1);
    let mut alice = app.agent("alice").await;
    alice.send(json!({"type": "send", "conversation_id": active, "client_msg_id": "a1", "text": "after the restart"})).await;
    alice.expect("ack").await;
    assert_eq!(
        carla.expect_event("message").await["text"],
        "after the restart"
    );

    // The pending offer was released at start-up and is offered again.
    let _dan = app.customer(&offered, &offered_token, 0).await;
    let mut bob = app.agent("bob").await;
    let offer = bob.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], offered.as_str());
    let kinds: Vec<String> = app
        .store
        .routing_events(&ConversationId(offered))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["queued", "offered", "withdrawn", "offered"]);
}
