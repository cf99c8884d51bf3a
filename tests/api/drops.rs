//! Dropped connections: sockets vanish without a close frame (the client
//! task is gone, as when a laptop closes or a tab crashes).
//!
//! - An agent dropped mid-offer: the offer stays theirs (its deadline runs
//!   on) and is shown again when they are back, to accept as usual.
//! - An agent dropped mid-chat: the customer hears the agent is
//!   reconnecting; the chat stays theirs; on reconnect the console resumes
//!   by seq and gets exactly what it missed, and the customer hears they
//!   are back. (What happens after the grace period: `agent_grace.rs`.)
//! - A customer dropped with a send in flight, then a reload and a second
//!   tab: the resend is deduplicated and both tabs see one log.
//! - A frozen client that stops reading: its queue is bounded, the server
//!   drops the socket (1013) instead of buffering, and the client resumes
//!   without loss.

use crate::both_stores;
use crate::helpers::{accept, agent_resuming, Backend, TestApp, Ws};
use serde_json::{json, Value};
use std::collections::HashMap;
use switchboard::domain::ids::ConversationId;

both_stores!(
    agent_dropped_mid_offer,
    agent_dropped_mid_chat_resumes,
    customer_drops_reloads_and_opens_a_second_tab,
    frozen_client_is_dropped_and_resumes,
);

async fn agent_dropped_mid_offer(backend: Backend) {
    // Arrange: alice and bob ready; alice (idle longest) is offered the chat.
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    app.add_agent("bob", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let mut bob = app.ready_agent("bob").await;
    let (id, _token, mut carla) = app.new_customer("Carla").await;
    let offer = alice.expect("chat_offered").await;
    assert_eq!(offer["conversation_id"], id.as_str());

    // Act: alice's connection vanishes without a close frame; she is back.
    drop(alice);
    let (mut alice, signed_in) =
        agent_resuming(&app, &app.login("alice").await, &HashMap::new()).await;
    assert_eq!(signed_in["conversations"], json!([]));

    // Assert: the same offer again (bob got nothing), and she takes it.
    accept(&mut alice, &id).await;
    carla.say(None, "c1", "hello?").await;
    assert_eq!(alice.expect_event("message").await["text"], "hello?");
    let frames = bob.until_pong().await;
    assert!(
        frames.iter().all(|f| f["type"] != "chat_offered"),
        "{frames:?}"
    );
    let kinds: Vec<String> = app
        .store
        .routing_events(&ConversationId(id))
        .await
        .expect("routing")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["queued", "offered", "accepted"]);
}

