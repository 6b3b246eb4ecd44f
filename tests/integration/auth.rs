//! Authentication and the organization boundary: keys, scopes, revocation, and another organization's key that
//! finds nothing of ours through any method.

use std::time::Duration;

use eventdata::proto::v1 as pb;
use pb::company_service_client::CompanyServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::media_service_client::MediaServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use prost_types::FieldMask;
use tonic::Code;

use crate::common::{TestApp, eventually};
use crate::fixtures::{create_company, create_event, create_media, create_speaker, create_topic};

#[tokio::test]
async fn keys_and_scopes() {
    let app = TestApp::start().await;
    let get =
        |channel| async move { EventServiceClient::new(channel).list_events(pb::ListEventsRequest::default()).await };
    assert_eq!(get(app.as_key(None)).await.expect_err("no key").code(), Code::Unauthenticated);
    assert_eq!(get(app.as_key(Some("edk_wrong"))).await.expect_err("wrong key").code(), Code::Unauthenticated);

    let reader = app.db.create_key(app.org, &["read"]).await;
    get(app.as_key(Some(&reader))).await.expect("a read key reads");
    let denied = EventServiceClient::new(app.as_key(Some(&reader)))
        .create_event(pb::CreateEventRequest {
            event: Some(crate::fixtures::new_event("X", "x")),
            request_id: String::new(),
        })
        .await
        .expect_err("a read key cannot write");
    assert_eq!(denied.code(), Code::PermissionDenied);

    let admin = app.db.create_key(app.org, &["admin"]).await;
    get(app.as_key(Some(&admin))).await.expect("an admin key reads");
    EventServiceClient::new(app.as_key(Some(&admin)))
        .create_event(pb::CreateEventRequest {
            event: Some(crate::fixtures::new_event("Admin", "admin")),
            request_id: String::new(),
        })
        .await
        .expect("an admin key writes");

    let doomed = app.db.create_key(app.org, &["read", "write"]).await;
    get(app.as_key(Some(&doomed))).await.expect("valid before revocation");
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE secret_hash = $1")
        .bind(eventdata::domain::api_key::hash_secret(&doomed).to_vec())
        .execute(&app.db.admin)
        .await
        .expect("revoke");
    // Refused within the cache lifetime (200 ms in tests).
    eventually(Duration::from_secs(5), "the revoked key to be refused", || {
        let channel = app.as_key(Some(&doomed));
        async move { matches!(get(channel).await, Err(s) if s.code() == Code::Unauthenticated) }
    })
    .await;
}

/// Our organization's resources, and a read+write channel of another organization.
struct Ours {
    app: TestApp,
    event: pb::Event,
    speaker: pb::Speaker,
    company: pb::Company,
    topic: pb::Topic,
    media: pb::Media,
    theirs: crate::common::AuthChannel,
}

impl Ours {
    async fn start() -> Self {
        let app = TestApp::start().await;
        let event = create_event(app.rw(), "Ours", "ours").await;
        let speaker = create_speaker(app.rw(), "Ada").await;
        let company = create_company(app.rw(), "Acme").await;
        let topic = create_topic(app.rw(), "Rust").await;
        let media = create_media(app.rw(), &event.id, "https://x.test/a").await;
        let other_org = app.db.create_org("other").await;
        let theirs = app.as_key(Some(&app.db.create_key(other_org, &["read", "write"]).await));
        Self { app, event, speaker, company, topic, media, theirs }
    }
}

