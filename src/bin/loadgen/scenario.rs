//! The shared run context, the setup every scenario needs, CPU sampling per
//! step, verification reporting, and dispatch to the scenarios.

#[path = "scenario/burst.rs"]
mod burst;
#[path = "scenario/chat.rs"]
mod chat;
#[path = "scenario/idle.rs"]
mod idle;

use crate::cli::{Cli, Mode, Scenario};
use crate::error::{LoadError, Result};
use crate::metrics::{cpu_ticks, loadavg, now_us, Counters, Hist, US_PER_TICK};
use crate::net::{Sources, Target};
use crate::setup::{self, Fixture};
use crate::verify::Db;
use crate::ws::Ws;
use futures_util::{stream, StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Latencies of one step of a scenario.
pub struct PhaseStats {
    /// Customer send → the agent receives the event.
    pub to_agent: Hist,
    /// Customer send → its ack (after the durable commit).
    pub ack: Hist,
    /// Agent send → the customer receives the event.
    pub to_customer: Hist,
}

/// Everything the tasks of one run share.
pub struct Ctx {
    pub target: Target,
    pub sources: Arc<Sources>,
    /// The queue and profile; None against a reference relay.
    pub fixture: Option<Fixture>,
    /// Customer-name prefix of this run's chats (`lg-<random>-`).
    pub tag: String,
    pub c: Counters,
    phase: AtomicUsize,
    phases: Vec<PhaseStats>,
    /// Seconds between one customer's messages, as f64 bits; 0: not sending.
    send_period_bits: AtomicU64,
    /// When set, customers send no more pings (so pongs can catch up).
    pub quiet: AtomicBool,
    track_joins: bool,
    /// Join time of each chat not offered yet, and whether an agent's slot
    /// was free for it when it joined (see `free_slots`).
    joins: Mutex<HashMap<String, (Instant, bool)>>,
    rejected: Mutex<HashMap<String, Instant>>,
    /// S3: customers with an index below this join while capacity is free
    /// (the first `agents × capacity` of the burst).
    pub free_slots: AtomicUsize,
    /// When each routing decision reached the generator (offer, accept,
    /// reject), for the peak rate over one-second windows.
    decisions: Mutex<Vec<(Instant, bool)>>,
    /// Chat created (POST sent) → its first offer reaches an agent.
    pub offer_hist: Hist,
    /// The same for the chats that joined while capacity was free.
    pub free_offer_hist: Hist,
    /// POST /api/chats sent → answered (the chat is stored and queued).
    pub create_hist: Hist,
    /// Reject sent → the chat is offered to someone else.
    pub reoffer_hist: Hist,
    /// Reconnect begun → `resumed`.
    pub resume_hist: Hist,
    stop: watch::Sender<bool>,
    errors_shown: AtomicU64,
}

const ERRORS_SHOWN: u64 = 20;
const PAD: &str = "the quick brown fox asks about an order that has not arrived yet";

/// See [`Ctx::decision_rates`].
#[derive(Default)]
pub struct DecisionRates {
    pub peak_per_sec: usize,
    /// When every free slot had an accepted chat, and the decisions until then.
    pub filled: Option<(Duration, usize)>,
}

/// A message text carrying the step and the send time: `lg <phase> <µs> …`.
pub fn stamped_text(phase: usize) -> String {
    format!("lg {phase} {} {PAD}", now_us())
}

pub fn parse_stamp(text: &str) -> Option<(usize, u64)> {
    let mut parts = text.split(' ');
    if parts.next()? != "lg" {
        return None;
    }
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Sleeps until `at`, or forever without one (a `select!` arm).
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Ctx {
    fn new(env: &Env, fixture: Option<Fixture>, phases: usize, track_joins: bool) -> Self {
        let tag = format!("lg-{:08x}-", rand::random::<u32>());
        Self {
            target: env.target.clone(),
            sources: env.sources.clone(),
            fixture,
            tag,
            c: Counters::default(),
            phase: AtomicUsize::new(0),
            phases: (0..phases.max(1))
                .map(|_| PhaseStats {
                    to_agent: Hist::new(),
                    ack: Hist::new(),
                    to_customer: Hist::new(),
                })
                .collect(),
            send_period_bits: AtomicU64::new(0),
            quiet: AtomicBool::new(false),
            track_joins,
            joins: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
            free_slots: AtomicUsize::new(0),
            decisions: Mutex::new(Vec::new()),
            offer_hist: Hist::new(),
            free_offer_hist: Hist::new(),
            create_hist: Hist::new(),
            reoffer_hist: Hist::new(),
            resume_hist: Hist::new(),
            stop: watch::channel(false).0,
            errors_shown: AtomicU64::new(0),
        }
    }

    /// The conversation id of customer `i` against a reference relay.
    pub fn relay_conversation(&self, i: usize) -> String {
        format!("{}{i}", self.tag)
    }

    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn stop_all(&self) {
        self.stop.send_replace(true);
    }

    pub fn current_phase(&self) -> usize {
        self.phase.load(Ordering::Relaxed)
    }

    pub fn phase(&self, i: usize) -> &PhaseStats {
        &self.phases[i.min(self.phases.len() - 1)]
    }

    pub fn set_phase(&self, i: usize, per_customer_period: Option<f64>) {
        self.phase.store(i, Ordering::Relaxed);
        let bits = per_customer_period.map(f64::to_bits).unwrap_or(0);
        self.send_period_bits.store(bits, Ordering::Relaxed);
    }

    /// Seconds between one customer's messages now; None: do not send.
    pub fn send_period(&self) -> Option<f64> {
        let p = f64::from_bits(self.send_period_bits.load(Ordering::Relaxed));
        (p > 0.0).then_some(p)
    }

    pub fn joined(&self, conversation: &str, at: Instant, idx: usize) {
        if self.track_joins {
            let free = idx < self.free_slots.load(Ordering::Relaxed);
            if let Ok(mut joins) = self.joins.lock() {
                joins.insert(conversation.to_owned(), (at, free));
            }
        }
    }

    /// Notes a routing decision seen by an agent (offer, accept, reject).
    pub fn decision(&self, accept: bool) {
        if self.track_joins {
            if let Ok(mut d) = self.decisions.lock() {
                d.push((Instant::now(), accept));
            }
        }
    }

    /// The routing rate: the most decisions within any one second, and the
    /// first wave: how long after `since` the `slots`-th accept arrived and
    /// how many decisions arrived until then (None if fewer accepts came).
    pub fn decision_rates(&self, since: Instant, slots: usize) -> DecisionRates {
        let Ok(mut d) = self.decisions.lock() else {
            return DecisionRates::default();
        };
        d.sort_unstable_by_key(|(at, _)| *at);
        let mut peak = 0;
        let mut start = 0;
        for end in 0..d.len() {
            while d[end].0 - d[start].0 >= Duration::from_secs(1) {
                start += 1;
            }
            peak = peak.max(end + 1 - start);
        }
        let mut accepts = 0;
        let filled = d.iter().position(|(_, accept)| {
            accepts += usize::from(*accept);
            slots > 0 && accepts == slots
        });
        DecisionRates {
            peak_per_sec: peak,
            filled: filled.map(|i| (d[i].0 - since, i + 1)),
        }
    }

    /// An agent got an offer: first offer of the chat or a re-offer.
    pub fn offered(&self, conversation: &str) {
        let first = self
            .joins
            .lock()
            .ok()
            .and_then(|mut j| j.remove(conversation));
        if let Some((at, free)) = first {
            self.offer_hist.record(at.elapsed());
            if free {
                self.free_offer_hist.record(at.elapsed());
            }
        } else if let Some(at) = self
            .rejected
            .lock()
            .ok()
            .and_then(|mut r| r.remove(conversation))
        {
            self.reoffer_hist.record(at.elapsed());
        }
    }

    pub fn rejecting(&self, conversation: &str) {
        if let Ok(mut r) = self.rejected.lock() {
            r.insert(conversation.to_owned(), Instant::now());
        }
    }

    /// Prints the first few problems; all are counted by the caller.
    pub fn note_error(&self, what: &str) {
        if self.errors_shown.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
            eprintln!("loadgen: {what}");
        }
    }
}

/// The validated command line, shared by the scenarios.
pub struct Env {
    pub target: Target,
    pub sources: Arc<Sources>,
    pub db_url: String,
    pub server_pid: Option<u32>,
    pub mode: Mode,
}

pub async fn run(args: Cli) -> Result<bool> {
    let env = Env {
        target: Target::parse(&args.target)?,
        sources: Arc::new(Sources::parse(&args.sources)?),
        db_url: args.db_url.clone(),
        server_pid: args.server_pid,
        mode: args.mode,
    };
    if env.mode == Mode::Relay && !matches!(args.scenario, Scenario::S2(_)) {
        return Err(LoadError::Config(
            "--mode relay speaks only the relay subset: S2 only".into(),
        ));
    }
    let bound = Duration::from_secs(args.max_secs);
    let run = async {
        match args.scenario {
            Scenario::S1(a) => idle::run(&env, a).await,
            Scenario::S2(a) => chat::run(&env, a, None).await,
            Scenario::S3(a) => burst::run(&env, a).await,
            Scenario::S4(a) => {
                let chat = a.chat.clone();
                chat::run(&env, chat, Some(a)).await
            }
        }
    };
    tokio::time::timeout(bound, run).await.map_err(|_| {
        LoadError::Timeout(format!(
            "the run took longer than --max-secs {}",
            args.max_secs
        ))
    })?
}

/// A prepared run: context, verification database, signed-in agents.
pub struct Prepared {
    pub ctx: Arc<Ctx>,
    pub db: Db,
    pub agents: Vec<Ws>,
}

/// Creates the fixture and `agents` agents, logs them in and opens their
/// consoles (Ready or Not ready).
pub async fn prepare(
    env: &Env,
    agents: usize,
    capacity: u32,
    phases: usize,
    track_joins: bool,
    ready: bool,
) -> Result<Prepared> {
    let begun = Instant::now();
    let store = setup::open_store(&env.db_url).await?;
    let fixture = setup::fixture(&store).await?;
    let names = setup::agents(&store, fixture, agents, capacity).await?;
    let ctx = Arc::new(Ctx::new(env, Some(fixture), phases, track_joins));
    let cookies = setup::login_all(&ctx.target, &ctx.sources, &names).await?;
    let consoles: Vec<Ws> = stream::iter(cookies.iter())
        .map(|cookie| crate::agent::connect(&ctx, cookie, ready))
        .buffered(16)
        .try_collect()
        .await?;
    let db = Db::connect(&env.db_url).await?;
    println!(
        "setup: {} agents (capacity {capacity}) signed in {} in {:.1}s; {} source addresses; run tag {}; load {}",
        consoles.len(),
        if ready { "ready" } else { "not ready" },
        begun.elapsed().as_secs_f64(),
        ctx.sources.len(),
        ctx.tag,
        loadavg()
    );
    Ok(Prepared {
        ctx,
        db,
        agents: consoles,
    })
}

/// Against a reference relay: no accounts or logins. Each agent opens a
/// console and takes its `chats_per_agent` conversations (`<tag><i>`, agent
/// `i / chats_per_agent`) with `accept`; the customers then resume them.
pub async fn prepare_relay(
    env: &Env,
    agents: usize,
    chats_per_agent: u32,
    phases: usize,
) -> Result<Prepared> {
    let begun = Instant::now();
    let ctx = Arc::new(Ctx::new(env, None, phases, false));
    let per = chats_per_agent as usize;
    let consoles: Vec<Ws> = stream::iter(0..agents)
        .map(|a| {
            let ctx = ctx.clone();
            async move {
                let chats: Vec<String> = (a * per..(a + 1) * per)
                    .map(|i| ctx.relay_conversation(i))
                    .collect();
                crate::agent::connect_relay(&ctx, &chats).await
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    let db = Db::connect(&env.db_url).await?;
    println!(
        "setup (relay): {} agent consoles in {:.1}s; {} source addresses; run tag {}; load {}",
        consoles.len(),
        begun.elapsed().as_secs_f64(),
        ctx.sources.len(),
        ctx.tag,
        loadavg()
    );
    Ok(Prepared {
        ctx,
        db,
        agents: consoles,
    })
}

/// CPU ticks of the server, the run's Postgres processes and the generator.
pub struct Sample {
    at: Instant,
    server: Option<u64>,
    postgres: HashMap<u32, u64>,
    me: u64,
}

pub async fn sample(env: &Env, db: &Db) -> Sample {
    let pids = db.postgres_pids().await.unwrap_or_default();
    Sample {
        at: Instant::now(),
        server: env.server_pid.and_then(cpu_ticks),
        postgres: pids
            .into_iter()
            .filter_map(|p| cpu_ticks(p).map(|t| (p, t)))
            .collect(),
        me: cpu_ticks(std::process::id()).unwrap_or(0),
    }
}

/// CPU used between two samples, in µs.
pub struct CpuUse {
    pub secs: f64,
    pub server_us: Option<u64>,
    pub postgres_us: u64,
    pub me_us: u64,
}

impl CpuUse {
    pub fn between(a: &Sample, b: &Sample) -> Self {
        let postgres_ticks: u64 = b
            .postgres
            .iter()
            .map(|(pid, t)| t.saturating_sub(a.postgres.get(pid).copied().unwrap_or(0)))
            .sum();
        Self {
            secs: b.at.duration_since(a.at).as_secs_f64(),
            server_us: a
                .server
                .zip(b.server)
                .map(|(x, y)| y.saturating_sub(x) * US_PER_TICK),
            postgres_us: postgres_ticks * US_PER_TICK,
            me_us: b.me.saturating_sub(a.me) * US_PER_TICK,
        }
    }

    /// `server=…% pg=…% loadgen=…%` of one core.
    pub fn percent(&self) -> String {
        let pct = |us: u64| 100.0 * us as f64 / 1e6 / self.secs.max(1e-9);
        format!(
            "server_cpu={} pg_cpu={:.0}% loadgen_cpu={:.0}%",
            self.server_us
                .map(|u| format!("{:.0}%", pct(u)))
                .unwrap_or_else(|| "?".into()),
            pct(self.postgres_us),
            pct(self.me_us)
        )
    }

    /// Server + Postgres CPU µs per unit of work (e.g. per message).
    pub fn per(&self, units: u64) -> String {
        match self.server_us {
            Some(s) if units > 0 => format!(
                "{:.0}us (server {:.0} + pg {:.0})",
                (s + self.postgres_us) as f64 / units as f64,
                s as f64 / units as f64,
                self.postgres_us as f64 / units as f64
            ),
            _ => "?".into(),
        }
    }
}

/// Collects named pass/fail checks and prints them.
#[derive(Default)]
pub struct Checks(Vec<(String, bool)>);

impl Checks {
    pub fn eq(&mut self, name: &str, got: i64, want: i64) {
        self.0
            .push((format!("{name}: {got} (want {want})"), got == want));
    }

    pub fn report(self) -> bool {
        let ok = self.0.iter().all(|(_, ok)| *ok);
        for (line, pass) in &self.0 {
            println!("verify {} {line}", if *pass { "ok  " } else { "FAIL" });
        }
        println!("VERIFY {}", if ok { "PASSED" } else { "FAILED" });
        ok
    }
}

/// Waits until `done` holds, polling; false on timeout.
pub async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

pub fn get(c: &AtomicU64) -> i64 {
    Counters::get(c) as i64
}
