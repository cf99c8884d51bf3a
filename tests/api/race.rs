//! Fifty agents accept the same chat at the same moment, a hundred times:
//! exactly one wins each time, the others get a typed error, and the store
//! records one owner.

use crate::both_stores;
use crate::helpers::{fresh_database, settings, Backend, TestApp, Ws};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard::domain::ids::ConversationId;
use tokio::sync::{mpsc, oneshot};

const AGENTS: usize = 50;
const ROUNDS: usize = 100;

both_stores!(fifty_agents_accepting_one_chat_yield_exactly_one_owner);

/// Runs one agent's socket: forwards offers, and on request accepts a
/// chat and reports the answer to that accept.
async fn agent_task(
    mut ws: Ws,
    mut accepts: mpsc::Receiver<(String, oneshot::Sender<Value>)>,
    offers: mpsc::UnboundedSender<String>,
) {
    let mut pending: Option<(String, oneshot::Sender<Value>)> = None;
    loop {
        tokio::select! {
            request = accepts.recv(), if pending.is_none() => {
                let Some((id, reply)) = request else { return };
                ws.send(json!({"type": "accept", "conversation_id": id})).await;
                pending = Some((id, reply));
            }
            frame = ws.recv() => {
                let Some(frame) = frame else { return };
                let kind = frame["type"].as_str().unwrap_or("");
                if kind == "chat_offered" {
                    let _ = offers.send(frame["conversation_id"].as_str().unwrap_or("").to_owned());
                }
                // An error about no chat in particular (say `rate_limited`)
                // answers too, so the test fails naming it, not by timing out.
                let answers = |id: &str| match kind {
                    "chat_accepted" => frame["conversation"]["conversation_id"] == id,
                    "error" => frame["conversation_id"] == id || frame["conversation_id"].is_null(),
                    _ => false,
                };
                if pending.as_ref().is_some_and(|(id, _)| answers(id)) {
                    if let Some((_, reply)) = pending.take() {
                        let _ = reply.send(frame);
                    }
                }
            }
        }
    }
}

async fn fifty_agents_accepting_one_chat_yield_exactly_one_owner(backend: Backend) {
    // Every agent sends one accept per round, and a fast machine runs a
    // round in a few milliseconds: far above the default 20 frames/s of one
    // connection. This test is about the race, not the flood limit
    // (tests/api/abuse.rs tests that), so the limit is out of the way.
    let mut settings = settings(&fresh_database(backend).await);
    settings.limits.frames_burst = 100_000;
    settings.limits.frames_per_sec = 100_000;
    let app = TestApp::spawn_with(settings).await;
    let (offers_tx, mut offers) = mpsc::unbounded_channel();
    let mut agents = Vec::new();
    for n in 0..AGENTS {
        let name = format!("agent{n}");
        // The most an agent may have; offers spread over the agents anyway.
        app.add_agent(&name, 50).await;
        let ws = app.ready_agent(&name).await;
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(agent_task(ws, rx, offers_tx.clone()));
        agents.push(tx);
    }
    for round in 0..ROUNDS {
        let (id, _token) = app.start_chat(&format!("Customer {round}")).await;
        // Wait until the router has offered it to someone.
        loop {
            let offered = tokio::time::timeout(Duration::from_secs(10), offers.recv())
                .await
                .expect("an offer")
                .expect("agents alive");
            if offered == id {
                break;
            }
        }
        let mut replies = Vec::new();
        for agent in &agents {
            let (tx, rx) = oneshot::channel();
            agent.send((id.clone(), tx)).await.unwrap();
            replies.push(rx);
        }
        let mut winners = 0;
        for reply in replies {
            let frame = tokio::time::timeout(Duration::from_secs(10), reply)
                .await
                .expect("every accept is answered")
                .unwrap();
            match frame["type"].as_str() {
                Some("chat_accepted") => winners += 1,
                Some("error") => assert!(
                    [
                        "not_your_offer",
                        "already_accepted",
                        "offer_withdrawn",
                        "offer_expired"
                    ]
                    .contains(&frame["code"].as_str().unwrap_or("")),
                    "round {round}: {frame}"
                ),
                _ => panic!("round {round}: {frame}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
        let owners = app
            .store
            .conversation_agents(&ConversationId(id))
            .await
            .unwrap();
        assert_eq!(owners.len(), 1, "round {round}: one owner in the store");
    }
}
