//! A customer and an agent chat end to end: offer, accept, messages both
//! ways, acknowledgements after commit, resends, resume and ending.

use crate::both_stores;
use crate::helpers::{accept, Backend, TestApp};
use serde_json::json;
use std::time::Duration;
use switchboard::domain::ids::ConversationId;

both_stores!(
    customer_and_agent_chat_end_to_end,
    resent_client_msg_id_is_stored_once,
    customer_reconnect_gets_exactly_what_it_missed,
    agent_reconnect_resumes_chats_and_status,
    customer_ending_is_seen_by_the_agent_and_closes_the_chat,
    typing_and_presence_are_relayed_not_stored,
    client_msg_ids_are_scoped_per_sender,
    resend_after_the_end_gets_its_original_ack,
    signing_in_twice_on_one_socket_delivers_once,
);

async fn customer_and_agent_chat_end_to_end(backend: Backend) {
    // Arrange
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;

    // Act: the customer writes while waiting, then the agent accepts.
    let first = customer.say(None, "c1", "Hello, my order is late").await;
    assert_eq!(first, 1);
    let offer = agent.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());
    assert_eq!(offer["queue_name"], "Support");
    assert_eq!(offer["customer"]["name"], "Carla");
    assert_eq!(offer["customer"]["email"], "carla@example.com");
    assert!(offer["expires_in_ms"].as_u64().unwrap() > 25_000);
    agent
        .send(json!({"type": "accept", "conversation_id": id}))
        .await;
    let accepted = agent.expect("chat_accepted").await;
    assert_eq!(accepted["conversation"]["state"], "active");
    assert_eq!(accepted["conversation"]["customer_connected"], true);
    // The backlog: the customer's first message and the join.
    let backlog = agent.expect_event("message").await;
    assert_eq!(
        (backlog["seq"].as_i64(), backlog["text"].as_str()),
        (Some(1), Some("Hello, my order is late"))
    );
    let joined = agent.expect_event("joined").await;
    assert_eq!(joined["seq"], 2);

    // Assert: the customer is told who joined.
    let joined = customer.expect_event("joined").await;
    assert_eq!(joined["author"], json!({"role": "agent", "name": "Alice"}));
    assert_eq!(joined["text"], "Alice joined the chat");

    let seq = agent
        .say(Some(&id), "a1", "Let me check that for you")
        .await;
    assert_eq!(seq, 3);
    let received = customer.expect_event("message").await;
    assert_eq!(received["seq"], 3);
    assert_eq!(received["text"], "Let me check that for you");
    assert_eq!(received["author"]["role"], "agent");

    // The sender receives its own event too (matched by client_msg_id).
    let own = agent.expect_event("message").await;
    assert_eq!(
        (own["seq"].as_i64(), own["client_msg_id"].as_str()),
        (Some(3), Some("a1"))
    );

    let seq = customer.say(None, "c2", "Thanks! Order 1234").await;
    assert_eq!(seq, 4);
    let received = agent.expect_event("message").await;
    assert_eq!(
        (received["seq"].as_i64(), received["client_msg_id"].as_str()),
        (Some(4), Some("c2"))
    );
    assert_eq!(
        received["author"],
        json!({"role": "customer", "name": "Carla"})
    );

    // Everything is durably in the log, in order.
    let log = app
        .store
        .events_after(&ConversationId(id.clone()), 0, 100)
        .await
        .unwrap();
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
}

async fn resent_client_msg_id_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;

    let seq = customer.say(None, "same-id", "only once please").await;
    customer
        .send(json!({"type": "send", "client_msg_id": "same-id", "text": "only once please"}))
        .await;
    let again = customer.expect("ack").await;
    assert_eq!(again["seq"].as_i64(), Some(seq));
    assert_eq!(again["duplicate"], true);

    let log = app
        .store
        .events_after(&ConversationId(id.clone()), 0, 100)
        .await
        .unwrap();
    let copies = log
        .iter()
        .filter(|e| e.client_msg_id.as_deref() == Some("same-id"))
        .count();
    assert_eq!(copies, 1);
    // The agent saw it once, too.
    let frames = agent.drain(Duration::from_millis(300)).await;
    let seen = frames
        .iter()
        .filter(|f| f["client_msg_id"] == "same-id")
        .count();
    assert!(seen <= 1, "delivered at most once live: {frames:?}");
}

async fn customer_reconnect_gets_exactly_what_it_missed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;
    let joined = customer.expect_event("joined").await;
    let last_seen = joined["seq"].as_i64().unwrap();
    customer.close().await;

    agent.say(Some(&id), "a1", "Are you still there?").await;
    agent.say(Some(&id), "a2", "I found your order").await;

    let mut customer = app.customer(&id, &token, last_seen).await;
    let missed = customer.drain(Duration::from_millis(300)).await;
    let events: Vec<(i64, String)> = missed
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| {
            (
                f["seq"].as_i64().unwrap(),
                f["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (last_seen + 1, "Are you still there?".to_owned()),
            (last_seen + 2, "I found your order".to_owned())
        ]
    );
}

