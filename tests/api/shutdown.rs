//! SIGTERM: the real binary stops accepting connections, tells its sockets
//! it is restarting (`shutting_down`, close 1012), finishes the commands in
//! flight (every acknowledged message is stored, nothing stored goes
//! unacknowledged) and exits cleanly within its grace period.

use crate::both_stores;
use crate::crash::start_binary;
use crate::helpers::{ensure_fixtures, fresh_database, Backend, Ws};
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use switchboard::domain::ids::ConversationId;
use switchboard::store;

both_stores!(sigterm_drains_sockets_and_exits_cleanly);

async fn sigterm_drains_sockets_and_exits_cleanly(backend: Backend) {
    let url = fresh_database(backend).await;
    let queue = {
        let store = store::connect(&url, 2).await.unwrap();
        ensure_fixtures(&store).await.0
    };
    let (mut server, addr) = start_binary(&url).await;
    let started: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/api/chats"))
        .json(&json!({"queue_id": queue, "name": "Carla"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["conversation_id"].as_str().unwrap().to_owned();
    let token = started["token"].as_str().unwrap().to_owned();
    let mut customer = Ws::connect_to(addr, "/ws/customer", None, None)
        .await
        .unwrap();
    customer
        .send(json!({"type": "resume", "conversation_id": id, "token": token}))
        .await;
    customer.expect("resumed").await;
    let mut idle = Ws::connect_to(addr, "/ws/customer", None, None)
        .await
        .unwrap();

    // Messages are in flight when the signal arrives.
    for n in 0..30 {
        customer
            .send(json!({"type": "send", "client_msg_id": format!("m{n}"), "text": format!("message {n}")}))
            .await;
    }
    let pid = server.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());

    let mut acked = HashSet::new();
    let mut told = false;
    while let Some(frame) = customer.next().await {
        match frame["type"].as_str() {
            Some("ack") => {
                acked.insert(frame["client_msg_id"].as_str().unwrap().to_owned());
            }
            Some("shutting_down") => told = true,
            _ => {}
        }
    }
    assert!(told, "the client is told the server is restarting");
    assert_eq!(customer.closed_with, Some(1012));
    while idle.next().await.is_some() {}
    assert_eq!(idle.closed_with, Some(1012), "idle sockets are told too");

    // It exits by itself, cleanly, within the grace period (10 s) plus
    // this test's slack.
    let status = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    // No longer accepting connections.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    // Acknowledged means stored; stored means acknowledged.
    let store = store::connect(&url, 2).await.unwrap();
    let stored: HashSet<String> = store
        .events_after(&ConversationId(id), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.client_msg_id)
        .collect();
    assert_eq!(stored, acked);
}
