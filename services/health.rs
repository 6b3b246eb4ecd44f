//! Database health: a background probe whose verdict drives `grpc.health.v1` and `/health/ready`.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// What one probe of the database found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbProbe {
    /// Whether a query round trip succeeded.
    pub reachable: bool,
    /// How long the probe took, in milliseconds.
    pub latency_ms: f64,
    /// The highest applied migration, when reachable.
    pub migration_version: Option<i64>,
}

/// Runs one probe: a pooled connection and a query, bounded by `timeout`.
pub async fn probe(pool: &PgPool, timeout: Duration) -> DbProbe {
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, crate::db::current_migration_version(pool)).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(Ok(migration_version)) => DbProbe { reachable: true, latency_ms, migration_version },
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "database probe failed");
            DbProbe { reachable: false, latency_ms, migration_version: None }
        }
        Err(_) => {
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "database probe timed out");
            DbProbe { reachable: false, latency_ms, migration_version: None }
        }
    }
}

/// Probes the database every `interval` until `shutdown` fires, publishing readiness on `ready` and to the gRPC
/// health service for the overall server ("") and for each name in `services`.
pub async fn monitor(
    pool: PgPool,
    interval: Duration,
    reporter: HealthReporter,
    services: Vec<&'static str>,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let timeout = interval.max(Duration::from_millis(500));
    loop {
        let healthy = probe(&pool, timeout).await.reachable;
        if ready.send_replace(healthy) != healthy {
            if healthy {
                tracing::info!("database reachable: serving");
            } else {
                tracing::warn!("database unreachable: not serving");
            }
        }
        let status = if healthy { ServingStatus::Serving } else { ServingStatus::NotServing };
        for service in std::iter::once("").chain(services.iter().copied()) {
            reporter.set_service_status(service, status).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}
