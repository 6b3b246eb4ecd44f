//! The resources tests start from, made through the API: one place for every builder, so a new required field is
//! added once.

use eventdata::proto::v1 as pb;
use pb::company_service_client::CompanyServiceClient;
use pb::embedding_service_client::EmbeddingServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::media_service_client::MediaServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use prost_types::Timestamp;

use crate::common::AuthChannel;

pub fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

pub fn new_event(name: &str, slug: &str) -> pb::Event {
    pb::Event {
        name: name.into(),
        slug: slug.into(),
        status: pb::EventStatus::Scheduled as i32,
        start_time: ts(1_767_225_600),
        end_time: ts(1_767_312_000),
        city: Some("Berlin".into()),
        country: Some("DE".into()),
        ..Default::default()
    }
}

pub async fn create_event(channel: AuthChannel, name: &str, slug: &str) -> pb::Event {
    EventServiceClient::new(channel)
        .create_event(pb::CreateEventRequest { event: Some(new_event(name, slug)), request_id: String::new() })
        .await
        .expect("create event")
        .into_inner()
}

pub async fn create_speaker(channel: AuthChannel, name: &str) -> pb::Speaker {
    SpeakerServiceClient::new(channel)
        .create_speaker(pb::CreateSpeakerRequest {
            speaker: Some(pb::Speaker { name: name.into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create speaker")
        .into_inner()
}

pub async fn create_company(channel: AuthChannel, name: &str) -> pb::Company {
    CompanyServiceClient::new(channel)
        .create_company(pb::CreateCompanyRequest {
            company: Some(pb::Company { name: name.into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create company")
        .into_inner()
}

pub async fn create_topic(channel: AuthChannel, name: &str) -> pb::Topic {
    TopicServiceClient::new(channel)
        .create_topic(pb::CreateTopicRequest {
            topic: Some(pb::Topic { name: name.into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create topic")
        .into_inner()
}

pub async fn create_media(channel: AuthChannel, event_id: &str, url: &str) -> pb::Media {
    MediaServiceClient::new(channel)
        .create_media(pb::CreateMediaRequest {
            media: Some(pb::Media {
                event_id: event_id.into(),
                kind: pb::MediaKind::Image as i32,
                url: url.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create media")
        .into_inner()
}

/// Sets the embedding of a resource (model `m-1`).
pub async fn embed(channel: AuthChannel, kind: pb::EmbeddedType, id: &str, values: Vec<f32>) {
    EmbeddingServiceClient::new(channel)
        .set_embedding(pb::SetEmbeddingRequest {
            embedding: Some(pb::Embedding {
                resource_type: kind as i32,
                resource_id: id.into(),
                values,
                model: "m-1".into(),
            }),
        })
        .await
        .expect("set embedding");
}
