//! Outbox: an offline-first durable write queue and local store.
#![warn(missing_docs)]

pub mod http;
pub mod transport;
