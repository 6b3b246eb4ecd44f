//! Property-based: arbitrary field values, sizes and Unicode thrown at Create, Update, List and Search. The answer is
//! always OK or INVALID_ARGUMENT (ALREADY_EXISTS for a genuinely taken slug), never INTERNAL or a panic, and every
//! event's changes in the outbox match its version afterwards.

use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use pb::search_service_client::SearchServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tonic::Code;

use crate::common::TestApp;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9-]{1,40}",
        any::<String>(),
        "\\PC{0,60}",
        (0usize..30_000).prop_map(|n| "é".repeat(n)),
        Just("'; DROP TABLE events; --".to_owned()),
        Just("a\u{0}b".to_owned()),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    prop::option::of(
        (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
}

fn value() -> impl Strategy<Value = prost_types::Value> {
    use prost_types::value::Kind;
    prop_oneof![
        any::<f64>().prop_map(Kind::NumberValue),
        text().prop_map(Kind::StringValue),
        any::<bool>().prop_map(Kind::BoolValue),
        Just(Kind::NullValue(0)),
    ]
    .prop_map(|kind| prost_types::Value { kind: Some(kind) })
}

fn metadata() -> impl Strategy<Value = Option<prost_types::Struct>> {
    prop::option::of(
        prop::collection::btree_map(text(), value(), 0..4).prop_map(|fields| prost_types::Struct { fields }),
    )
}

fn event() -> impl Strategy<Value = pb::Event> {
    (
        (text(), text(), prop::option::of(text()), any::<i32>(), timestamp(), timestamp()),
        (prop::option::of(text()), prop::option::of(text()), prop::option::of(text()), prop::option::of(text())),
        (prop::option::of(text()), prop::option::of(text()), metadata()),
    )
        .prop_map(
            |(
                (name, slug, description, status, start_time, end_time),
                (timezone, venue, city, country),
                (online_url, website_url, metadata),
            )| {
                pb::Event {
                    name,
                    slug,
                    description,
                    status,
                    start_time,
                    end_time,
                    timezone,
                    venue,
                    city,
                    country,
                    online_url,
                    website_url,
                    metadata,
                    ..Default::default()
                }
            },
        )
}

/// Runs `cases` cases of `strategy` through `check`, which calls the service.
fn run<S: Strategy>(cases: u32, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner.run(&strategy, check).expect("property holds");
}

fn acceptable(result: Result<(), tonic::Status>) -> Result<(), TestCaseError> {
    match result {
        Ok(()) => Ok(()),
        Err(s) if matches!(s.code(), Code::InvalidArgument | Code::AlreadyExists) => Ok(()),
        Err(s) => Err(TestCaseError::fail(format!(
            "unexpected {:?}: {}",
            s.code(),
            s.message().chars().take(300).collect::<String>()
        ))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_requests_get_ok_or_invalid_argument_and_invariants_hold() {
    let app = TestApp::start().await;
    let handle = tokio::runtime::Handle::current();
    let block = |f: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tonic::Status>> + Send>>| {
        tokio::task::block_in_place(|| handle.block_on(f))
    };
    let target = crate::fixtures::create_event(app.rw(), "Target", "target").await;

    let channel = app.rw();
    run(150, event(), |e| {
        let channel = channel.clone();
        acceptable(block(Box::pin(async move {
            EventServiceClient::new(channel)
                .create_event(pb::CreateEventRequest { event: Some(e), request_id: String::new() })
                .await
                .map(|_| ())
        })))
    });
    run(100, (event(), prop::collection::vec(text(), 0..4)), |(mut e, paths)| {
        let channel = channel.clone();
        e.id = target.id.clone();
        acceptable(block(Box::pin(async move {
            let update_mask = (!paths.is_empty()).then_some(prost_types::FieldMask { paths });
            EventServiceClient::new(channel)
                .update_event(pb::UpdateEventRequest { event: Some(e), update_mask })
                .await
                .map(|_| ())
        })))
    });
    run(
        100,
        (any::<i32>(), text(), prop::option::of(text()), prop::option::of(text()), any::<i32>(), timestamp()),
        |(page_size, page_token, city, name_prefix, status, start)| {
            let channel = channel.clone();
            acceptable(block(Box::pin(async move {
                let request = pb::ListEventsRequest {
                    page_size,
                    page_token,
                    city,
                    name_prefix,
                    status,
                    start_time_from: start,
                    ..Default::default()
                };
                EventServiceClient::new(channel).list_events(request).await.map(|_| ())
            })))
        },
    );
    run(100, (text(), any::<i32>()), |(query, page_size)| {
        let channel = channel.clone();
        acceptable(block(Box::pin(async move {
            SearchServiceClient::new(channel)
                .search_events(pb::SearchEventsRequest { query, page_size, ..Default::default() })
                .await
                .map(|_| ())
        })))
    });
    run(
        80,
        (text(), prop::option::of(any::<f64>()), prop::option::of(text())),
        |(name, confidence_score, linkedin_url)| {
            let channel = channel.clone();
            acceptable(block(Box::pin(async move {
                let speaker = pb::Speaker { name, confidence_score, linkedin_url, ..Default::default() };
                SpeakerServiceClient::new(channel)
                    .upsert_speaker(pb::UpsertSpeakerRequest { speaker: Some(speaker) })
                    .await
                    .map(|_| ())
            })))
        },
    );

    crate::common::assert_outbox_matches_data(&app.db, app.org).await;
}
