//! Reads from a real streaming standby (`DATABASE_READ_URL`): a second local cluster made by `scripts/standby.sh`
//! with `pg_basebackup -R`. Read-only calls land on the standby (seen in its `pg_stat_activity`); a read that sends
//! back a write's consistency token always sees that write, under concurrent writes; reads that meet a connection
//! the standby dropped, and every call with the standby stopped, still work (on the primary), from the first one on;
//! once it is back reads return to it. A test binary of its own: it stops and starts the standby, which no other
//! test may be using then.

#[path = "integration/common.rs"]
mod common;
#[path = "integration/fixtures.rs"]
#[allow(dead_code, reason = "the fixtures this test does not need")]
mod fixtures;

use std::time::Duration;

use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use pb::graph_service_client::GraphServiceClient;
use pb::search_service_client::SearchServiceClient;
use prost_types::FieldMask;
use sqlx::PgPool;
use tonic::Request;

use crate::common::{AuthChannel, BearerAuth, TestDb, TestServer, eventually, test_config};
use crate::fixtures::new_event;

const STANDBY_PORT: u16 = 5433;
const TOKEN: &str = "x-eventdata-consistency-token";

fn standby(action: &[&str]) -> bool {
    std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/standby.sh"))
        .args(action)
        .env("EVENTDATA_STANDBY_PORT", STANDBY_PORT.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

fn pg_ctl_standby(action: &str) {
    let version = crate::common::cluster_version();
    let status = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "standby", action, "-m", "fast"])
        .status()
        .expect("pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster standby {action}");
}

/// Sessions of the runtime role on the standby's copy of `database`.
async fn standby_sessions(observer: &PgPool, database: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = 'eventdata_app'")
        .bind(database)
        .fetch_one(observer)
        .await
        .expect("standby sessions")
}

/// `eventdata_db_reads_total{pool}` from the service's metrics.
async fn reads_on(server: &TestServer, pool: &str) -> f64 {
    let text = reqwest_metrics(server).await;
    let prefix = format!("eventdata_db_reads_total{{pool=\"{pool}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}

async fn reqwest_metrics(server: &TestServer) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.http_addr).await.expect("admin port");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").await.expect("request");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("response");
    body
}

