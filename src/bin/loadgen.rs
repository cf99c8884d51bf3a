//! `loadgen`: a load generator that speaks Switchboard's real protocol
//! (`docs/protocol.md`) against a server on loopback, measures latencies
//! with HDR histograms and CPU from `/proc`, and verifies its own results in
//! the database. Scenarios and figures: `docs/performance.md`; the usual
//! driver is `bench/run.sh`.
//!
//! The modules live in `src/bin/loadgen/` (hence the `#[path]`s).
//! It is a tool, not part of the server: its SQL (setup checks and
//! verification) stays in this binary.

#[path = "loadgen/agent.rs"]
mod agent;
#[path = "loadgen/cli.rs"]
mod cli;
#[path = "loadgen/customer.rs"]
mod customer;
#[path = "loadgen/error.rs"]
mod error;
#[path = "loadgen/http.rs"]
mod http;
#[path = "loadgen/metrics.rs"]
mod metrics;
#[path = "loadgen/net.rs"]
mod net;
#[path = "loadgen/scenario.rs"]
mod scenario;
#[path = "loadgen/setup.rs"]
mod setup;
#[path = "loadgen/verify.rs"]
mod verify;
#[path = "loadgen/ws.rs"]
mod ws;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(scenario::run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("loadgen: VERIFY FAILED");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
