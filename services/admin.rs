//! The admin HTTP port: liveness, readiness and database health for orchestrators and operators.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::watch;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The runtime pool, probed by `/health/db`.
    pub pool: PgPool,
    /// Its connections kept warm for reads: idle ones count as idle in the pool figures.
    pub warm: crate::warm_connections::WarmConnections,
    /// The database monitor's latest verdict.
    pub ready: watch::Receiver<bool>,
    /// Bound on one `/health/db` probe.
    pub probe_timeout: Duration,
    /// The process's metrics.
    pub metrics: crate::metrics::ApiMetrics,
    /// Change-feed subscriptions (counted at scrape time).
    pub notifier: crate::outbox::feed::CommitNotifier,
}

/// `GET /health/live`, `GET /health/ready`, `GET /health/db`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/db", get(database))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The process is up and answering: 200 whatever the database does.
async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 while the last database probe succeeded, 503 otherwise.
async fn ready(State(state): State<AdminState>) -> (StatusCode, Json<serde_json::Value>) {
    if *state.ready.borrow() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "reason": "database unreachable" })))
    }
}

/// Probes the database now: reachability, latency, pool figures, migration version; 503 when unreachable.
async fn database(State(state): State<AdminState>) -> (StatusCode, Json<serde_json::Value>) {
    let probe = crate::health::probe(&state.pool, state.probe_timeout).await;
    let code = if probe.reachable { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if probe.reachable { "ok" } else { "unavailable" },
        "database": probe,
        "pool": {
            "size": state.pool.size(),
            "idle": idle(&state),
            "max": state.pool.options().get_max_connections(),
        },
    });
    (code, Json(body))
}

/// The pool's idle connections, with those kept warm for reads (the pool counts them as in use; they wait for the
/// next read, as idle ones do).
fn idle(state: &AdminState) -> usize {
    state.pool.num_idle() + state.warm.idle()
}

/// Prometheus text exposition; pool and subscriber gauges are read at scrape time.
async fn metrics(State(state): State<AdminState>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let m = &state.metrics;
    m.pool_size.set(i64::from(state.pool.size()));
    m.pool_idle.set(idle(&state) as i64);
    m.pool_max.set(i64::from(state.pool.options().get_max_connections()));
    m.feed_subscribers.set(state.notifier.subscribers() as i64);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.encode())
}

/// What the relay's admin handlers share.
#[derive(Clone)]
pub struct RelayAdminState {
    /// The relay's metrics.
    pub metrics: crate::metrics::RelayMetrics,
    /// A relay-role pool for the backlog query.
    pub pool: PgPool,
    /// The partition count.
    pub partitions: u32,
}

/// The relay's admin port: `GET /health/live`, `GET /metrics` (backlog and lag are read at scrape time).
pub fn relay_router(state: RelayAdminState) -> Router {
    Router::new().route("/health/live", get(live)).route("/metrics", get(relay_metrics)).with_state(state)
}

async fn relay_metrics(State(state): State<RelayAdminState>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let status = match state.pool.acquire().await {
        Ok(mut conn) => crate::outbox::log::status(&mut conn, state.partitions).await.ok(),
        Err(_) => None,
    };
    if let Some(partitions) = status {
        state.metrics.backlog.set(partitions.iter().map(|p| p.backlog).sum());
        let oldest = partitions.iter().filter_map(|p| p.oldest_age_seconds).fold(0.0, f64::max);
        state.metrics.oldest_undelivered.set(oldest);
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.encode())
}
