//! One agent console: signs in, sets its status, answers offers (accepting,
//! or rejecting a share of them), optionally ends chats after a hold time,
//! checks every conversation's `seq` and records how long customer
//! messages took to arrive.

use crate::error::{LoadError, Result};
use crate::metrics::{now_us, Counters};
use crate::scenario::{parse_stamp, stamped_text, Ctx};
use crate::ws::{Incoming, Ws};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How an agent behaves.
#[derive(Debug, Clone, Copy)]
pub struct AgentPlan {
    /// Percent of offers rejected.
    pub reject_pct: u32,
    /// Answer every Nth customer message (0: never).
    pub reply_every: u32,
    /// End each accepted chat after this long.
    pub hold: Option<Duration>,
}

/// What the agent knows of one of its chats.
struct Chat {
    last_seq: i64,
    /// Events up to this seq came as history on accept, not live.
    history_until: i64,
    received: u64,
}

/// Opens the console and signs in; Ready when `ready`, otherwise Not ready.
pub async fn connect(ctx: &Ctx, cookie: &str, ready: bool) -> Result<Ws> {
    let mut ws = Ws::open(&ctx.target, &ctx.sources, "/ws/agent", Some(cookie)).await?;
    ws.expect("hello").await?;
    let profile = ctx
        .fixture
        .map(|f| f.profile.0)
        .ok_or_else(|| LoadError::Config("signing in needs the Switchboard fixture".into()))?;
    ws.send(&json!({"type": "sign_in", "profile_id": profile}))
        .await?;
    ws.expect("signed_in").await?;
    let (command, want) = if ready {
        (json!({"type": "set_status", "status": "ready"}), "ready")
    } else {
        (
            json!({"type": "set_status", "status": "not_ready", "reason": "Loadgen idle"}),
            "not_ready",
        )
    };
    ws.send(&command).await?;
    // A status from the sign-in may come first; wait for the one we asked for.
    loop {
        let status = ws.expect("status").await?;
        if status["status"]["status"] == want {
            return Ok(ws);
        }
    }
}

/// Against a reference relay: opens a console and takes `chats` with
/// `accept`. The `chat_accepted` answers are counted by [`run`].
pub async fn connect_relay(ctx: &Ctx, chats: &[String]) -> Result<Ws> {
    let mut ws = Ws::open(&ctx.target, &ctx.sources, "/ws/agent", None).await?;
    for id in chats {
        ws.send(&json!({"type": "accept", "conversation_id": id}))
            .await?;
    }
    Ok(ws)
}

/// Runs the console until the scenario stops.
pub async fn run(ctx: Arc<Ctx>, mut ws: Ws, idx: usize, plan: AgentPlan) {
    let mut agent = Agent {
        ctx: ctx.clone(),
        idx,
        plan,
        chats: HashMap::new(),
        accepting: HashSet::new(),
        ends: VecDeque::new(),
        sent: 0,
    };
    let mut stop = ctx.stop_signal();
    loop {
        let next_end = agent.ends.front().map(|(at, _)| *at);
        tokio::select! {
            _ = stop.changed() => break,
            _ = crate::scenario::sleep_until(next_end) => {
                if let Some((_, id)) = agent.ends.pop_front() {
                    if ws.send(&json!({"type": "end", "conversation_id": id})).await.is_err() {
                        Counters::inc(&ctx.c.unexpected_closes);
                        break;
                    }
                }
            }
            incoming = ws.recv() => match incoming {
                Ok(Incoming::Frame(frame)) => {
                    if let Err(e) = agent.handle(&mut ws, frame).await {
                        ctx.note_error(&format!("agent {idx}: {e}"));
                        break;
                    }
                }
                Ok(Incoming::Closed(code)) => {
                    Counters::inc(&ctx.c.unexpected_closes);
                    ctx.note_error(&format!("agent {idx}: closed by server ({code:?})"));
                    break;
                }
                Err(e) => {
                    Counters::inc(&ctx.c.unexpected_closes);
                    ctx.note_error(&format!("agent {idx}: {e}"));
                    break;
                }
            }
        }
    }
    ws.close().await;
}

struct Agent {
    ctx: Arc<Ctx>,
    idx: usize,
    plan: AgentPlan,
    chats: HashMap<String, Chat>,
    /// Chats this console sent `accept` for and has no `chat_accepted` yet.
    accepting: HashSet<String>,
    ends: VecDeque<(Instant, String)>,
    sent: u64,
}

