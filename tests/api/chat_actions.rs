//! The chat actions of the seed: private messages (never reaching the
//! customer by any path), offers of choices, invitations (conference and
//! transfer) and leaving.

use crate::both_stores;
use crate::helpers::{accept, Backend, TestApp, Ws};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::domain::ids::ConversationId;

both_stores!(
    private_messages_reach_agents_only_on_every_path,
    offer_of_choices_is_answered_once,
    named_invite_conference_then_leave,
    queue_invite_transfer_moves_the_chat,
    one_pending_invite_and_cancel,
    last_agent_cannot_leave_a_connected_customer,
);

/// Two agents in one chat with a customer: (alice, bob, customer, id, token).
async fn conference(app: &TestApp) -> (Ws, Ws, Ws, String, String) {
    app.add_agent("alice", 3).await;
    let bob_id = app.add_agent("bob", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, token, customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    let mut bob = app.agent("bob").await;
    alice
        .send(json!({"type": "invite", "conversation_id": id, "agent_id": bob_id}))
        .await;
    let offer = bob.expect("chat_offered").await;
    assert_eq!(
        offer["invite"],
        json!({"inviter": "Alice", "transfer": false})
    );
    bob.send(json!({"type": "accept", "conversation_id": id}))
        .await;
    bob.expect("chat_accepted").await;
    (alice, bob, customer, id, token)
}

fn texts(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn private_messages_reach_agents_only_on_every_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut alice, mut bob, mut customer, id, token) = conference(&app).await;
    customer.expect_event("joined").await; // alice
    customer.expect_event("joined").await; // bob
    customer.until_pong().await;

    // Live: private typing and a private note reach bob, not the customer.
    alice
        .send(json!({"type": "typing", "conversation_id": id, "typing": true, "private": true}))
        .await;
    bob.expect("typing").await;
    alice.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "n1", "text": "SECRET note", "private": true})).await;
    let ack = alice.expect("ack").await;
    let note = bob.expect_event("message").await;
    assert_eq!(
        (note["text"].as_str(), note["audience"].as_str()),
        (Some("SECRET note"), Some("agents_only"))
    );
    // Then a public message: the customer's numbering has no gap.
    let before = customer.until_pong().await;
    assert!(
        before.iter().all(|f| !f.to_string().contains("SECRET")),
        "live leak: {before:?}"
    );
    assert!(
        before.iter().all(|f| f["type"] != "typing"),
        "private typing leaked: {before:?}"
    );
    let public_seq = alice.say(Some(&id), "p1", "public answer").await;
    assert!(public_seq > ack["seq"].as_i64().unwrap());
    let public = customer.expect_event("message").await;
    assert_eq!(
        public["seq"].as_i64(),
        Some(3),
        "customer numbering: joined, joined, message"
    );

    // Replay after reconnect, from the start and from a point.
    let history = customer_history(&app, &id, &token).await;
    assert!(
        texts(&history).iter().all(|t| !t.contains("SECRET")),
        "replay leak: {history:?}"
    );
    let seqs: Vec<i64> = history
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "no gaps a customer could count"
    );
    let mut resumed = app.customer(&id, &token, 2).await;
    let after = resumed.until_pong().await;
    assert_eq!(texts(&after), ["public answer"]);
    let resumed_view = history.iter().find(|f| f["type"] == "resumed").unwrap();
    assert_eq!(
        resumed_view["conversation"]["last_seq"], 3,
        "the count excludes private events"
    );

    // The organisation's log keeps it, and agents get it on replay.
    let agent_history = app
        .store
        .events_after(&ConversationId(id.clone()), 0, 100)
        .await
        .unwrap();
    assert!(
        agent_history.iter().any(|e| e.body == "SECRET note"),
        "kept in the organisation's log"
    );
    alice.close().await;
    let mut alice = app.agent("alice").await;
    let replay = alice.until_pong().await;
    assert!(
        texts(&replay).iter().any(|t| t == "SECRET note"),
        "agents get it on replay"
    );
    bob.close().await;
}

/// Everything a freshly resumed customer socket receives.
async fn customer_history(app: &TestApp, id: &str, token: &str) -> Vec<Value> {
    let mut ws = Ws::connect(app, "/ws/customer", None, None).await.unwrap();
    ws.send(json!({"type": "resume", "conversation_id": id, "token": token, "last_seq": 0}))
        .await;
    ws.until_pong().await
}

