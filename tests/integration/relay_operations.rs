//! What the relay tells operators: unroutable changes are counted and logged rarely, without their bodies;
//! `relay status` reports a partition active only when a relay of *this* database holds it.

use std::process::Stdio;
use std::time::Duration;

use eventdata::outbox::log::{self, RELAY_LOCK_SPACE};
use sqlx::Connection;
use tokio::io::AsyncReadExt;

use crate::broker::{BROKER, relay_env, relay_settings, test_exchange};
use crate::common::{TestApp, TestDb, eventually};
use crate::fixtures::create_event;

#[tokio::test]
async fn unroutable_changes_are_logged_rarely_and_never_with_their_body() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    // An exchange no queue is bound to: the broker returns every change.
    let settings = relay_settings(&app.db, &test_exchange());
    let mut relay = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventdata"))
        .arg("relay")
        .envs(relay_env(&settings))
        .env("RUST_LOG", "info")
        .kill_on_drop(true)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn relay");
    const CHANGES: usize = 200;
    for i in 0..CHANGES {
        create_event(app.rw(), "Confidential Summit", &format!("secret-{i}")).await;
    }
    let relay_db = sqlx::PgPool::connect(&settings.database_url).await.expect("relay pool");
    eventually(Duration::from_secs(60), "every change confirmed", || {
        let relay_db = relay_db.clone();
        async move {
            let mut conn = relay_db.acquire().await.expect("connection");
            log::status(&mut conn, 1).await.expect("status")[0].backlog == 0
        }
    })
    .await;
    relay.start_kill().expect("stop relay");
    let mut stderr = String::new();
    relay.stderr.take().expect("stderr").read_to_string(&mut stderr).await.expect("read stderr");
    assert!(!stderr.contains("Confidential") && !stderr.contains("secret-"), "a body reached the log:\n{stderr}");
    let unroutable = stderr.lines().filter(|l| l.contains("unroutable")).count();
    assert!((1..=2).contains(&unroutable), "{CHANGES} returns, {unroutable} lines:\n{stderr}");
    assert!(stderr.len() < 20_000, "the log stays small: {} bytes", stderr.len());
}

/// `eventdata relay status` against `db`, one (partition, active) pair per line.
fn relay_status(db: &TestDb) -> Vec<(String, String)> {
    let settings = relay_settings(db, "unused");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_eventdata"))
        .args(["relay", "status"])
        .envs(relay_env(&settings))
        .output()
        .expect("run relay status");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("partition\tactive\tcheckpoint\tbacklog\toldest_undelivered_s"), "{stdout}");
    lines
        .map(|l| {
            let columns: Vec<&str> = l.split('\t').collect();
            (columns[0].to_owned(), columns[1].to_owned())
        })
        .collect()
}

/// Holds partition 0's relay lock on `db` until dropped, as a running relay does.
async fn hold_partition_lock(db: &TestDb) -> sqlx::PgConnection {
    let mut conn = sqlx::PgConnection::connect(&relay_settings(db, "unused").database_url).await.expect("connect");
    assert!(log::try_claim(&mut conn, 0).await.expect("claim"), "partition 0 is free");
    conn
}

#[tokio::test]
async fn relay_status_sees_only_this_databases_relays() {
    let (ours, theirs) = (TestDb::migrated().await, TestDb::migrated().await);
    assert_eq!(relay_status(&ours), vec![("0".to_owned(), "false".to_owned())]);
    let their_relay = hold_partition_lock(&theirs).await;
    assert_eq!(
        relay_status(&ours),
        vec![("0".to_owned(), "false".to_owned())],
        "a relay of another database on the same server holds the same key (space {RELAY_LOCK_SPACE:#x}, 0)"
    );
    let our_relay = hold_partition_lock(&ours).await;
    assert_eq!(relay_status(&ours), vec![("0".to_owned(), "true".to_owned())]);
    drop((their_relay, our_relay));
}
