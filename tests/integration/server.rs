//! The service starts in-process, reports health over gRPC and HTTP, and offers reflection.

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::common::{TestDb, TestServer, eventually, http_get, test_config};

async fn serving_status(server: &TestServer) -> ServingStatus {
    let mut client = HealthClient::new(server.channel().await);
    let response = client.check(HealthCheckRequest { service: String::new() }).await.expect("health check");
    response.into_inner().status()
}

#[tokio::test]
async fn healthy_server_reports_serving_and_lists_services() {
    let db = TestDb::migrated().await;
    let server = TestServer::start(test_config(db.settings())).await;
    eventually(Duration::from_secs(10), "SERVING", || async {
        serving_status(&server).await == ServingStatus::Serving
    })
    .await;

    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        reflection.server_reflection_info(tokio_stream::iter([request])).await.expect("reflection").into_inner();
    let response = responses.next().await.expect("one response").expect("reflection answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]
        .into_iter()
        .chain(eventdata::startup::SERVICE_NAMES.iter().copied())
    {
        assert!(names.iter().any(|n| n == expected), "{expected} not listed in {names:?}");
    }

    let (status, body) = http_get(server.http_addr, "/health/db").await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["database"]["reachable"], true);
    let newest = eventdata::db::MIGRATOR.iter().map(|m| m.version).max();
    assert_eq!(body["database"]["migration_version"].as_i64(), newest);
    assert!(body["database"]["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(body["pool"]["max"].as_u64().is_some_and(|max| max == 10));
    assert!(body["pool"]["size"].is_u64() && body["pool"]["idle"].is_u64());

    assert_eq!(http_get(server.http_addr, "/health/live").await.0, 200);
    assert_eq!(http_get(server.http_addr, "/health/ready").await.0, 200);
}

#[tokio::test]
async fn unreachable_database_gives_503_and_not_serving() {
    // A port nothing listens on: bind one, then release it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let db = TestDb::migrated().await;
    let mut settings = db.settings();
    settings.url = format!("postgres://eventdata_app@127.0.0.1:{closed}/nowhere");
    settings.acquire_timeout = Duration::from_millis(300);
    let server = TestServer::start(test_config(settings)).await;

    let (status, body) = http_get(server.http_addr, "/health/db").await;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["database"]["reachable"], false);
    assert_eq!(http_get(server.http_addr, "/health/live").await.0, 200, "liveness does not depend on the database");
    assert_eq!(http_get(server.http_addr, "/health/ready").await.0, 503);
    eventually(Duration::from_secs(10), "NOT_SERVING", || async {
        serving_status(&server).await == ServingStatus::NotServing
    })
    .await;
}

#[tokio::test]
async fn health_follows_the_database_and_watch_reports_it() {
    let db = TestDb::migrated().await;
    let proxy = crate::common::TcpProxy::start("127.0.0.1:5432").await;
    let mut settings = db.settings();
    settings.url = format!("postgres://eventdata_app@{}/{}", proxy.addr, db.name);
    settings.acquire_timeout = Duration::from_millis(500);
    let server = TestServer::start(test_config(settings)).await;
    let mut watch = HealthClient::new(server.channel().await)
        .watch(HealthCheckRequest { service: "eventdata.v1.EventService".into() })
        .await
        .expect("watch")
        .into_inner();
    let mut next_status = async || {
        let message = tokio::time::timeout(Duration::from_secs(15), watch.next()).await.expect("a status in time");
        message.expect("stream open").expect("status").status()
    };
    let mut status = next_status().await;
    while status != ServingStatus::Serving {
        status = next_status().await;
    }
    proxy.set_up(false);
    while status != ServingStatus::NotServing {
        status = next_status().await;
    }
    assert_eq!(http_get(server.http_addr, "/health/ready").await.0, 503);
    assert_eq!(http_get(server.http_addr, "/health/live").await.0, 200);
    proxy.set_up(true);
    while status != ServingStatus::Serving {
        status = next_status().await;
    }
    eventually(Duration::from_secs(10), "ready again", || async {
        http_get(server.http_addr, "/health/ready").await.0 == 200
    })
    .await;
}

#[tokio::test]
async fn metrics_parse_and_count_calls() {
    use eventdata::proto::v1 as pb;
    let app = crate::common::TestApp::start().await;
    let mut events = pb::event_service_client::EventServiceClient::new(app.rw());
    for _ in 0..3 {
        events
            .get_event(pb::GetEventRequest { id: "01900000-0000-7000-8000-000000000000".into() })
            .await
            .expect_err("missing");
    }
    crate::fixtures::create_event(app.rw(), "Counted", "counted").await;
    let (status, body) = http_get(app.server.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    let samples = parse_prometheus(&body);
    let get = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let labels =
        |method: &str, code: &str| format!("service=\"eventdata.v1.EventService\",method=\"{method}\",code=\"{code}\"");
    assert_eq!(get(&format!("eventdata_rpc_requests_total{{{}}}", labels("GetEvent", "NOT_FOUND"))), Some(3.0));
    assert_eq!(get(&format!("eventdata_rpc_requests_total{{{}}}", labels("CreateEvent", "OK"))), Some(1.0));
    assert_eq!(get(&format!("eventdata_rpc_duration_seconds_count{{{}}}", labels("GetEvent", "NOT_FOUND"))), Some(3.0));
    assert_eq!(get("eventdata_db_pool_max_connections"), Some(10.0));
    assert!(get("eventdata_db_pool_connections").is_some_and(|n| n >= 1.0));
    assert!(get("eventdata_db_pool_acquire_seconds_count").is_some_and(|n| n >= 4.0));
    assert_eq!(get("eventdata_rpc_in_flight"), Some(0.0));
    assert_eq!(get("eventdata_change_feed_subscribers"), Some(0.0));
}

/// Parses Prometheus text exposition into (series, value), checking every line is well formed.
fn parse_prometheus(body: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            assert!(matches!(words.first(), Some(&"HELP") | Some(&"TYPE") | Some(&"EOF")), "bad comment line {line:?}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(series.starts_with("eventdata_"), "unprefixed metric {series}");
        samples.push((series.to_owned(), value));
    }
    samples
}

#[tokio::test]
async fn start_up_waits_for_a_late_database() {
    let db = TestDb::migrated().await;
    let proxy = crate::common::TcpProxy::start("127.0.0.1:5432").await;
    proxy.set_up(false);
    let url = format!("postgres://eventdata_app@{}/{}", proxy.addr, db.name);
    let waiting = tokio::spawn(async move { eventdata::db::wait_for_database(&url, Duration::from_secs(30)).await });
    eventually(Duration::from_secs(10), "a refused attempt", || async {
        proxy.refused.load(std::sync::atomic::Ordering::Relaxed) >= 1
    })
    .await;
    assert!(!waiting.is_finished(), "still waiting while the database is away");
    proxy.set_up(true);
    waiting.await.expect("task").expect("connected once the database came");
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let err =
        eventdata::db::wait_for_database(&format!("postgres://x@127.0.0.1:{gone}/x"), Duration::from_millis(300)).await;
    assert!(err.is_err(), "gives up after its limit");
}
