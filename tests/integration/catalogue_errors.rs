//! Each error class, for each service: INVALID_ARGUMENT with every field violation, NOT_FOUND, ALREADY_EXISTS,
//! ABORTED on a stale etag, FAILED_PRECONDITION for a missing reference. No SQL ever reaches the caller.

use eventdata::proto::v1 as pb;
use pb::company_service_client::CompanyServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::media_service_client::MediaServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use prost_types::FieldMask;
use tonic::Code;

use crate::common::{TestApp, error_details};
use crate::fixtures::{create_event, create_speaker, new_event};

const MISSING: &str = "01900000-0000-7000-8000-000000000000";

fn assert_status(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    code: Code,
    reason: &str,
    what: &str,
) -> Vec<String> {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
    let (got_reason, fields) = error_details(&status);
    assert_eq!(got_reason, reason, "{what}: {status:?}");
    let message = status.message().to_lowercase();
    for leak in ["select", "insert", "constraint", "violates", "sqlstate", "relation \""] {
        assert!(!message.contains(leak), "{what}: SQL leaked in {:?}", status.message());
    }
    fields
}

#[tokio::test]
async fn invalid_arguments_report_every_violation() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let bad = pb::Event {
        name: " ".into(),
        slug: "Not A Slug".into(),
        country: Some("germany".into()),
        website_url: Some("ftp://x".into()),
        status: 42,
        ..Default::default()
    };
    let fields = assert_status(
        events.create_event(pb::CreateEventRequest { event: Some(bad), request_id: String::new() }).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "bad event",
    );
    assert_eq!(fields, vec!["event.name", "event.slug", "event.status", "event.country", "event.website_url"]);

    let mut reversed = new_event("X", "x");
    reversed.end_time = crate::fixtures::ts(1);
    let fields = assert_status(
        events.create_event(pb::CreateEventRequest { event: Some(reversed), request_id: String::new() }).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "end before start",
    );
    assert_eq!(fields, vec!["event.end_time"]);

    let fields = assert_status(
        events
            .update_event(pb::UpdateEventRequest {
                event: Some(pb::Event { id: MISSING.into(), ..Default::default() }),
                update_mask: Some(FieldMask { paths: vec!["nonsense".into(), "etag".into()] }),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "bad mask",
    );
    assert_eq!(fields, vec!["update_mask", "update_mask"]);

    let batch = pb::BatchCreateEventsRequest {
        requests: vec![
            pb::CreateEventRequest { event: Some(new_event("Fine", "fine")), request_id: String::new() },
            pb::CreateEventRequest { event: Some(new_event("", "ok-slug")), request_id: String::new() },
        ],
        request_id: String::new(),
    };
    let fields =
        assert_status(events.batch_create_events(batch).await, Code::InvalidArgument, "INVALID_ARGUMENT", "batch");
    assert_eq!(fields, vec!["requests[1].event.name"]);

    let fields = assert_status(
        SpeakerServiceClient::new(app.rw())
            .create_speaker(pb::CreateSpeakerRequest {
                speaker: Some(pb::Speaker {
                    name: "X".into(),
                    confidence_score: Some(f64::NAN),
                    linkedin_url: Some("linkedin".into()),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "bad speaker",
    );
    assert_eq!(fields, vec!["speaker.linkedin_url", "speaker.confidence_score"]);
    let fields = assert_status(
        CompanyServiceClient::new(app.rw())
            .create_company(pb::CreateCompanyRequest {
                company: Some(pb::Company {
                    name: "X".into(),
                    domain: Some("https://x.test".into()),
                    size: Some("huge".into()),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "bad company",
    );
    assert_eq!(fields, vec!["company.domain", "company.size"]);
    let fields = assert_status(
        TopicServiceClient::new(app.rw())
            .create_topic(pb::CreateTopicRequest {
                topic: Some(pb::Topic { parent_id: Some("nope".into()), ..Default::default() }),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "bad topic",
    );
    assert_eq!(fields, vec!["topic.name", "topic.parent_id"]);
    let fields = assert_status(
        MediaServiceClient::new(app.rw())
            .create_media(pb::CreateMediaRequest {
                media: Some(pb::Media { bytes: Some(-1), ..Default::default() }),
                request_id: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "bad media",
    );
    assert_eq!(fields, vec!["media.event_id", "media.kind", "media.url", "media.bytes"]);
    let fields = assert_status(
        events.list_events(pb::ListEventsRequest { page_token: "forged.token".into(), ..Default::default() }).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "forged page token",
    );
    assert_eq!(fields, vec!["page_token"]);
}

#[tokio::test]
async fn not_found_for_every_service() {
    let app = TestApp::start().await;
    let reason = "NOT_FOUND";
    assert_status(
        EventServiceClient::new(app.rw()).get_event(pb::GetEventRequest { id: MISSING.into() }).await,
        Code::NotFound,
        reason,
        "event",
    );
    assert_status(
        SpeakerServiceClient::new(app.rw()).get_speaker(pb::GetSpeakerRequest { id: MISSING.into() }).await,
        Code::NotFound,
        reason,
        "speaker",
    );
    assert_status(
        CompanyServiceClient::new(app.rw()).get_company(pb::GetCompanyRequest { id: MISSING.into() }).await,
        Code::NotFound,
        reason,
        "company",
    );
    assert_status(
        TopicServiceClient::new(app.rw()).get_topic(pb::GetTopicRequest { id: MISSING.into() }).await,
        Code::NotFound,
        reason,
        "topic",
    );
    assert_status(
        MediaServiceClient::new(app.rw()).get_media(pb::GetMediaRequest { id: MISSING.into() }).await,
        Code::NotFound,
        reason,
        "media",
    );
    assert_status(
        EventServiceClient::new(app.rw())
            .delete_event(pb::DeleteEventRequest { id: MISSING.into(), etag: String::new() })
            .await,
        Code::NotFound,
        reason,
        "delete missing event",
    );
    let event = create_event(app.rw(), "Conf", "conf").await;
    assert_status(
        EventServiceClient::new(app.rw())
            .batch_get_events(pb::BatchGetEventsRequest { ids: vec![event.id.clone(), MISSING.into()] })
            .await,
        Code::NotFound,
        reason,
        "batch with a missing id",
    );
    assert_status(
        MediaServiceClient::new(app.rw())
            .list_media(pb::ListMediaRequest { event_id: MISSING.into(), ..Default::default() })
            .await,
        Code::NotFound,
        reason,
        "media of a missing event",
    );
    assert_status(
        EventServiceClient::new(app.rw())
            .remove_event_speaker(pb::RemoveEventSpeakerRequest {
                event_id: event.id.clone(),
                speaker_id: MISSING.into(),
            })
            .await,
        Code::NotFound,
        reason,
        "relation that does not exist",
    );
}

#[tokio::test]
async fn duplicates_are_already_exists_with_their_reason() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let event = create_event(app.rw(), "Conf", "conf").await;
    let fields = assert_status(
        events
            .create_event(pb::CreateEventRequest { event: Some(new_event("Other", "conf")), request_id: String::new() })
            .await,
        Code::AlreadyExists,
        "SLUG_TAKEN",
        "duplicate slug",
    );
    assert!(fields.is_empty());
    create_speaker(app.rw(), "Ada").await;
    assert_status(
        SpeakerServiceClient::new(app.rw())
            .create_speaker(pb::CreateSpeakerRequest {
                speaker: Some(pb::Speaker { name: " ada ".into(), ..Default::default() }),
                request_id: String::new(),
            })
            .await,
        Code::AlreadyExists,
        "NAME_TAKEN",
        "duplicate speaker",
    );
    let mut companies = CompanyServiceClient::new(app.rw());
    let company = |name: &str| pb::CreateCompanyRequest {
        company: Some(pb::Company { name: name.into(), domain: Some("acme.test".into()), ..Default::default() }),
        request_id: String::new(),
    };
    companies.create_company(company("Acme")).await.expect("first company");
    assert_status(companies.create_company(company("Other")).await, Code::AlreadyExists, "DOMAIN_TAKEN", "domain");
    let mut topics = TopicServiceClient::new(app.rw());
    let topic = |name: &str| pb::CreateTopicRequest {
        topic: Some(pb::Topic { name: name.into(), ..Default::default() }),
        request_id: String::new(),
    };
    topics.create_topic(topic("Rust")).await.expect("topic");
    assert_status(topics.create_topic(topic("RUST")).await, Code::AlreadyExists, "NAME_TAKEN", "duplicate topic");
    let speaker = create_speaker(app.rw(), "Bea").await;
    let add = pb::AddEventSpeakerRequest {
        event_speaker: Some(pb::EventSpeaker {
            event_id: event.id.clone(),
            speaker_id: speaker.id.clone(),
            ..Default::default()
        }),
    };
    events.add_event_speaker(add.clone()).await.expect("first add");
    assert_status(events.add_event_speaker(add).await, Code::AlreadyExists, "RELATION_EXISTS", "second add");
}

#[tokio::test]
async fn stale_etags_abort_updates_and_deletes() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let event = create_event(app.rw(), "Conf", "conf").await;
    let speaker = create_speaker(app.rw(), "Bea").await;
    // ABORTED, for update and delete.
    let updated = events
        .update_event(pb::UpdateEventRequest {
            event: Some(pb::Event {
                id: event.id.clone(),
                name: "Conf 2".into(),
                etag: event.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
        })
        .await
        .expect("update at the current etag");
    assert_ne!(updated.get_ref().etag, event.etag);
    assert_status(
        events
            .update_event(pb::UpdateEventRequest {
                event: Some(pb::Event {
                    id: event.id.clone(),
                    name: "Conf 3".into(),
                    etag: event.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask { paths: vec!["name".into()] }),
            })
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "stale update",
    );
    assert_status(
        events.delete_event(pb::DeleteEventRequest { id: event.id.clone(), etag: event.etag.clone() }).await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "stale delete",
    );
    let stale_speaker = speaker.etag.clone();
    SpeakerServiceClient::new(app.rw())
        .update_speaker(pb::UpdateSpeakerRequest {
            speaker: Some(pb::Speaker { id: speaker.id.clone(), bio: Some("x".into()), ..Default::default() }),
            update_mask: None,
        })
        .await
        .expect("speaker update");
    assert_status(
        SpeakerServiceClient::new(app.rw())
            .delete_speaker(pb::DeleteSpeakerRequest { id: speaker.id.clone(), etag: stale_speaker })
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "stale speaker delete",
    );
}

#[tokio::test]
async fn missing_references_fail_the_precondition_naming_the_field() {
    let app = TestApp::start().await;
    let mut events = EventServiceClient::new(app.rw());
    let mut topics = TopicServiceClient::new(app.rw());
    let event = create_event(app.rw(), "Conf", "conf").await;
    assert_status(
        SpeakerServiceClient::new(app.rw())
            .create_speaker(pb::CreateSpeakerRequest {
                speaker: Some(pb::Speaker {
                    name: "Cy".into(),
                    company_id: Some(MISSING.into()),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        "REFERENCED_RESOURCE_NOT_FOUND",
        "unknown employer",
    );
    assert_status(
        topics
            .create_topic(pb::CreateTopicRequest {
                topic: Some(pb::Topic { name: "Go".into(), parent_id: Some(MISSING.into()), ..Default::default() }),
                request_id: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        "REFERENCED_RESOURCE_NOT_FOUND",
        "unknown parent",
    );
    assert_status(
        MediaServiceClient::new(app.rw())
            .create_media(pb::CreateMediaRequest {
                media: Some(pb::Media {
                    event_id: MISSING.into(),
                    kind: pb::MediaKind::Image as i32,
                    url: "https://x.test/a.png".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        "REFERENCED_RESOURCE_NOT_FOUND",
        "media of a missing event",
    );
    assert_status(
        events
            .add_event_topic(pb::AddEventTopicRequest {
                event_topic: Some(pb::EventTopic {
                    event_id: event.id.clone(),
                    topic_id: MISSING.into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::FailedPrecondition,
        "REFERENCED_RESOURCE_NOT_FOUND",
        "unknown topic",
    );
    assert_status(
        events
            .add_event_company(pb::AddEventCompanyRequest {
                event_company: Some(pb::EventCompany {
                    event_id: MISSING.into(),
                    company_id: MISSING.into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::NotFound,
        "NOT_FOUND",
        "relation on a missing event",
    );
}

#[tokio::test]
async fn stale_etags_abort_for_companies_topics_and_media() {
    let app = TestApp::start().await;
    let company = CompanyServiceClient::new(app.rw())
        .create_company(pb::CreateCompanyRequest {
            company: Some(pb::Company { name: "Acme".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("company")
        .into_inner();
    let topic = TopicServiceClient::new(app.rw())
        .create_topic(pb::CreateTopicRequest {
            topic: Some(pb::Topic { name: "Rust".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("topic")
        .into_inner();
    let event = create_event(app.rw(), "Conf", "conf").await;
    let media = MediaServiceClient::new(app.rw())
        .create_media(pb::CreateMediaRequest {
            media: Some(pb::Media {
                event_id: event.id,
                kind: pb::MediaKind::Audio as i32,
                url: "https://x.test/a.mp3".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("media")
        .into_inner();
    let stale = "999";
    assert_status(
        CompanyServiceClient::new(app.rw())
            .update_company(pb::UpdateCompanyRequest {
                company: Some(pb::Company {
                    id: company.id.clone(),
                    name: "New".into(),
                    etag: stale.into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask { paths: vec!["name".into()] }),
            })
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "company",
    );
    assert_status(
        TopicServiceClient::new(app.rw())
            .delete_topic(pb::DeleteTopicRequest { id: topic.id, etag: stale.into() })
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "topic",
    );
    assert_status(
        MediaServiceClient::new(app.rw())
            .delete_media(pb::DeleteMediaRequest { id: media.id, etag: stale.into() })
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "media",
    );
    assert_status(
        CompanyServiceClient::new(app.rw())
            .delete_company(pb::DeleteCompanyRequest { id: company.id, etag: "not-an-etag".into() })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
        "malformed etag",
    );
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let db = crate::common::TestDb::migrated().await;
    let mut settings = db.settings();
    settings.url = format!("postgres://eventdata_app@127.0.0.1:{closed}/nowhere");
    settings.acquire_timeout = std::time::Duration::from_millis(300);
    let server = crate::common::TestServer::start(crate::common::test_config(settings)).await;
    let channel = tonic::service::interceptor::InterceptedService::new(
        server.channel().await,
        crate::common::BearerAuth(Some("Bearer edk_anything".parse().expect("ascii"))),
    );
    assert_status(
        EventServiceClient::new(channel).get_event(pb::GetEventRequest { id: MISSING.into() }).await,
        Code::Unavailable,
        "DATABASE_UNAVAILABLE",
        "database down",
    );
}
