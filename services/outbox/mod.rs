//! The transactional outbox: changes are written by the same statement (or transaction) as the data they
//! describe (`enqueue`), read in commit order below the snapshot watermark (`log`), and published to RabbitMQ
//! with confirms by the relay (`relay`, `publisher`, `message`).

pub mod backoff;
pub mod enqueue;
pub mod feed;
pub mod log;
pub mod message;
pub mod publisher;
pub mod relay;
pub mod schema;
pub mod unroutable;
pub mod wakeup;
pub mod window;
