//! `ceiling-relay`: the smallest relay that speaks Switchboard's wire format
//! for the load generator's S2 path (`loadgen --mode relay`), as the
//! *ceiling* reference of `docs/performance.md`. WebSocket in, one writer
//! that commits each batch as one multi-row insert (`synchronous_commit`
//! stays on), then the ack to the sender and the event to both parties.
//! Nothing else: no accounts, routing, limits, resume history or
//! idempotency. It is a benchmark fixture, not part of the server.
//!
//! Relay subset: an agent sends `accept {conversation_id}` for each of its
//! chats (→ `chat_accepted`); a customer sends `resume {conversation_id}`
//! (→ `resumed`); both send `send {client_msg_id, text}` (agents add
//! `conversation_id`) and `ping`.
//!
//! Environment: `RELAY_DATABASE_URL` (Postgres), `RELAY_BIND`
//! (default 127.0.0.1:18080).

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Most rows in one insert (and one commit).
const MAX_BATCH: usize = 512;

type Out = mpsc::UnboundedSender<Utf8Bytes>;

/// The two parties of one conversation and its next seq.
#[derive(Default)]
struct Conversation {
    next_seq: i64,
    customer: Option<Out>,
    agent: Option<Out>,
}

/// One message waiting for the writer.
struct Pending {
    conversation_id: String,
    seq: i64,
    role: &'static str,
    client_msg_id: String,
    text: String,
    sender: Out,
}

struct Relay {
    conversations: Mutex<HashMap<String, Conversation>>,
    writer: mpsc::UnboundedSender<Pending>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Command {
    Resume {
        conversation_id: String,
    },
    Accept {
        conversation_id: String,
    },
    Send {
        #[serde(default)]
        conversation_id: Option<String>,
        client_msg_id: String,
        text: String,
    },
    Ping,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("RELAY_DATABASE_URL")?;
    let bind = std::env::var("RELAY_BIND").unwrap_or_else(|_| "127.0.0.1:18080".into());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await?;
    sqlx::query(
        "create table if not exists relay_messages (id bigserial primary key, \
         conversation_id text not null, seq bigint not null, author text not null, \
         body text not null, created_at timestamptz not null default now(), \
         unique (conversation_id, seq))",
    )
    .execute(&pool)
    .await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let relay = Arc::new(Relay {
        conversations: Mutex::new(HashMap::new()),
        writer: tx,
    });
    tokio::spawn(writer(pool, rx, relay.clone()));
    let app = Router::new()
        .route("/readyz", get(|| async { "ok" }))
        .route("/ws/customer", get(upgrade))
        .route("/ws/agent", get(upgrade))
        .with_state(relay);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(relay): State<Arc<Relay>>,
) -> axum::response::Response {
    ws.read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| connection(socket, relay))
}

/// Reads commands; a separate task writes everything queued for the socket.
async fn connection(socket: WebSocket, relay: Arc<Relay>) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut queued) = mpsc::unbounded_channel::<Utf8Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(frame) = queued.recv().await {
            if sink.send(Message::Text(frame)).await.is_err() {
                break;
            }
        }
    });
    // The conversation a customer resumed; agents name it in each send.
    let mut own: Option<String> = None;
    let mut role = "customer";
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(command) = serde_json::from_str::<Command>(text.as_str()) else {
            continue;
        };
        let reply = match command {
            Command::Ping => Some(json!({"type": "pong"})),
            Command::Resume { conversation_id } => {
                let mut all = relay
                    .conversations
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let c = all.entry(conversation_id.clone()).or_default();
                c.customer = Some(out.clone());
                let last_seq = c.next_seq;
                own = Some(conversation_id.clone());
                Some(json!({"type": "resumed",
                    "conversation": {"conversation_id": conversation_id, "last_seq": last_seq}}))
            }
            Command::Accept { conversation_id } => {
                role = "agent";
                let mut all = relay
                    .conversations
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let c = all.entry(conversation_id.clone()).or_default();
                c.agent = Some(out.clone());
                let last_seq = c.next_seq;
                Some(json!({"type": "chat_accepted",
                    "conversation": {"conversation_id": conversation_id, "last_seq": last_seq}}))
            }
            Command::Send {
                conversation_id,
                client_msg_id,
                text,
            } => {
                let Some(id) = conversation_id.or_else(|| own.clone()) else {
                    continue;
                };
                // The seq is taken and the message queued under one lock, so
                // the writer sees each conversation's messages in seq order.
                let mut all = relay
                    .conversations
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let c = all.entry(id.clone()).or_default();
                c.next_seq += 1;
                let _ = relay.writer.send(Pending {
                    conversation_id: id,
                    seq: c.next_seq,
                    role,
                    client_msg_id,
                    text,
                    sender: out.clone(),
                });
                None
            }
        };
        if let Some(reply) = reply {
            let _ = out.send(reply.to_string().into());
        }
    }
    drop(out);
    let _ = writer.await;
}

/// Drains the queue, inserts each batch with one autocommitted statement,
/// then acks and delivers in order.
async fn writer(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Pending>, relay: Arc<Relay>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ids: Vec<&str> = batch.iter().map(|p| p.conversation_id.as_str()).collect();
        let seqs: Vec<i64> = batch.iter().map(|p| p.seq).collect();
        let roles: Vec<&str> = batch.iter().map(|p| p.role).collect();
        let texts: Vec<&str> = batch.iter().map(|p| p.text.as_str()).collect();
        let stored = sqlx::query(
            "insert into relay_messages (conversation_id, seq, author, body) \
             select * from unnest($1::text[], $2::bigint[], $3::text[], $4::text[])",
        )
        .bind(&ids)
        .bind(&seqs)
        .bind(&roles)
        .bind(&texts)
        .execute(&pool)
        .await;
        if let Err(e) = stored {
            // Nothing is acknowledged; the generator's verification fails.
            eprintln!("ceiling-relay: insert failed: {e}");
            batch.clear();
            continue;
        }
        let all = relay
            .conversations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for p in batch.drain(..) {
            let ack = json!({"type": "ack", "conversation_id": p.conversation_id,
                "client_msg_id": p.client_msg_id, "seq": p.seq, "duplicate": false});
            let _ = p.sender.send(ack.to_string().into());
            let event: Utf8Bytes = json!({"type": "event", "conversation_id": p.conversation_id,
                "seq": p.seq, "kind": "message", "author": {"role": p.role},
                "text": p.text, "client_msg_id": p.client_msg_id, "audience": "everyone"})
            .to_string()
            .into();
            if let Some(c) = all.get(&p.conversation_id) {
                for party in [&c.customer, &c.agent].into_iter().flatten() {
                    let _ = party.send(event.clone());
                }
            }
        }
    }
}
