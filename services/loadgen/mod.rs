//! `eventdata loadgen`: drives a running service with real tonic clients for a fixed time and reports
//! throughput, latency percentiles (HDR histogram, microsecond resolution) and errors by status code.
//!
//! Each of the `concurrency` workers has its own HTTP/2 connection and issues one call at a time (a closed
//! loop, like a pool of synchronous callers), so throughput × latency ≈ concurrency and the latencies are those
//! a caller sees. Ids to read are sampled from the organization through the API before the clock starts.

mod workload;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tonic::transport::{Channel, Endpoint};

pub use workload::{BATCH_CREATE_SIZE, WORDS as TEXT_WORDS, Workload};
use workload::{Clients, Sample};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The service's gRPC URL, e.g. `http://127.0.0.1:50051`.
    pub url: String,
    /// API key (read,write scopes for `create` and `mixed`).
    pub key: String,
    pub workload: Workload,
    pub concurrency: usize,
    pub duration: Duration,
}

/// The outcome of a run.
pub struct LoadReport {
    pub workload: Workload,
    pub concurrency: usize,
    pub elapsed: Duration,
    /// Latencies of successful calls, in microseconds.
    pub latencies: Histogram<u64>,
    /// Failed calls by gRPC code name.
    pub errors: BTreeMap<String, u64>,
}

impl LoadReport {
    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Latency at `quantile` (0..1) in milliseconds.
    pub fn millis(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// A human-readable summary and one `RESULT key=value ...` line for scripts.
    pub fn render(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors.iter().map(|(code, n)| format!("{code}:{n}")).collect::<Vec<_>>().join(",")
        };
        let (name, clients, calls, rps) =
            (self.workload.name(), self.concurrency, self.latencies.len(), self.throughput());
        let (p50, p95, p99) = (self.millis(0.50), self.millis(0.95), self.millis(0.99));
        let max = self.latencies.max() as f64 / 1000.0;
        let items = rps * self.workload.items_per_call() as f64;
        format!(
            "workload {name} with {clients} clients for {:.1} s: {calls} ok calls, {rps:.1}/s ({items:.1} items/s)\n\
             latency ms: p50 {p50:.2}  p95 {p95:.2}  p99 {p99:.2}  max {max:.2}\n\
             errors: {errors}\n\
             RESULT workload={name} concurrency={clients} calls={calls} rps={rps:.1} p50_ms={p50:.2} p95_ms={p95:.2} \
             p99_ms={p99:.2} max_ms={max:.2} items_per_s={items:.1} errors={errors}",
            self.elapsed.as_secs_f64(),
        )
    }
}

/// A histogram for 1 µs .. 60 s with three significant digits.
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")
}

async fn connect(url: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// Runs the workload and returns the merged report.
pub async fn run(options: &LoadOptions) -> anyhow::Result<LoadReport> {
    if options.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let setup = Clients::new(connect(&options.url).await?, &options.key)?;
    let sample = std::sync::Arc::new(Sample::collect(&setup, options.workload).await?);
    let mut workers = Vec::with_capacity(options.concurrency);
    let mut channels = Vec::with_capacity(options.concurrency);
    for _ in 0..options.concurrency {
        channels.push(connect(&options.url).await?);
    }
    let started = Instant::now();
    let deadline = started + options.duration;
    for (worker, channel) in channels.into_iter().enumerate() {
        let clients = Clients::new(channel, &options.key)?;
        let sample = sample.clone();
        let workload = options.workload;
        workers.push(tokio::spawn(async move {
            let mut latencies = histogram()?;
            let mut errors = BTreeMap::<String, u64>::new();
            let mut call = worker as u64 * 1_000_003;
            while Instant::now() < deadline {
                call += 1;
                let began = Instant::now();
                match workload.call(&clients, &sample, call).await {
                    Ok(()) => latencies.saturating_record(began.elapsed().as_micros().max(1) as u64),
                    Err(status) => *errors.entry(format!("{:?}", status.code())).or_default() += 1,
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut latencies = histogram()?;
    let mut errors = BTreeMap::new();
    for worker in workers {
        let (worker_latencies, worker_errors) = worker.await??;
        latencies.add(&worker_latencies).context("merging histograms")?;
        for (code, n) in worker_errors {
            *errors.entry(code).or_default() += n;
        }
    }
    Ok(LoadReport {
        workload: options.workload,
        concurrency: options.concurrency,
        elapsed: started.elapsed(),
        latencies,
        errors,
    })
}
