//! One integration-test binary: every test starts the real server on port 0
//! and runs once against SQLite and once against Postgres.

mod helpers;

mod abuse;
mod access_matrix;
mod agent_grace;
mod attachments;
mod auth;
mod bad_input;
mod chat_actions;
mod chat_flow;
mod cli;
mod crash;
mod db_faults;
mod directory;
mod disk_full;
mod drops;
mod fuzz;
mod identity;
mod offer_timeout;
mod pg_proxy;
mod predefined;
mod race;
mod restart;
mod routing;
mod shutdown;
mod sigkill_loop;
mod smtp;
mod state_matrix;
mod store_contract;
mod supervisor;
mod transcript_auto;
mod transcripts;
mod widget_config;
mod ws_roles;
