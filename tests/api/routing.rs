//! Routing through the real server: offers, rejects, wrong answers,
//! disconnects, abandonment, queue positions and the routing event log.

use crate::both_stores;
use crate::helpers::{accept, fresh_database, settings, Backend, TestApp};
use serde_json::json;
use std::time::Duration;
use switchboard::domain::ids::ConversationId;
use switchboard::store::EventKind;

both_stores!(
    reject_goes_to_another_agent_and_never_back,
    wrong_answers_get_typed_errors,
    without_a_grace_period_a_closed_console_loses_its_offer_at_once,
    customer_leaving_withdraws_the_offer_and_abandons,
    waiting_customers_get_their_position,
    not_ready_agents_and_full_agents_get_nothing,
    reconnecting_agent_gets_the_offer_back,
);

async fn reject_goes_to_another_agent_and_never_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    app.add_agent("bob", 3).await;
    let mut bob = app.ready_agent("bob").await;
    let (id, _token, _customer) = app.new_customer("Carla").await;

    // Alice has been idle longest: she gets it first.
    let offer = alice.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    alice
        .send(json!({"type": "reject", "conversation_id": id}))
        .await;
    alice.expect("chat_rejected").await;
    let offer = bob.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    bob.send(json!({"type": "reject", "conversation_id": id}))
        .await;
    bob.expect("chat_rejected").await;
    // Everyone rejected: nobody is offered it again.
    assert!(alice
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|f| f["type"] != "chat_offered"));

    let events = app.store.routing_events(&ConversationId(id)).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["queued", "offered", "rejected", "offered", "rejected"]
    );
    assert!(
        events.windows(2).all(|w| w[0].at <= w[1].at),
        "timestamps in order"
    );
}

async fn wrong_answers_get_typed_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    app.add_agent("bob", 3).await;
    let mut bob = app.agent("bob").await; // signed in, not ready
    let (id, _token, _customer) = app.new_customer("Carla").await;
    alice.expect("chat_offered").await;

    // Not offered to bob.
    bob.send(json!({"type": "accept", "conversation_id": id}))
        .await;
    let error = bob.expect_error().await;
    assert_eq!(error["code"], "not_your_offer");
    assert_eq!(error["conversation_id"], id.as_str());
    bob.send(json!({"type": "accept", "conversation_id": "not-a-uuid"}))
        .await;
    assert_eq!(bob.expect_error().await["code"], "not_your_offer");

    alice
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    let first = alice.expect("chat_accepted").await;
    // A repeated accept (its first answer lost, say) is answered again and
    // changes nothing: the same log, no second `joined` event.
    alice
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    let again = alice.expect("chat_accepted").await;
    assert_eq!(
        again["conversation"]["last_seq"],
        first["conversation"]["last_seq"]
    );
    let joined = app
        .store
        .events_after(&ConversationId(id.clone()), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Joined)
        .count();
    assert_eq!(joined, 1);
    alice
        .send(json!({"type": "reject", "conversation_id": id}))
        .await;
    assert_eq!(alice.expect_error().await["code"], "already_accepted");

    // Bob cannot write into alice's chat.
    bob.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "x", "text": "hi"}))
        .await;
    assert_eq!(bob.expect_error().await["code"], "not_participant");

    // Nothing changed: one agent in the chat.
    let agents = app
        .store
        .conversation_agents(&ConversationId(id))
        .await
        .unwrap();
    assert_eq!(agents.len(), 1);
}

