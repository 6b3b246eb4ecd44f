//! Domain types: values that cannot hold invalid data, the catalogue's field rules, and the changes it emits.

pub mod api_key;
pub mod catalogue;
pub mod change;
pub mod context_text;
pub mod embedding;
pub mod fields;
pub mod fusion;
pub mod iana;
pub mod json_time;
pub mod lsn;
pub mod new_resources;
pub mod org_slug;
pub mod page_token;
pub mod queries;
pub mod resources;
pub mod search_params;
