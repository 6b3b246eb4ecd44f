//! Domain types: values that cannot hold invalid data, and the changes the catalogue emits.

pub mod api_key;
pub mod org_slug;
