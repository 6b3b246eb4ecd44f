//! SQL, one function per query. Each takes the connection or transaction it runs on; none opens its own.

pub mod api_keys;
pub mod organizations;