/// Every read-only family once; each must answer.
async fn every_read(channel: &AuthChannel, id: &str) {
    let mut events = EventServiceClient::new(channel.clone());
    events.get_event(pb::GetEventRequest { id: id.into() }).await.expect("get");
    events.list_events(pb::ListEventsRequest { page_size: 5, ..Default::default() }).await.expect("list");
    events.batch_get_events(pb::BatchGetEventsRequest { ids: vec![id.into()] }).await.expect("batch get");
    events
        .get_event_context(pb::GetEventContextRequest { id: id.into(), ..Default::default() })
        .await
        .expect("context");
    SearchServiceClient::new(channel.clone())
        .search_events(pb::SearchEventsRequest { query: "replicated".into(), ..Default::default() })
        .await
        .expect("search");
    GraphServiceClient::new(channel.clone())
        .get_neighborhood(pb::GetNeighborhoodRequest {
            start: Some(pb::NodeRef { r#type: pb::NodeType::Event as i32, id: id.into() }),
            depth: 1,
            ..Default::default()
        })
        .await
        .expect("neighborhood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_standby_see_their_writes_and_survive_its_outage() {
    assert!(standby(&[]), "scripts/standby.sh could not make or start the standby");
    let db = TestDb::migrated().await;
    let org = db.create_org("replicated").await;
    let key = db.create_key(org, &["read", "write"]).await;
    let standby_admin = format!("postgres://postgres@127.0.0.1:{STANDBY_PORT}/postgres");
    let observer = PgPool::connect(&standby_admin).await.expect("standby observer");
    // The new database reaches the standby by replication.
    eventually(Duration::from_secs(30), "the test database on the standby", || async {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(&db.name)
            .fetch_one(&observer)
            .await
            .unwrap_or(false)
    })
    .await;

    let mut settings = db.settings();
    settings.read_url = Some(format!("postgres://eventdata_app@127.0.0.1:{STANDBY_PORT}/{}", db.name));
    settings.read_max_lag = Duration::from_secs(5);
    settings.read_token_wait = Duration::from_millis(200);
    let server = TestServer::start(test_config(settings)).await;
    let auth = BearerAuth(Some(format!("Bearer {key}").parse().expect("ascii")));
    let channel: AuthChannel = tonic::service::interceptor::InterceptedService::new(server.channel().await, auth);
    let mut events = EventServiceClient::new(channel.clone());

    // A write answers with a token; reads go to the standby once it is known to be usable.
    let response = events
        .create_event(pb::CreateEventRequest {
            event: Some(new_event("Replicated", "replicated")),
            request_id: String::new(),
        })
        .await
        .expect("create");
    assert!(response.metadata().get(TOKEN).is_some(), "a write carries a consistency token");
    let first = response.into_inner();
    eventually(Duration::from_secs(10), "reads to reach the standby", || {
        let (channel, id) = (channel.clone(), first.id.clone());
        let (server, observer, name) = (&server, &observer, db.name.clone());
        async move {
            every_read(&channel, &id).await;
            reads_on(server, "replica").await > 0.0 && standby_sessions(observer, &name).await > 0
        }
    })
    .await;
    let read = EventServiceClient::new(channel.clone())
        .get_event(pb::GetEventRequest { id: first.id.clone() })
        .await
        .expect("get");
    assert!(read.metadata().get(TOKEN).is_none(), "reads carry no token");

    // Read-your-writes under concurrent writes: every read that sends its write's token sees that write.
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            let mut events = EventServiceClient::new(channel);
            for i in 0..25 {
                let slug = format!("w{writer}-{i}");
                let created = events
                    .create_event(pb::CreateEventRequest {
                        event: Some(new_event("W", &slug)),
                        request_id: String::new(),
                    })
                    .await
                    .expect("create");
                let token = created.metadata().get(TOKEN).expect("token").clone();
                let id = created.into_inner().id;
                let mut get = Request::new(pb::GetEventRequest { id: id.clone() });
                get.metadata_mut().insert(TOKEN, token);
                let seen = events.get_event(get).await.expect("a read with the token finds the new event");
                assert_eq!(seen.into_inner().slug, slug);

                let updated = events
                    .update_event(pb::UpdateEventRequest {
                        event: Some(pb::Event { id: id.clone(), name: format!("W {i} renamed"), ..Default::default() }),
                        update_mask: Some(FieldMask { paths: vec!["name".into()] }),
                    })
                    .await
                    .expect("update");
                let token = updated.metadata().get(TOKEN).expect("token").clone();
                let mut get = Request::new(pb::GetEventRequest { id });
                get.metadata_mut().insert(TOKEN, token);
                let seen = events.get_event(get).await.expect("get with the token").into_inner();
                assert_eq!(seen.name, format!("W {i} renamed"), "the read sees the update it waited for");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    // With the standby's replay paused, a read without a token may be stale (the standby does not have the new
    // event yet), and the same read with the write's token is not: it waits, then goes to the primary.
    sqlx::query("SELECT pg_wal_replay_pause()").execute(&observer).await.expect("pause replay");
    let created = events
        .create_event(pb::CreateEventRequest { event: Some(new_event("Paused", "paused")), request_id: String::new() })
        .await
        .expect("create while the standby is paused");
    let token = created.metadata().get(TOKEN).expect("token").clone();
    let id = created.into_inner().id;
    let stale = events.get_event(pb::GetEventRequest { id: id.clone() }).await.expect_err("not on the paused standby");
    assert_eq!(stale.code(), tonic::Code::NotFound, "without a token the read is the standby's, as stale as it is");
    let mut get = Request::new(pb::GetEventRequest { id: id.clone() });
    get.metadata_mut().insert(TOKEN, token);
    assert_eq!(events.get_event(get).await.expect("with the token").into_inner().slug, "paused");
    sqlx::query("SELECT pg_wal_replay_resume()").execute(&observer).await.expect("resume replay");

    let mut bad = Request::new(pb::GetEventRequest { id: first.id.clone() });
    bad.metadata_mut().insert(TOKEN, "not-a-token".parse().expect("ascii"));
    let refused = events.get_event(bad).await.expect_err("a malformed token is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // The standby drops the service's connections (a restart, a cut): reads that meet a dropped connection run
    // again on the primary, and none fails.
    let concurrent_reads = |channel: AuthChannel, id: String| async move {
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (channel, id) = (channel.clone(), id.clone());
            reads.spawn(async move { every_read(&channel, &id).await });
        }
        while let Some(read) = reads.join_next().await {
            read.expect("every read answers");
        }
    };
    concurrent_reads(channel.clone(), first.id.clone()).await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = 'eventdata_app'",
    )
    .bind(&db.name)
    .execute(&observer)
    .await
    .expect("drop the service's standby connections");
    concurrent_reads(channel.clone(), first.id.clone()).await;

    // The standby stops while the service holds warm connections to it: every call works, on the primary, from
    // the first one on (a read that loses the standby mid-way runs again on the primary).
    let replica_before = reads_on(&server, "replica").await;
    eventually(Duration::from_secs(10), "reads back on the standby", || {
        let (channel, id, server) = (channel.clone(), first.id.clone(), &server);
        async move {
            every_read(&channel, &id).await;
            reads_on(server, "replica").await > replica_before
        }
    })
    .await;
    pg_ctl_standby("stop");
    let (primary_before, replica_before) = (reads_on(&server, "primary").await, reads_on(&server, "replica").await);
    every_read(&channel, &first.id).await;
    assert!(reads_on(&server, "primary").await >= primary_before + 6.0, "the reads ran on the primary");
    assert_eq!(reads_on(&server, "replica").await, replica_before, "no read counts as served by the stopped standby");
    for _ in 0..3 {
        every_read(&channel, &first.id).await;
        EventServiceClient::new(channel.clone())
            .create_event(pb::CreateEventRequest {
                event: Some(new_event("During", &uuid::Uuid::now_v7().to_string())),
                request_id: String::new(),
            })
            .await
            .expect("writes go on");
    }

    // It comes back: reads return to it.
    assert!(standby(&[]), "restart the standby");
    let observer = PgPool::connect(&standby_admin).await.expect("standby observer again");
    let replica_before = reads_on(&server, "replica").await;
    eventually(Duration::from_secs(30), "reads to return to the standby", || {
        let (channel, id, server) = (channel.clone(), first.id.clone(), &server);
        async move {
            every_read(&channel, &id).await;
            reads_on(server, "replica").await > replica_before
        }
    })
    .await;
    assert!(standby_sessions(&observer, &db.name).await > 0, "the service reconnected to the standby");
    drop(server);
    // Left stopped: a running standby replays every write of later tests and benchmarks on this machine's cores.
    pg_ctl_standby("stop");
}
