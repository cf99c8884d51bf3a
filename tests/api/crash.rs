//! SIGKILL in the middle of a conversation loses no acknowledged message:
//! the real binary is killed while a customer is sending, restarted on the
//! same database, and the log is checked against what was acknowledged.

use crate::both_stores;
use crate::helpers::{ensure_fixtures, fresh_database, Backend, Ws, PASSWORD};
use serde_json::json;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use switchboard::accounts::{create_user, UserSpec};
use switchboard::domain::account::Role;
use switchboard::domain::ids::ConversationId;
use switchboard::store;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

both_stores!(sigkill_mid_conversation_loses_no_acknowledged_message);

/// Starts the real server binary; returns it and the address it listens on.
pub async fn start_binary(database_url: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--root")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHBOARD__DATABASE__URL", database_url)
        .env("SWITCHBOARD__SERVER__BIND", "127.0.0.1:0")
        .env(
            "SWITCHBOARD__ATTACHMENTS__DIR",
            crate::helpers::attachments_dir(database_url),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start switchboard");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(url) = line.strip_prefix("Switchboard listening on http://") {
                return url.parse::<SocketAddr>().expect("address");
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server did not start in time");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

async fn login(addr: SocketAddr, username: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn sigkill_mid_conversation_loses_no_acknowledged_message(backend: Backend) {
    // Arrange: a database with a queue, a profile and an agent.
    let url = fresh_database(backend).await;
    let (profile, queue) = {
        let store = store::connect(&url, 2).await.unwrap();
        let (queue, profile) = ensure_fixtures(&store).await;
        let alice = create_user(
            &store,
            UserSpec {
                username: "alice".into(),
                display_name: Some("Alice".into()),
                role: Role::Agent,
                capacity: None,
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .unwrap();
        store.grant_profile(alice.user.id, profile).await.unwrap();
        (profile, queue)
    };
    let (mut server, addr) = start_binary(&url).await;
    let cookie = login(addr, "alice").await;
    let mut agent = Ws::connect_to(addr, "/ws/agent", Some(&cookie), None)
        .await
        .unwrap();
    agent.expect("hello").await;
    agent
        .send(json!({"type": "sign_in", "profile_id": profile}))
        .await;
    agent.expect("signed_in").await;
    agent
        .send(json!({"type": "set_status", "status": "ready"}))
        .await;
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
    crate::helpers::accept(&mut agent, &id).await;

    // Act: the customer sends as fast as acks come back; the server is
    // killed with SIGKILL after 40 acknowledgements, mid-stream.
    let mut acked: Vec<(String, i64)> = Vec::new();
    let mut sent = 0;
    loop {
        let client_msg_id = format!("m{sent}");
        let frame = json!({"type": "send", "client_msg_id": client_msg_id, "text": format!("message {sent}")});
        if !customer.try_send(frame).await {
            break; // the server is gone
        }
        sent += 1;
        if acked.len() == 40 {
            server.start_kill().expect("SIGKILL");
        }
        match customer.next().await {
            Some(frame) if frame["type"] == "ack" => acked.push((
                frame["client_msg_id"].as_str().unwrap().to_owned(),
                frame["seq"].as_i64().unwrap(),
            )),
            Some(_) => continue,
            None => break,
        }
        if sent > 10_000 {
            panic!("server never died");
        }
    }
    let _ = server.wait().await;
    assert!(acked.len() >= 40);

    // Assert: after a restart, every acknowledged message is stored exactly
    // once under the seq it was acknowledged with, with no gaps.
    let (_server, addr) = start_binary(&url).await;
    let store = store::connect(&url, 2).await.unwrap();
    let log = store
        .events_after(&ConversationId(id.clone()), 0, 100_000)
        .await
        .unwrap();
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=log.len() as i64).collect::<Vec<_>>(), "no gaps");
    let ids: Vec<&str> = log
        .iter()
        .filter_map(|e| e.client_msg_id.as_deref())
        .collect();
    assert_eq!(
        ids.len(),
        ids.iter().collect::<HashSet<_>>().len(),
        "no duplicates"
    );
    for (client_msg_id, seq) in &acked {
        let stored = log
            .iter()
            .find(|e| e.client_msg_id.as_deref() == Some(client_msg_id.as_str()));
        assert_eq!(
            stored.map(|e| e.seq),
            Some(*seq),
            "{client_msg_id} lost or renumbered"
        );
    }
    // The customer resumes and can go on; a resend of an acked id is a duplicate.
    let mut customer = Ws::connect_to(addr, "/ws/customer", None, None)
        .await
        .unwrap();
    let last = acked.last().unwrap().1;
    customer
        .send(json!({"type": "resume", "conversation_id": id, "token": token, "last_seq": last}))
        .await;
    customer.expect("resumed").await;
    let (resent, seq) = acked.last().unwrap().clone();
    customer
        .send(json!({"type": "send", "client_msg_id": resent, "text": "again"}))
        .await;
    let ack = customer.expect("ack").await;
    assert_eq!(
        (ack["seq"].as_i64(), ack["duplicate"].as_bool()),
        (Some(seq), Some(true))
    );
}
