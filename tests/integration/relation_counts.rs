//! The relation-count invariant: whatever sequence of relation adds and removes, media creates and deletes,
//! employer changes and deletes of either end the API takes, every stored count (an event's speakers, companies,
//! topics and media; a speaker's events; a company's events and employees) equals a recount of the relation
//! tables. Random walks from fixed seeds, so a failure replays.

use eventdata::proto::v1 as pb;
use pb::company_service_client::CompanyServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::media_service_client::MediaServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use prost_types::FieldMask;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tonic::Code;

use crate::common::{AuthChannel, TestApp, count_mismatches};
use crate::fixtures::{create_company, create_event, create_speaker, create_topic};

/// The resources a walk moves between; a deleted one is replaced by a new one in its slot.
struct Pool {
    events: Vec<String>,
    speakers: Vec<String>,
    companies: Vec<String>,
    topics: Vec<String>,
    media: Vec<String>,
    made: usize,
}

impl Pool {
    /// Three of each, named from `first` on (names are unique per organization).
    async fn new(channel: &AuthChannel, first: usize) -> Self {
        let mut pool =
            Pool { events: vec![], speakers: vec![], companies: vec![], topics: vec![], media: vec![], made: first };
        for _ in 0..3 {
            let event = pool.event(channel).await;
            pool.events.push(event);
            let speaker = pool.speaker(channel).await;
            pool.speakers.push(speaker);
            let company = pool.company(channel).await;
            pool.companies.push(company);
            let topic = pool.topic(channel).await;
            pool.topics.push(topic);
        }
        pool
    }

    fn name(&mut self, kind: &str) -> String {
        self.made += 1;
        format!("Count {kind} {}", self.made)
    }

    async fn event(&mut self, channel: &AuthChannel) -> String {
        let name = self.name("event");
        create_event(channel.clone(), &name, &name.to_lowercase().replace(' ', "-")).await.id
    }
    async fn speaker(&mut self, channel: &AuthChannel) -> String {
        create_speaker(channel.clone(), &self.name("speaker")).await.id
    }
    async fn company(&mut self, channel: &AuthChannel) -> String {
        create_company(channel.clone(), &self.name("company")).await.id
    }
    async fn topic(&mut self, channel: &AuthChannel) -> String {
        create_topic(channel.clone(), &self.name("topic")).await.id
    }
}

/// Answers a walk may get: the relation exists already, or is gone, or its other end is.
fn expected(result: Result<(), tonic::Status>, what: &str) {
    if let Err(status) = result {
        assert!(
            matches!(status.code(), Code::AlreadyExists | Code::NotFound | Code::FailedPrecondition),
            "{what}: {status:?}"
        );
    }
}