fn conversation_id(frame: &Value) -> Result<String> {
    frame["conversation_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| LoadError::Protocol(format!("frame without conversation_id: {frame}")))
}

impl Agent {
    async fn handle(&mut self, ws: &mut Ws, frame: Value) -> Result<()> {
        let c = &self.ctx.c;
        match frame["type"].as_str().unwrap_or("") {
            "chat_offered" => {
                Counters::inc(&c.offers);
                self.ctx.decision(false);
                let id = conversation_id(&frame)?;
                self.ctx.offered(&id);
                let reject =
                    self.plan.reject_pct > 0 && rand::random::<u32>() % 100 < self.plan.reject_pct;
                if reject {
                    self.ctx.rejecting(&id);
                    ws.send(&json!({"type": "reject", "conversation_id": id}))
                        .await?;
                } else {
                    ws.send(&json!({"type": "accept", "conversation_id": id}))
                        .await?;
                    self.accepting.insert(id);
                }
            }
            "chat_accepted" => {
                let view = &frame["conversation"];
                let id = view["conversation_id"].as_str().unwrap_or("").to_owned();
                self.accepting.remove(&id);
                if self.chats.contains_key(&id) {
                    return Ok(()); // the answer to a retried accept
                }
                Counters::inc(&c.accepts);
                self.ctx.decision(true);
                let history_until = view["last_seq"].as_i64().unwrap_or(0);
                self.chats.insert(
                    id.clone(),
                    Chat {
                        last_seq: 0,
                        history_until,
                        received: 0,
                    },
                );
                if let Some(hold) = self.plan.hold {
                    self.ends.push_back((Instant::now() + hold, id));
                }
            }
            "chat_rejected" => {
                Counters::inc(&c.rejects);
                self.ctx.decision(false);
            }
            "event" => self.event(ws, &frame).await?,
            // A duplicate ack is for a message already counted.
            "ack" if frame["duplicate"] != true => Counters::inc(&c.agent_acked),
            // `accept` is idempotent (docs/protocol.md 6.3): retry it, as the console does.
            "error"
                if frame["code"] == "unavailable"
                    && frame["conversation_id"]
                        .as_str()
                        .is_some_and(|id| self.accepting.contains(id)) =>
            {
                Counters::inc(&c.accept_retries);
                ws.send(&json!({"type": "accept", "conversation_id": frame["conversation_id"]}))
                    .await?;
            }
            "error" => {
                Counters::inc(&c.errors);
                self.ctx.note_error(&format!("agent {}: {frame}", self.idx));
            }
            _ => {}
        }
        Ok(())
    }

    async fn event(&mut self, ws: &mut Ws, frame: &Value) -> Result<()> {
        let c = &self.ctx.c;
        let id = conversation_id(frame)?;
        let seq = frame["seq"].as_i64().unwrap_or(0);
        let Some(chat) = self.chats.get_mut(&id) else {
            return Ok(());
        };
        if seq <= chat.last_seq {
            Counters::inc(&c.seq_dups);
        } else if seq != chat.last_seq + 1 {
            Counters::inc(&c.seq_gaps);
        }
        chat.last_seq = chat.last_seq.max(seq);
        match frame["kind"].as_str().unwrap_or("") {
            "message" if frame["author"]["role"] == "customer" && seq > chat.history_until => {
                Counters::inc(&c.to_agent);
                if let Some((phase, sent_us)) = frame["text"].as_str().and_then(parse_stamp) {
                    self.ctx
                        .phase(phase)
                        .to_agent
                        .record_us(now_us().saturating_sub(sent_us));
                }
                chat.received += 1;
                let every = u64::from(self.plan.reply_every);
                if every > 0 && chat.received % every == 0 {
                    self.sent += 1;
                    Counters::inc(&c.agent_sent);
                    let text = stamped_text(self.ctx.current_phase());
                    ws.send(&json!({
                        "type": "send",
                        "conversation_id": id,
                        "client_msg_id": format!("a{}-{}", self.idx, self.sent),
                        "text": text,
                    }))
                    .await?;
                }
            }
            "ended" => {
                Counters::inc(&c.ended);
                self.chats.remove(&id);
            }
            _ => {}
        }
        Ok(())
    }
}
