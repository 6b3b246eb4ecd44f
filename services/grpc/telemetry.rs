//! A tower layer around every gRPC call: one server span per RPC with OpenTelemetry semantic conventions
//! (`rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), continuing the caller's W3C trace
//! context; the trace id echoed as `x-trace-id`; and the RPC metrics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::trace::TraceContextExt;
use tokio::sync::Semaphore;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::{ApiMetrics, RpcLabels};
use crate::telemetry::HeaderExtractor;

/// Adds [`RpcTelemetry`] to a service.
#[derive(Clone)]
pub struct RpcTelemetryLayer {
    metrics: ApiMetrics,
    slots: Arc<Semaphore>,
}

impl RpcTelemetryLayer {
    /// Measures into `metrics` and admits at most `max_concurrent` calls at once; more are shed at once with
    /// RESOURCE_EXHAUSTED and a retry delay, instead of queueing without bound.
    pub fn new(metrics: ApiMetrics, max_concurrent: usize) -> Self {
        Self { metrics, slots: Arc::new(Semaphore::new(max_concurrent)) }
    }
}

impl<S> tower::Layer<S> for RpcTelemetryLayer {
    type Service = RpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTelemetry { inner, metrics: self.metrics.clone(), slots: Arc::clone(&self.slots) }
    }
}

/// The telemetry wrapper of one service.
#[derive(Clone)]
pub struct RpcTelemetry<S> {
    inner: S,
    metrics: ApiMetrics,
    slots: Arc<Semaphore>,
}

/// How long a shed caller is told to wait before retrying.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// gRPC status code names, by number.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl<S, B, R> tower::Service<http::Request<B>> for RpcTelemetry<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is the one that is ready; keep it for this call (tower's ready-service contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let slot = Arc::clone(&self.slots).try_acquire_owned();
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let (service, method) =
            path.split_once('/').map(|(s, m)| (s.to_owned(), m.to_owned())).unwrap_or((path.clone(), String::new()));
        let span = tracing::info_span!(
            "rpc",
            otel.name = %path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            enduser.id = tracing::field::Empty,
            eventdata.org_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
        let _ = span.set_parent(parent);
        // Recorded on the span so every log line inside the call (JSON logs) carries them.
        let otel = span.context().span().span_context().clone();
        let trace_id = otel.is_valid().then(|| otel.trace_id().to_string());
        if let Some(id) = &trace_id {
            span.record("trace_id", id.as_str());
            span.record("span_id", otel.span_id().to_string());
        }
        Box::pin(async move {
            let started = Instant::now();
            let result = match slot {
                Ok(_slot) => {
                    metrics.rpc_in_flight.inc();
                    let result = inner.call(request).instrument(span.clone()).await;
                    metrics.rpc_in_flight.dec();
                    result
                }
                Err(_) => Ok(overloaded()),
            };
            let code = match &result {
                // Errors travel as "trailers-only" responses: grpc-status is in the headers. Otherwise it is OK
                // (the status of a stream that fails later is in its trailers, which this layer does not see).
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0),
                Err(_) => 2,
            };
            span.record("rpc.grpc.status_code", code as i64);
            if code != 0 {
                span.record("otel.status_code", "ERROR");
            }
            let labels = RpcLabels { service, method, code: CODES.get(code).copied().unwrap_or("UNKNOWN").to_owned() };
            metrics.rpc_requests.get_or_create(&labels).inc();
            metrics.rpc_duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
            result.map(|mut response| {
                if let Some(id) = trace_id.and_then(|id| http::HeaderValue::from_str(&id).ok()) {
                    response.headers_mut().insert("x-trace-id", id);
                }
                response
            })
        })
    }
}

/// The answer to a call beyond the concurrency limit: RESOURCE_EXHAUSTED with google.rpc.RetryInfo.
fn overloaded<R: Default>() -> http::Response<R> {
    use tonic_types::{ErrorDetails, StatusExt};
    let mut details = ErrorDetails::with_retry_info(Some(RETRY_AFTER));
    details.set_error_info("OVERLOADED", crate::grpc::status::ERROR_DOMAIN, std::collections::HashMap::new());
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        "the service is at its concurrency limit; retry shortly",
        details,
    )
    .into_http()
}
