//! Batch relation adds (BatchAddEventSpeakers, BatchAddEventCompanies, BatchAddEventTopics): all or none, in
//! request order, one change per relation, counts kept; a bad item is named by its index and nothing is written.

use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

use crate::common::{TestApp, count_mismatches, error_details};
use crate::fixtures::{create_company, create_event, create_speaker, create_topic};

fn speaker_add(event: &str, speaker: &str, role: pb::SpeakerRole) -> pb::AddEventSpeakerRequest {
    let relation = pb::EventSpeaker {
        event_id: event.into(),
        speaker_id: speaker.into(),
        role: role as i32,
        ..Default::default()
    };
    pb::AddEventSpeakerRequest { event_speaker: Some(relation) }
}

/// The `field` of a status's ErrorInfo (ALREADY_EXISTS, FAILED_PRECONDITION) and its reason.
fn info_field(status: &tonic::Status) -> (String, String) {
    let info = status.get_details_error_info().expect("error info");
    (info.reason, info.metadata.get("field").cloned().unwrap_or_default())
}

#[tokio::test]
async fn a_batch_adds_every_relation_in_order_with_its_change_and_counts() {
    let app = TestApp::start().await;
    let events = [
        create_event(app.rw(), "Batch One", "batch-one").await,
        create_event(app.rw(), "Batch Two", "batch-two").await,
    ];
    let speakers = [
        create_speaker(app.rw(), "Ann Batch").await,
        create_speaker(app.rw(), "Ben Batch").await,
        create_speaker(app.rw(), "Cat Batch").await,
    ];
    let requests = vec![
        speaker_add(&events[0].id, &speakers[2].id, pb::SpeakerRole::Keynote),
        speaker_add(&events[0].id, &speakers[0].id, pb::SpeakerRole::Speaker),
        speaker_add(&events[1].id, &speakers[0].id, pb::SpeakerRole::Panelist),
        speaker_add(&events[1].id, &speakers[1].id, pb::SpeakerRole::Unspecified),
    ];
    let added = EventServiceClient::new(app.rw())
        .batch_add_event_speakers(pb::BatchAddEventSpeakersRequest { requests: requests.clone() })
        .await
        .expect("batch add")
        .into_inner()
        .event_speakers;
    let got: Vec<_> = added.iter().map(|r| (r.event_id.clone(), r.speaker_id.clone(), r.role)).collect();
    let asked: Vec<_> = requests
        .iter()
        .map(|r| r.event_speaker.clone().expect("relation"))
        .map(|r| (r.event_id, r.speaker_id, if r.role == 0 { pb::SpeakerRole::Speaker as i32 } else { r.role }))
        .collect();
    assert_eq!(got, asked, "in request order, an unset role defaulted as AddEventSpeaker does");

    let changes = app.changes().await;
    let added_changes = changes.iter().filter(|(t, _, _)| t == "event.speaker_added").count();
    assert_eq!(added_changes, 4, "one change per relation");
    assert!(count_mismatches(&app.db, app.org).await.is_empty(), "counts follow a batch");
    let listed = EventServiceClient::new(app.rw())
        .list_event_speakers(pb::ListEventSpeakersRequest { event_id: events[1].id.clone(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.event_speakers.len(), 2);

    // Companies and topics take batches the same way.
    let company = create_company(app.rw(), "Batch Corp").await;
    let topic = create_topic(app.rw(), "Batching").await;
    let companies = EventServiceClient::new(app.rw())
        .batch_add_event_companies(pb::BatchAddEventCompaniesRequest {
            requests: events
                .iter()
                .map(|e| pb::AddEventCompanyRequest {
                    event_company: Some(pb::EventCompany {
                        event_id: e.id.clone(),
                        company_id: company.id.clone(),
                        relation: pb::CompanyRelation::Sponsor as i32,
                        ..Default::default()
                    }),
                })
                .collect(),
        })
        .await
        .expect("batch companies")
        .into_inner()
        .event_companies;
    assert_eq!(
        companies.iter().map(|c| c.event_id.clone()).collect::<Vec<_>>(),
        [events[0].id.clone(), events[1].id.clone()]
    );
    let topics = EventServiceClient::new(app.rw())
        .batch_add_event_topics(pb::BatchAddEventTopicsRequest {
            requests: events
                .iter()
                .map(|e| pb::AddEventTopicRequest {
                    event_topic: Some(pb::EventTopic {
                        event_id: e.id.clone(),
                        topic_id: topic.id.clone(),
                        relevance: Some(0.5),
                        ..Default::default()
                    }),
                })
                .collect(),
        })
        .await
        .expect("batch topics")
        .into_inner()
        .event_topics;
    assert!(topics.iter().all(|t| t.relevance == Some(0.5)) && topics.len() == 2);
    assert!(count_mismatches(&app.db, app.org).await.is_empty(), "counts follow every kind of batch");
}

#[tokio::test]
async fn a_bad_item_is_named_and_nothing_of_its_batch_is_written() {
    let app = TestApp::start().await;
    let event = create_event(app.rw(), "Strict Batch", "strict-batch").await;
    let speakers = [create_speaker(app.rw(), "Dee Strict").await, create_speaker(app.rw(), "Eli Strict").await];
    let mut events = EventServiceClient::new(app.rw());
    let batch = |requests: Vec<pb::AddEventSpeakerRequest>| pb::BatchAddEventSpeakersRequest { requests };
    let ok = |speaker: &str| speaker_add(&event.id, speaker, pb::SpeakerRole::Speaker);

    // Checked before anything is written: every malformed item, and a pair named twice.
    let items = vec![ok(&speakers[0].id), ok("not-a-uuid"), ok(&speakers[0].id), ok(&speakers[0].id)];
    let status = events.batch_add_event_speakers(batch(items)).await.expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let (_, fields) = error_details(&status);
    assert_eq!(
        fields,
        [
            "requests[1].event_speaker.speaker_id",
            "requests[2].event_speaker.speaker_id",
            "requests[3].event_speaker.speaker_id"
        ]
    );
    let repeats: Vec<String> = status
        .get_details_bad_request()
        .expect("bad request")
        .field_violations
        .into_iter()
        .map(|v| v.description)
        .collect();
    assert_eq!(repeats[1..], ["repeats requests[0]", "repeats requests[0]"], "each repeat names the first item");
    let status = events.batch_add_event_speakers(batch(vec![])).await.expect_err("empty");
    assert_eq!((status.code(), error_details(&status).1), (Code::InvalidArgument, vec!["requests".to_string()]));
    let too_many = (0..501).map(|_| ok(&speakers[0].id)).collect();
    let status = events.batch_add_event_speakers(batch(too_many)).await.expect_err("too many");
    assert_eq!(status.code(), Code::InvalidArgument);

    // Refused by the catalogue: the item at fault is named; the valid items before it are not written.
    events.add_event_speaker(ok(&speakers[1].id)).await.expect("existing relation");
    let status = events
        .batch_add_event_speakers(batch(vec![ok(&speakers[0].id), ok(&speakers[1].id)]))
        .await
        .expect_err("exists");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(info_field(&status), ("RELATION_EXISTS".into(), "requests[1].event_speaker.speaker_id".into()));
    let missing = uuid::Uuid::now_v7().to_string();
    let status =
        events.batch_add_event_speakers(batch(vec![ok(&speakers[0].id), ok(&missing)])).await.expect_err("missing");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        info_field(&status),
        ("REFERENCED_RESOURCE_NOT_FOUND".into(), "requests[1].event_speaker.speaker_id".into())
    );
    let no_event = speaker_add(&missing, &speakers[0].id, pb::SpeakerRole::Speaker);
    let status = events.batch_add_event_speakers(batch(vec![ok(&speakers[0].id), no_event])).await.expect_err("event");
    assert_eq!(status.code(), Code::NotFound);

    let listed = events
        .list_event_speakers(pb::ListEventSpeakersRequest { event_id: event.id.clone(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.event_speakers.len(), 1, "only the relation added alone exists");
    let added = app.changes().await.iter().filter(|(t, _, _)| t == "event.speaker_added").count();
    assert_eq!(added, 1, "no change of a refused batch reached the outbox");
    assert!(count_mismatches(&app.db, app.org).await.is_empty());
}
