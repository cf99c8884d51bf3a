//! # Switchboard
//!
//! A webchat contact-centre server. Layout:
//!
//! - [`domain`]: pure rules (routing state machine, conversation rules,
//!   input validation). No I/O; unit-tested.
//! - [`routing`]: the router actor, which carries out routing decisions
//!   (offers, answers, timeouts) and makes them durable with conditional
//!   updates in the store.
//! - [`conversation`]: one actor per live chat (sequence numbers, delivery,
//!   participants) and the registry that starts them.
//! - [`writer`]: the group-commit writer every chat-log event goes through.
//! - [`store`]: the only SQL; one `Store` trait, Postgres and SQLite.
//! - [`protocol`]: the typed WebSocket protocol (`docs/protocol.md`).
//! - [`outbox`]: bounded per-connection outgoing queues.
//! - [`attachments`]: where uploaded files live (one `BlobStore` interface,
//!   local disk by default) and how an upload is staged while it is checked.
//! - [`http`]: axum routes and WebSocket sessions (transport only).
//! - [`transcript`]: rendering a chat log for people: the customer's
//!   transcript (audience-filtered, never private messages) and the
//!   organisation log. Pure.
//! - [`mail`], [`transcript_mail`]: outgoing e-mail (SMTP via lettre, or
//!   off) and sending a customer's transcript with it.
//! - [`startup`], [`config`], [`cli`], [`seed`]: building and running it.
//!
//! `docs/architecture.md` describes how a message flows from one socket
//! through the store to the other sockets.

pub mod accounts;
pub mod attachments;
pub mod auth;
pub mod chat_creation;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conversation;
pub mod domain;
pub mod group_commit;
pub mod http;
pub mod mail;
pub mod outbox;
pub mod protocol;
pub mod queue_directory;
pub mod routing;
pub mod seed;
pub mod startup;
pub mod store;
pub mod transcript;
pub mod transcript_mail;
pub mod writer;
