//! The transactional outbox: changes are written by the same statement (or transaction) as the data they
//! describe, and read by the relay and the change feed.

pub mod enqueue;
