//! Every catalogue method's happy path, through the generated clients against the in-process server.

use eventdata::proto::v1 as pb;
use pb::company_service_client::CompanyServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::media_service_client::MediaServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use prost_types::FieldMask;

use crate::common::TestApp;
use crate::fixtures::{create_company, create_event, create_speaker, create_topic, new_event, ts};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

#[tokio::test]
async fn events_create_get_list_update_batch_get_delete() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let mut input = new_event("RustConf", "rustconf-2026");
    input.metadata = Some(prost_types::Struct {
        fields: [("tracks".to_string(), prost_types::Value { kind: Some(prost_types::value::Kind::NumberValue(3.0)) })]
            .into(),
    });
    let created = events
        .create_event(pb::CreateEventRequest { event: Some(input), request_id: String::new() })
        .await
        .expect("create")
        .into_inner();
    assert!(uuid::Uuid::parse_str(&created.id).is_ok_and(|id| id.get_version_num() == 7), "UUIDv7 id");
    assert_eq!(created.name, "RustConf");
    assert_eq!(created.status, pb::EventStatus::Scheduled as i32);
    assert_eq!(created.start_time, ts(1_767_225_600));
    assert_eq!(created.metadata.as_ref().map(|m| m.fields.len()), Some(1));
    assert!(!created.etag.is_empty() && created.create_time.is_some());

    let got = events.get_event(pb::GetEventRequest { id: created.id.clone() }).await.expect("get").into_inner();
    assert_eq!(got, created);

    let updated = events
        .update_event(pb::UpdateEventRequest {
            event: Some(pb::Event {
                id: created.id.clone(),
                name: "RustConf 2026".into(),
                city: None,
                ..Default::default()
            }),
            update_mask: mask(&["name", "city"]),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        (updated.name.as_str(), updated.city.as_deref(), updated.slug.as_str()),
        ("RustConf 2026", None, "rustconf-2026")
    );
    assert_ne!(updated.etag, created.etag);

    let second = create_event(app.rw(), "Second", "second").await;
    let batch = events
        .batch_get_events(pb::BatchGetEventsRequest { ids: vec![second.id.clone(), created.id.clone()] })
        .await
        .expect("batch get")
        .into_inner();
    assert_eq!(
        batch.events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec![second.id.as_str(), created.id.as_str()]
    );

    let listed = events.list_events(pb::ListEventsRequest::default()).await.expect("list").into_inner();
    assert_eq!(listed.events.len(), 2);
    assert!(listed.next_page_token.is_empty());
    let filtered = events
        .list_events(pb::ListEventsRequest { name_prefix: Some("rustc".into()), ..Default::default() })
        .await
        .expect("list by prefix")
        .into_inner();
    assert_eq!(filtered.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![created.id.clone()]);

    events
        .delete_event(pb::DeleteEventRequest { id: created.id.clone(), etag: updated.etag.clone() })
        .await
        .expect("delete");
    let gone = events.get_event(pb::GetEventRequest { id: created.id.clone() }).await.expect_err("deleted");
    assert_eq!(gone.code(), tonic::Code::NotFound);
}

