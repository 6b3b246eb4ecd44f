//! Read models and data quality: GetEventContext equals the individual reads and costs a fixed number of
//! statements; contexts and SQL views stay inside their organization; quality scores follow the documented
//! rule, crossings of the threshold reach the outbox with the change that caused them, and ordering by quality
//! is an index scan.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use eventdata::proto::v1 as pb;
use pb::company_service_client::CompanyServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::media_service_client::MediaServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use prost_types::FieldMask;
use uuid::Uuid;

use crate::common::{AuthChannel, TestApp, TestDb};
use crate::fixtures::{create_company, create_event, create_speaker, create_topic};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

async fn add_speaker(channel: AuthChannel, event: &str, speaker: &str, role: pb::SpeakerRole, talk: Option<&str>) {
    let relation = pb::EventSpeaker {
        event_id: event.into(),
        speaker_id: speaker.into(),
        role: role as i32,
        talk_title: talk.map(str::to_owned),
        ..Default::default()
    };
    EventServiceClient::new(channel)
        .add_event_speaker(pb::AddEventSpeakerRequest { event_speaker: Some(relation) })
        .await
        .expect("add speaker");
}

/// An event with 5 speakers (3 employed), 3 companies, 4 topics (2 with a parent) and 2 media.
async fn rich_event(app: &TestApp) -> pb::Event {
    let event = create_event(app.rw(), "Context Conf", "context-conf").await;
    let companies = [
        create_company(app.rw(), "Acme Labs").await,
        create_company(app.rw(), "Beacon Data").await,
        create_company(app.rw(), "Cobalt Cloud").await,
    ];
    let roles = [
        pb::SpeakerRole::Speaker,
        pb::SpeakerRole::Keynote,
        pb::SpeakerRole::Panelist,
        pb::SpeakerRole::Speaker,
        pb::SpeakerRole::Moderator,
    ];
    for (i, name) in ["Eve Stone", "Ada Byron", "Cy Young", "Bo Lee", "Di Fox"].into_iter().enumerate() {
        let speaker = create_speaker(app.rw(), name).await;
        if i < 3 {
            let employed = pb::Speaker {
                id: speaker.id.clone(),
                title: Some("Engineer".into()),
                company_id: Some(companies[i].id.clone()),
                ..Default::default()
            };
            SpeakerServiceClient::new(app.rw())
                .update_speaker(pb::UpdateSpeakerRequest {
                    speaker: Some(employed),
                    update_mask: mask(&["title", "company_id"]),
                })
                .await
                .expect("employ");
        }
        add_speaker(app.rw(), &event.id, &speaker.id, roles[i], (i % 2 == 0).then_some("A talk")).await;
    }
    for (i, company) in companies.iter().enumerate() {
        let relation = pb::EventCompany {
            event_id: event.id.clone(),
            company_id: company.id.clone(),
            relation: [pb::CompanyRelation::Sponsor, pb::CompanyRelation::Host, pb::CompanyRelation::Partner][i] as i32,
            ..Default::default()
        };
        EventServiceClient::new(app.rw())
            .add_event_company(pb::AddEventCompanyRequest { event_company: Some(relation) })
            .await
            .expect("add company");
    }
    let parent = create_topic(app.rw(), "Programming").await;
    for (i, name) in ["Rust", "Databases", "Search", "Testing"].into_iter().enumerate() {
        let topic = create_topic(app.rw(), name).await;
        if i < 2 {
            let child = pb::Topic { id: topic.id.clone(), parent_id: Some(parent.id.clone()), ..Default::default() };
            TopicServiceClient::new(app.rw())
                .update_topic(pb::UpdateTopicRequest { topic: Some(child), update_mask: mask(&["parent_id"]) })
                .await
                .expect("parent");
        }
        let relation = pb::EventTopic {
            event_id: event.id.clone(),
            topic_id: topic.id.clone(),
            relevance: Some(1.0 - i as f64 * 0.2),
            ..Default::default()
        };
        EventServiceClient::new(app.rw())
            .add_event_topic(pb::AddEventTopicRequest { event_topic: Some(relation) })
            .await
            .expect("add topic");
    }
    for (i, kind) in [pb::MediaKind::Video, pb::MediaKind::Slides].into_iter().enumerate() {
        let media = pb::Media {
            event_id: event.id.clone(),
            kind: kind as i32,
            url: format!("https://media.example.org/{i}"),
            title: Some(format!("Recording {i}")),
            ..Default::default()
        };
        MediaServiceClient::new(app.rw())
            .create_media(pb::CreateMediaRequest { media: Some(media), request_id: String::new() })
            .await
            .expect("media");
    }
    event
}