async fn offer_of_choices_is_answered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    for bad in [
        json!(["only one"]),
        json!(["a", "A"]),
        json!((0..11).map(|i| i.to_string()).collect::<Vec<_>>()),
    ] {
        alice.send(json!({"type": "offer_choices", "conversation_id": id, "client_msg_id": "bad", "prompt": "Size?", "options": bad})).await;
        assert_eq!(alice.expect_error().await["code"], "invalid_choices");
    }
    alice.send(json!({"type": "offer_choices", "conversation_id": id, "client_msg_id": "o1", "prompt": "Which size?", "options": ["Small", "Medium", "Large"]})).await;
    alice.expect("ack").await;
    let offer = customer.expect_event("choices").await;
    assert_eq!(offer["text"], "Which size? [Small] [Medium] [Large]");
    let offer_id = offer["data"]["offer_id"].as_str().unwrap().to_owned();
    assert_eq!(
        offer["data"]["options"][1],
        json!({"id": 2, "label": "Medium"})
    );

    customer
        .send(json!({"type": "choose", "client_msg_id": "x1", "offer_id": "nope", "option_id": 1}))
        .await;
    assert_eq!(customer.expect_error().await["code"], "unknown_offer");
    customer
        .send(
            json!({"type": "choose", "client_msg_id": "x2", "offer_id": offer_id, "option_id": 4}),
        )
        .await;
    assert_eq!(customer.expect_error().await["code"], "invalid_option");
    customer
        .send(
            json!({"type": "choose", "client_msg_id": "c1", "offer_id": offer_id, "option_id": 2}),
        )
        .await;
    customer.expect("ack").await;
    let choice = alice.expect_event("choice").await;
    assert_eq!(
        choice["data"],
        json!({"offer_id": offer_id, "option_id": 2, "label": "Medium"})
    );
    assert_eq!(choice["author"]["role"], "customer");
    customer
        .send(
            json!({"type": "choose", "client_msg_id": "c2", "offer_id": offer_id, "option_id": 1}),
        )
        .await;
    assert_eq!(customer.expect_error().await["code"], "already_answered");
    customer
        .send(json!({"type": "dismiss_choices", "client_msg_id": "c3", "offer_id": offer_id}))
        .await;
    assert_eq!(customer.expect_error().await["code"], "already_answered");
    // Agents cannot answer, customers cannot offer.
    alice
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": "z", "text": "fine"}))
        .await;
    alice.expect("ack").await;

    // Both are in the log; a restart of the actor keeps the answered state.
    let log = app
        .store
        .events_after(&ConversationId(id.clone()), 0, 100)
        .await
        .unwrap();
    let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"choices") && kinds.contains(&"choice"));
    let app = app.restart().await;
    let mut customer = app.customer(&id, &_token, 0).await;
    customer
        .send(
            json!({"type": "choose", "client_msg_id": "c4", "offer_id": offer_id, "option_id": 3}),
        )
        .await;
    assert_eq!(customer.expect_error().await["code"], "already_answered");
}

async fn named_invite_conference_then_leave(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (mut alice, mut bob, mut customer, id, _token) = conference(&app).await;
    // Both agents see the (agents-only) invitation; the customer sees who joined.
    let invited = alice.expect_event("invited").await;
    assert_eq!(invited["audience"], "agents_only");
    assert_eq!(invited["text"], "Alice invited Bob");
    customer.expect_event("joined").await;
    let bob_joined = customer.expect_event("joined").await;
    assert_eq!(bob_joined["text"], "Bob joined the chat");
    let frames = customer.until_pong().await;
    assert!(frames.iter().all(|f| f["kind"] != "invited"), "{frames:?}");

    // Conference: a message reaches everyone.
    customer.say(None, "c1", "hello both").await;
    assert_eq!(alice.expect_event("message").await["text"], "hello both");
    assert_eq!(bob.expect_event("message").await["text"], "hello both");

    // Alice leaves; Bob stays with the customer.
    alice
        .send(json!({"type": "leave", "conversation_id": id}))
        .await;
    let left = customer.expect_event("left").await;
    assert_eq!(left["text"], "Alice left the chat");
    assert_eq!(alice.expect("status").await["label"], "Ready (0)");
    alice.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a9", "text": "still here?"})).await;
    assert_eq!(alice.expect_error().await["code"], "not_participant");
    bob.say(Some(&id), "b1", "I'll take it from here").await;
    assert_eq!(
        customer.expect_event("message").await["text"],
        "I'll take it from here"
    );
    let agents = app
        .store
        .conversation_agents(&ConversationId(id))
        .await
        .unwrap();
    assert_eq!(agents.len(), 1);
}

