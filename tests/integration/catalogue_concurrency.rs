//! Behaviour under concurrency: keyset pagination with concurrent inserts, optimistic concurrency, idempotent
//! creates under duplicates, and the all-or-nothing data + outbox write.

use std::collections::HashSet;

use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use prost_types::FieldMask;
use tonic::Code;

use crate::common::{TestApp, error_details};
use crate::fixtures::{create_event, new_event, ts};

fn event_at(i: usize, start: i64) -> pb::CreateEventRequest {
    let mut event = new_event(&format!("Event {i}"), &format!("event-{i}"));
    event.start_time = ts(start);
    event.end_time = None;
    pb::CreateEventRequest { event: Some(event), request_id: String::new() }
}

#[tokio::test]
async fn pagination_walks_every_event_once_while_rows_are_inserted() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let mut originals = HashSet::new();
    for chunk in (0..1234).collect::<Vec<usize>>().chunks(500) {
        // Start times collide in groups of 7, so ties are broken by id.
        let requests = chunk.iter().map(|&i| event_at(i, 1_700_000_000 + (i as i64 % 177) * 3600)).collect();
        let created = events
            .batch_create_events(pb::BatchCreateEventsRequest { requests, request_id: String::new() })
            .await
            .expect("batch create")
            .into_inner();
        originals.extend(created.events.into_iter().map(|e| e.id));
    }
    assert_eq!(originals.len(), 1234);

    let writer_channel = app.rw();
    let writer = tokio::spawn(async move {
        let mut client = EventServiceClient::new(writer_channel);
        for i in 0..150usize {
            let start = 1_700_000_000 + ((i * 7919) as i64 % 177) * 3600 + 1;
            client.create_event(event_at(10_000 + i, start)).await.expect("concurrent insert");
        }
    });

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = events
            .list_events(pb::ListEventsRequest { page_size: 100, page_token: token.clone(), ..Default::default() })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.events.len() <= 100);
        seen.extend(page.events.into_iter().map(|e| (e.start_time.map(|t| t.seconds), e.id)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    writer.await.expect("writer");
    let ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    let unique: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event appears twice");
    assert!(originals.iter().all(|id| unique.contains(id)), "every event that existed before the walk was seen");
    assert!(pages >= 13, "pages of at most 100");
    assert!(seen.windows(2).all(|w| (w[0].0, &w[0].1) <= (w[1].0, &w[1].1)), "ordered by start time, then id");
}

#[tokio::test]
async fn page_size_is_clamped_and_tokens_are_bound_to_their_query() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    for i in 0..3 {
        create_event(app.rw(), "E", &format!("e-{i}")).await;
    }
    let page = events
        .list_events(pb::ListEventsRequest { page_size: 2, ..Default::default() })
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.events.len(), 2);
    let other_query = events
        .list_events(pb::ListEventsRequest {
            page_size: 2,
            page_token: page.next_page_token.clone(),
            country: Some("DE".into()),
            ..Default::default()
        })
        .await
        .expect_err("token of another query");
    assert_eq!(other_query.code(), Code::InvalidArgument);
    let big =
        events.list_events(pb::ListEventsRequest { page_size: 100_000, ..Default::default() }).await.expect("clamped");
    assert_eq!(big.get_ref().events.len(), 3);
    let negative =
        events.list_events(pb::ListEventsRequest { page_size: -1, ..Default::default() }).await.expect_err("negative");
    assert_eq!(negative.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn concurrent_updates_with_the_same_etag_let_exactly_one_win() {
    let app = TestApp::start().await;
    let event = create_event(app.rw(), "Conf", "conf").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let channel = app.rw();
        let (id, etag) = (event.id.clone(), event.etag.clone());
        tasks.push(tokio::spawn(async move {
            EventServiceClient::new(channel)
                .update_event(pb::UpdateEventRequest {
                    event: Some(pb::Event { id, etag, name: format!("Writer {i}"), ..Default::default() }),
                    update_mask: Some(FieldMask { paths: vec!["name".into()] }),
                })
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one writer wins");
    let updates = app.changes().await.into_iter().filter(|c| c.0 == "event.updated").count();
    assert_eq!(updates, 1, "and only its change is recorded");
}

#[tokio::test]
async fn idempotent_create_under_twenty_concurrent_duplicates() {
    let app = TestApp::start().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let channel = app.rw();
        let request = pb::CreateEventRequest { event: Some(new_event("Once", "once")), request_id: request_id.clone() };
        tasks.push(tokio::spawn(async move { EventServiceClient::new(channel).create_event(request).await }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.expect("task").expect("every duplicate succeeds").into_inner().id);
    }
    assert_eq!(ids.len(), 1, "all duplicates return the same event");
    let created = app.changes().await.into_iter().filter(|c| c.0 == "event.created").count();
    assert_eq!(created, 1, "one change for the one event");

    let mut different = new_event("Twice", "twice");
    different.city = None;
    let reused = EventServiceClient::new(app.rw())
        .create_event(pb::CreateEventRequest { event: Some(different), request_id: request_id.clone() })
        .await
        .expect_err("same request id, different body");
    assert_eq!(reused.code(), Code::AlreadyExists);
    assert_eq!(error_details(&reused).0, "REQUEST_ID_REUSED");
}

#[tokio::test]
async fn a_failed_outbox_write_leaves_no_data_change() {
    let app = TestApp::start().await;
    let event = create_event(app.rw(), "Conf", "conf").await;
    // A test-only rule that makes the outbox refuse these changes.
    sqlx::query("ALTER TABLE outbox ADD CONSTRAINT test_refuse CHECK (change_type NOT IN ('event.created', 'event.updated', 'event.deleted')) NOT VALID")
        .execute(&app.db.admin)
        .await
        .expect("add test constraint");
    let mut events = EventServiceClient::new(app.rw());
    let failed = events
        .create_event(pb::CreateEventRequest { event: Some(new_event("Lost", "lost")), request_id: String::new() })
        .await
        .expect_err("create cannot write its change");
    assert_eq!(failed.code(), Code::Internal);
    assert_eq!(failed.message(), "internal error", "no detail leaks");
    let failed = events
        .update_event(pb::UpdateEventRequest {
            event: Some(pb::Event { id: event.id.clone(), name: "Changed".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
        })
        .await
        .expect_err("update cannot write its change");
    assert_eq!(failed.code(), Code::Internal);
    events
        .delete_event(pb::DeleteEventRequest { id: event.id.clone(), etag: String::new() })
        .await
        .expect_err("delete");

    let list = events.list_events(pb::ListEventsRequest::default()).await.expect("list").into_inner();
    assert_eq!(list.events.len(), 1, "the failed create left no event");
    assert_eq!(list.events[0].name, "Conf", "the failed update changed nothing, the failed delete deleted nothing");
}

#[tokio::test]
async fn concurrent_upserts_of_one_name_create_one_speaker() {
    let app = TestApp::start().await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let channel = app.rw();
            tokio::spawn(async move {
                let spelling = if i % 2 == 0 { "Grace Hopper" } else { "  grace   HOPPER " };
                pb::speaker_service_client::SpeakerServiceClient::new(channel)
                    .upsert_speaker(pb::UpsertSpeakerRequest {
                        speaker: Some(pb::Speaker {
                            name: spelling.into(),
                            title: Some(format!("t{i}")),
                            ..Default::default()
                        }),
                    })
                    .await
                    .map(|r| r.into_inner())
            })
        })
        .collect();
    let mut created = 0;
    let mut ids = HashSet::new();
    for task in tasks {
        let response = task.await.expect("task").expect("every upsert succeeds");
        created += usize::from(response.created);
        ids.insert(response.speaker.expect("speaker").id);
    }
    assert_eq!((created, ids.len()), (1, 1), "one speaker, created once");
    let listed = pb::speaker_service_client::SpeakerServiceClient::new(app.rw())
        .list_speakers(pb::ListSpeakersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.speakers.len(), 1);
}
