//! Pure domain rules: no axum, sqlx or tokio in here. Everything that decides
//! something (who gets an offer, whether a message is acceptable, what a
//! conversation allows) lives here and is unit-tested with plain values.

pub mod account;
pub mod attachment;
pub mod choices;
pub mod conversation;
pub mod customer;
pub mod identity;
pub mod ids;
pub mod message;
pub mod predefined;
pub mod routing;
pub mod site;
