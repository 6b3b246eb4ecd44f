//! The API keeps its own contract for inputs at the edges: vectors pgvector cannot compare, topic cycles, unknown
//! enum numbers, field paths in the caller's terms, the validation docs/api.md promises, and violations reported
//! all at once.

use eventdata::proto::v1 as pb;
use pb::company_service_client::CompanyServiceClient;
use pb::embedding_service_client::EmbeddingServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::search_service_client::SearchServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

use crate::common::{TestApp, error_details};
use crate::fixtures::{create_event, create_speaker, create_topic, new_event, ts};

const DIMENSION: usize = eventdata::domain::embedding::DIMENSION;

/// The code, ErrorInfo reason and BadRequest field paths of a failed call.
fn failure<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) -> (Code, String, Vec<String>) {
    let status = result.expect_err(what);
    let (reason, fields) = error_details(&status);
    (status.code(), reason, fields)
}

fn embedding(id: &str, values: Vec<f32>, model: &str) -> pb::SetEmbeddingRequest {
    pb::SetEmbeddingRequest {
        embedding: Some(pb::Embedding {
            resource_type: pb::EmbeddedType::Event as i32,
            resource_id: id.into(),
            values,
            model: model.into(),
        }),
    }
}

fn similar_to(values: Vec<f32>) -> pb::SimilarEventsRequest {
    pb::SimilarEventsRequest {
        query: Some(pb::SimilarityQuery {
            query: Some(pb::similarity_query::Query::Vector(pb::VectorQuery { values })),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn vectors_whose_norm_single_precision_cannot_hold_are_refused() {
    let app = TestApp::start().await;
    let mut embeddings = EmbeddingServiceClient::new(app.rw());
    let mut search = SearchServiceClient::new(app.rw());
    let event = create_event(app.rw(), "Vectors", "vectors").await;
    for (label, value) in [("overflowing", 3e38_f32), ("underflowing", 1e-45_f32)] {
        let set = embeddings.set_embedding(embedding(&event.id, vec![value; DIMENSION], "m")).await;
        let expected = (Code::InvalidArgument, "INVALID_ARGUMENT".to_owned(), vec!["embedding.values".to_owned()]);
        assert_eq!(failure(set, label), expected, "{label} stored vector");
        let query = search.similar_events(similar_to(vec![value; DIMENSION])).await;
        assert_eq!(failure(query, label).2, vec!["query.vector.values"], "{label} query vector");
    }
    let mut unit = vec![0.0_f32; DIMENSION];
    unit[0] = 1.0;
    embeddings.set_embedding(embedding(&event.id, unit.clone(), "m")).await.expect("a unit vector is stored");
    let found = search.similar_events(similar_to(unit)).await.expect("search").into_inner().results;
    assert_eq!(found.len(), 1);
    assert!(found[0].distance.is_finite() && found[0].score.is_finite(), "{:?}", found[0]);
}

async fn set_parent(app: &TestApp, topic: &pb::Topic, parent: &pb::Topic) -> Result<pb::Topic, tonic::Status> {
    let topic = pb::Topic { id: topic.id.clone(), parent_id: Some(parent.id.clone()), ..Default::default() };
    let update_mask = Some(FieldMask { paths: vec!["parent_id".into()] });
    TopicServiceClient::new(app.rw())
        .update_topic(pb::UpdateTopicRequest { topic: Some(topic), update_mask })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn topics_stay_a_tree_also_under_concurrent_updates() {
    let app = TestApp::start().await;
    let (a, b, c) =
        (create_topic(app.rw(), "A").await, create_topic(app.rw(), "B").await, create_topic(app.rw(), "C").await);
    set_parent(&app, &b, &a).await.expect("B under A");
    set_parent(&app, &c, &b).await.expect("C under B");
    for (child, parent) in [(&a, &c), (&a, &b), (&b, &c)] {
        let status = set_parent(&app, child, parent).await.expect_err("a cycle");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.metadata["field"].as_str()), ("TOPIC_CYCLE", "topic.parent_id"));
    }
    assert_eq!(failure(set_parent(&app, &a, &a).await, "own parent").0, Code::InvalidArgument);

    // Two re-parentings that are each fine alone but close a cycle together: at most one may win, every time.
    for round in 0..8 {
        let x = create_topic(app.rw(), &format!("X{round}")).await;
        let y = create_topic(app.rw(), &format!("Y{round}")).await;
        let (first, second) = tokio::join!(set_parent(&app, &x, &y), set_parent(&app, &y, &x));
        assert!(first.is_err() || second.is_err(), "round {round}: both sides of a cycle were accepted");
        for refused in [first, second].into_iter().filter_map(Result::err) {
            assert_eq!(refused.code(), Code::FailedPrecondition, "round {round}: {refused:?}");
        }
    }
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    let cyclic: i64 = sqlx::query_scalar(
        "WITH RECURSIVE walk(start, id, steps) AS (
           SELECT id, parent_id, 1 FROM topics WHERE parent_id IS NOT NULL
           UNION ALL
           SELECT w.start, t.parent_id, w.steps + 1 FROM walk w JOIN topics t ON t.id = w.id
           WHERE t.parent_id IS NOT NULL AND w.steps < 50)
         SELECT count(*) FROM walk WHERE id = start",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("walk");
    assert_eq!(cyclic, 0, "no topic is its own ancestor");
}

#[tokio::test]
async fn unknown_enum_numbers_are_refused_in_every_listing() {
    let app = TestApp::start().await;
    let events = EventServiceClient::new(app.rw())
        .list_events(pb::ListEventsRequest { order_by: 99, ..Default::default() })
        .await;
    let speakers = SpeakerServiceClient::new(app.rw())
        .list_speakers(pb::ListSpeakersRequest { order_by: 99, ..Default::default() })
        .await;
    let companies = CompanyServiceClient::new(app.rw())
        .list_companies(pb::ListCompaniesRequest { order_by: -1, ..Default::default() })
        .await;
    let expected = (Code::InvalidArgument, "INVALID_ARGUMENT".to_owned(), vec!["order_by".to_owned()]);
    assert_eq!(failure(events, "events"), expected, "ListEvents");
    assert_eq!(failure(speakers, "speakers"), expected, "ListSpeakers");
    assert_eq!(failure(companies, "companies"), expected, "ListCompanies");
    let known = EventServiceClient::new(app.rw())
        .list_events(pb::ListEventsRequest { order_by: pb::EventOrder::UpdateTime as i32, ..Default::default() })
        .await;
    assert!(known.is_ok(), "a known order still works: {known:?}");
}

#[tokio::test]
async fn violations_name_the_request_field_with_indexes() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let nul = Some("a\0b".to_owned());
    for (field, request) in [
        ("city", pb::ListEventsRequest { city: nul.clone(), ..Default::default() }),
        ("country", pb::ListEventsRequest { country: nul.clone(), ..Default::default() }),
        ("name_prefix", pb::ListEventsRequest { name_prefix: nul.clone(), ..Default::default() }),
    ] {
        assert_eq!(failure(events.list_events(request).await, field).2, vec![field]);
    }
    let speakers = SpeakerServiceClient::new(app.rw())
        .list_speakers(pb::ListSpeakersRequest { name_prefix: nul.clone(), ..Default::default() })
        .await;
    assert_eq!(failure(speakers, "speaker prefix").2, vec!["name_prefix"]);
    let filter = pb::EventSearchFilter { city: nul.clone(), ..Default::default() };
    let mut unit = vec![0.0_f32; DIMENSION];
    unit[1] = 1.0;
    let mut search = SearchServiceClient::new(app.rw());
    let filtered = pb::SimilarEventsRequest { filter: Some(filter), ..similar_to(unit.clone()) };
    assert_eq!(failure(search.similar_events(filtered).await, "search filter").2, vec!["filter.city"]);

    let event = create_event(app.rw(), "Paths", "paths").await;
    let model = EmbeddingServiceClient::new(app.rw()).set_embedding(embedding(&event.id, unit, "m\0")).await;
    assert_eq!(failure(model, "model").2, vec!["embedding.model"]);

    // A missing relation names both ends in ErrorInfo metadata, never a sentence in `id`.
    let speaker = create_speaker(app.rw(), "Grace Hopper").await;
    let remove = pb::RemoveEventSpeakerRequest { event_id: event.id.clone(), speaker_id: speaker.id.clone() };
    let status = events.remove_event_speaker(remove).await.expect_err("not related");
    assert_eq!(status.code(), Code::NotFound);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.metadata.get("event_id"), Some(&event.id));
    assert_eq!(info.metadata.get("speaker_id"), Some(&speaker.id));
    assert_eq!(info.metadata.get("resource_type").map(String::as_str), Some("event_speaker"));
    assert!(info.metadata.values().all(|v| !v.contains(' ')), "metadata values are ids, not sentences: {info:?}");

    // A duplicate relation: the request's field, and a message about the relation.
    let add = pb::AddEventSpeakerRequest {
        event_speaker: Some(pb::EventSpeaker {
            event_id: event.id.clone(),
            speaker_id: speaker.id.clone(),
            ..Default::default()
        }),
    };
    events.add_event_speaker(add.clone()).await.expect("first add");
    let status = events.add_event_speaker(add).await.expect_err("duplicate");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!((status.code(), info.reason.as_str()), (Code::AlreadyExists, "RELATION_EXISTS"));
    assert_eq!(info.metadata["field"], "event_speaker.speaker_id");
    assert!(!status.message().contains("taken in this organization"), "{}", status.message());

    // A batch conflict names the item: one already taken, one repeated inside the batch.
    let batch = |slugs: &[&str]| pb::BatchCreateEventsRequest {
        requests: slugs
            .iter()
            .map(|slug| pb::CreateEventRequest { event: Some(new_event("Batch", slug)), request_id: String::new() })
            .collect(),
        request_id: String::new(),
    };
    for (slugs, field) in [
        (&["b-one", "b-two", "paths"][..], "requests[2].event.slug"),
        (&["b-one", "b-two", "b-one"][..], "requests[2].event.slug"),
        (&["b-one", "paths"][..], "requests[1].event.slug"),
    ] {
        let status = events.batch_create_events(batch(slugs)).await.expect_err("conflict");
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!((status.code(), info.metadata["field"].as_str()), (Code::AlreadyExists, field), "{slugs:?}");
    }
}

#[tokio::test]
async fn validation_keeps_what_the_docs_promise_and_lists_every_violation() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let create = |event: pb::Event, request_id: &str| pb::CreateEventRequest {
        event: Some(event),
        request_id: request_id.to_owned(),
    };
    for (field, event) in [
        ("event.timezone", pb::Event { timezone: Some("Mars/Base".into()), ..new_event("Tz", "tz") }),
        ("event.country", pb::Event { country: Some("ZZ".into()), ..new_event("Zz", "zz") }),
        ("event.name", new_event("\u{200B}", "zero-width")),
        ("event.name", new_event("\u{FEFF}\u{2060} ", "invisible")),
    ] {
        let result = events.create_event(create(event, "")).await;
        assert_eq!(failure(result, field).2, vec![field]);
    }
    let fine = pb::Event { timezone: Some("America/Argentina/Buenos_Aires".into()), ..new_event("Fine", "fine") };
    let fine = events.create_event(create(fine, "")).await.expect("a real zone").into_inner();

    // Every violation at once: a malformed request id, a field rule and the end-before-start rule.
    let mut reversed = new_event(" ", "reversed");
    reversed.end_time = ts(1);
    let fields = failure(events.create_event(create(reversed, "not-a-uuid")).await, "everything").2;
    assert_eq!(fields, vec!["request_id", "event.name", "event.end_time"]);

    // An etag the service never issued is INVALID_ARGUMENT, whatever its form; a stale one is ABORTED.
    for etag in ["-1", "0", "+1", "01", "abc", "\"-1\""] {
        let event = pb::Event { etag: etag.into(), name: "Renamed".into(), ..fine.clone() };
        let update_mask = Some(FieldMask { paths: vec!["name".into()] });
        let update = events.update_event(pb::UpdateEventRequest { event: Some(event), update_mask }).await;
        assert_eq!(failure(update, etag).2, vec!["event.etag"], "update with etag {etag:?}");
        let delete = events.delete_event(pb::DeleteEventRequest { id: fine.id.clone(), etag: etag.into() }).await;
        assert_eq!(failure(delete, etag).2, vec!["etag"], "delete with etag {etag:?}");
    }
    let stale = pb::DeleteEventRequest { id: fine.id.clone(), etag: format!("\"{}\"", 7) };
    assert_eq!(failure(events.delete_event(stale).await, "stale").0, Code::Aborted);
    let current = pb::DeleteEventRequest { id: fine.id.clone(), etag: format!("\"{}\"", fine.etag) };
    events.delete_event(current).await.expect("a quoted current etag works");
}

