//! Prometheus metrics (text exposition on the admin port's `/metrics`). Names follow Prometheus conventions:
//! `eventdata_` prefix, base units, `_total` counters, `_seconds` durations. docs/operations.md lists them with the
//! alert rules we recommend.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an RPC measurement.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// Fully qualified service, e.g. `eventdata.v1.EventService`.
    pub service: String,
    /// Method, e.g. `CreateEvent`.
    pub method: String,
    /// gRPC status code name, e.g. `OK`, `NOT_FOUND`.
    pub code: String,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 0.5 ms .. ~16 s
    exponential_buckets(0.0005, 2.0, 16)
}

/// Labels of a read: which database served it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadLabels {
    /// `replica` or `primary`.
    pub pool: String,
}

/// The API process's metrics.
#[derive(Clone)]
pub struct ApiMetrics {
    registry: Arc<Registry>,
    /// `eventdata_rpc_requests_total{service,method,code}`.
    pub rpc_requests: Family<RpcLabels, Counter>,
    /// `eventdata_rpc_duration_seconds{service,method,code}`.
    pub rpc_duration: Family<RpcLabels, Histogram>,
    /// `eventdata_rpc_in_flight`.
    pub rpc_in_flight: Gauge,
    /// `eventdata_db_reads_total{pool="replica"}`: reads the read replica served.
    pub reads_on_replica: Counter,
    /// `eventdata_db_reads_total{pool="primary"}`: reads the primary served (all of them without a replica).
    pub reads_on_primary: Counter,
    /// `eventdata_db_replica_lag_seconds`: how far the read replica is behind the primary (-1 when it does not
    /// answer); only with `DATABASE_READ_URL`.
    pub replica_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// `eventdata_db_replica_usable`: 1 while reads may go to the replica.
    pub replica_usable: Gauge,
    /// `eventdata_db_pool_connections` (open connections).
    pub pool_size: Gauge,
    /// `eventdata_db_pool_idle_connections`.
    pub pool_idle: Gauge,
    /// `eventdata_db_pool_max_connections`.
    pub pool_max: Gauge,
    /// `eventdata_db_pool_waiting` (requests waiting for a connection).
    pub pool_waiting: Gauge,
    /// `eventdata_db_pool_acquire_seconds`.
    pub pool_acquire: Histogram,
    /// `eventdata_db_searches_waiting` (searches waiting for a turn, `app::search_turns`).
    pub searches_waiting: Gauge,
    /// `eventdata_db_search_turn_wait_seconds` (how long searches that had to wait waited).
    pub search_turn_wait: Histogram,
    /// `eventdata_db_creates_waiting` (single creates waiting for a statement, `app::creates_together`).
    pub creates_waiting: Gauge,
    /// `eventdata_db_creates_per_statement` (single creates that shared a statement).
    pub creates_per_statement: Histogram,
    /// `eventdata_change_feed_subscribers`.
    pub feed_subscribers: Gauge,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("eventdata");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_duration = Family::<RpcLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        let (rpc_in_flight, pool_size, pool_idle, pool_max, pool_waiting, feed_subscribers) = (
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
        );
        let pool_acquire = Histogram::new(latency_buckets());
        let (searches_waiting, search_turn_wait) = (Gauge::default(), Histogram::new(latency_buckets()));
        let reads = Family::<ReadLabels, Counter>::default();
        let replica_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let replica_usable = Gauge::default();
        registry.register("db_reads", "Reads by the database that served them (replica, primary)", reads.clone());
        // The two series made once: a read then costs one atomic add, not a label lookup.
        let reads_on_replica = reads.get_or_create(&ReadLabels { pool: "replica".into() }).clone();
        let reads_on_primary = reads.get_or_create(&ReadLabels { pool: "primary".into() }).clone();
        registry.register(
            "db_replica_lag_seconds",
            "How far the read replica is behind the primary (-1: not answering)",
            replica_lag_seconds.clone(),
        );
        registry.register("db_replica_usable", "1 while reads may go to the read replica", replica_usable.clone());
        registry.register(
            "rpc_requests",
            "gRPC calls handled, by service, method and status code",
            rpc_requests.clone(),
        );
        registry.register("rpc_duration_seconds", "gRPC call latency", rpc_duration.clone());
        registry.register("rpc_in_flight", "gRPC calls being handled now", rpc_in_flight.clone());
        registry.register("db_pool_connections", "Open PostgreSQL connections in the pool", pool_size.clone());
        registry.register("db_pool_idle_connections", "Idle PostgreSQL connections in the pool", pool_idle.clone());
        registry.register("db_pool_max_connections", "Most connections the pool opens", pool_max.clone());
        registry.register("db_pool_waiting", "Requests waiting for a pooled connection", pool_waiting.clone());
        registry.register("db_pool_acquire_seconds", "Time to get a pooled connection", pool_acquire.clone());
        registry.register(
            "db_searches_waiting",
            "Searches waiting for a turn on the database",
            searches_waiting.clone(),
        );
        registry.register(
            "db_search_turn_wait_seconds",
            "Time searches that had to wait waited for a turn",
            search_turn_wait.clone(),
        );
        let creates_waiting = Gauge::default();
        registry.register(
            "db_creates_waiting",
            "Single creates waiting for a statement to share",
            creates_waiting.clone(),
        );
        let creates_per_statement = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 100.0]);
        registry.register(
            "db_creates_per_statement",
            "Single creates that went to the database in one statement",
            creates_per_statement.clone(),
        );
        registry.register("change_feed_subscribers", "Open WatchChanges streams", feed_subscribers.clone());
        Self {
            registry: Arc::new(registry),
            rpc_requests,
            rpc_duration,
            rpc_in_flight,
            reads_on_replica,
            reads_on_primary,
            replica_lag_seconds,
            replica_usable,
            pool_size,
            pool_idle,
            pool_max,
            pool_waiting,
            pool_acquire,
            searches_waiting,
            search_turn_wait,
            creates_waiting,
            creates_per_statement,
            feed_subscribers,
        }
    }
}

