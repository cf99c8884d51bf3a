//! One customer widget: starts a chat over HTTP, resumes it on
//! `/ws/customer`, sends stamped messages at the scenario's rate, keeps
//! every unacknowledged message to resend with the same `client_msg_id`
//! after a reconnect, and checks its own gap-free `seq`.

use crate::error::{LoadError, Result};
use crate::http;
use crate::metrics::{now_us, Counters};
use crate::scenario::{parse_stamp, sleep_until, stamped_text, Ctx};
use crate::ws::{Incoming, Ws};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a customer behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomerPlan {
    pub heartbeat: Option<Duration>,
    /// Send messages at the scenario's current rate.
    pub send: bool,
    /// Skip a send while this many messages wait for their ack.
    pub max_in_flight: usize,
    /// Drop the socket after this long, then reconnect after the second delay.
    pub drop: Option<(Duration, Duration)>,
    /// Finish when the chat ends (the agent ended it).
    pub until_ended: bool,
}

/// A customer's chat, which outlives its connections.
pub struct Customer {
    pub idx: usize,
    pub conversation: String,
    token: String,
    /// The last seq received, in the customer's numbering.
    last_seq: i64,
    next_msg: u64,
    positioned: bool,
    /// client_msg_id → (text, first sent).
    unacked: HashMap<String, (String, Instant)>,
}

/// Against a reference relay the chat exists once the agent took it: no
/// HTTP, no token.
pub fn start_relay(ctx: &Ctx, idx: usize) -> Customer {
    Customer {
        idx,
        conversation: ctx.relay_conversation(idx),
        token: String::new(),
        last_seq: 0,
        next_msg: 0,
        positioned: false,
        unacked: HashMap::new(),
    }
}

/// POST /api/chats. The chat is named with the run's tag, which is how the
/// verification finds the run's rows.
pub async fn start(ctx: &Ctx, idx: usize) -> Result<Customer> {
    let queue = ctx
        .fixture
        .map(|f| f.queue.0)
        .ok_or_else(|| LoadError::Config("starting a chat needs the Switchboard fixture".into()))?;
    let posted = Instant::now();
    let response = http::post_json(
        &ctx.target,
        &ctx.sources,
        "/api/chats",
        &json!({"queue_id": queue, "name": format!("{}{idx}", ctx.tag)}),
    )
    .await?;
    if response.status != 201 {
        return Err(LoadError::Http(format!(
            "POST /api/chats: HTTP {}",
            response.status
        )));
    }
    let body = response.json()?;
    let field = |name: &str| {
        body[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| LoadError::Protocol(format!("/api/chats answer without {name}")))
    };
    let conversation = field("conversation_id")?;
    ctx.create_hist.record(posted.elapsed());
    ctx.joined(&conversation, posted, idx);
    Ok(Customer {
        idx,
        conversation,
        token: field("token")?,
        last_seq: 0,
        next_msg: 0,
        positioned: false,
        unacked: HashMap::new(),
    })
}

/// Opens the socket and resumes after the last seq this customer has.
pub async fn connect(ctx: &Ctx, customer: &Customer) -> Result<Ws> {
    let mut ws = Ws::open(&ctx.target, &ctx.sources, "/ws/customer", None).await?;
    ws.send(&json!({
        "type": "resume",
        "conversation_id": customer.conversation,
        "token": customer.token,
        "last_seq": customer.last_seq,
    }))
    .await?;
    ws.expect("resumed").await?;
    Counters::inc(&ctx.c.resumes);
    Ok(ws)
}

enum Next {
    Continue,
    Done,
}

