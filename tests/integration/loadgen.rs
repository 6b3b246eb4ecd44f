//! `eventdata loadgen` drives every workload against a real service without an error: its calls name methods by
//! path and skip their responses (`loadgen::workload`), so a wrong path or request would show here as errors by
//! status code, not as a quietly faster benchmark.

use std::process::Command;
use std::time::Duration;

use clap::ValueEnum;
use eventdata::loadgen::{LoadOptions, Workload};

use crate::common::{TestDb, TestServer, test_config};

#[tokio::test]
async fn every_workload_runs_against_a_seeded_organization_without_errors() {
    let db = TestDb::migrated().await;
    let output = Command::new(env!("CARGO_BIN_EXE_eventdata"))
        .args(["seed", "--org", "loadgen", "--events", "300", "--embeddings", "100"])
        .env("RUST_LOG", "warn")
        .env("DATABASE_ADMIN_URL", &db.admin_url)
        .output()
        .expect("run eventdata seed");
    assert!(output.status.success(), "seed failed: {}", String::from_utf8_lossy(&output.stderr));
    let org: uuid::Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = 'loadgen'")
        .fetch_one(&db.admin)
        .await
        .expect("the seeded organization");
    let key = db.create_key(org, &["read", "write"]).await;
    let server = TestServer::start(test_config(db.settings())).await;

    for workload in Workload::value_variants() {
        let options = LoadOptions {
            url: server.grpc_url.clone(),
            key: key.clone(),
            workload: *workload,
            concurrency: 2,
            duration: Duration::from_millis(300),
        };
        let report = eventdata::loadgen::run(&options).await.unwrap_or_else(|e| panic!("{workload:?}: {e:#}"));
        assert!(report.errors.is_empty(), "{workload:?}: {:?}", report.errors);
        assert!(!report.latencies.is_empty(), "{workload:?} made no call");
    }
}
