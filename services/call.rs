//! `eventdata call`: one gRPC call with a JSON request and JSON answers, through the descriptors compiled into the
//! binary, so a machine without grpcurl (Debian packages none) can still try the API. JSON follows protobuf's
//! canonical mapping (camelCase names, enums by name, timestamps as RFC 3339), as grpcurl's does.

use std::io::Write;

use anyhow::{Context, bail};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

/// The descriptors of every eventdata service (the ones reflection serves).
fn pool() -> anyhow::Result<DescriptorPool> {
    DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).context("decoding the compiled descriptors")
}

/// Every method as `Service/Method  Request → Response`, one per line, sorted.
pub fn methods() -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for service in pool()?.services() {
        for m in service.methods() {
            let stream = if m.is_server_streaming() { "stream " } else { "" };
            let (input, output) = (m.input(), m.output());
            lines.push(format!(
                "{}/{}\t{} → {stream}{}",
                service.full_name(),
                m.name(),
                input.full_name(),
                output.full_name()
            ));
        }
    }
    lines.sort();
    Ok(lines)
}

/// Finds `name`: `eventdata.v1.EventService/GetEvent`, `EventService/GetEvent` or `EventService.GetEvent`.
pub fn find_method(name: &str) -> anyhow::Result<MethodDescriptor> {
    let (service, method) = name
        .rsplit_once('/')
        .or_else(|| name.rsplit_once('.'))
        .with_context(|| format!("{name:?} is not Service/Method (e.g. EventService/GetEvent)"))?;
    let pool = pool()?;
    let found = pool
        .services()
        .filter(|s| s.full_name() == service || s.name() == service)
        .find_map(|s| s.methods().find(|m| m.name() == method));
    match found {
        Some(m) if m.is_client_streaming() => bail!("{name} takes a stream of requests; `call` sends one"),
        Some(m) => Ok(m),
        None => bail!("no method {name}; `eventdata call` with no method lists them"),
    }
}

/// Parses `json` as `method`'s request; unknown fields are errors, so a typo is not silently dropped.
pub fn request(method: &MethodDescriptor, json: &str) -> anyhow::Result<DynamicMessage> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(true);
    let message = DynamicMessage::deserialize_with_options(method.input(), &mut deserializer, &options)
        .with_context(|| format!("the request is not a {} in JSON", method.input().full_name()))?;
    deserializer.end().context("trailing characters after the request")?;
    Ok(message)
}

/// Calls `method` on `url` with `key` (when given) and writes each answer to `out` as JSON; a streaming method's
/// answers are written as they arrive.
pub async fn call(
    url: &str,
    key: Option<&str>,
    method: &MethodDescriptor,
    message: DynamicMessage,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{url:?} is not a URL"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.context("the channel is not ready")?;
    let path: PathAndQuery = format!("/{}/{}", method.parent_service().full_name(), method.name()).parse()?;
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().context("the API key is not a valid header value")?;
        request.metadata_mut().insert("authorization", value);
    }
    let codec = DynamicCodec { output: method.output() };
    if method.is_server_streaming() {
        let mut answers = grpc.server_streaming(request, path, codec).await.map_err(status_error)?.into_inner();
        while let Some(answer) = answers.message().await.map_err(status_error)? {
            write_json(out, &answer)?;
        }
    } else {
        let answer = grpc.unary(request, path, codec).await.map_err(status_error)?.into_inner();
        write_json(out, &answer)?;
    }
    Ok(())
}

fn write_json(out: &mut impl Write, message: &DynamicMessage) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, message)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// The status as the caller needs it: code, message, and the reasons and field violations the details carry.
fn status_error(status: Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let details = status.get_error_details();
    if let Some(info) = details.error_info() {
        text.push_str(&format!("\n  reason: {}", info.reason));
    }
    if let Some(bad) = details.bad_request() {
        for violation in &bad.field_violations {
            text.push_str(&format!("\n  {}: {}", violation.field, violation.description));
        }
    }
    anyhow::anyhow!(text)
}

/// Encodes dynamic requests as prost does; decodes answers against the method's output descriptor.
struct DynamicCodec {
    output: MessageDescriptor,
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.output.clone())
    }
}

struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        let mut message = DynamicMessage::new(self.0.clone());
        message.merge(buf).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_found_by_any_usual_spelling_and_list_every_service() {
        for name in ["eventdata.v1.EventService/GetEvent", "EventService/GetEvent", "EventService.GetEvent"] {
            assert_eq!(find_method(name).expect(name).full_name(), "eventdata.v1.EventService.GetEvent");
        }
        assert!(find_method("EventService/Nope").is_err());
        assert!(find_method("GetEvent").is_err());
        let listed = methods().expect("methods");
        assert!(listed.iter().any(|l| l.starts_with("eventdata.v1.ChangeFeedService/WatchChanges")));
    }

    #[test]
    fn requests_parse_from_canonical_json_and_refuse_unknown_fields() {
        let method = find_method("EventService/CreateEvent").expect("method");
        let message =
            request(&method, r#"{"event": {"name": "RustConf", "startTime": "2026-09-08T09:00:00Z"}}"#).expect("valid");
        let typed = crate::proto::v1::CreateEventRequest::decode(message.encode_to_vec().as_slice()).expect("decode");
        let event = typed.event.expect("event");
        assert_eq!(event.name, "RustConf");
        assert_eq!(event.start_time.expect("start").seconds, 1_788_858_000);
        assert!(request(&method, r#"{"event": {"nmae": "typo"}}"#).is_err());
        assert!(request(&method, "{} trailing").is_err());
    }
}