/// Runs the customer until the scenario stops (or its chat ends).
pub async fn run(ctx: Arc<Ctx>, mut customer: Customer, mut ws: Ws, plan: CustomerPlan) {
    let started = Instant::now();
    let mut stop = ctx.stop_signal();
    // Spread the customers' sends and pings over their period.
    let jitter = |period: f64| Duration::from_secs_f64(period * rand::random::<f64>());
    let mut next_send = Instant::now() + jitter(ctx.send_period().unwrap_or(1.0));
    let mut next_ping = plan
        .heartbeat
        .map(|h| Instant::now() + jitter(h.as_secs_f64()));
    let mut drop_at = plan.drop.map(|(at, _)| started + at);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = sleep_until(Some(next_send)), if plan.send => {
                match ctx.send_period() {
                    Some(period) => {
                        if customer.unacked.len() < plan.max_in_flight {
                            if let Err(e) = customer.send_new(&ctx, &mut ws).await {
                                ctx.note_error(&format!("customer {}: {e}", customer.idx));
                            }
                        } else {
                            Counters::inc(&ctx.c.skipped);
                        }
                        next_send += Duration::from_secs_f64(period);
                        // After a stall, do not try to catch up in a burst
                        // (the server's per-connection rate limit would bite).
                        let now = Instant::now();
                        if next_send < now {
                            next_send = now;
                        }
                    }
                    None => next_send = Instant::now() + Duration::from_millis(100),
                }
            }
            _ = sleep_until(next_ping), if next_ping.is_some() => {
                if !ctx.quiet.load(std::sync::atomic::Ordering::Relaxed) {
                    Counters::inc(&ctx.c.pings);
                    if ws.send(&json!({"type": "ping"})).await.is_err() {
                        Counters::inc(&ctx.c.unexpected_closes);
                        break;
                    }
                }
                next_ping = next_ping.zip(plan.heartbeat).map(|(at, h)| at + h);
            }
            _ = sleep_until(drop_at), if drop_at.is_some() => {
                drop_at = None;
                let delay = plan.drop.map(|(_, d)| d).unwrap_or_default();
                match customer.reconnect(&ctx, ws, delay).await {
                    Ok(new) => ws = new,
                    Err(e) => {
                        ctx.note_error(&format!("customer {} reconnect: {e}", customer.idx));
                        return;
                    }
                }
            }
            incoming = ws.recv() => match incoming {
                Ok(Incoming::Frame(frame)) => match customer.handle(&ctx, frame, plan) {
                    Next::Continue => {}
                    Next::Done => break,
                },
                Ok(Incoming::Closed(code)) => {
                    Counters::inc(&ctx.c.unexpected_closes);
                    ctx.note_error(&format!("customer {}: closed by server ({code:?})", customer.idx));
                    return;
                }
                Err(e) => {
                    Counters::inc(&ctx.c.unexpected_closes);
                    ctx.note_error(&format!("customer {}: {e}", customer.idx));
                    return;
                }
            }
        }
    }
    ws.close().await;
}

impl Customer {
    async fn send_new(&mut self, ctx: &Ctx, ws: &mut Ws) -> Result<()> {
        self.next_msg += 1;
        let id = format!("c{}", self.next_msg);
        let text = stamped_text(ctx.current_phase());
        Counters::inc(&ctx.c.cust_sent);
        self.unacked
            .insert(id.clone(), (text.clone(), Instant::now()));
        ws.send(&json!({"type": "send", "client_msg_id": id, "text": text}))
            .await
    }

    /// Drops the socket without a close frame (as a lost network does),
    /// waits, resumes from the last seq and resends what was not acknowledged.
    async fn reconnect(&mut self, ctx: &Ctx, old: Ws, delay: Duration) -> Result<Ws> {
        drop(old);
        tokio::time::sleep(delay).await;
        let begun = Instant::now();
        let mut ws = connect(ctx, self).await?;
        ctx.resume_hist.record(begun.elapsed());
        let mut pending: Vec<(&String, &(String, Instant))> = self.unacked.iter().collect();
        pending.sort_by_key(|(_, (_, at))| *at);
        for (id, (text, _)) in pending {
            ws.send(&json!({"type": "send", "client_msg_id": id, "text": text}))
                .await?;
        }
        Ok(ws)
    }

    fn handle(&mut self, ctx: &Ctx, frame: Value, plan: CustomerPlan) -> Next {
        let c = &ctx.c;
        match frame["type"].as_str().unwrap_or("") {
            "ack" => {
                let id = frame["client_msg_id"].as_str().unwrap_or("");
                match self.unacked.remove(id) {
                    Some((text, sent)) => {
                        Counters::inc(&c.cust_acked);
                        if frame["duplicate"] == true {
                            Counters::inc(&c.stored_before_resend);
                        }
                        if let Some((phase, _)) = parse_stamp(&text) {
                            ctx.phase(phase).ack.record(sent.elapsed());
                        }
                    }
                    None => Counters::inc(&c.dup_acks),
                }
            }
            "event" => {
                let seq = frame["seq"].as_i64().unwrap_or(0);
                if seq <= self.last_seq {
                    Counters::inc(&c.seq_dups);
                } else if seq != self.last_seq + 1 {
                    Counters::inc(&c.seq_gaps);
                }
                self.last_seq = self.last_seq.max(seq);
                match frame["kind"].as_str().unwrap_or("") {
                    "message" if frame["author"]["role"] == "agent" => {
                        Counters::inc(&c.to_customer);
                        if let Some((phase, sent_us)) = frame["text"].as_str().and_then(parse_stamp)
                        {
                            ctx.phase(phase)
                                .to_customer
                                .record_us(now_us().saturating_sub(sent_us));
                        }
                    }
                    "ended" if plan.until_ended => return Next::Done,
                    _ => {}
                }
            }
            "pong" => Counters::inc(&c.pongs),
            "queue_position" if !self.positioned => {
                self.positioned = true;
                Counters::inc(&c.positioned);
            }
            "error" => {
                Counters::inc(&c.errors);
                ctx.note_error(&format!("customer {}: {frame}", self.idx));
            }
            _ => {}
        }
        Next::Continue
    }
}
