//! The gRPC change feed: replay then live follow, resume after a disconnect with no gap and no duplicate, never
//! another organization's changes, nothing skipped when commits come out of order, and the paged audit log.

use std::time::Duration;

use eventdata::proto::v1 as pb;
use pb::change_feed_service_client::ChangeFeedServiceClient;
use pb::watch_changes_request::Start;
use tokio_stream::StreamExt;
use tonic::Streaming;

use crate::common::{AuthChannel, TestApp};
use crate::fixtures::create_event;

async fn watch(channel: AuthChannel, after_cursor: &str, start: Start) -> Streaming<pb::Change> {
    ChangeFeedServiceClient::new(channel)
        .watch_changes(pb::WatchChangesRequest {
            after_cursor: after_cursor.into(),
            start: start as i32,
            resource_types: vec![],
        })
        .await
        .expect("watch")
        .into_inner()
}

async fn next_n(stream: &mut Streaming<pb::Change>, n: usize) -> Vec<pb::Change> {
    let mut out = Vec::new();
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("a change in time");
        out.push(next.expect("stream open").expect("change"));
    }
    out
}

#[tokio::test]
async fn resumes_after_a_disconnect_without_gap_or_duplicate_and_shows_only_our_organization() {
    let app = TestApp::start().await;
    let other_org = app.db.create_org("other").await;
    let theirs = app.as_key(Some(&app.db.create_key(other_org, &["read", "write"]).await));

    let mut stream = watch(app.rw(), "", Start::Beginning).await;
    let mut slugs = Vec::new();
    for i in 0..5 {
        create_event(theirs.clone(), "Theirs", &format!("theirs-{i}")).await;
        slugs.push(create_event(app.rw(), "Ours", &format!("ours-{i}")).await.id);
    }
    let first = next_n(&mut stream, 3).await;
    drop(stream); // the client goes away mid-stream
    for i in 5..8 {
        slugs.push(create_event(app.rw(), "Ours", &format!("ours-{i}")).await.id);
    }
    let mut resumed = watch(app.rw(), &first[2].cursor, Start::Unspecified).await;
    let rest = next_n(&mut resumed, 5).await;

    let seen: Vec<String> = first.iter().chain(&rest).map(|c| c.resource_id.clone()).collect();
    assert_eq!(seen, slugs, "every change once, in order, across the reconnect");
    assert!(first.iter().chain(&rest).all(|c| c.org_id == app.org.to_string()), "only our organization");

    // Live: a change made now arrives on the open stream.
    let live = create_event(app.rw(), "Live", "live").await;
    assert_eq!(next_n(&mut resumed, 1).await[0].resource_id, live.id);
    // Their change made now never appears: the next change the stream shows is our own, made after theirs.
    create_event(theirs.clone(), "Theirs", "theirs-late").await;
    let sentinel = create_event(app.rw(), "Sentinel", "sentinel").await;
    assert_eq!(next_n(&mut resumed, 1).await[0].resource_id, sentinel.id, "nothing of theirs in between");

    // A cursor of ours means nothing to them.
    let refused = ChangeFeedServiceClient::new(theirs)
        .watch_changes(pb::WatchChangesRequest { after_cursor: first[0].cursor.clone(), ..Default::default() })
        .await
        .expect_err("foreign cursor");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn a_late_commit_is_delivered_by_the_feed_too() {
    let app = TestApp::start().await;
    let mut stream = watch(app.rw(), "", Start::Now).await;
    let insert = "INSERT INTO outbox (org_id, aggregate_type, aggregate_id, change_type, payload)
                  VALUES (current_org_id(), 'event', $1, 'event.updated', '{}') RETURNING change_id";
    let mut t1 = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("t1");
    let early: uuid::Uuid =
        sqlx::query_scalar(insert).bind(uuid::Uuid::now_v7()).fetch_one(&mut *t1).await.expect("t1");
    let mut t2 = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("t2");
    let late: uuid::Uuid = sqlx::query_scalar(insert).bind(uuid::Uuid::now_v7()).fetch_one(&mut *t2).await.expect("t2");
    t2.commit().await.expect("t2 first");
    // The log the feed reads holds the committed change back while the older transaction runs (the same
    // watermark serves ListChanges and the stream).
    let visible = ChangeFeedServiceClient::new(app.rw())
        .list_changes(pb::ListChangesRequest { page_size: 10, ..Default::default() })
        .await
        .expect("list")
        .into_inner()
        .changes;
    assert!(visible.is_empty(), "nothing is shown while the older transaction runs: {visible:?}");
    t1.commit().await.expect("t1 last");
    // Had the stream shown the later commit early, it would come first here.
    let ids: Vec<String> = next_n(&mut stream, 2).await.into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![early.to_string(), late.to_string()]);
}

#[tokio::test]
async fn list_changes_pages_and_filters_by_actor_and_resource() {
    let app = TestApp::start().await;
    let second_key = app.db.create_key(app.org, &["read", "write"]).await;
    let mine = create_event(app.rw(), "Mine", "mine").await;
    create_event(app.as_key(Some(&second_key)), "Other actor", "other-actor").await;
    for i in 0..3 {
        create_event(app.rw(), "E", &format!("e-{i}")).await;
    }
    let mut feed = ChangeFeedServiceClient::new(app.rw());
    // The log shows only finished transactions, cluster-wide: wait until other tests' open ones are done.
    crate::common::eventually(Duration::from_secs(30), "the five changes to be visible", || {
        let mut feed = feed.clone();
        async move {
            let page = feed.list_changes(pb::ListChangesRequest { page_size: 10, ..Default::default() }).await;
            page.is_ok_and(|p| p.into_inner().changes.len() == 5)
        }
    })
    .await;
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = feed
            .list_changes(pb::ListChangesRequest { page_size: 2, page_token: token.clone(), ..Default::default() })
            .await
            .expect("page")
            .into_inner();
        all.extend(page.changes);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(all.len(), 5);

    let second_key_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_keys ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.db.admin)
        .await
        .expect("key id");
    let by_actor = feed
        .list_changes(pb::ListChangesRequest { actor_key_id: Some(second_key_id.to_string()), ..Default::default() })
        .await
        .expect("by actor")
        .into_inner();
    assert_eq!(by_actor.changes.len(), 1);
    assert_eq!(by_actor.changes[0].actor_key_id, second_key_id.to_string());
    let by_resource = feed
        .list_changes(pb::ListChangesRequest { resource_id: Some(mine.id.clone()), ..Default::default() })
        .await
        .expect("by resource")
        .into_inner();
    assert_eq!(by_resource.changes.iter().map(|c| c.resource_id.clone()).collect::<Vec<_>>(), vec![mine.id]);
    let bad = feed
        .list_changes(pb::ListChangesRequest { resource_types: vec!["planet".into()], ..Default::default() })
        .await
        .expect_err("unknown type");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}
