//! SQL, one function per query. Each takes the connection or transaction it runs on; none opens its own. Reads
//! that take the organization confine themselves to it in the same statement (`confined`): they need no transaction.

pub mod api_keys;
pub mod catalogue;
pub mod confined;
pub mod contexts;
pub mod embeddings;
pub mod errors;
pub mod graph;
pub mod idempotency;
pub mod lists;
pub mod locks;
pub mod organizations;
pub mod relations;
pub mod search;
pub mod sql;
pub mod tables;
