//! Integration tests against the real PostgreSQL (and RabbitMQ): one binary, one module per area, so the suite
//! links once. Each test makes its own database (see `common::TestDb`), so tests run in parallel.

mod common;

mod auth;
mod broker;
mod catalogue_concurrency;
mod catalogue_crud;
mod catalogue_errors;
mod catalogue_outbox;
mod change_feed;
mod change_schemas;
mod cli;
mod contract;
mod creates_together;
mod docs;
mod extraction;
mod fixtures;
mod graph;
mod list_indexes;
mod loadgen;
mod malformed;
mod migrations;
mod properties;
mod python_consumer;
mod read_models;
mod relation_batches;
mod relation_counts;
mod relay;
mod relay_operations;
mod replicas;
mod row_level_security;
mod schema_constraints;
mod search;
mod search_plans;
mod search_recall;
mod security;
mod server;
mod statements;
mod tooling;
mod warm_connections;
