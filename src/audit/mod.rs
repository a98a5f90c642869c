//! The audit trail (API.md "Operations"): who changed what, to whom, from
//! where, and when. Each event is a row of `audit_events`, written in the very
//! transaction of the change it records (a change that rolls back leaves no
//! event), and one log line under the target `signet::audit`, written once
//! that transaction has committed.
//!
//! The domains record their own events ([`record`] inside [`transaction`]);
//! the faces only hand down an [`Actor`] (the caller's id and IP, plain
//! values). An event holds ids, names and reasons, never a password, a hash
//! or a token. Events older than `audit.retention_days` are purged by the
//! maintenance jobs; `GET /v1/admin/audit` pages through the rest.

pub mod model;
pub mod service;

pub use service::{record, sqlite_batch, transaction, Actor, Event, EventType, LOG_TARGET};