async fn queue_invite_transfer_moves_the_chat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    app.add_agent("bob", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    let mut bob = app.ready_agent("bob").await;
    alice.send(json!({"type": "invite", "conversation_id": id, "queue_id": app.queue, "transfer": true})).await;
    let offer = bob.expect("chat_offered").await;
    assert_eq!(offer["invite"]["transfer"], true);
    assert_eq!(offer["customer"]["name"], "Carla");
    bob.send(json!({"type": "accept", "conversation_id": id}))
        .await;
    bob.expect("chat_accepted").await;
    let left = customer.expect_event("left").await;
    assert_eq!(left["text"], "Alice left the chat");
    assert_eq!(
        alice.expect_event("left").await["text"],
        "Alice left the chat"
    );
    let agents = app
        .store
        .conversation_agents(&ConversationId(id.clone()))
        .await
        .unwrap();
    assert_eq!(agents.len(), 1, "transferred: only bob");
    let kinds: Vec<String> = app
        .store
        .routing_events(&ConversationId(id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.ends_with(&[
            "invited".to_owned(),
            "invite_offered".to_owned(),
            "invite_accepted".to_owned()
        ]),
        "{kinds:?}"
    );
}

async fn one_pending_invite_and_cancel(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let bob_id = app.add_agent("bob", 3).await;
    let carol_id = app.add_agent("carol", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, _customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    alice
        .send(json!({"type": "invite", "conversation_id": id, "agent_id": bob_id}))
        .await;
    assert_eq!(
        alice.expect_error().await["code"],
        "agent_unavailable",
        "bob is not signed in"
    );
    let mut bob = app.agent("bob").await;
    let _carol = app.agent("carol").await;
    alice
        .send(json!({"type": "invite", "conversation_id": id, "agent_id": bob_id}))
        .await;
    bob.expect("chat_offered").await;
    alice
        .send(json!({"type": "invite", "conversation_id": id, "agent_id": carol_id}))
        .await;
    assert_eq!(alice.expect_error().await["code"], "invite_pending");
    alice
        .send(json!({"type": "invite", "conversation_id": id}))
        .await;
    assert_eq!(alice.expect_error().await["code"], "invalid_invite");
    bob.send(json!({"type": "cancel_invite", "conversation_id": id}))
        .await;
    assert_eq!(
        bob.expect_error().await["code"],
        "no_invite_pending",
        "only the inviter cancels"
    );
    alice
        .send(json!({"type": "cancel_invite", "conversation_id": id}))
        .await;
    let withdrawn = bob.expect("offer_withdrawn").await;
    assert_eq!(withdrawn["reason"], "cancelled");
    let ended = alice.expect_event("invite_ended").await;
    assert_eq!(ended["audience"], "agents_only");
    // Now a new invitation is allowed, and a reject ends a named one.
    alice
        .send(json!({"type": "invite", "conversation_id": id, "agent_id": carol_id}))
        .await;
    let mut carol = _carol;
    carol.expect("chat_offered").await;
    carol
        .send(json!({"type": "reject", "conversation_id": id}))
        .await;
    carol.expect("chat_rejected").await;
    let ended = alice.expect_event("invite_ended").await;
    assert_eq!(ended["data"]["reason"], "declined");
    alice
        .send(json!({"type": "invite", "conversation_id": id, "agent_id": alice_id(&app).await}))
        .await;
    assert_eq!(alice.expect_error().await["code"], "already_in_chat");
    let _ = bob.drain(Duration::from_millis(10)).await;
}

async fn alice_id(app: &TestApp) -> i64 {
    app.store
        .user_credentials("alice")
        .await
        .unwrap()
        .unwrap()
        .0
        .id
        .0
}

async fn last_agent_cannot_leave_a_connected_customer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, customer) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    alice
        .send(json!({"type": "leave", "conversation_id": id}))
        .await;
    assert_eq!(alice.expect_error().await["code"], "last_agent");
    customer.close().await;
    alice.expect("customer_presence").await;
    alice
        .send(json!({"type": "leave", "conversation_id": id}))
        .await;
    let ended = alice.expect_event("ended").await;
    assert_eq!(ended["text"], "Alice ended the chat");
    assert_eq!(alice.expect("status").await["label"], "Ready (0)");
}