impl ApiMetrics {
    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap_or_default();
        out
    }
}

/// The relay process's metrics.
#[derive(Clone)]
pub struct RelayMetrics {
    registry: Arc<Registry>,
    /// `eventdata_relay_published_total`: changes the broker confirmed.
    pub published: Counter,
    /// `eventdata_relay_published_ahead_total`: changes published while the watermark still held them back
    /// (each is also counted in `published` once confirmed).
    pub published_ahead: Counter,
    /// `eventdata_relay_returned_total`: confirmed changes no queue was bound for.
    pub returned: Counter,
    /// `eventdata_relay_failed_total`: changes the broker refused (nacked); each stops the window and rewinds.
    pub failed: Counter,
    /// `eventdata_relay_reconnects_total`: partition restarts after a failure.
    pub reconnects: Counter,
    /// `eventdata_relay_confirm_seconds`: time from publishing a change to its confirm.
    pub confirm: Histogram,
    /// `eventdata_outbox_backlog`: changes not yet published (all partitions).
    pub backlog: Gauge,
    /// `eventdata_outbox_oldest_undelivered_seconds`: age of the oldest unpublished change (the relay lag).
    pub oldest_undelivered: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// `eventdata_relay_active_partitions`: partitions this process publishes.
    pub active_partitions: Gauge,
}

impl Default for RelayMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("eventdata");
        let metrics = Self {
            registry: Arc::new(Registry::default()),
            published: Counter::default(),
            published_ahead: Counter::default(),
            returned: Counter::default(),
            failed: Counter::default(),
            reconnects: Counter::default(),
            confirm: Histogram::new(latency_buckets()),
            backlog: Gauge::default(),
            oldest_undelivered: Gauge::default(),
            active_partitions: Gauge::default(),
        };
        registry.register(
            "relay_published",
            "Changes published and confirmed by the broker",
            metrics.published.clone(),
        );
        registry.register(
            "relay_published_ahead",
            "Changes published while an older transaction was still running (checkpointed once it finished)",
            metrics.published_ahead.clone(),
        );
        registry.register("relay_returned", "Confirmed changes that no queue was bound for", metrics.returned.clone());
        registry.register("relay_failed", "Changes the broker refused (nacked)", metrics.failed.clone());
        registry.register(
            "relay_reconnects",
            "Partition restarts after a broker or database failure",
            metrics.reconnects.clone(),
        );
        registry.register(
            "relay_confirm_seconds",
            "Time from publishing a change to its confirm",
            metrics.confirm.clone(),
        );
        registry.register("outbox_backlog", "Changes not yet published", metrics.backlog.clone());
        registry.register(
            "outbox_oldest_undelivered_seconds",
            "Age of the oldest change not yet published (the relay lag)",
            metrics.oldest_undelivered.clone(),
        );
        registry.register(
            "relay_active_partitions",
            "Partitions this relay process publishes",
            metrics.active_partitions.clone(),
        );
        Self { registry: Arc::new(registry), ..metrics }
    }
}

impl RelayMetrics {
    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap_or_default();
        out
    }
}
