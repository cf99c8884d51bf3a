//! S1 idle density: Not-ready agents plus many customer sockets whose chats
//! wait in the queue, pinging every `heartbeat_secs`. Measures the server's
//! RSS per idle customer (socket, session and the chat's conversation actor
//! and routing entry) and the CPU the heartbeats cost.

use super::{get, prepare, sample, wait_for, Checks, CpuUse, Env};
use crate::agent::{self, AgentPlan};
use crate::cli::IdleArgs;
use crate::customer::{self, CustomerPlan};
use crate::error::{LoadError, Result};
use crate::metrics::{loadavg, rss_kb, Counters};
use futures_util::{stream, StreamExt, TryStreamExt};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub async fn run(env: &Env, args: IdleArgs) -> Result<bool> {
    let prepared = prepare(env, args.agents, 1, 1, false, false).await?;
    let ctx = prepared.ctx.clone();
    let db = &prepared.db;
    let plan = AgentPlan {
        reject_pct: 0,
        reply_every: 0,
        hold: None,
    };
    let mut tasks = Vec::new();
    for (i, ws) in prepared.agents.into_iter().enumerate() {
        tasks.push(tokio::spawn(agent::run(ctx.clone(), ws, i, plan)));
    }
    let rss = || env.server_pid.and_then(rss_kb);
    let rss_before = rss();
    let begun = Instant::now();
    let opened: Vec<_> = stream::iter(0..args.customers)
        .map(|i| {
            let ctx = ctx.clone();
            async move {
                let c = customer::start(&ctx, i).await?;
                let ws = customer::connect(&ctx, &c).await?;
                Ok::<_, LoadError>((c, ws))
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1))
        .try_collect()
        .await?;
    let connect_secs = begun.elapsed().as_secs_f64();
    let plan = CustomerPlan {
        heartbeat: Some(Duration::from_secs(args.heartbeat_secs.max(1))),
        ..CustomerPlan::default()
    };
    for (c, ws) in opened {
        tasks.push(tokio::spawn(customer::run(ctx.clone(), c, ws, plan)));
    }
    // The router answers each new connection with its queue position; until
    // every customer has one, the server is still working through the joins
    // and CPU figures would not be those of idle sockets.
    let settled = wait_for(Duration::from_secs(args.settle_secs), || {
        Counters::get(&ctx.c.positioned) >= args.customers as u64
    })
    .await;
    println!(
        "S1 router settled={settled}: {} of {} customers had their queue position {:.1}s after the first join",
        Counters::get(&ctx.c.positioned),
        args.customers,
        begun.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss();
    let per_conn = rss_before
        .zip(rss_after)
        .map(|(a, b)| {
            format!(
                "{:.1}",
                b.saturating_sub(a) as f64 / args.customers.max(1) as f64
            )
        })
        .unwrap_or_else(|| "?".into());
    println!(
        "S1 customers={} joined+resumed in {connect_secs:.1}s ({:.0}/s) server_rss_kb {} -> {} ({per_conn} KiB per idle customer) load {}",
        args.customers,
        args.customers as f64 / connect_secs,
        rss_before.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
        rss_after.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
        loadavg()
    );
    let before = sample(env, db).await;
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let after = sample(env, db).await;
    let cpu = CpuUse::between(&before, &after);
    println!(
        "S1 hold {}s: pings={} pongs={} | {} server_cpu_per_ping={} load {}",
        args.hold_secs,
        Counters::get(&ctx.c.pings),
        Counters::get(&ctx.c.pongs),
        cpu.percent(),
        cpu.per(Counters::get(&ctx.c.pongs)),
        loadavg()
    );
    ctx.quiet.store(true, Ordering::Relaxed);
    let c = &ctx.c;
    wait_for(Duration::from_secs(5), || {
        Counters::get(&c.pongs) == Counters::get(&c.pings)
    })
    .await;
    ctx.stop_all();
    for task in tasks {
        let _ = task.await;
    }
    let stored = db.stored(&ctx.tag).await?;
    let mut checks = Checks::default();
    checks.eq(
        "conversations stored",
        stored.conversations,
        args.customers as i64,
    );
    checks.eq("customers resumed", get(&c.resumes), args.customers as i64);
    checks.eq("pongs = pings", get(&c.pongs), get(&c.pings));
    checks.eq(
        "customers told their queue position",
        get(&c.positioned),
        args.customers as i64,
    );
    checks.eq("error frames", get(&c.errors), 0);
    checks.eq("sockets closed unexpectedly", get(&c.unexpected_closes), 0);
    Ok(checks.report())
}
