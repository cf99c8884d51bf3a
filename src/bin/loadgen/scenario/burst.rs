//! S3 routing burst: customers join within `join_secs`, Ready agents
//! auto-accept (rejecting a share) and end each chat after a hold time.
//! Measures join → first offer, reject → re-offer and the routing rate,
//! and checks that every offer and answer was persisted.

use super::{get, prepare, sample, wait_for, Checks, CpuUse, Env};
use crate::agent::{self, AgentPlan};
use crate::cli::BurstArgs;
use crate::customer::{self, CustomerPlan};
use crate::error::{LoadError, Result};
use crate::metrics::{loadavg, Counters};
use std::time::{Duration, Instant};

pub async fn run(env: &Env, args: BurstArgs) -> Result<bool> {
    let customers = args
        .customers
        .unwrap_or(args.agents * args.capacity as usize);
    if customers == 0 || args.agents == 0 {
        return Err(LoadError::Config("need agents and customers".into()));
    }
    let prepared = prepare(env, args.agents, args.capacity, 1, true, true).await?;
    let ctx = prepared.ctx.clone();
    let slots = (args.agents * args.capacity as usize).min(customers);
    ctx.free_slots
        .store(slots, std::sync::atomic::Ordering::Relaxed);
    let db = &prepared.db;
    let plan = AgentPlan {
        reject_pct: args.reject_pct,
        reply_every: 0,
        hold: Some(Duration::from_secs_f64(args.hold_secs)),
    };
    let mut agents = Vec::new();
    for (i, ws) in prepared.agents.into_iter().enumerate() {
        agents.push(tokio::spawn(agent::run(ctx.clone(), ws, i, plan)));
    }

    let before = sample(env, db).await;
    let t0 = Instant::now();
    let mut customer_tasks = Vec::new();
    for i in 0..customers {
        let ctx = ctx.clone();
        let at = t0 + Duration::from_secs_f64(args.join_secs * i as f64 / customers as f64);
        customer_tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let c = match customer::start(&ctx, i).await {
                Ok(c) => c,
                Err(e) => {
                    Counters::inc(&ctx.c.errors);
                    ctx.note_error(&format!("customer {i}: {e}"));
                    return;
                }
            };
            match customer::connect(&ctx, &c).await {
                Ok(ws) => {
                    let plan = CustomerPlan {
                        until_ended: true,
                        ..CustomerPlan::default()
                    };
                    customer::run(ctx, c, ws, plan).await
                }
                Err(e) => {
                    Counters::inc(&ctx.c.errors);
                    ctx.note_error(&format!("customer {i}: {e}"));
                }
            }
        }));
    }
    let routed = wait_for(Duration::from_secs(args.drain_secs), || {
        Counters::get(&ctx.c.accepts) >= customers as u64
    })
    .await;
    let drain = t0.elapsed().as_secs_f64();
    let after = sample(env, db).await;
    let c = &ctx.c;
    let (offers, accepts, rejects) = (
        Counters::get(&c.offers),
        Counters::get(&c.accepts),
        Counters::get(&c.rejects),
    );
    let cpu = CpuUse::between(&before, &after);
    let rates = ctx.decision_rates(t0, slots);
    let first_wave = match rates.filled {
        Some((at, decisions)) => format!(
            "{slots} free slots filled in {:.3}s: {decisions} decisions, {:.0}/s",
            at.as_secs_f64(),
            decisions as f64 / at.as_secs_f64()
        ),
        None => format!("{slots} free slots never filled"),
    };
    println!(
        "S3 routing while capacity is free: {first_wave} | peak decisions/s (1 s window)={} \
         | join->offer of those {slots} {} | POST /api/chats {}",
        rates.peak_per_sec,
        ctx.free_offer_hist.summary(),
        ctx.create_hist.summary()
    );
    println!(
        "S3 customers={customers} agents={} capacity={} join_secs={} routed_all={routed} in {drain:.2}s \
         | offers={offers} accepts={accepts} rejects={rejects} accept_retries={} offers/s={:.0} decisions/s={:.0} \
         | join->offer {} | reject->reoffer {} | {} cpu_per_chat={} load {}",
        args.agents,
        args.capacity,
        args.join_secs,
        Counters::get(&c.accept_retries),
        offers as f64 / drain,
        (offers + accepts + rejects) as f64 / drain,
        ctx.offer_hist.summary(),
        ctx.reoffer_hist.summary(),
        cpu.percent(),
        cpu.per(accepts),
        loadavg()
    );
    // Let the held chats end, so every customer finishes on its own.
    let ended = wait_for(Duration::from_secs_f64(args.hold_secs + 15.0), || {
        customer_tasks.iter().all(|t| t.is_finished())
    })
    .await;
    ctx.stop_all();
    for task in customer_tasks.into_iter().chain(agents) {
        let _ = task.await;
    }

    let stored = db.stored(&ctx.tag).await?;
    let mut checks = Checks::default();
    checks.eq(
        "conversations stored",
        stored.conversations,
        customers as i64,
    );
    checks.eq("chats accepted", get(&c.accepts), customers as i64);
    checks.eq(
        "offers persisted = offers received",
        stored.offered,
        get(&c.offers),
    );
    checks.eq("accepts persisted", stored.accepted, get(&c.accepts));
    checks.eq("rejects persisted", stored.rejected, get(&c.rejects));
    checks.eq("every chat ended after its hold", i64::from(ended), 1);
    checks.eq(
        "conversations with a seq gap (database)",
        stored.seq_gaps,
        0,
    );
    checks.eq("seq gaps seen by clients", get(&c.seq_gaps), 0);
    checks.eq("duplicate events seen by clients", get(&c.seq_dups), 0);
    checks.eq("error frames", get(&c.errors), 0);
    checks.eq("sockets closed unexpectedly", get(&c.unexpected_closes), 0);
    Ok(checks.report())
}
