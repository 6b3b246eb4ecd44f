//! Compiles proto/ into Rust (prost messages, tonic clients and servers) with protox, a pure-Rust protobuf
//! compiler, so no system `protoc` is needed; also writes the descriptor set served by gRPC reflection, and makes
//! cargo rebuild the crate when a migration is added.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos: Vec<PathBuf> = std::fs::read_dir("proto/eventdata/v1")?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    let descriptors = protox::compile(&protos, ["proto"])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("eventdata_descriptor.bin"), prost::Message::encode_to_vec(&descriptors))?;
    // A decoding failure is the caller's INVALID_ARGUMENT, not tonic-prost's INTERNAL (services/grpc/codec.rs).
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::grpc::codec::ProtoCodec")
        .compile_fds(descriptors)?;

    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds migrations/ at compile time but cannot tell cargo (on stable) that a new file there
    // changes the crate: without this a new migration leaves `eventdata migrate` without it.
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}
