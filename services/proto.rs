//! Code generated from proto/ by build.rs, kept in this one module.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `eventdata.v1`.
pub mod v1 {
    tonic::include_proto!("eventdata.v1");
}

/// Encoded descriptors of every eventdata proto file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("eventdata_descriptor");