#[tokio::test]
async fn another_organization_gets_not_found_from_every_method_on_our_resources() {
    let Ours { app: _app, event, speaker, company, topic, media, theirs } = Ours::start().await;
    let mut events = EventServiceClient::new(theirs.clone());
    let mut speakers = SpeakerServiceClient::new(theirs.clone());
    let mut companies = CompanyServiceClient::new(theirs.clone());
    let mut topics = TopicServiceClient::new(theirs.clone());
    let mut media_client = MediaServiceClient::new(theirs.clone());
    let id = |s: &str| s.to_string();
    let mask = Some(FieldMask { paths: vec!["name".into()] });

    not_found(events.get_event(pb::GetEventRequest { id: id(&event.id) }).await, "GetEvent");
    not_found(events.batch_get_events(pb::BatchGetEventsRequest { ids: vec![id(&event.id)] }).await, "BatchGetEvents");
    not_found(
        events
            .update_event(pb::UpdateEventRequest {
                event: Some(pb::Event { id: id(&event.id), name: "x".into(), ..Default::default() }),
                update_mask: mask.clone(),
            })
            .await,
        "UpdateEvent",
    );
    not_found(
        events.delete_event(pb::DeleteEventRequest { id: id(&event.id), etag: String::new() }).await,
        "DeleteEvent",
    );
    not_found(
        events
            .add_event_speaker(pb::AddEventSpeakerRequest {
                event_speaker: Some(pb::EventSpeaker {
                    event_id: id(&event.id),
                    speaker_id: id(&speaker.id),
                    ..Default::default()
                }),
            })
            .await,
        "AddEventSpeaker",
    );
    not_found(
        events
            .list_event_speakers(pb::ListEventSpeakersRequest { event_id: id(&event.id), ..Default::default() })
            .await,
        "ListEventSpeakers",
    );
    not_found(
        events
            .list_event_companies(pb::ListEventCompaniesRequest { event_id: id(&event.id), ..Default::default() })
            .await,
        "ListEventCompanies",
    );
    not_found(
        events.list_event_topics(pb::ListEventTopicsRequest { event_id: id(&event.id), ..Default::default() }).await,
        "ListEventTopics",
    );
    not_found(
        events
            .remove_event_topic(pb::RemoveEventTopicRequest { event_id: id(&event.id), topic_id: id(&topic.id) })
            .await,
        "RemoveEventTopic",
    );
    not_found(speakers.get_speaker(pb::GetSpeakerRequest { id: id(&speaker.id) }).await, "GetSpeaker");
    not_found(
        speakers.delete_speaker(pb::DeleteSpeakerRequest { id: id(&speaker.id), etag: String::new() }).await,
        "DeleteSpeaker",
    );
    not_found(
        speakers
            .list_speaker_events(pb::ListSpeakerEventsRequest { speaker_id: id(&speaker.id), ..Default::default() })
            .await,
        "ListSpeakerEvents",
    );
    not_found(companies.get_company(pb::GetCompanyRequest { id: id(&company.id) }).await, "GetCompany");
    not_found(
        companies
            .update_company(pb::UpdateCompanyRequest {
                company: Some(pb::Company { id: id(&company.id), name: "x".into(), ..Default::default() }),
                update_mask: mask.clone(),
            })
            .await,
        "UpdateCompany",
    );
    not_found(
        companies
            .list_company_events(pb::ListCompanyEventsRequest { company_id: id(&company.id), ..Default::default() })
            .await,
        "ListCompanyEvents",
    );
    not_found(topics.get_topic(pb::GetTopicRequest { id: id(&topic.id) }).await, "GetTopic");
    not_found(topics.batch_get_topics(pb::BatchGetTopicsRequest { ids: vec![id(&topic.id)] }).await, "BatchGetTopics");
    not_found(
        topics.list_topic_events(pb::ListTopicEventsRequest { topic_id: id(&topic.id), ..Default::default() }).await,
        "ListTopicEvents",
    );
    not_found(media_client.get_media(pb::GetMediaRequest { id: id(&media.id) }).await, "GetMedia");
    not_found(
        media_client.list_media(pb::ListMediaRequest { event_id: id(&event.id), ..Default::default() }).await,
        "ListMedia",
    );
    not_found(
        media_client
            .update_media(pb::UpdateMediaRequest {
                media: Some(pb::Media { id: id(&media.id), title: Some("x".into()), ..Default::default() }),
                update_mask: None,
            })
            .await,
        "UpdateMedia",
    );
    not_found(
        media_client.delete_media(pb::DeleteMediaRequest { id: id(&media.id), etag: String::new() }).await,
        "DeleteMedia",
    );
}