#[tokio::test]
async fn event_context_text_leaves_out_empty_sections() {
    let app = TestApp::start().await;
    let event = create_event(app.rw(), "Bare", "bare").await;
    let request = pb::GetEventContextRequest { id: event.id, format: pb::ContextFormat::Text as i32 };
    let context = EventServiceClient::new(app.rw()).get_event_context(request).await.expect("context").into_inner();
    assert!(context.text.starts_with("# Event: Bare"), "{}", context.text);
    for section in ["## Speakers", "## Companies", "## Topics", "## Media"] {
        assert!(!context.text.contains(section), "empty {section} printed: {}", context.text);
    }
}

#[tokio::test]
async fn name_prefixes_list_exactly_the_names_that_start_with_them() {
    let app = TestApp::start().await;
    for name in ["Ada Lovelace", "Adam Smith", "Åsa Berg", "Bob"] {
        create_speaker(app.rw(), name).await;
    }
    let mut speakers = SpeakerServiceClient::new(app.rw());
    for (prefix, expected) in [
        ("ada", vec!["Ada Lovelace", "Adam Smith"]),
        ("ADA L", vec!["Ada Lovelace"]),
        ("åsa", vec!["Åsa Berg"]),
        ("zz", vec![]),
    ] {
        let request = pb::ListSpeakersRequest { name_prefix: Some(prefix.into()), ..Default::default() };
        let listed = speakers.list_speakers(request).await.expect("list").into_inner().speakers;
        let mut names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, expected, "speakers starting with {prefix:?}");
    }
    create_event(app.rw(), "Rust Nation", "rust-nation").await;
    create_event(app.rw(), "RustConf", "rustconf").await;
    create_event(app.rw(), "Trust Summit", "trust-summit").await;
    let request = pb::ListEventsRequest { name_prefix: Some("RUST".into()), ..Default::default() };
    let listed = EventServiceClient::new(app.rw()).list_events(request).await.expect("list").into_inner().events;
    let mut names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["Rust Nation", "RustConf"]);
}
