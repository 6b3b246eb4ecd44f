//! Two API replicas (`serve` processes) on one database with the same `EVENTDATA_PAGE_TOKEN_SECRET`, as behind a
//! load balancer: a page token or change cursor from one is good on the other, and revoking a key reaches both
//! within the authentication cache's lifetime.

use std::time::Duration;

use eventdata::proto::v1 as pb;
use pb::change_feed_service_client::ChangeFeedServiceClient;
use pb::event_service_client::EventServiceClient;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::common::{AuthChannel, BearerAuth, TestApp, TestServer, eventually, test_config};
use crate::fixtures::create_event;

/// The second replica of `app`, and a channel to it with `key`.
async fn second_replica(app: &TestApp) -> TestServer {
    TestServer::start(test_config(app.db.settings())).await
}

async fn channel_to(server: &TestServer, key: &str) -> AuthChannel {
    let auth = BearerAuth(Some(format!("Bearer {key}").parse().expect("ascii")));
    tonic::service::interceptor::InterceptedService::new(server.channel().await, auth)
}

#[tokio::test]
async fn a_page_token_from_one_replica_continues_on_the_other() {
    let app = TestApp::start().await;
    let other = second_replica(&app).await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(create_event(app.rw(), "E", &format!("e-{i}")).await.id);
    }
    let first = EventServiceClient::new(app.rw())
        .list_events(pb::ListEventsRequest { page_size: 2, ..Default::default() })
        .await
        .expect("page 1 on replica A")
        .into_inner();
    let mut seen: Vec<String> = first.events.into_iter().map(|e| e.id).collect();
    let mut token = first.next_page_token;
    let mut on_b = EventServiceClient::new(channel_to(&other, &app.key).await);
    while !token.is_empty() {
        let page = on_b
            .list_events(pb::ListEventsRequest { page_size: 2, page_token: token, ..Default::default() })
            .await
            .expect("the next page on replica B")
            .into_inner();
        seen.extend(page.events.into_iter().map(|e| e.id));
        token = page.next_page_token;
    }
    let (mut seen_sorted, mut made_sorted) = (seen.clone(), made.clone());
    seen_sorted.sort();
    made_sorted.sort();
    assert_eq!(seen_sorted, made_sorted, "every event once across the two replicas");
}

async fn next_change(stream: &mut tonic::Streaming<pb::Change>) -> Option<Result<pb::Change, tonic::Status>> {
    tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("a change in time")
}

#[tokio::test]
async fn a_change_cursor_from_one_replica_resumes_on_the_other_with_nothing_missed() {
    let app = TestApp::start().await;
    let other = second_replica(&app).await;
    let watch = |channel: AuthChannel, after_cursor: String| async move {
        let start = if after_cursor.is_empty() { pb::watch_changes_request::Start::Beginning as i32 } else { 0 };
        ChangeFeedServiceClient::new(channel)
            .watch_changes(pb::WatchChangesRequest { after_cursor, start, resource_types: vec![] })
            .await
            .expect("watch")
            .into_inner()
    };
    let mut made = Vec::new();
    for i in 0..3 {
        made.push(create_event(app.rw(), "E", &format!("a-{i}")).await.id);
    }
    let mut on_a = watch(app.rw(), String::new()).await;
    let mut cursor = String::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let change = next_change(&mut on_a).await.expect("open").expect("change");
        seen.push(change.resource_id);
        cursor = change.cursor;
    }
    drop(on_a);
    for i in 0..3 {
        made.push(create_event(app.rw(), "E", &format!("b-{i}")).await.id);
    }
    let mut on_b = watch(channel_to(&other, &app.key).await, cursor).await;
    for _ in 0..3 {
        seen.push(next_change(&mut on_b).await.expect("open").expect("change").resource_id);
    }
    assert_eq!(seen, made, "every change once, in order, across the replicas");
}

#[tokio::test]
async fn revoking_a_key_reaches_both_replicas_within_the_cache_lifetime() {
    let app = TestApp::start().await;
    let other = second_replica(&app).await;
    let key = app.db.create_key(app.org, &["read"]).await;
    let list = |channel: AuthChannel| async move {
        EventServiceClient::new(channel).list_events(pb::ListEventsRequest::default()).await
    };
    let (on_a, on_b) = (app.as_key(Some(&key)), channel_to(&other, &key).await);
    list(on_a.clone()).await.expect("valid on A");
    list(on_b.clone()).await.expect("valid on B");
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE secret_hash = $1")
        .bind(eventdata::domain::api_key::hash_secret(&key).to_vec())
        .execute(&app.db.admin)
        .await
        .expect("revoke");
    for (name, channel) in [("A", on_a), ("B", on_b)] {
        // Both replicas cached the key as valid; each drops it once the test's 200 ms lifetime has passed.
        eventually(Duration::from_secs(5), &format!("replica {name} to refuse the key"), || {
            let channel = channel.clone();
            async move { matches!(list(channel).await, Err(s) if s.code() == Code::Unauthenticated) }
        })
        .await;
    }
}

#[tokio::test]
async fn without_a_read_replica_no_call_carries_a_consistency_token() {
    let app = TestApp::start().await;
    let created = EventServiceClient::new(app.rw())
        .create_event(pb::CreateEventRequest {
            event: Some(crate::fixtures::new_event("Single", "single")),
            request_id: String::new(),
        })
        .await
        .expect("create");
    assert!(created.metadata().get("x-eventdata-consistency-token").is_none(), "single-node writes are as before");
}
