//! What the outbox records: one change per affected resource with the documented payload, none for a no-op or
//! a replay, the actor and the trace context, and what a cascading delete reports.

use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use prost_types::FieldMask;
use uuid::Uuid;

use crate::common::TestApp;
use crate::fixtures::{create_event, create_media, create_speaker, create_topic, new_event};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn changes_carry_resource_actor_and_trace() {
    let app = TestApp::start().await;
    let mut request = tonic::Request::new(pb::CreateEventRequest {
        event: Some(new_event("Conf", "conf")),
        request_id: String::new(),
    });
    request.metadata_mut().insert("traceparent", TRACEPARENT.parse().expect("ascii"));
    request.metadata_mut().insert("tracestate", "vendor=1".parse().expect("ascii"));
    let event = EventServiceClient::new(app.rw()).create_event(request).await.expect("create").into_inner();

    let (change_type, aggregate_id, payload) = app.changes().await.remove(0);
    assert_eq!(change_type, "event.created");
    assert_eq!(aggregate_id.to_string(), event.id);
    assert_eq!(payload["resource"]["id"], event.id.as_str());
    assert_eq!(payload["resource"]["name"], "Conf");
    assert_eq!(payload["resource"]["etag"], event.etag.as_str());
    assert_eq!(payload["resource_type"], "event");
    assert_eq!(payload["resource_id"], event.id.as_str());
    assert_eq!(payload["org_id"], app.org.to_string().as_str());
    assert_eq!(payload["trace"]["traceparent"], TRACEPARENT);
    assert_eq!(payload["trace"]["tracestate"], "vendor=1");

    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    let (actor, traceparent): (Option<Uuid>, Option<String>) =
        sqlx::query_as("SELECT actor_key_id, traceparent FROM outbox").fetch_one(&mut *tx).await.expect("row");
    let key_id: Uuid = sqlx::query_scalar("SELECT id FROM api_keys").fetch_one(&app.db.admin).await.expect("key id");
    assert_eq!(actor, Some(key_id), "the actor is the key that made the change");
    assert_eq!(traceparent.as_deref(), Some(TRACEPARENT));
}

#[tokio::test]
async fn updates_name_changed_fields_and_no_ops_write_nothing() {
    let app = TestApp::start().await;
    let event = create_event(app.rw(), "Conf", "conf").await;
    let mut events = EventServiceClient::new(app.rw());
    let update = |name: &str, city: Option<&str>| pb::UpdateEventRequest {
        event: Some(pb::Event {
            id: event.id.clone(),
            name: name.into(),
            city: city.map(Into::into),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["name".into(), "city".into()] }),
    };
    let changed = events.update_event(update("Conf", Some("Paris"))).await.expect("update").into_inner();
    let same = events.update_event(update("Conf", Some("Paris"))).await.expect("no-op update").into_inner();
    assert_eq!(same.etag, changed.etag, "a no-op keeps the etag");
    let changes = app.changes().await;
    let updates: Vec<_> = changes.iter().filter(|c| c.0 == "event.updated").collect();
    assert_eq!(updates.len(), 1, "the no-op added no change");
    assert_eq!(updates[0].2["changed_fields"], serde_json::json!(["city"]), "only the field that changed");
    assert_eq!(updates[0].2["resource"]["city"], "Paris");
}

#[tokio::test]
async fn deleting_an_event_cascades_and_reports_what_went() {
    let app = TestApp::start().await;
    let event = create_event(app.rw(), "Conf", "conf").await;
    let speaker = create_speaker(app.rw(), "Ada").await;
    let topic = create_topic(app.rw(), "Rust").await;
    let media = create_media(app.rw(), &event.id, "https://x.test/a.png").await;
    let mut events = EventServiceClient::new(app.rw());
    events
        .add_event_speaker(pb::AddEventSpeakerRequest {
            event_speaker: Some(pb::EventSpeaker {
                event_id: event.id.clone(),
                speaker_id: speaker.id.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("add speaker");
    events
        .add_event_topic(pb::AddEventTopicRequest {
            event_topic: Some(pb::EventTopic {
                event_id: event.id.clone(),
                topic_id: topic.id.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("add topic");

    events.delete_event(pb::DeleteEventRequest { id: event.id.clone(), etag: String::new() }).await.expect("delete");

    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    for table in ["media", "event_speakers", "event_topics", "events"] {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(left, 0, "{table} rows of the event are gone");
    }
    let speakers: i64 = sqlx::query_scalar("SELECT count(*) FROM speakers").fetch_one(&mut *tx).await.expect("count");
    assert_eq!(speakers, 1, "the speaker itself stays");
    drop(tx);

    let (change_type, aggregate_id, payload) = app.changes().await.pop().expect("a change");
    assert_eq!((change_type.as_str(), aggregate_id.to_string()), ("event.deleted", event.id.clone()));
    assert_eq!(payload["resource"]["name"], "Conf", "the last state");
    assert_eq!(payload["removed"]["media"], serde_json::json!([media.id]));
    assert_eq!(payload["removed"]["speaker_ids"], serde_json::json!([speaker.id]));
    assert_eq!(payload["removed"]["topic_ids"], serde_json::json!([topic.id]));
    assert_eq!(payload["removed"]["company_ids"], serde_json::json!([]));
}

#[tokio::test]
async fn every_successful_mutation_writes_exactly_its_changes() {
    let app = TestApp::start().await;
    let request_id = Uuid::new_v4().to_string();
    let mut events = EventServiceClient::new(app.rw());
    let create = pb::CreateEventRequest { event: Some(new_event("Conf", "conf")), request_id: request_id.clone() };
    events.create_event(create.clone()).await.expect("create");
    events.create_event(create).await.expect("replay");
    let batch = pb::BatchCreateEventsRequest {
        requests: (0..3)
            .map(|i| pb::CreateEventRequest {
                event: Some(new_event("B", &format!("b-{i}"))),
                request_id: String::new(),
            })
            .collect(),
        request_id: String::new(),
    };
    events.batch_create_events(batch).await.expect("batch");
    let types: Vec<String> = app.changes().await.into_iter().map(|c| c.0).collect();
    assert_eq!(types, vec!["event.created"; 4], "one per created event, none for the replay");
}
