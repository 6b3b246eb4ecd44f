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