#[tokio::test]
async fn another_organization_lists_nothing_of_ours_and_cannot_use_our_page_token() {
    let ours = Ours::start().await;
    create_event(ours.app.rw(), "Ours too", "ours-too").await;
    let page_token = EventServiceClient::new(ours.app.rw())
        .list_events(pb::ListEventsRequest { page_size: 1, ..Default::default() })
        .await
        .expect("page")
        .into_inner()
        .next_page_token;
    let mut events = EventServiceClient::new(ours.theirs.clone());
    let mut speakers = SpeakerServiceClient::new(ours.theirs.clone());
    let mut companies = CompanyServiceClient::new(ours.theirs.clone());
    let mut topics = TopicServiceClient::new(ours.theirs.clone());

    assert!(events.list_events(pb::ListEventsRequest::default()).await.expect("list").into_inner().events.is_empty());
    assert!(
        speakers
            .list_speakers(pb::ListSpeakersRequest::default())
            .await
            .expect("list")
            .into_inner()
            .speakers
            .is_empty()
    );
    assert!(
        companies
            .list_companies(pb::ListCompaniesRequest::default())
            .await
            .expect("list")
            .into_inner()
            .companies
            .is_empty()
    );
    assert!(topics.list_topics(pb::ListTopicsRequest::default()).await.expect("list").into_inner().topics.is_empty());
    let foreign = events
        .list_events(pb::ListEventsRequest { page_size: 1, page_token, ..Default::default() })
        .await
        .expect_err("our page token is not theirs");
    assert_eq!(foreign.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn another_organization_cannot_attach_to_ours_and_its_upserts_make_its_own() {
    let Ours { app, event, speaker, theirs, .. } = Ours::start().await;
    let mut speakers = SpeakerServiceClient::new(theirs.clone());
    let mut media_client = MediaServiceClient::new(theirs.clone());
    let id = |s: &str| s.to_string();

    // Their media cannot hang off our event, and upserting our speaker's name creates their own speaker.
    let media_err = media_client
        .create_media(pb::CreateMediaRequest {
            media: Some(pb::Media {
                event_id: id(&event.id),
                kind: pb::MediaKind::Image as i32,
                url: "https://x.test/b".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("media on a foreign event");
    assert_eq!(media_err.code(), Code::FailedPrecondition);
    let upserted = speakers
        .upsert_speaker(pb::UpsertSpeakerRequest {
            speaker: Some(pb::Speaker { name: "Ada".into(), ..Default::default() }),
        })
        .await
        .expect("upsert")
        .into_inner();
    assert!(upserted.created);
    assert_ne!(upserted.speaker.map(|s| s.id), Some(speaker.id.clone()));

    // Ours is untouched.
    let ours =
        EventServiceClient::new(app.rw()).get_event(pb::GetEventRequest { id: event.id.clone() }).await.expect("ours");
    assert_eq!(ours.into_inner(), event);
}

fn not_found<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}");
}

#[tokio::test]
async fn calls_that_miss_the_key_cache_together_share_one_lookup() {
    use eventdata::app::auth::{Authenticator, CallContext};
    use eventdata::domain::api_key::Scope;
    use std::sync::Arc;

    let db = crate::common::TestDb::migrated().await;
    let org = db.create_org("herd").await;
    let key = db.create_key(org, &["read"]).await;
    let auth = Arc::new(Authenticator::new(db.app_pool().await, Duration::from_secs(60)));
    // The key table held: the first lookup waits on it, and every call arriving meanwhile misses the cache.
    let mut holder = db.admin.begin().await.expect("begin");
    sqlx::query("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE").execute(&mut *holder).await.expect("lock");
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (auth, key) = (Arc::clone(&auth), key.clone());
            tokio::spawn(async move { auth.caller(&key, Scope::Read, CallContext::default()).await })
        })
        .collect();
    // Exactly one session waits: the lookup is shared, not made once per call.
    crate::common::wait_for_lock_waiters(&db, "authenticate_api_key", 1).await;
    holder.rollback().await.expect("release");
    for call in calls {
        assert_eq!(call.await.expect("call").expect("the key is valid").org_id, org);
    }
    assert_eq!(auth.database_lookups(), 1, "one lookup for twenty calls");
}