#[tokio::test]
async fn event_context_equals_the_individual_reads() {
    let app = TestApp::start().await;
    let event = rich_event(&app).await;
    let request = pb::GetEventContextRequest { id: event.id.clone(), format: pb::ContextFormat::Text as i32 };
    let context = EventServiceClient::new(app.rw()).get_event_context(request).await.expect("context").into_inner();

    let mut events = EventServiceClient::new(app.rw());
    let get = events.get_event(pb::GetEventRequest { id: event.id.clone() }).await.expect("get").into_inner();
    assert_eq!(context.event.as_ref(), Some(&get));
    let expected = pb::Quality { score: 0.65, reasons: vec!["missing_description".into(), "no_embedding".into()] };
    assert_eq!(get.quality, Some(expected), "all but a description and an embedding");
    assert_eq!(context.counts, Some(pb::ContextCounts { speakers: 5, companies: 3, topics: 4, media: 2 }));

    let listed = events
        .list_event_speakers(pb::ListEventSpeakersRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("list speakers")
        .into_inner()
        .event_speakers;
    assert_eq!(context.speakers.len(), 5);
    assert_eq!(context.speakers[0].role, pb::SpeakerRole::Keynote as i32, "keynotes first");
    for entry in &context.speakers {
        let speaker = entry.speaker.as_ref().expect("speaker");
        let got = SpeakerServiceClient::new(app.rw())
            .get_speaker(pb::GetSpeakerRequest { id: speaker.id.clone() })
            .await
            .expect("get speaker")
            .into_inner();
        assert_eq!(speaker, &got);
        let relation = listed.iter().find(|r| r.speaker_id == speaker.id).expect("listed");
        assert_eq!((entry.role, &entry.talk_title), (relation.role, &relation.talk_title));
        match &got.company_id {
            Some(company_id) => {
                let employer = CompanyServiceClient::new(app.rw())
                    .get_company(pb::GetCompanyRequest { id: company_id.clone() })
                    .await
                    .expect("employer")
                    .into_inner();
                assert_eq!(entry.company.as_ref(), Some(&employer));
            }
            None => assert!(entry.company.is_none()),
        }
    }

    let listed = events
        .list_event_companies(pb::ListEventCompaniesRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("list companies")
        .into_inner()
        .event_companies;
    assert_eq!(context.companies.len(), 3);
    assert_eq!(context.companies[0].relation, pb::CompanyRelation::Host as i32, "hosts first");
    for entry in &context.companies {
        let company = entry.company.as_ref().expect("company");
        let got = CompanyServiceClient::new(app.rw())
            .get_company(pb::GetCompanyRequest { id: company.id.clone() })
            .await
            .expect("get company")
            .into_inner();
        assert_eq!(company, &got);
        assert_eq!(entry.relation, listed.iter().find(|r| r.company_id == company.id).expect("listed").relation);
    }

    let listed = events
        .list_event_topics(pb::ListEventTopicsRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("list topics")
        .into_inner()
        .event_topics;
    assert_eq!(context.topics.len(), 4);
    let relevances = context.topics.iter().map(|t| t.relevance).collect::<Vec<_>>();
    assert!(relevances.windows(2).all(|w| w[0] >= w[1]), "most relevant first: {relevances:?}");
    for entry in &context.topics {
        let topic = entry.topic.as_ref().expect("topic");
        let mut topics = TopicServiceClient::new(app.rw());
        let got = topics.get_topic(pb::GetTopicRequest { id: topic.id.clone() }).await.expect("get topic").into_inner();
        assert_eq!(topic, &got);
        assert_eq!(Some(entry.relevance), listed.iter().find(|r| r.topic_id == topic.id).expect("listed").relevance);
        match &got.parent_id {
            Some(parent) => {
                let parent = topics.get_topic(pb::GetTopicRequest { id: parent.clone() }).await.expect("parent");
                assert_eq!(entry.parent.as_ref(), Some(&parent.into_inner()));
            }
            None => assert!(entry.parent.is_none()),
        }
    }

    let media = MediaServiceClient::new(app.rw())
        .list_media(pb::ListMediaRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("list media")
        .into_inner()
        .media;
    let mut from_context = context.media.clone();
    from_context.sort_by(|a, b| a.id.cmp(&b.id));
    let mut listed_media = media.clone();
    listed_media.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(from_context, listed_media);

    assert!(context.text.starts_with("# Event: Context Conf\n"), "{}", context.text);
    assert!(
        context.text.contains("\n## Speakers (5)\n- Ada Byron (keynote), Engineer at Beacon Data\n"),
        "{}",
        context.text
    );
    assert!(context.text.contains("- Rust (relevance 1.00, under Programming)"), "{}", context.text);

    // The batch form returns the same contexts in the order asked; without TEXT, no rendering.
    let other = create_event(app.rw(), "Bare Meetup", "bare-meetup").await;
    let batch = events
        .batch_get_event_contexts(pb::BatchGetEventContextsRequest {
            ids: vec![other.id.clone(), event.id.clone()],
            format: pb::ContextFormat::Unspecified as i32,
        })
        .await
        .expect("batch")
        .into_inner()
        .contexts;
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0].event.as_ref().map(|e| e.id.as_str()), Some(other.id.as_str()));
    assert!(batch[0].speakers.is_empty() && batch[0].text.is_empty());
    assert_eq!(pb::EventContext { text: String::new(), ..context }, batch[1]);

    let too_many = (0..101).map(|_| Uuid::now_v7().to_string()).collect();
    let refused = events
        .batch_get_event_contexts(pb::BatchGetEventContextsRequest { ids: too_many, format: 0 })
        .await
        .expect_err("101 ids");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

/// Counts the statements sqlx sends (its `sqlx::query` events) inside a span named `measured`; the server's own
/// background statements (health probes, LISTEN) run on the same thread but outside it.
struct StatementCounter(Arc<AtomicUsize>);

impl<S> tracing_subscriber::Layer<S> for StatementCounter
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let measured = ctx.event_scope(event).is_some_and(|mut scope| scope.any(|span| span.name() == "measured"));
        if event.metadata().target() == "sqlx::query" && measured {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_context_costs_the_same_few_statements_however_much_it_holds() {
    use tracing_subscriber::layer::SubscriberExt;
    let app = TestApp::start().await;
    let event = rich_event(&app).await;
    let mut ids = vec![Uuid::parse_str(&event.id).expect("id")];
    for i in 0..40 {
        let more = create_event(app.rw(), &format!("More {i}"), &format!("more-{i}")).await;
        ids.push(Uuid::parse_str(&more.id).expect("id"));
    }
    // One connection, warmed below: every measured call runs on it, so nothing a fresh connection does on first
    // use (connecting, type lookups) can land in a measurement.
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&app.db.app_url).await.expect("pool");
    let service = eventdata::app::App::new(
        pool,
        eventdata::domain::page_token::PageTokens::random(),
        std::time::Duration::from_secs(30),
    );
    let caller = eventdata::app::Caller {
        org_id: app.org,
        key_id: Uuid::now_v7(),
        scopes: eventdata::domain::api_key::Scopes::parse_list("read").expect("scopes"),
        traceparent: None,
        tracestate: None,
        deadline: None,
        consistency: None,
    };
    service.event_contexts(&caller, &ids[..1]).await.expect("warm up");

    let statements = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(StatementCounter(statements.clone())).with(
        tracing_subscriber::filter::Targets::new()
            .with_target("sqlx::query", tracing::Level::TRACE)
            .with_target(module_path!(), tracing::Level::TRACE),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut counts = Vec::new();
    for batch in [&ids[..1], &ids[..], &ids[1..3]] {
        // Other tests' threads keep registering callsites and levels; recompute what this thread's subscriber
        // is interested in before each measurement. A call always runs statements, so a count of 0 means the
        // interest was lost to another thread's registration meanwhile: measure that call again.
        let mut count = 0;
        for _ in 0..5 {
            tracing::callsite::rebuild_interest_cache();
            statements.store(0, Ordering::SeqCst);
            let span = tracing::info_span!("measured");
            let contexts =
                tracing::Instrument::instrument(service.event_contexts(&caller, batch), span).await.expect("contexts");
            assert_eq!(contexts.len(), batch.len());
            count = statements.load(Ordering::SeqCst);
            if count > 0 {
                break;
            }
        }
        counts.push(count);
    }
    // The same small number for 1 rich event, 41 events or 2 bare ones (sqlx logs the BEGIN that sets the
    // organization and the query): nothing grows with the number of events or related rows.
    assert!(counts.iter().all(|&n| n == counts[0]) && (1..=3).contains(&counts[0]), "statements per call: {counts:?}");
}

#[tokio::test]
async fn contexts_and_views_stay_inside_the_organization() {
    let app = TestApp::start().await;
    let event = rich_event(&app).await;
    let stranger_org = app.db.create_org("stranger").await;
    let stranger_key = app.db.create_key(stranger_org, &["read", "write"]).await;
    let mut stranger = EventServiceClient::new(app.as_key(Some(&stranger_key)));
    let request = pb::GetEventContextRequest { id: event.id.clone(), format: 0 };
    assert_eq!(stranger.get_event_context(request).await.expect_err("foreign").code(), tonic::Code::NotFound);
    let own = create_event(app.as_key(Some(&stranger_key)), "Own Event", "own-event").await;
    let mixed = pb::BatchGetEventContextsRequest { ids: vec![own.id.clone(), event.id.clone()], format: 0 };
    let refused = stranger.batch_get_event_contexts(mixed).await.expect_err("one foreign id");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    assert!(refused.message().contains(&event.id), "{}", refused.message());

    let pool = app.db.app_pool().await;
    let count = |org: Option<Uuid>, view: &'static str| {
        let pool = pool.clone();
        async move {
            let mut tx = match org {
                Some(org) => eventdata::db::begin_for_org(&pool, org).await.expect("begin"),
                None => pool.begin().await.expect("begin"),
            };
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {view}")))
                .fetch_one(&mut *tx)
                .await
                .expect(view);
            n
        }
    };
    assert_eq!(count(Some(app.org), "event_context_v").await, 1);
    assert_eq!(count(Some(app.org), "event_speakers_v").await, 5);
    assert_eq!(count(Some(app.org), "event_topics_v").await, 4);
    assert_eq!(count(Some(stranger_org), "event_context_v").await, 1, "only its own event");
    assert_eq!(count(Some(stranger_org), "event_speakers_v").await, 0);
    assert_eq!(count(None, "event_context_v").await, 0, "no organization, no rows");

    let mut tx = eventdata::db::begin_for_org(&pool, app.org).await.expect("begin");
    let (speakers, counts): (serde_json::Value, serde_json::Value) =
        sqlx::query_as("SELECT speakers, counts FROM event_context_v WHERE event_id = $1")
            .bind(Uuid::parse_str(&event.id).expect("id"))
            .fetch_one(&mut *tx)
            .await
            .expect("view row");
    assert_eq!(speakers[0]["speaker"]["name"], "Ada Byron", "keynote first, as in the API");
    assert_eq!(counts, serde_json::json!({"speakers": 5, "companies": 3, "topics": 4, "media": 2}));
}

fn quality(q: &Option<pb::Quality>) -> (f64, Vec<String>) {
    let q = q.clone().expect("quality");
    (q.score, q.reasons)
}

#[tokio::test]
async fn quality_scores_follow_the_documented_rule() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let mut speakers = SpeakerServiceClient::new(app.rw());
    let mut companies = CompanyServiceClient::new(app.rw());
    let bare = pb::Event { name: "Bare".into(), slug: "bare".into(), ..Default::default() };
    let bare = events.create_event(pb::CreateEventRequest { event: Some(bare), request_id: String::new() }).await;
    let all_reasons =
        ["missing_description", "missing_start_time", "missing_location", "no_embedding", "no_speakers", "no_topics"];
    assert_eq!(quality(&bare.expect("bare").into_inner().quality), (0.0, all_reasons.map(String::from).to_vec()));

    // create_event sets a start time and a city: 0.15 + 0.10.
    let event = create_event(app.rw(), "Scored", "scored").await;
    assert_eq!(quality(&event.quality).0, 0.25);
    let described = pb::Event { id: event.id.clone(), description: Some("About things.".into()), ..Default::default() };
    let update = pb::UpdateEventRequest { event: Some(described), update_mask: mask(&["description"]) };
    assert_eq!(quality(&events.update_event(update).await.expect("describe").into_inner().quality).0, 0.45);

    let speaker = create_speaker(app.rw(), "Thin Speaker").await;
    let speaker_reasons =
        ["missing_title", "missing_bio", "missing_company", "missing_profile_url", "no_embedding", "no_events"];
    assert_eq!(quality(&speaker.quality), (0.15, speaker_reasons.map(String::from).to_vec()), "confidence 1 only");
    add_speaker(app.rw(), &event.id, &speaker.id, pb::SpeakerRole::Speaker, None).await;
    let get = |id: &str| pb::GetEventRequest { id: id.into() };
    let (score, reasons) = quality(&events.get_event(get(&event.id)).await.expect("get").into_inner().quality);
    assert_eq!((score, reasons), (0.70, vec!["no_embedding".to_string(), "no_topics".to_string()]));
    let got = speakers.get_speaker(pb::GetSpeakerRequest { id: speaker.id.clone() }).await.expect("speaker");
    assert_eq!(quality(&got.into_inner().quality).0, 0.40, "an event counts for the speaker too");

    let unsure = pb::Speaker { id: speaker.id.clone(), confidence_score: Some(0.4), ..Default::default() };
    let update = pb::UpdateSpeakerRequest { speaker: Some(unsure), update_mask: mask(&["confidence_score"]) };
    let (score, reasons) = quality(&speakers.update_speaker(update).await.expect("unsure").into_inner().quality);
    assert_eq!(score, 0.31, "0.25 for the event + 0.15 × 0.4");
    assert!(reasons.contains(&"low_confidence".to_string()), "{reasons:?}");

    let company = create_company(app.rw(), "Scored Co").await;
    let company_reasons = [
        "missing_domain",
        "missing_description",
        "missing_website",
        "missing_size",
        "missing_location",
        "no_events",
        "no_employees",
    ];
    assert_eq!(quality(&company.quality), (0.0, company_reasons.map(String::from).to_vec()));
    let employed = pb::Speaker { id: speaker.id.clone(), company_id: Some(company.id.clone()), ..Default::default() };
    speakers
        .update_speaker(pb::UpdateSpeakerRequest { speaker: Some(employed), update_mask: mask(&["company_id"]) })
        .await
        .expect("employ");
    let full = pb::Company {
        id: company.id.clone(),
        domain: Some("scored.example".into()),
        description: Some("Scores.".into()),
        website_url: Some("https://scored.example".into()),
        size: Some("11-50".into()),
        location: Some("Berlin".into()),
        ..Default::default()
    };
    let paths = ["domain", "description", "website_url", "size", "location"];
    companies
        .update_company(pb::UpdateCompanyRequest { company: Some(full), update_mask: mask(&paths) })
        .await
        .expect("complete");
    let relation =
        pb::EventCompany { event_id: event.id.clone(), company_id: company.id.clone(), ..Default::default() };
    events.add_event_company(pb::AddEventCompanyRequest { event_company: Some(relation) }).await.expect("sponsor");
    let got = companies.get_company(pb::GetCompanyRequest { id: company.id.clone() }).await.expect("company");
    assert_eq!(quality(&got.into_inner().quality), (1.0, Vec::new()));

    // Deleting the employee takes the employee away again.
    speakers
        .delete_speaker(pb::DeleteSpeakerRequest { id: speaker.id.clone(), etag: String::new() })
        .await
        .expect("delete");
    let got = companies.get_company(pb::GetCompanyRequest { id: company.id.clone() }).await.expect("company");
    assert_eq!(quality(&got.into_inner().quality), (0.8, vec!["no_employees".to_string()]));
    let got = events.get_event(get(&event.id)).await.expect("get").into_inner();
    assert_eq!(quality(&got.quality).0, 0.45, "the event lost its only speaker");
}

#[tokio::test]
async fn a_threshold_crossing_is_in_the_payload_of_the_change_that_caused_it() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let event = create_event(app.rw(), "Crossing", "crossing").await;
    let described =
        pb::Event { id: event.id.clone(), description: Some("Now described.".into()), ..Default::default() };
    events
        .update_event(pb::UpdateEventRequest { event: Some(described), update_mask: mask(&["description"]) })
        .await
        .expect("0.45");
    let speaker = create_speaker(app.rw(), "Crossing Speaker").await;
    add_speaker(app.rw(), &event.id, &speaker.id, pb::SpeakerRole::Speaker, None).await;
    events
        .remove_event_speaker(pb::RemoveEventSpeakerRequest {
            event_id: event.id.clone(),
            speaker_id: speaker.id.clone(),
        })
        .await
        .expect("remove");
    let venue = pb::Event { id: event.id.clone(), venue: Some("Hall".into()), ..Default::default() };
    events
        .update_event(pb::UpdateEventRequest { event: Some(venue), update_mask: mask(&["venue"]) })
        .await
        .expect("venue");

    let changes = app.changes().await;
    let crossings = |change_type: &str| {
        changes
            .iter()
            .filter(|(t, _, _)| t == change_type)
            .map(|(_, _, payload)| payload.get("quality_crossings").cloned())
            .collect::<Vec<_>>()
    };
    let added = crossings("event.speaker_added");
    let expected_up = serde_json::json!([{
        "resource_type": "event", "resource_id": event.id, "previous_score": 0.45, "score": 0.7,
        "direction": "above", "reasons": ["no_embedding", "no_topics"]
    }]);
    assert_eq!(added, [Some(expected_up)], "the relation change carries the event's crossing");
    let removed = crossings("event.speaker_removed");
    assert_eq!(removed.len(), 1);
    let down = removed[0].clone().expect("crossing below");
    assert_eq!(
        (down[0]["direction"].clone(), down[0]["score"].clone()),
        (serde_json::json!("below"), serde_json::json!(0.45))
    );
    let updated = crossings("event.updated");
    assert_eq!(updated, [None, None], "changes that cross nothing carry no crossing");
}

#[tokio::test]
async fn ordering_by_quality_is_an_index_scan_and_pages_in_order() {
    let db = TestDb::migrated().await;
    let org = db.create_org("thin").await;
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.expect("price out seq scans");
    let kinds = [
        (eventdata::domain::catalogue::Kind::Event, "events_org_quality_idx"),
        (eventdata::domain::catalogue::Kind::Speaker, "speakers_org_quality_idx"),
        (eventdata::domain::catalogue::Kind::Company, "companies_org_quality_idx"),
    ];
    for (kind, index) in kinds {
        let range = eventdata::store::lists::QualityRange { min: None, max: Some(0.49) };
        let plan = eventdata::store::lists::explain_by_quality(&mut tx, org, kind, range).await.expect("explain");
        assert!(plan.contains(index), "{kind:?} by quality does not use {index}:\n{plan}");
        assert!(!plan.contains("Sort"), "{kind:?} by quality sorts instead of reading the index in order:\n{plan}");
    }
    drop(tx);

    let app = TestApp::start().await;
    for (i, name) in ["Sa One", "Sb Two", "Sc Three", "Sd Four", "Se Five"].into_iter().enumerate() {
        let speaker = pb::Speaker {
            name: name.into(),
            title: (i % 2 == 0).then(|| "Engineer".to_string()),
            bio: (i >= 3).then(|| "Bio".to_string()),
            ..Default::default()
        };
        SpeakerServiceClient::new(app.rw())
            .create_speaker(pb::CreateSpeakerRequest { speaker: Some(speaker), request_id: String::new() })
            .await
            .expect("speaker");
    }
    let mut speakers = SpeakerServiceClient::new(app.rw());
    let mut scores = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListSpeakersRequest {
            page_size: 2,
            page_token: page_token.clone(),
            order_by: pb::ListOrder::QualityScore as i32,
            max_quality_score: Some(0.4),
            ..Default::default()
        };
        let page = speakers.list_speakers(request).await.expect("page").into_inner();
        scores.extend(page.speakers.iter().map(|s| quality(&s.quality).0));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(scores, [0.15, 0.25, 0.25, 0.3, 0.4], "thinnest first, across pages");

    let mixed = pb::ListSpeakersRequest {
        order_by: pb::ListOrder::QualityScore as i32,
        name_prefix: Some("s".into()),
        ..Default::default()
    };
    assert_eq!(speakers.list_speakers(mixed).await.expect_err("mixed").code(), tonic::Code::InvalidArgument);
    let bad = pb::ListEventsRequest { max_quality_score: Some(1.5), ..Default::default() };
    let refused = EventServiceClient::new(app.rw()).list_events(bad).await.expect_err("out of range");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}