/// `routing.agent_grace_secs = 0`: a closed console is lost at once, so its
/// offer is withdrawn (not a reject) and goes to the next agent. With the
/// default grace period the offer waits for the agent (`agent_grace.rs`).
async fn without_a_grace_period_a_closed_console_loses_its_offer_at_once(backend: Backend) {
    let mut settings = settings(&fresh_database(backend).await);
    settings.routing.agent_grace_secs = 0;
    let app = TestApp::spawn_with(settings).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    app.add_agent("bob", 3).await;
    let mut bob = app.ready_agent("bob").await;
    let (id, _token, _customer) = app.new_customer("Carla").await;
    alice.expect("chat_offered").await;
    alice.close().await;
    let offer = bob.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    let kinds: Vec<String> = app
        .store
        .routing_events(&ConversationId(id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["queued", "offered", "withdrawn", "offered"]);
}

async fn customer_leaving_withdraws_the_offer_and_abandons(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, token, mut customer) = app.new_customer("Carla").await;
    alice.expect("chat_offered").await;
    customer.send(json!({"type": "end"})).await;
    let ended = customer.expect_event("ended").await;
    assert_eq!(ended["author"]["role"], "customer");
    let withdrawn = alice.expect("offer_withdrawn").await;
    assert_eq!(withdrawn["reason"], "customer_left");
    alice
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    assert_eq!(alice.expect_error().await["code"], "offer_withdrawn");

    let cid = ConversationId(id.clone());
    let record = app.store.conversation(&cid).await.unwrap().unwrap();
    assert_eq!(record.state.as_str(), "abandoned");
    let kinds: Vec<String> = app
        .store
        .routing_events(&cid)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["queued", "offered", "abandoned"]);
    // A returning customer sees the ended chat and cannot write.
    let mut again = app.customer(&id, &token, 0).await;
    again
        .send(json!({"type": "send", "client_msg_id": "c9", "text": "hello?"}))
        .await;
    assert_eq!(again.expect_error().await["code"], "conversation_ended");
}

async fn waiting_customers_get_their_position(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_first, _t1, mut c1) = app.new_customer("First").await;
    let place = c1.expect("queue_position").await;
    assert_eq!(place["position"], 1);
    let (_second, _t2, mut c2) = app.new_customer("Second").await;
    let place = c2.expect("queue_position").await;
    assert_eq!(place["position"], 2);
    c1.send(json!({"type": "end"})).await;
    let place = c2.expect("queue_position").await;
    assert_eq!(place["position"], 1, "moves up when the one ahead leaves");
}

async fn not_ready_agents_and_full_agents_get_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let (first, _t1, _c1) = app.new_customer("First").await;
    accept(&mut alice, &first).await;
    let (second, _t2, mut c2) = app.new_customer("Second").await;
    // At capacity (1): the second chat waits.
    let frames = alice.drain(Duration::from_millis(300)).await;
    assert!(
        frames.iter().all(|f| f["type"] != "chat_offered"),
        "{frames:?}"
    );
    assert_eq!(c2.expect("queue_position").await["position"], 1);

    app.add_agent("bob", 3).await;
    let mut bob = app.agent("bob").await;
    bob.send(json!({"type": "set_status", "status": "not_ready", "reason": "Pause"}))
        .await;
    let status = bob.expect("status").await;
    assert_eq!(status["label"], "Not ready: Pause (0)");
    assert!(bob
        .drain(Duration::from_millis(300))
        .await
        .iter()
        .all(|f| f["type"] != "chat_offered"));
    bob.send(json!({"type": "set_status", "status": "ready"}))
        .await;
    let offer = bob.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], second.as_str());
}

async fn reconnecting_agent_gets_the_offer_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let cookie = app.login("alice").await;
    let mut first = crate::helpers::Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .unwrap();
    first.expect("hello").await;
    first
        .send(json!({"type": "sign_in", "profile_id": app.profile}))
        .await;
    first.expect("signed_in").await;
    first
        .send(json!({"type": "set_status", "status": "ready"}))
        .await;
    let (id, _token, _customer) = app.new_customer("Carla").await;
    first.expect("chat_offered").await;

    // A second console of the same agent replaces the first one and gets
    // the pending offer again; the first is closed with 4001.
    let mut second = crate::helpers::Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .unwrap();
    second.expect("hello").await;
    second
        .send(json!({"type": "sign_in", "profile_id": app.profile}))
        .await;
    second.expect("signed_in").await;
    let offer = second.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    while first.next().await.is_some() {}
    assert_eq!(first.closed_with, Some(4001));

    // After a real disconnect the offer is withdrawn and, with nobody else
    // available, offered to the agent again when they come back.
    second.close().await;
    let mut third = app.agent("alice").await;
    let offer = third.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    third
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    third.expect("chat_accepted").await;
}
