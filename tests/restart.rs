//! PostgreSQL restarted under load: calls during the outage fail fast with UNAVAILABLE, the service recovers by
//! itself within seconds, and no partial write exists (every event's changes match its version, and no change lacks
//! its data). A test binary of its own: cargo runs test binaries one after another, so no other test needs the
//! database while it restarts.

#[path = "integration/common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use tonic::Code;

use crate::common::{TestApp, cluster_version, eventually};

fn pg_ctlcluster(action: &str) -> bool {
    std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &cluster_version(), "main", action])
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts the cluster again even if the test fails half-way.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        pg_ctlcluster("start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_nothing_and_recovers() {
    let app = TestApp::start().await;
    let mut events = Vec::new();
    for i in 0..8 {
        events.push(
            EventServiceClient::new(app.rw())
                .create_event(pb::CreateEventRequest {
                    event: Some(pb::Event { name: "Load".into(), slug: format!("load-{i}"), ..Default::default() }),
                    request_id: String::new(),
                })
                .await
                .expect("seed event")
                .into_inner(),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(w, event)| {
            let (channel, id, stop, ok) = (app.rw(), event.id.clone(), Arc::clone(&stop), Arc::clone(&ok));
            tokio::spawn(async move {
                let mut client = EventServiceClient::new(channel);
                let mut failures = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let result = if n % 2 == 0 {
                        client
                            .update_event(pb::UpdateEventRequest {
                                event: Some(pb::Event {
                                    id: id.clone(),
                                    name: format!("w{w}-{n}"),
                                    ..Default::default()
                                }),
                                update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
                            })
                            .await
                            .map(|_| ())
                    } else {
                        client
                            .create_event(pb::CreateEventRequest {
                                event: Some(pb::Event {
                                    name: "New".into(),
                                    slug: format!("w{w}-n{n}"),
                                    ..Default::default()
                                }),
                                request_id: String::new(),
                            })
                            .await
                            .map(|_| ())
                    };
                    match result {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(status) => {
                            failures.push((status.code(), status.message().to_owned()));
                            tokio::time::sleep(Duration::from_millis(20)).await; // pace retries while the database is away
                        }
                    }
                }
                failures
            })
        })
        .collect();

    eventually(Duration::from_secs(30), "load to be running", || {
        let ok = Arc::clone(&ok);
        async move { ok.load(Ordering::Relaxed) >= 200 }
    })
    .await;
    let restore = Restore;
    assert!(pg_ctlcluster("restart"), "pg_ctlcluster restart");
    let restarted = Instant::now();
    let after = ok.load(Ordering::Relaxed);
    eventually(Duration::from_secs(30), "calls to succeed again", || {
        let ok = Arc::clone(&ok);
        async move { ok.load(Ordering::Relaxed) >= after + 50 }
    })
    .await;
    println!("recovered {:?} after the restart finished", restarted.elapsed());
    stop.store(true, Ordering::Relaxed);
    drop(restore);

    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.expect("worker"));
    }
    println!("{} failed calls during the outage", failures.len());
    for (code, message) in &failures {
        assert_eq!(*code, Code::Unavailable, "only UNAVAILABLE while the database is away: {message}");
    }

    crate::common::assert_outbox_matches_data(&app.db, app.org).await;
}
