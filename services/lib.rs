//! eventdata: a catalogue of events, speakers, companies, topics and media, served over gRPC from PostgreSQL
//! (with pgvector), where every change is written to an outbox in the same transaction and relayed to RabbitMQ.
//!
//! Layering: `domain` depends on nothing of ours; `store` and `outbox` on `domain`; `app` on those; `grpc` on
//! `app` and `domain` (never SQL); `startup` and the binary wire everything.

pub mod admin;
pub mod app;
pub mod backup;
pub mod call;
pub mod config;
pub mod db;
pub mod domain;
pub mod fuzzing;
pub mod grpc;
pub mod health;
pub mod loadgen;
pub mod metrics;
pub mod outbox;
pub mod proto;
pub mod seed;
pub mod startup;
pub mod store;
pub mod telemetry;