/// One random step of a walk.
async fn step(channel: &AuthChannel, pool: &mut Pool, rng: &mut StdRng) {
    let event = pool.events[rng.random_range(0..pool.events.len())].clone();
    let speaker = pool.speakers[rng.random_range(0..pool.speakers.len())].clone();
    let company = pool.companies[rng.random_range(0..pool.companies.len())].clone();
    let topic = pool.topics[rng.random_range(0..pool.topics.len())].clone();
    let events = || EventServiceClient::new(channel.clone());
    match rng.random_range(0..13) {
        0 | 1 => {
            let relation = pb::EventSpeaker { event_id: event, speaker_id: speaker, ..Default::default() };
            let result = events().add_event_speaker(pb::AddEventSpeakerRequest { event_speaker: Some(relation) }).await;
            expected(result.map(drop), "add speaker");
        }
        2 => {
            let request = pb::RemoveEventSpeakerRequest { event_id: event, speaker_id: speaker };
            expected(events().remove_event_speaker(request).await.map(drop), "remove speaker");
        }
        3 => {
            let relation = pb::EventCompany { event_id: event, company_id: company, ..Default::default() };
            let result = events().add_event_company(pb::AddEventCompanyRequest { event_company: Some(relation) }).await;
            expected(result.map(drop), "add company");
        }
        4 => {
            let request = pb::RemoveEventCompanyRequest { event_id: event, company_id: company };
            expected(events().remove_event_company(request).await.map(drop), "remove company");
        }
        5 => {
            let relation = pb::EventTopic { event_id: event, topic_id: topic, ..Default::default() };
            let result = events().add_event_topic(pb::AddEventTopicRequest { event_topic: Some(relation) }).await;
            expected(result.map(drop), "add topic");
        }
        6 => {
            let request = pb::RemoveEventTopicRequest { event_id: event, topic_id: topic };
            expected(events().remove_event_topic(request).await.map(drop), "remove topic");
        }
        7 => {
            let media = pb::Media {
                event_id: event,
                kind: pb::MediaKind::Video as i32,
                url: format!("https://media.example.org/{}", pool.name("media").replace(' ', "-")),
                ..Default::default()
            };
            let request = pb::CreateMediaRequest { media: Some(media), request_id: String::new() };
            match MediaServiceClient::new(channel.clone()).create_media(request).await {
                Ok(created) => pool.media.push(created.into_inner().id),
                Err(status) => expected(Err(status), "create media"),
            }
        }
        8 if !pool.media.is_empty() => {
            let id = pool.media.swap_remove(rng.random_range(0..pool.media.len()));
            let request = pb::DeleteMediaRequest { id, etag: String::new() };
            expected(MediaServiceClient::new(channel.clone()).delete_media(request).await.map(drop), "delete media");
        }
        9 => {
            // Employ the speaker at the company, or leave them without one.
            let company_id = rng.random_bool(0.7).then_some(company);
            let speaker = pb::Speaker { id: speaker, company_id, ..Default::default() };
            let update_mask = Some(FieldMask { paths: vec!["company_id".into()] });
            let request = pb::UpdateSpeakerRequest { speaker: Some(speaker), update_mask };
            expected(SpeakerServiceClient::new(channel.clone()).update_speaker(request).await.map(drop), "employ");
        }
        10 => {
            let slot = rng.random_range(0..pool.speakers.len());
            let request = pb::DeleteSpeakerRequest { id: pool.speakers[slot].clone(), etag: String::new() };
            expected(
                SpeakerServiceClient::new(channel.clone()).delete_speaker(request).await.map(drop),
                "delete speaker",
            );
            pool.speakers[slot] = pool.speaker(channel).await;
        }
        11 => {
            let slot = rng.random_range(0..pool.companies.len());
            let request = pb::DeleteCompanyRequest { id: pool.companies[slot].clone(), etag: String::new() };
            expected(
                CompanyServiceClient::new(channel.clone()).delete_company(request).await.map(drop),
                "delete company",
            );
            pool.companies[slot] = pool.company(channel).await;
        }
        _ => {
            // An event or a topic goes, with every relation it had.
            if rng.random_bool(0.5) {
                let slot = rng.random_range(0..pool.events.len());
                let request = pb::DeleteEventRequest { id: pool.events[slot].clone(), etag: String::new() };
                expected(events().delete_event(request).await.map(drop), "delete event");
                pool.events[slot] = pool.event(channel).await;
            } else {
                let slot = rng.random_range(0..pool.topics.len());
                let request = pb::DeleteTopicRequest { id: pool.topics[slot].clone(), etag: String::new() };
                expected(
                    TopicServiceClient::new(channel.clone()).delete_topic(request).await.map(drop),
                    "delete topic",
                );
                pool.topics[slot] = pool.topic(channel).await;
            }
        }
    }
}

#[tokio::test]
async fn relation_counts_equal_a_recount_after_any_sequence_of_changes() {
    let app = TestApp::start().await;
    let channel = app.rw();
    for seed in 1..=4u64 {
        let mut pool = Pool::new(&channel, 1000 * seed as usize).await;
        let mut rng = StdRng::seed_from_u64(seed);
        for n in 1..=60 {
            step(&channel, &mut pool, &mut rng).await;
            if n % 20 == 0 {
                let wrong = count_mismatches(&app.db, app.org).await;
                assert!(wrong.is_empty(), "seed {seed}, after {n} steps, counts differ from a recount: {wrong:?}");
            }
        }
    }
}

#[tokio::test]
async fn concurrent_walks_keep_the_counts() {
    // Two walks over the same speakers and companies at once: counts taken by concurrent statements add up.
    let app = TestApp::start().await;
    let channel = app.rw();
    let shared = Pool::new(&channel, 0).await;
    let walks: Vec<_> = (1..=2u64)
        .map(|seed| {
            let channel = channel.clone();
            let mut pool = Pool {
                events: shared.events.clone(),
                speakers: shared.speakers.clone(),
                companies: shared.companies.clone(),
                topics: shared.topics.clone(),
                media: vec![],
                made: 100_000 * seed as usize,
            };
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(100 + seed);
                for _ in 0..50 {
                    step(&channel, &mut pool, &mut rng).await;
                }
            })
        })
        .collect();
    for walk in walks {
        walk.await.expect("walk");
    }
    let wrong = count_mismatches(&app.db, app.org).await;
    assert!(wrong.is_empty(), "counts differ from a recount after concurrent walks: {wrong:?}");
}
