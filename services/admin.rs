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
    /// The database monitor's latest verdict.
    pub ready: watch::Receiver<bool>,
    /// Bound on one `/health/db` probe.
    pub probe_timeout: Duration,
}

/// `GET /health/live`, `GET /health/ready`, `GET /health/db`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health/db", get(database))
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
            "idle": state.pool.num_idle(),
            "max": state.pool.options().get_max_connections(),
        },
    });
    (code, Json(body))
}