/// An event, a speaker, a company and a topic, the three related to the event (the speaker as a keynote with a talk).
async fn related(app: &TestApp) -> (pb::Event, pb::Speaker, pb::Company, pb::Topic) {
    let event = create_event(app.rw(), "Conf", "conf").await;
    let speaker = create_speaker(app.rw(), "Ada Lovelace").await;
    let company = create_company(app.rw(), "Acme").await;
    let topic = create_topic(app.rw(), "Rust").await;
    let mut events = EventServiceClient::new(app.rw());
    let added = events
        .add_event_speaker(pb::AddEventSpeakerRequest {
            event_speaker: Some(pb::EventSpeaker {
                event_id: event.id.clone(),
                speaker_id: speaker.id.clone(),
                role: pb::SpeakerRole::Keynote as i32,
                talk_title: Some("Engines".into()),
                ..Default::default()
            }),
        })
        .await
        .expect("add speaker")
        .into_inner();
    assert_eq!(added.role, pb::SpeakerRole::Keynote as i32);
    events
        .add_event_company(pb::AddEventCompanyRequest {
            event_company: Some(pb::EventCompany {
                event_id: event.id.clone(),
                company_id: company.id.clone(),
                relation: pb::CompanyRelation::Host as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("add company");
    events
        .add_event_topic(pb::AddEventTopicRequest {
            event_topic: Some(pb::EventTopic {
                event_id: event.id.clone(),
                topic_id: topic.id.clone(),
                relevance: Some(0.5),
                ..Default::default()
            }),
        })
        .await
        .expect("add topic");
    (event, speaker, company, topic)
}

#[tokio::test]
async fn relations_are_listed_from_both_sides_and_filter_events() {
    let app = TestApp::start().await;
    let (event, speaker, company, topic) = related(&app).await;
    let mut events = EventServiceClient::new(app.rw());
    let speakers = events
        .list_event_speakers(pb::ListEventSpeakersRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("event's speakers")
        .into_inner();
    assert_eq!(speakers.event_speakers.len(), 1);
    assert_eq!(speakers.event_speakers[0].speaker.as_ref().map(|s| s.name.as_str()), Some("Ada Lovelace"));
    let companies = events
        .list_event_companies(pb::ListEventCompaniesRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("event's companies")
        .into_inner();
    assert_eq!(companies.event_companies[0].company.as_ref().map(|c| c.id.clone()), Some(company.id.clone()));
    let topics = events
        .list_event_topics(pb::ListEventTopicsRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("event's topics")
        .into_inner();
    assert_eq!(topics.event_topics[0].relevance, Some(0.5));

    let speaker_events = SpeakerServiceClient::new(app.rw())
        .list_speaker_events(pb::ListSpeakerEventsRequest { speaker_id: speaker.id.clone(), ..Default::default() })
        .await
        .expect("speaker's events")
        .into_inner();
    assert_eq!(speaker_events.event_speakers[0].event.as_ref().map(|e| e.id.clone()), Some(event.id.clone()));
    let company_events = CompanyServiceClient::new(app.rw())
        .list_company_events(pb::ListCompanyEventsRequest { company_id: company.id.clone(), ..Default::default() })
        .await
        .expect("company's events")
        .into_inner();
    assert_eq!(company_events.event_companies.len(), 1);
    let topic_events = TopicServiceClient::new(app.rw())
        .list_topic_events(pb::ListTopicEventsRequest { topic_id: topic.id.clone(), ..Default::default() })
        .await
        .expect("topic's events")
        .into_inner();
    assert_eq!(topic_events.event_topics.len(), 1);
    let by_speaker = events
        .list_events(pb::ListEventsRequest { speaker_id: Some(speaker.id.clone()), ..Default::default() })
        .await
        .expect("events by speaker")
        .into_inner();
    assert_eq!(by_speaker.events.len(), 1);
}

#[tokio::test]
async fn a_relation_is_updated_by_mask_and_removed_with_its_changes() {
    let app = TestApp::start().await;
    let (event, speaker, company, topic) = related(&app).await;
    let mut events = EventServiceClient::new(app.rw());
    let changed = events
        .update_event_speaker(pb::UpdateEventSpeakerRequest {
            event_speaker: Some(pb::EventSpeaker {
                event_id: event.id.clone(),
                speaker_id: speaker.id.clone(),
                role: pb::SpeakerRole::Panelist as i32,
                ..Default::default()
            }),
            update_mask: mask(&["role"]),
        })
        .await
        .expect("update speaker relation")
        .into_inner();
    assert_eq!((changed.role, changed.talk_title.as_deref()), (pb::SpeakerRole::Panelist as i32, Some("Engines")));
    events
        .remove_event_speaker(pb::RemoveEventSpeakerRequest {
            event_id: event.id.clone(),
            speaker_id: speaker.id.clone(),
        })
        .await
        .expect("remove speaker");
    events
        .remove_event_company(pb::RemoveEventCompanyRequest {
            event_id: event.id.clone(),
            company_id: company.id.clone(),
        })
        .await
        .expect("remove company");
    events
        .remove_event_topic(pb::RemoveEventTopicRequest { event_id: event.id.clone(), topic_id: topic.id.clone() })
        .await
        .expect("remove topic");
    let speakers = events
        .list_event_speakers(pb::ListEventSpeakersRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("event's speakers")
        .into_inner();
    assert!(speakers.event_speakers.is_empty());
    let types: Vec<String> = app.changes().await.into_iter().map(|c| c.0).collect();
    for expected in [
        "event.speaker_added",
        "event.speaker_updated",
        "event.company_added",
        "event.topic_added",
        "event.speaker_removed",
        "event.company_removed",
        "event.topic_removed",
    ] {
        assert!(types.iter().any(|t| t == expected), "{expected} missing from {types:?}");
    }
}

#[tokio::test]
async fn speakers_companies_topics_crud_and_upsert() {
    let app = TestApp::start().await;
    let mut speakers = SpeakerServiceClient::new(app.rw());
    let ada = create_speaker(app.rw(), "Ada Lovelace").await;
    assert_eq!(ada.normalized_name, "ada lovelace");
    assert_eq!(ada.confidence_score, Some(1.0));
    let got = speakers.get_speaker(pb::GetSpeakerRequest { id: ada.id.clone() }).await.expect("get").into_inner();
    assert_eq!(got, ada);
    let updated = speakers
        .update_speaker(pb::UpdateSpeakerRequest {
            speaker: Some(pb::Speaker {
                id: ada.id.clone(),
                title: Some("Engineer".into()),
                etag: ada.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["title"]),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.title.as_deref(), Some("Engineer"));

    // The ingest helper finds the same person whatever the spacing and case, and fills in what it learned.
    let upserted = speakers
        .upsert_speaker(pb::UpsertSpeakerRequest {
            speaker: Some(pb::Speaker {
                name: "  ADA   lovelace".into(),
                bio: Some("Analyst".into()),
                ..Default::default()
            }),
        })
        .await
        .expect("upsert existing")
        .into_inner();
    assert!(!upserted.created);
    let s = upserted.speaker.expect("speaker");
    assert_eq!(
        (s.id.as_str(), s.title.as_deref(), s.bio.as_deref()),
        (ada.id.as_str(), Some("Engineer"), Some("Analyst"))
    );
    let fresh = speakers
        .upsert_speaker(pb::UpsertSpeakerRequest {
            speaker: Some(pb::Speaker { name: "Grace Hopper".into(), ..Default::default() }),
        })
        .await
        .expect("upsert new")
        .into_inner();
    assert!(fresh.created);
    let listed = speakers.list_speakers(pb::ListSpeakersRequest::default()).await.expect("list").into_inner();
    assert_eq!(listed.speakers.len(), 2);
    let batch = speakers
        .batch_get_speakers(pb::BatchGetSpeakersRequest { ids: vec![ada.id.clone()] })
        .await
        .expect("batch")
        .into_inner();
    assert_eq!(batch.speakers.len(), 1);
    speakers
        .delete_speaker(pb::DeleteSpeakerRequest { id: ada.id.clone(), etag: String::new() })
        .await
        .expect("delete");

    let mut companies = CompanyServiceClient::new(app.rw());
    let acme = companies
        .upsert_company(pb::UpsertCompanyRequest {
            company: Some(pb::Company { name: "Acme".into(), domain: Some("acme.test".into()), ..Default::default() }),
        })
        .await
        .expect("upsert new company")
        .into_inner();
    assert!(acme.created);
    // A different spelling of the name, but the same domain: the same company.
    let again = companies
        .upsert_company(pb::UpsertCompanyRequest {
            company: Some(pb::Company {
                name: "ACME Inc".into(),
                domain: Some("acme.test".into()),
                size: Some("11-50".into()),
                ..Default::default()
            }),
        })
        .await
        .expect("upsert by domain")
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.company.as_ref().map(|c| c.id.clone()), acme.company.as_ref().map(|c| c.id.clone()));
    assert_eq!(again.company.as_ref().and_then(|c| c.size.clone()).as_deref(), Some("11-50"));
    let acme_id = acme.company.expect("company").id;
    let got = companies.get_company(pb::GetCompanyRequest { id: acme_id.clone() }).await.expect("get").into_inner();
    assert_eq!(got.domain.as_deref(), Some("acme.test"));
    companies
        .update_company(pb::UpdateCompanyRequest {
            company: Some(pb::Company { id: acme_id.clone(), location: Some("Berlin".into()), ..Default::default() }),
            update_mask: mask(&["location"]),
        })
        .await
        .expect("update company");
    assert_eq!(
        companies.list_companies(pb::ListCompaniesRequest::default()).await.expect("list").into_inner().companies.len(),
        1
    );
    companies.batch_get_companies(pb::BatchGetCompaniesRequest { ids: vec![acme_id.clone()] }).await.expect("batch");
    companies
        .delete_company(pb::DeleteCompanyRequest { id: acme_id, etag: String::new() })
        .await
        .expect("delete company");

    let mut topics = TopicServiceClient::new(app.rw());
    let parent = topics
        .create_topic(pb::CreateTopicRequest {
            topic: Some(pb::Topic { name: "Programming".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("parent")
        .into_inner();
    let child = topics
        .upsert_topic(pb::UpsertTopicRequest {
            topic: Some(pb::Topic { name: "Rust".into(), parent_id: Some(parent.id.clone()), ..Default::default() }),
        })
        .await
        .expect("child")
        .into_inner();
    let children = topics
        .list_topics(pb::ListTopicsRequest { parent_id: Some(parent.id.clone()), ..Default::default() })
        .await
        .expect("children")
        .into_inner();
    assert_eq!(children.topics.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), vec![child.topic.expect("topic").id]);
    topics.get_topic(pb::GetTopicRequest { id: parent.id.clone() }).await.expect("get topic");
    topics
        .update_topic(pb::UpdateTopicRequest {
            topic: Some(pb::Topic { id: parent.id.clone(), description: Some("Code".into()), ..Default::default() }),
            update_mask: None,
        })
        .await
        .expect("update with implicit mask");
    topics.batch_get_topics(pb::BatchGetTopicsRequest { ids: vec![parent.id.clone()] }).await.expect("batch");
    topics.delete_topic(pb::DeleteTopicRequest { id: parent.id, etag: String::new() }).await.expect("delete topic");
}

#[tokio::test]
async fn media_crud() {
    let app = TestApp::start().await;
    let event = create_event(app.rw(), "Conf", "conf").await;
    let mut media = MediaServiceClient::new(app.rw());
    let item = media
        .create_media(pb::CreateMediaRequest {
            media: Some(pb::Media {
                event_id: event.id.clone(),
                kind: pb::MediaKind::Video as i32,
                url: "https://videos.test/keynote.mp4".into(),
                mime_type: Some("video/mp4".into()),
                bytes: Some(1_000_000),
                capture_time: crate::fixtures::ts(1_767_230_000),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create media")
        .into_inner();
    assert_eq!((item.kind, item.bytes), (pb::MediaKind::Video as i32, Some(1_000_000)));
    assert_eq!(media.get_media(pb::GetMediaRequest { id: item.id.clone() }).await.expect("get").into_inner(), item);
    let updated = media
        .update_media(pb::UpdateMediaRequest {
            media: Some(pb::Media { id: item.id.clone(), title: Some("Keynote".into()), ..Default::default() }),
            update_mask: mask(&["title"]),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.title.as_deref(), Some("Keynote"));
    let listed = media
        .list_media(pb::ListMediaRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.media.len(), 1);
    media.batch_get_media(pb::BatchGetMediaRequest { ids: vec![item.id.clone()] }).await.expect("batch");
    media.delete_media(pb::DeleteMediaRequest { id: item.id.clone(), etag: updated.etag }).await.expect("delete");
    let listed = media
        .list_media(pb::ListMediaRequest { event_id: event.id, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.media.is_empty());
}