async fn agent_dropped_mid_chat_resumes(backend: Backend) {
    // Arrange: alice in a chat with carla; alice has seen everything so far.
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, _token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    carla.say(None, "c1", "one").await;
    let seen = alice.expect_event("message").await["seq"]
        .as_i64()
        .expect("seq");

    // Act: alice vanishes; carla is told, goes on writing; alice reconnects.
    drop(alice);
    let away = carla.expect("agent_presence").await;
    assert_eq!(away["connected"], false);
    carla.say(None, "c2", "two").await;
    carla.say(None, "c3", "three").await;
    let resume = HashMap::from([(id.clone(), seen)]);
    let (mut alice, signed_in) = agent_resuming(&app, &app.login("alice").await, &resume).await;
    assert_eq!(carla.expect("agent_presence").await["connected"], true);

    // Assert: the chat is still hers, and she gets exactly what she missed.
    assert_eq!(
        signed_in["conversations"][0]["conversation_id"],
        id.as_str()
    );
    let missed: Vec<Value> = alice
        .until_pong()
        .await
        .into_iter()
        .filter(|f| f["type"] == "event")
        .collect();
    let seqs: Vec<i64> = missed
        .iter()
        .map(|f| f["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (seen + 1..=seen + seqs.len() as i64).collect::<Vec<_>>(),
        "{missed:?}"
    );
    let texts: Vec<&str> = missed
        .iter()
        .filter(|f| f["kind"] == "message")
        .map(|f| f["text"].as_str().expect("text"))
        .collect();
    assert_eq!(texts, ["two", "three"]);
    // And the chat goes on both ways.
    alice
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a1", "text": "back"}))
        .await;
    alice.expect("ack").await;
    loop {
        let event = carla.expect_event("message").await;
        if event["text"] == "back" {
            break;
        }
        assert!(["two", "three"].contains(&event["text"].as_str().unwrap_or("")));
    }
}

async fn customer_drops_reloads_and_opens_a_second_tab(backend: Backend) {
    // Arrange: carla chatting with alice.
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", 1).await;
    let mut alice = app.ready_agent("alice").await;
    let (id, token, mut carla) = app.new_customer("Carla").await;
    accept(&mut alice, &id).await;
    let seen = carla.say(None, "c1", "one").await;

    // Act: a send goes out and the tab dies before the ack is read.
    carla
        .send(json!({"type": "send", "client_msg_id": "c2", "text": "two"}))
        .await;
    drop(carla);
    // The reload resumes from what it saw and resends its outbox.
    let mut reloaded = app.customer(&id, &token, seen).await;
    reloaded
        .send(json!({"type": "send", "client_msg_id": "c2", "text": "two"}))
        .await;
    // c2 comes either in the replay (if the dead tab's send was stored) or
    // live after the ack (if the resend stored it): once, either way.
    let mut shown = Vec::new();
    let ack = loop {
        let frame = reloaded.next().await.expect("socket open");
        match frame["type"].as_str() {
            Some("ack") => break frame,
            Some("event") => shown.push(frame),
            _ => {}
        }
    };
    let c2 = ack["seq"].as_i64().expect("seq");
    while !shown.iter().any(|f| f["seq"] == c2) {
        shown.push(reloaded.expect("event").await);
    }
    shown.extend(
        reloaded
            .until_pong()
            .await
            .into_iter()
            .filter(|f| f["type"] == "event"),
    );

    // Assert: one stored copy, shown once to each side.
    let log = app
        .store
        .events_after(&ConversationId(id.clone()), 0, 100)
        .await
        .expect("log");
    assert_eq!(
        log.iter()
            .filter(|e| e.client_msg_id.as_deref() == Some("c2"))
            .count(),
        1
    );
    let seqs: Vec<i64> = shown
        .iter()
        .map(|f| f["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [c2], "the reload gets c2 once and nothing it had");
    let mut to_alice = Vec::new();
    while to_alice.is_empty() {
        let event = alice.expect_event("message").await;
        if event["client_msg_id"] == "c2" {
            to_alice.push(event);
        }
    }
    to_alice.extend(
        alice
            .until_pong()
            .await
            .into_iter()
            .filter(|f| f["client_msg_id"] == "c2"),
    );
    assert_eq!(to_alice.len(), 1, "{to_alice:?}");

    // A second tab: the whole history, then both tabs see everything once.
    let mut second = app.customer(&id, &token, 0).await;
    let history: Vec<i64> = second
        .until_pong()
        .await
        .into_iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(history, (1..=c2).collect::<Vec<_>>());
    second.say(None, "c3", "from the second tab").await;
    alice
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a1", "text": "both tabs"}))
        .await;
    alice.expect("ack").await;
    for tab in [&mut reloaded, &mut second] {
        let events: Vec<Value> = tab
            .until_pong()
            .await
            .into_iter()
            .filter(|f| f["type"] == "event")
            .collect();
        let mut seqs: Vec<i64> = events
            .iter()
            .map(|f| f["seq"].as_i64().expect("seq"))
            .collect();
        // The pong may overtake queued events; collect the rest.
        while seqs.last().copied().unwrap_or(c2) < c2 + 2 {
            seqs.push(tab.expect("event").await["seq"].as_i64().expect("seq"));
        }
        assert_eq!(seqs, [c2 + 1, c2 + 2], "each tab sees each event once");
    }
}

/// Chats the frozen agent holds, and messages each customer sends at once
/// (under the per-connection burst).
const FROZEN_CHATS: usize = 40;
const FLOOD_PER_CHAT: usize = 45;

async fn frozen_client_is_dropped_and_resumes(backend: Backend) {
    // Arrange: alice holds many chats and has seen their first events.
    let app = TestApp::spawn(backend).await;
    app.add_agent("alice", FROZEN_CHATS as u32).await;
    let mut alice = app.ready_agent("alice").await;
    let mut chats = Vec::new();
    for i in 0..FROZEN_CHATS {
        let (id, _token, ws) = app.new_customer(&format!("Customer {i}")).await;
        accept(&mut alice, &id).await;
        chats.push((id, ws));
    }

    // Act: alice stops reading while every customer sends large messages:
    // far more than her socket buffers and her bounded queue can hold.
    let text: String = "😀".repeat(4000); // 16 KB per event frame
    let floods: Vec<_> = chats
        .into_iter()
        .enumerate()
        .map(|(i, (id, mut ws))| {
            let text = text.clone();
            tokio::spawn(async move {
                for n in 0..FLOOD_PER_CHAT {
                    ws.send(
                        json!({"type": "send", "client_msg_id": format!("c{i}-{n}"), "text": text}),
                    )
                    .await;
                }
                (id, ws)
            })
        })
        .collect();
    let mut chats = Vec::new();
    for flood in floods {
        chats.push(flood.await.expect("flood"));
    }
    // Every message is stored (joined + the flood per chat).
    let expected = FROZEN_CHATS * (1 + FLOOD_PER_CHAT);
    tokio::time::timeout(std::time::Duration::from_secs(120), async {
        loop {
            let mut stored = 0;
            for (id, _) in &chats {
                stored += app
                    .store
                    .log_position(&ConversationId(id.clone()))
                    .await
                    .expect("log")
                    .last_seq as usize;
            }
            if stored == expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the flood was not stored");

    // Assert: the server drops the frozen socket while it is still frozen.
    // Alice only writes (pings); once the server has closed its end, a
    // write is refused. A server task blocked writing to her would never
    // notice its kick, and her writes would go on being accepted.
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while alice.try_send(json!({"type": "ping"})).await {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server never dropped the frozen socket");
    drop(alice);

    // She reconnects and resumes: every chat's whole log, once, in order.
    let resume: HashMap<String, i64> = chats.iter().map(|(id, _)| (id.clone(), 0)).collect();
    let cookie = app.login("alice").await;
    let mut alice = Ws::connect(&app, "/ws/agent", Some(&cookie), None)
        .await
        .expect("agent socket");
    alice.expect("hello").await;
    alice
        .send(json!({"type": "sign_in", "profile_id": app.profile, "resume": resume}))
        .await;
    // Replaying some 30 MB may take a while on a busy machine.
    let signed_in = alice
        .next_within(std::time::Duration::from_secs(120))
        .await
        .expect("signed_in");
    assert_eq!(signed_in["type"], "signed_in", "{signed_in}");
    assert_eq!(
        signed_in["conversations"].as_array().map(Vec::len),
        Some(FROZEN_CHATS)
    );
    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    let stored_total = expected;
    let mut received = 0;
    while received < stored_total {
        let event = alice.expect("event").await;
        let id = event["conversation_id"].as_str().expect("id").to_owned();
        seen.entry(id)
            .or_default()
            .push(event["seq"].as_i64().expect("seq"));
        received += 1;
    }
    for (id, _) in &chats {
        let seqs = &seen[id];
        assert_eq!(seqs, &(1..=seqs.len() as i64).collect::<Vec<_>>(), "{id}");
        // joined + every flooded message
        assert_eq!(seqs.len(), 1 + FLOOD_PER_CHAT, "{id}");
    }
}
