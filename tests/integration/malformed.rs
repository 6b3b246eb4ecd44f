//! Requests whose bytes are not a valid message: every method of every service answers INVALID_ARGUMENT
//! (reason MALFORMED_MESSAGE) or handles what did decode, and never INTERNAL or UNKNOWN. The methods come from the
//! descriptor set the server publishes for reflection, so a new method is covered without touching this file.

use std::str::FromStr;

use eventdata::proto::v1 as pb;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use prost::Message;
use prost::bytes::{Buf, BufMut};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::common::{TestApp, error_details};

/// Sends and receives message bytes as they are, so a test can put anything on the wire.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// One RPC of the API: its path and whether it streams its response.
struct Method {
    path: String,
    server_streaming: bool,
}

/// Every method of every eventdata service, from the published descriptor set.
fn methods() -> Vec<Method> {
    let set = prost_types::FileDescriptorSet::decode(eventdata::proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                methods.push(Method {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    methods
}

/// Calls `method` with `body` as the request's bytes; the status, OK when the call was accepted.
async fn call(app: &TestApp, method: &Method, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(app.rw());
    grpc.ready().await.expect("channel ready");
    let path = http::uri::PathAndQuery::from_str(&method.path).expect("path");
    let request = tonic::Request::new(body);
    let result = if method.server_streaming {
        grpc.server_streaming(request, path, RawCodec).await.map(|_| ())
    } else {
        grpc.unary(request, path, RawCodec).await.map(|_| ())
    };
    result.err().unwrap_or_else(|| tonic::Status::ok(""))
}

/// A `google.protobuf.Struct` nested `depth` levels deep.
fn nested_struct(depth: usize) -> prost_types::Struct {
    let mut inner = prost_types::Struct::default();
    for _ in 0..depth {
        let value = prost_types::Value { kind: Some(prost_types::value::Kind::StructValue(inner)) };
        inner = prost_types::Struct { fields: [("a".to_owned(), value)].into() };
    }
    inner
}

fn create_event_with_metadata(depth: usize, slug: &str) -> Vec<u8> {
    let mut event = crate::fixtures::new_event("Nested", slug);
    event.metadata = Some(nested_struct(depth));
    pb::CreateEventRequest { event: Some(event), request_id: String::new() }.encode_to_vec()
}

fn assert_malformed(status: &tonic::Status, what: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    assert_eq!(error_details(status), ("MALFORMED_MESSAGE".to_owned(), vec![String::new()]), "{what}");
}

#[tokio::test]
async fn bytes_that_do_not_decode_are_invalid_argument() {
    let app = TestApp::start().await;
    let methods = methods();
    let declared: usize = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/proto/eventdata/v1"))
        .expect("proto dir")
        .map(|f| std::fs::read_to_string(f.expect("file").path()).expect("proto"))
        .map(|text| text.lines().filter(|l| l.trim_start().starts_with("rpc ")).count())
        .sum();
    assert_eq!(methods.len(), declared, "every declared method is exercised");
    let get_event = methods.iter().find(|m| m.path == "/eventdata.v1.EventService/GetEvent").expect("GetEvent");
    assert_malformed(&call(&app, get_event, vec![0xff, 0xff, 0xff, 0xff]).await, "ff ff ff ff to GetEvent");

    let create = methods.iter().find(|m| m.path == "/eventdata.v1.EventService/CreateEvent").expect("CreateEvent");
    let deep = call(&app, create, create_event_with_metadata(60, "deep")).await;
    assert_malformed(&deep, "a Struct nested 60 levels");
    let shallow = call(&app, create, create_event_with_metadata(20, "shallow")).await;
    assert_eq!(shallow.code(), Code::Ok, "a Struct nested 20 levels is stored: {shallow:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bytes_and_nesting_never_get_internal_or_unknown() {
    let app = TestApp::start().await;
    let methods = methods();
    // Generated up front (the calls are async); deterministic, so a failure reproduces.
    let mut runner = TestRunner::deterministic();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        // Valid tags with wrong wire types and lengths are likelier to get past the first byte.
        prop::collection::vec(prop_oneof![Just(0x0a_u8), Just(0x12), Just(0x08), Just(0xff), any::<u8>()], 0..64),
    ];
    let mut inputs = Vec::new();
    for _ in 0..12 {
        inputs.push(bytes.new_tree(&mut runner).expect("bytes").current());
    }
    for method in &methods {
        for body in &inputs {
            let status = call(&app, method, body.clone()).await;
            assert!(
                !matches!(status.code(), Code::Internal | Code::Unknown),
                "{} with {body:02x?}: {status:?}",
                method.path
            );
        }
    }
    let create = methods.iter().find(|m| m.path == "/eventdata.v1.EventService/CreateEvent").expect("CreateEvent");
    for depth in (0..=120).step_by(7) {
        let status = call(&app, create, create_event_with_metadata(depth, &format!("depth-{depth}"))).await;
        assert!(matches!(status.code(), Code::Ok | Code::InvalidArgument), "depth {depth}: {status:?}");
    }
}