async fn agent_reconnect_resumes_chats_and_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;
    let joined = agent.expect_event("joined").await;
    let last_seen = joined["seq"].as_i64().unwrap();
    agent.close().await;
    customer.say(None, "c1", "hello?").await;

    let cookie = app.login("alice").await;
    let mut agent = crate::helpers::Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .unwrap();
    agent.expect("hello").await;
    agent.send(json!({"type": "sign_in", "profile_id": app.profile, "resume": {id.clone(): last_seen}})).await;
    let signed_in = agent.expect("signed_in").await;
    assert_eq!(
        signed_in["status"]["status"], "ready",
        "status survives a reconnect"
    );
    assert_eq!(signed_in["label"], "Ready (1)");
    assert_eq!(
        signed_in["conversations"][0]["conversation_id"],
        id.as_str()
    );
    let missed = agent.expect_event("message").await;
    assert_eq!(
        (missed["seq"].as_i64(), missed["text"].as_str()),
        (Some(last_seen + 1), Some("hello?"))
    );
}

async fn customer_ending_is_seen_by_the_agent_and_closes_the_chat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;
    let status = agent.expect("status").await;
    assert_eq!(status["label"], "Ready (1)");

    customer.send(json!({"type": "end"})).await;
    let ended = agent.expect_event("ended").await;
    assert_eq!(ended["author"]["role"], "customer");
    assert_eq!(ended["text"], "Carla ended the chat");
    let status = agent.expect("status").await;
    assert_eq!(status["label"], "Ready (0)", "capacity is free again");

    // Neither side can write to an ended chat.
    agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "late", "text": "hello?"})).await;
    let error = agent.expect_error().await;
    assert_eq!(error["code"], "conversation_ended");
    assert_eq!(error["client_msg_id"], "late");
    customer
        .send(json!({"type": "send", "client_msg_id": "late", "text": "hello?"}))
        .await;
    assert_eq!(customer.expect_error().await["code"], "conversation_ended");

    let record = app
        .store
        .conversation(&ConversationId(id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state.as_str(), "ended");
    // The freed capacity takes the next chat.
    let (next, _t, _c) = app.new_customer("Dan").await;
    let offer = agent.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], next.as_str());
}

async fn typing_and_presence_are_relayed_not_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;
    customer
        .send(json!({"type": "typing", "typing": true}))
        .await;
    let typing = agent.expect("typing").await;
    assert_eq!(typing["author"]["role"], "customer");
    assert_eq!(typing["typing"], true);
    customer.close().await;
    let presence = agent.expect("customer_presence").await;
    assert_eq!(presence["connected"], false);
    let _customer = app.customer(&id, &token, 0).await;
    let presence = agent.expect("customer_presence").await;
    assert_eq!(presence["connected"], true);
    let log = app
        .store
        .events_after(&ConversationId(id), 0, 100)
        .await
        .unwrap();
    assert!(log.iter().all(|e| e.kind.as_str() != "typing"));
    assert_eq!(log.len(), 1, "only the join is stored");
}

async fn client_msg_ids_are_scoped_per_sender(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;
    let from_customer = customer.say(None, "1", "customer's first").await;
    let from_agent = agent.say(Some(&id), "1", "agent's first").await;
    assert_ne!(
        from_customer, from_agent,
        "same id, different senders: two messages"
    );
    let log = app
        .store
        .events_after(&ConversationId(id), 0, 100)
        .await
        .unwrap();
    let texts: Vec<&str> = log
        .iter()
        .filter(|e| e.client_msg_id.as_deref() == Some("1"))
        .map(|e| e.body.as_str())
        .collect();
    assert_eq!(texts, ["customer's first", "agent's first"]);
}

async fn resend_after_the_end_gets_its_original_ack(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;
    let seq = customer.say(None, "last-words", "bye").await;
    agent
        .send(json!({"type": "end", "conversation_id": id}))
        .await;
    customer.expect_event("ended").await;
    customer
        .send(json!({"type": "send", "client_msg_id": "last-words", "text": "bye"}))
        .await;
    let ack = customer.expect("ack").await;
    assert_eq!(
        (ack["seq"].as_i64(), ack["duplicate"].as_bool()),
        (Some(seq), Some(true))
    );
}

async fn signing_in_twice_on_one_socket_delivers_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 3).await;
    let mut agent = app.ready_agent("alice").await;
    let (id, _token, mut customer) = app.new_customer("Carla").await;
    accept(&mut agent, &id).await;
    agent
        .send(json!({"type": "sign_in", "profile_id": app.profile, "resume": {id.clone(): 1000}}))
        .await;
    agent.expect("signed_in").await;
    // The event is in the agent's outbox before the customer's ack returns.
    customer.say(None, "c1", "hello once").await;
    let frames = agent.until_pong().await;
    let copies = frames.iter().filter(|f| f["client_msg_id"] == "c1").count();
    assert_eq!(copies, 1, "{frames:?}");
    let log = app
        .store
        .events_after(&ConversationId(id), 0, 100)
        .await
        .unwrap();
    assert_eq!(
        log.iter().filter(|e| e.kind.as_str() == "joined").count(),
        1,
        "no second join"
    );
}
