//! eventdata: a catalogue of events, speakers, companies, topics and media, served over gRPC from PostgreSQL
//! (with pgvector), where every change is written to an outbox in the same transaction and relayed to RabbitMQ.
//!
//! Layering: `domain` depends on nothing of ours; `store` on `domain`; `startup` and the binary wire the rest.

pub mod admin;
pub mod config;
pub mod db;
pub mod domain;
pub mod health;
pub mod proto;
pub mod startup;
pub mod store;
pub mod telemetry;
