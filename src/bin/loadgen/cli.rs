//! Command line: global connection options and one subcommand per scenario.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Switchboard load generator (loopback only)")]
pub struct Cli {
    /// Server base URL; must resolve to a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// The server's database, for setup (queue, profile, agents) and for
    /// verifying the run (sqlite:… or postgres://…).
    #[arg(long)]
    pub db_url: String,
    /// Source addresses to bind client sockets to: `127.0.0.1-127.0.0.8`
    /// or a comma list. One address gives only ~28k ports toward one target.
    #[arg(long, default_value = "127.0.0.1")]
    pub sources: String,
    /// The server's pid: CPU and RSS are then sampled from /proc per step.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Worker threads of the generator (the server shares the machine).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// What the target is: Switchboard itself, or a reference relay
    /// (`bench/ceiling`, `bench/node-relay`) that speaks only the relay
    /// subset of the protocol (no logins, no routing; S2 only).
    #[arg(long, value_enum, default_value_t = Mode::Switchboard)]
    pub mode: Mode,
    /// Hard bound on the whole run, setup and verification included.
    #[arg(long, default_value_t = 600)]
    pub max_secs: u64,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Switchboard,
    Relay,
}

#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Idle density: many customer sockets with heartbeats, plus agents.
    S1(IdleArgs),
    /// Steady chat: agents × chats, stepped message rate.
    S2(ChatArgs),
    /// Routing burst: many customers join at once, agents auto-accept.
    S3(BurstArgs),
    /// Reconnect storm: customers drop and resume mid-chat.
    S4(StormArgs),
}

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    #[arg(long, default_value_t = 2000)]
    pub customers: usize,
    #[arg(long, default_value_t = 20)]
    pub agents: usize,
    /// Seconds between a customer's application pings.
    #[arg(long, default_value_t = 25)]
    pub heartbeat_secs: u64,
    /// How long the idle sockets are held (heartbeat CPU is measured then).
    #[arg(long, default_value_t = 30)]
    pub hold_secs: u64,
    /// Customer connections opened at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Longest wait for the server to finish processing the joins.
    #[arg(long, default_value_t = 180)]
    pub settle_secs: u64,
}

#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    #[arg(long, default_value_t = 25)]
    pub agents: usize,
    /// Chats each agent holds (its capacity).
    #[arg(long, default_value_t = 4)]
    pub chats_per_agent: u32,
    /// Total customer message rates to step through (messages/s).
    #[arg(long, value_delimiter = ',', default_value = "100,200,400")]
    pub rates: Vec<u32>,
    #[arg(long, default_value_t = 10)]
    pub step_secs: u64,
    /// Agents answer every Nth customer message (0: never).
    #[arg(long, default_value_t = 4)]
    pub reply_every: u32,
    /// A customer stops sending while this many of its messages are unacknowledged.
    #[arg(long, default_value_t = 32)]
    pub max_in_flight: usize,
}

#[derive(Args, Debug, Clone)]
pub struct BurstArgs {
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    #[arg(long, default_value_t = 4)]
    pub capacity: u32,
    /// Customers joining; default: every free slot (agents × capacity).
    #[arg(long)]
    pub customers: Option<usize>,
    /// The joins are spread evenly over this many seconds.
    #[arg(long, default_value_t = 1.0)]
    pub join_secs: f64,
    /// Percent of offers an agent rejects.
    #[arg(long, default_value_t = 10)]
    pub reject_pct: u32,
    /// An agent ends an accepted chat after this many seconds.
    #[arg(long, default_value_t = 2.0)]
    pub hold_secs: f64,
    /// Give up if the burst is not fully accepted within this time.
    #[arg(long, default_value_t = 60)]
    pub drain_secs: u64,
}

#[derive(Args, Debug, Clone)]
pub struct StormArgs {
    #[command(flatten)]
    pub chat: ChatArgs,
    /// Seconds of steady chat before the storm.
    #[arg(long, default_value_t = 5)]
    pub storm_at_secs: u64,
    /// Percent of customers that drop their socket.
    #[arg(long, default_value_t = 100)]
    pub drop_pct: u32,
    /// Each dropped customer reconnects after a random delay up to this.
    #[arg(long, default_value_t = 5.0)]
    pub reconnect_window_secs: f64,
}
