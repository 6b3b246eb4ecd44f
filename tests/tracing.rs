//! One trace from the caller to the consumer: a CreateEvent call made with a `traceparent` produces a server span
//! continuing it, SQL spans below it, and a relay publish span in the same trace, and the message consumed from
//! RabbitMQ carries that trace. Spans are received by an OTLP collector started inside the test. This is a test
//! binary of its own because it installs the process-wide tracing subscriber.

#[path = "integration/broker.rs"]
mod broker;
#[path = "integration/common.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventdata::proto::v1 as pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use pb::event_service_client::EventServiceClient;
use tokio::sync::watch;

use crate::broker::{BROKER, BoundQueue, relay_settings, test_exchange};
use crate::common::{TestApp, eventually};

/// Keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().expect("collector lock");
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Collector {
    fn spans(&self) -> Vec<Span> {
        self.0.lock().expect("collector lock").clone()
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).map(|v| match &v.value {
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s.clone(),
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_is_one_trace_from_caller_to_consumer() {
    let _broker = BROKER.read().await;
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind collector");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let telemetry = eventdata::telemetry::init(&eventdata::config::TelemetrySettings {
        otlp_endpoint: Some(endpoint),
        service_name: "eventdata-test".into(),
        json_logs: false,
    })
    .expect("telemetry");

    let app = TestApp::start().await;
    let exchange = test_exchange();
    let mut queue = BoundQueue::bind(&exchange).await;
    let relay = eventdata::outbox::relay::Relay::new(relay_settings(&app.db, &exchange));
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(relay.run(stopped));

    let mut request = tonic::Request::new(pb::CreateEventRequest {
        event: Some(pb::Event { name: "Traced".into(), slug: "traced".into(), ..Default::default() }),
        request_id: String::new(),
    });
    request.metadata_mut().insert("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN}-01").parse().expect("ascii"));
    let response = EventServiceClient::new(app.rw()).create_event(request).await.expect("create");
    assert_eq!(response.metadata().get("x-trace-id").and_then(|v| v.to_str().ok()), Some(TRACE_ID), "x-trace-id");

    queue.receive_until(Duration::from_secs(30), "the change", |r| !r.is_empty()).await;
    let traceparent = queue.received[0].headers.get("traceparent").cloned().unwrap_or_default();
    assert!(traceparent.starts_with(&format!("00-{TRACE_ID}-")), "the consumer continues the trace: {traceparent}");

    eventually(Duration::from_secs(20), "the server, SQL and publish spans", || {
        telemetry.flush();
        let spans = collector.spans();
        async move {
            let in_trace = |s: &&Span| hex::encode(&s.trace_id) == TRACE_ID;
            spans.iter().filter(in_trace).any(|s| s.name.ends_with(" publish"))
                && spans.iter().filter(in_trace).any(|s| s.name.starts_with("INSERT events + outbox"))
        }
    })
    .await;
    let spans: Vec<Span> = collector.spans().into_iter().filter(|s| hex::encode(&s.trace_id) == TRACE_ID).collect();
    let server = spans.iter().find(|s| s.name == "eventdata.v1.EventService/CreateEvent").expect("server span");
    assert_eq!(hex::encode(&server.parent_span_id), PARENT_SPAN, "the server span continues the caller's span");
    assert_eq!(attribute(server, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(attribute(server, "rpc.service").as_deref(), Some("eventdata.v1.EventService"));
    assert_eq!(attribute(server, "rpc.method").as_deref(), Some("CreateEvent"));
    assert_eq!(attribute(server, "rpc.grpc.status_code").as_deref(), Some("0"));
    assert_eq!(attribute(server, "eventdata.org_id"), Some(app.org.to_string()));

    let by_id = |id: &[u8]| spans.iter().find(|s| s.span_id == id);
    let descends_from_server = |span: &Span| {
        let mut parent = span.parent_span_id.clone();
        while let Some(p) = by_id(&parent) {
            if p.span_id == server.span_id {
                return true;
            }
            parent = p.parent_span_id.clone();
        }
        false
    };
    let sql: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            attribute(s, "db.system").as_deref() == Some("postgresql") && attribute(s, "db.operation").is_some()
        })
        .collect();
    assert!(sql.len() >= 2, "SQL spans: {:?}", sql.iter().map(|s| &s.name).collect::<Vec<_>>());
    assert!(sql.iter().all(|s| descends_from_server(s)), "SQL spans are descendants of the server span");
    assert!(
        sql.iter().all(|s| !s.attributes.iter().any(|a| a.key.contains("statement") || a.key.contains("param"))),
        "no statements or parameters recorded"
    );
    let publish = spans.iter().find(|s| s.name.ends_with(" publish")).expect("publish span");
    assert_eq!(attribute(publish, "messaging.system").as_deref(), Some("rabbitmq"));
    assert!(traceparent.contains(&hex::encode(&publish.span_id)), "the message's traceparent is the publish span");
    telemetry.shutdown();
}
