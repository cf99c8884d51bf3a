//! S2 steady chat and S4 reconnect storm. Agents each hold
//! `chats_per_agent` chats; customers send stamped messages at a stepped
//! total rate, agents answer every Nth. S4 runs one rate and drops a share
//! of the customers' sockets mid-chat; they resume and resend.

use super::{get, prepare, prepare_relay, sample, wait_for, Checks, CpuUse, Ctx, Env};
use crate::agent::{self, AgentPlan};
use crate::cli::{ChatArgs, Mode, StormArgs};
use crate::customer::{self, Customer, CustomerPlan};
use crate::error::{LoadError, Result};
use crate::metrics::{loadavg, rss_kb, Counters};
use crate::ws::Ws;
use futures_util::{stream, StreamExt, TryStreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Below the server's 20 frames/s per connection, with room for pings.
const MAX_PER_CUSTOMER: f64 = 15.0;
/// How long the end of a run waits for outstanding acks and deliveries.
const DRAIN: Duration = Duration::from_secs(20);

pub async fn run(env: &Env, args: ChatArgs, storm: Option<StormArgs>) -> Result<bool> {
    let customers = args.agents * args.chats_per_agent as usize;
    let rates: Vec<u32> = match &storm {
        Some(_) => args.rates.iter().take(1).copied().collect(),
        None => args.rates.clone(),
    };
    if customers == 0 || rates.is_empty() || rates.contains(&0) {
        return Err(LoadError::Config(
            "need agents, chats and non-zero rates".into(),
        ));
    }
    if let Some(&top) = rates.iter().max() {
        if f64::from(top) / customers as f64 > MAX_PER_CUSTOMER {
            return Err(LoadError::Config(format!(
                "{top} msg/s over {customers} customers is over {MAX_PER_CUSTOMER}/s each \
                 (the server limits a connection to 20 frames/s): add agents"
            )));
        }
    }
    let name = if storm.is_some() { "S4" } else { "S2" };
    let relay = env.mode == Mode::Relay;
    let prepared = if relay {
        prepare_relay(env, args.agents, args.chats_per_agent, rates.len()).await?
    } else {
        prepare(
            env,
            args.agents,
            args.chats_per_agent,
            rates.len(),
            false,
            true,
        )
        .await?
    };
    let ctx = prepared.ctx.clone();
    let db = &prepared.db;
    let plan = AgentPlan {
        reject_pct: 0,
        reply_every: args.reply_every,
        hold: None,
    };
    let mut tasks = Vec::new();
    for (i, ws) in prepared.agents.into_iter().enumerate() {
        tasks.push(tokio::spawn(agent::run(ctx.clone(), ws, i, plan)));
    }

    // The server's memory before the customers connect, for RSS per chat.
    let rss_before = env.server_pid.and_then(rss_kb);
    let begun = Instant::now();
    let opened: Vec<(Customer, Ws)> = stream::iter(0..customers)
        .map(|i| {
            let ctx = ctx.clone();
            async move {
                let c = if relay {
                    customer::start_relay(&ctx, i)
                } else {
                    customer::start(&ctx, i).await?
                };
                let ws = customer::connect(&ctx, &c).await?;
                Ok::<_, LoadError>((c, ws))
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await?;
    let all_accepted = wait_for(Duration::from_secs(60), || {
        Counters::get(&ctx.c.accepts) >= customers as u64
    })
    .await;
    if !all_accepted {
        ctx.stop_all();
        return Err(LoadError::Timeout(format!(
            "only {} of {customers} chats were accepted",
            Counters::get(&ctx.c.accepts)
        )));
    }
    println!(
        "{name}: {customers} chats started and accepted in {:.1}s",
        begun.elapsed().as_secs_f64()
    );

    let mut dropped = 0;
    for (c, ws) in opened {
        let drop = storm.as_ref().and_then(|s| {
            let chosen = (c.idx as u64 * 100) < u64::from(s.drop_pct) * customers as u64;
            chosen.then(|| {
                let at = s.storm_at_secs as f64 + rand::random::<f64>();
                let delay = s.reconnect_window_secs * rand::random::<f64>();
                (Duration::from_secs_f64(at), Duration::from_secs_f64(delay))
            })
        });
        dropped += usize::from(drop.is_some());
        let plan = CustomerPlan {
            heartbeat: Some(Duration::from_secs(25)),
            send: true,
            max_in_flight: args.max_in_flight,
            drop,
            until_ended: false,
        };
        tasks.push(tokio::spawn(customer::run(ctx.clone(), c, ws, plan)));
    }

    let step_secs: Vec<u64> = match &storm {
        Some(s) => {
            vec![s.storm_at_secs + s.reconnect_window_secs.ceil() as u64 + 1 + args.step_secs]
        }
        None => vec![args.step_secs; rates.len()],
    };
    for (i, (&rate, &secs)) in rates.iter().zip(&step_secs).enumerate() {
        ctx.set_phase(i, Some(customers as f64 / f64::from(rate)));
        let before = sample(env, db).await;
        let acked_before = Counters::get(&ctx.c.cust_acked) + Counters::get(&ctx.c.agent_acked);
        let skipped_before = Counters::get(&ctx.c.skipped);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let after = sample(env, db).await;
        let acked =
            Counters::get(&ctx.c.cust_acked) + Counters::get(&ctx.c.agent_acked) - acked_before;
        let cpu = CpuUse::between(&before, &after);
        let p = ctx.phase(i);
        println!(
            "{name} step {}/{} offered_rate={rate}/s secs={secs} durable_msgs={acked} ({:.0}/s) skipped={} \
             | to_agent {} | ack {} | to_customer {} | {} cpu_per_msg={} rss_kb={} load {}",
            i + 1,
            rates.len(),
            acked as f64 / cpu.secs,
            Counters::get(&ctx.c.skipped) - skipped_before,
            p.to_agent.summary(),
            p.ack.summary(),
            p.to_customer.summary(),
            cpu.percent(),
            cpu.per(acked),
            env.server_pid.and_then(rss_kb).map(|k| k.to_string()).unwrap_or_else(|| "?".into()),
            loadavg()
        );
    }
    // Server memory per chat (customer socket and chat state; the agents'
    // sockets were open before the baseline), with the buffers warmed up.
    if let Some((before, after)) = rss_before.zip(env.server_pid.and_then(rss_kb)) {
        println!(
            "{name} memory: server_rss_before_customers_kb={before} after_kb={after} \
             rss_per_customer_kb={:.1} customers={customers}",
            after.saturating_sub(before) as f64 / customers as f64
        );
    }
    if storm.is_some() {
        println!(
            "S4 storm: reconnects={} resume {} resends_already_stored={} dup_acks={}",
            ctx.resume_hist.count(),
            ctx.resume_hist.summary(),
            Counters::get(&ctx.c.stored_before_resend),
            Counters::get(&ctx.c.dup_acks)
        );
    }

    // Stop sending, then wait for every ack and delivery still in flight.
    ctx.set_phase(rates.len() - 1, None);
    let c = &ctx.c;
    let drained = wait_for(DRAIN, || {
        let g = Counters::get;
        g(&c.cust_acked) == g(&c.cust_sent)
            && g(&c.to_agent) == g(&c.cust_acked)
            && g(&c.agent_acked) == g(&c.agent_sent)
            && g(&c.to_customer) == g(&c.agent_sent)
    })
    .await;
    if !drained {
        eprintln!("{name}: not everything was acknowledged and delivered within {DRAIN:?}");
    }
    ctx.stop_all();
    for task in tasks {
        let _ = task.await;
    }
    verify(&ctx, db, customers, storm.map(|_| dropped), relay).await
}

async fn verify(
    ctx: &Arc<Ctx>,
    db: &crate::verify::Db,
    customers: usize,
    dropped: Option<usize>,
    relay: bool,
) -> Result<bool> {
    let stored = if relay {
        db.stored_relay(&ctx.tag).await?
    } else {
        db.stored(&ctx.tag).await?
    };
    let c = &ctx.c;
    let mut checks = Checks::default();
    // A relay stores messages only, no conversation rows.
    if !relay {
        checks.eq(
            "conversations stored",
            stored.conversations,
            customers as i64,
        );
    }
    checks.eq(
        "message rows = messages acknowledged (customers + agents)",
        stored.messages,
        get(&c.cust_acked) + get(&c.agent_acked),
    );
    checks.eq(
        "customer messages never acknowledged",
        get(&c.cust_sent) - get(&c.cust_acked),
        0,
    );
    checks.eq(
        "agent messages never acknowledged",
        get(&c.agent_sent) - get(&c.agent_acked),
        0,
    );
    checks.eq(
        "acknowledged but not delivered to the agent (lost)",
        get(&c.cust_acked) - get(&c.to_agent),
        0,
    );
    checks.eq(
        "agent messages not delivered to the customer",
        get(&c.agent_acked) - get(&c.to_customer),
        0,
    );
    checks.eq(
        "conversations with a seq gap (database)",
        stored.seq_gaps,
        0,
    );
    if !relay {
        checks.eq(
            "conversations with a public_seq gap (database)",
            stored.public_seq_gaps,
            0,
        );
    }
    checks.eq("seq gaps seen by clients", get(&c.seq_gaps), 0);
    checks.eq("duplicate events seen by clients", get(&c.seq_dups), 0);
    checks.eq("error frames", get(&c.errors), 0);
    checks.eq("sockets closed unexpectedly", get(&c.unexpected_closes), 0);
    if let Some(dropped) = dropped {
        checks.eq(
            "resumes after the storm",
            ctx.resume_hist.count() as i64,
            dropped as i64,
        );
    }
    Ok(checks.report())
}
