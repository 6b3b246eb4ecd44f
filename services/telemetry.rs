//! Logging and tracing, set up once per process: `tracing` events to stderr (human or JSON), and spans to an
//! OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. W3C trace context is the propagation format.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::TelemetrySettings;

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes the spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports every finished span now (a no-op without an exporter).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(err) = provider.force_flush()
        {
            tracing::warn!(error = %err, "flushing spans failed");
        }
    }

    /// Flushes and stops the span exporter (a no-op without one).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {err}");
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` filters (default `info`). Call once, from `main`.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // lapin logs every returned (unroutable) message at WARN with its headers and body: catalogue data does not
    // belong in logs, and with no queue bound that is a line per change. The relay reports returns itself
    // (outbox::unroutable), so the library's line is off whatever RUST_LOG says.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("lapin::returned_messages=error".parse()?);
    let fmt_layer = if settings.json_logs {
        tracing_subscriber::fmt::layer().json().with_current_span(true).with_span_list(false).boxed()
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).boxed()
    };

    let provider = match &settings.otlp_endpoint {
        None => None,
        Some(endpoint) => {
            let exporter =
                opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build()?;
            // The SDK honours OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: parent-based, always on).
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(Resource::builder().with_service_name(settings.service_name.clone()).build())
                    .build(),
            )
        }
    };
    let otel_layer = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("eventdata")));

    tracing_subscriber::registry().with(filter).with(fmt_layer).with(otel_layer).try_init()?;
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    Ok(Telemetry { provider })
}

/// Reads W3C trace context from HTTP/2 headers (gRPC metadata).
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The W3C `traceparent` and `tracestate` of the current span, when OpenTelemetry is recording it.
pub fn current_trace_headers() -> (Option<String>, Option<String>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let mut headers = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut headers));
    (headers.remove("traceparent"), headers.remove("tracestate").filter(|s| !s.is_empty()))
}

/// An OpenTelemetry context whose remote parent is the given W3C trace context.
pub fn context_from_headers(traceparent: &str, tracestate: Option<&str>) -> opentelemetry::Context {
    let mut headers = std::collections::HashMap::new();
    headers.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(state) = tracestate {
        headers.insert("tracestate".to_owned(), state.to_owned());
    }
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&headers))
}
