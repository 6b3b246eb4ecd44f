//! The catalogue's resources and relations as the API returns them and as their change payloads carry them.
//!
//! The store renders a row as JSON in the very statement that writes it (`store::tables`), so the resource a call
//! returns and the `resource` of its change payload are one value. These types are that JSON's schema, decoded
//! strictly: a missing or unknown key, a NULL where the column is NOT NULL, an unknown enum name or an unparsable
//! time is an error (answered INTERNAL), never a default. Serializing a value gives back the same keys and values,
//! so the payload is the type (`tests/integration/change_schemas.rs` decodes every payload the service writes into
//! its type and compares the round trip). Field names and meanings are those of the proto messages of the same
//! names (`proto/eventdata/v1/resources.proto`), documented there once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::catalogue::{Kind, RelationKind};
use super::json_time;

/// A key whose value may be JSON null but must be present (serde would read a missing `Option` as `None`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

/// `event.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Not yet announced.
    Draft,
    /// Announced, not started.
    Scheduled,
    /// Running now.
    Live,
    /// Over.
    Completed,
    /// Called off.
    Cancelled,
}

/// `media.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A picture.
    Image,
    /// A recording with picture.
    Video,
    /// A recording without picture.
    Audio,
    /// A text document.
    Document,
    /// A slide deck.
    Slides,
    /// Anything else.
    Other,
}

/// `event_speakers.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerRole {
    /// Gives a keynote.
    Keynote,
    /// Gives a talk.
    Speaker,
    /// Sits on a panel.
    Panelist,
    /// Moderates.
    Moderator,
}

/// `event_companies.relation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyRelation {
    /// Organizes the event.
    Host,
    /// Pays for part of it.
    Sponsor,
    /// Has a stand.
    Exhibitor,
    /// Takes part otherwise.
    Partner,
}

/// The quality score of an event, speaker or company and why it is not 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// In [0, 1].
    pub score: f64,
    /// What lowered it.
    pub reasons: Vec<String>,
}

/// A conference or meetup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[serde(deserialize_with = "nullable")]
    pub description: Option<String>,
    pub status: EventStatus,
    #[serde(deserialize_with = "json_time::nullable")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "json_time::nullable")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "nullable")]
    pub timezone: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub venue: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub city: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub country: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub online_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub website_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub metadata: Option<Map<String, Value>>,
    pub etag: String,
    #[serde(deserialize_with = "json_time::required")]
    pub create_time: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::required")]
    pub update_time: DateTime<Utc>,
    pub quality: Quality,
}

/// A person speaking at events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speaker {
    pub id: Uuid,
    pub name: String,
    pub normalized_name: String,
    #[serde(deserialize_with = "nullable")]
    pub title: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub bio: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub company_id: Option<Uuid>,
    #[serde(deserialize_with = "nullable")]
    pub linkedin_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub twitter_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub website_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub avatar_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub confidence_score: Option<f64>,
    pub etag: String,
    #[serde(deserialize_with = "json_time::required")]
    pub create_time: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::required")]
    pub update_time: DateTime<Utc>,
    pub quality: Quality,
}

/// A host, sponsor, exhibitor or employer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub normalized_name: String,
    #[serde(deserialize_with = "nullable")]
    pub domain: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub description: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub website_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub logo_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub size: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub location: Option<String>,
    pub etag: String,
    #[serde(deserialize_with = "json_time::required")]
    pub create_time: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::required")]
    pub update_time: DateTime<Utc>,
    pub quality: Quality,
}

/// A subject of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub id: Uuid,
    pub name: String,
    pub normalized_name: String,
    #[serde(deserialize_with = "nullable")]
    pub description: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub parent_id: Option<Uuid>,
    pub etag: String,
    #[serde(deserialize_with = "json_time::required")]
    pub create_time: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::required")]
    pub update_time: DateTime<Utc>,
}

/// A media item of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    pub id: Uuid,
    pub event_id: Uuid,
    pub kind: MediaKind,
    pub url: String,
    #[serde(deserialize_with = "nullable")]
    pub title: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub mime_type: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub bytes: Option<i64>,
    #[serde(deserialize_with = "json_time::nullable")]
    pub capture_time: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "nullable")]
    pub metadata: Option<Map<String, Value>>,
    pub etag: String,
    #[serde(deserialize_with = "json_time::required")]
    pub create_time: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::required")]
    pub update_time: DateTime<Utc>,
}

/// A speaker at an event. A listing embeds the resource on the other side (`speaker` from an event, `event` from
/// a speaker); elsewhere both are absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpeaker {
    pub event_id: Uuid,
    pub speaker_id: Uuid,
    pub role: SpeakerRole,
    #[serde(deserialize_with = "nullable")]
    pub talk_title: Option<String>,
    #[serde(deserialize_with = "json_time::required")]
    pub create_time: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::required")]
    pub update_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<Speaker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

/// A company at an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCompany {
    pub event_id: Uuid,
    pub company_id: Uuid,
    pub relation: CompanyRelation,
    #[serde(deserialize_with = "json_time::required")]
    pub create_time: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::required")]
    pub update_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<Company>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

/// A topic of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTopic {
    pub event_id: Uuid,
    pub topic_id: Uuid,
    #[serde(deserialize_with = "nullable")]
    pub relevance: Option<f64>,
    #[serde(deserialize_with = "json_time::required")]
    pub create_time: DateTime<Utc>,
    #[serde(deserialize_with = "json_time::required")]
    pub update_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
}

/// A resource of any kind, as the kind-generic store and use cases hand it on. It serializes as the resource alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    /// An event.
    Event(Event),
    /// A speaker.
    Speaker(Speaker),
    /// A company.
    Company(Company),
    /// A topic.
    Topic(Topic),
    /// A media item.
    Media(Media),
}

/// A relation of any kind. It serializes as the relation alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Relation {
    /// An event's speaker.
    Speaker(EventSpeaker),
    /// An event's company.
    Company(EventCompany),
    /// An event's topic.
    Topic(EventTopic),
}

/// A resource or relation of another shape than the one asked for: a defect of ours, never of the caller's.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct WrongKind {
    /// What the caller of the use case asked for.
    pub expected: &'static str,
    /// What it got.
    pub got: &'static str,
}

/// `Resource::into_<kind>`: the variant's value, or which kind it was instead.
macro_rules! into_kind {
    ($($(#[$doc:meta])* $method:ident -> $variant:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $method(self) -> Result<$variant, WrongKind> {
                match self {
                    Resource::$variant(r) => Ok(r),
                    other => Err(other.wrong(Kind::$variant)),
                }
            }
        )*
    };
}

impl Resource {
    /// Decodes the store's JSON text of a resource of `kind`, strictly, straight into its type: no `Value` in
    /// between, whose maps and strings cost a List of 50 events a fifth of the service's CPU.
    pub fn from_json_text(kind: Kind, json: &str) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            Kind::Event => Resource::Event(serde_json::from_str(json)?),
            Kind::Speaker => Resource::Speaker(serde_json::from_str(json)?),
            Kind::Company => Resource::Company(serde_json::from_str(json)?),
            Kind::Topic => Resource::Topic(serde_json::from_str(json)?),
            Kind::Media => Resource::Media(serde_json::from_str(json)?),
        })
    }

    /// Decodes the store's JSON of a resource of `kind`, strictly: [`Resource::from_json_text`] of its text, so
    /// the same decoder (and its strictness tests) serve both.
    pub fn from_json(kind: Kind, json: Value) -> Result<Self, serde_json::Error> {
        Self::from_json_text(kind, &json.to_string())
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Event(_) => Kind::Event,
            Resource::Speaker(_) => Kind::Speaker,
            Resource::Company(_) => Kind::Company,
            Resource::Topic(_) => Kind::Topic,
            Resource::Media(_) => Kind::Media,
        }
    }

    /// Its id.
    pub fn id(&self) -> Uuid {
        match self {
            Resource::Event(r) => r.id,
            Resource::Speaker(r) => r.id,
            Resource::Company(r) => r.id,
            Resource::Topic(r) => r.id,
            Resource::Media(r) => r.id,
        }
    }

    fn wrong(&self, expected: Kind) -> WrongKind {
        WrongKind { expected: expected.name(), got: self.kind().name() }
    }

    into_kind! {
        /// The event, if it is one.
        into_event -> Event,
        /// The speaker, if it is one.
        into_speaker -> Speaker,
        /// The company, if it is one.
        into_company -> Company,
        /// The topic, if it is one.
        into_topic -> Topic,
        /// The media item, if it is one.
        into_media -> Media,
    }
}

impl Relation {
    /// Decodes the store's JSON of a relation of `kind`, strictly.
    pub fn from_json(kind: RelationKind, json: Value) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            RelationKind::Speaker => Relation::Speaker(serde_json::from_value(json)?),
            RelationKind::Company => Relation::Company(serde_json::from_value(json)?),
            RelationKind::Topic => Relation::Topic(serde_json::from_value(json)?),
        })
    }

    /// Its kind.
    pub fn kind(&self) -> RelationKind {
        match self {
            Relation::Speaker(_) => RelationKind::Speaker,
            Relation::Company(_) => RelationKind::Company,
            Relation::Topic(_) => RelationKind::Topic,
        }
    }

    /// The event's id and the other end's.
    pub fn ends(&self) -> (Uuid, Uuid) {
        match self {
            Relation::Speaker(r) => (r.event_id, r.speaker_id),
            Relation::Company(r) => (r.event_id, r.company_id),
            Relation::Topic(r) => (r.event_id, r.topic_id),
        }
    }
}

/// An event with everything around it (GetEventContext), as `store::contexts` renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventContext {
    pub event: Event,
    pub speakers: Vec<ContextSpeaker>,
    pub companies: Vec<ContextCompany>,
    pub topics: Vec<ContextTopic>,
    pub media: Vec<Media>,
    pub counts: ContextCounts,
}

/// A speaker of an event in its context, with the speaker's employer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSpeaker {
    pub speaker: Speaker,
    pub role: SpeakerRole,
    #[serde(deserialize_with = "nullable")]
    pub talk_title: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub company: Option<Company>,
}

/// A company of an event in its context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextCompany {
    pub company: Company,
    pub relation: CompanyRelation,
}

/// A topic of an event in its context, with its parent topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextTopic {
    pub topic: Topic,
    pub relevance: f64,
    #[serde(deserialize_with = "nullable")]
    pub parent: Option<Topic>,
}

/// How many speakers, companies, topics and media an event has (the stored counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextCounts {
    pub speakers: i32,
    pub companies: i32,
    pub topics: i32,
    pub media: i32,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored_topic() -> Value {
        json!({
            "id": "018cc251-f400-712a-b277-27f5fdd2d347", "name": "Rust", "normalized_name": "rust",
            "description": null, "parent_id": null, "etag": "3",
            "create_time": "2026-11-30T10:00:00.5+00:00", "update_time": "2026-11-30T11:00:00+00:00"
        })
    }

    fn stored_media() -> Value {
        json!({
            "id": "018cc251-f400-712a-b277-27f5fdd2d348", "event_id": "018cc251-f400-712a-b277-27f5fdd2d347",
            "kind": "video", "url": "https://x.test/v", "title": null, "mime_type": null, "bytes": 42,
            "capture_time": null, "metadata": {"a": 1}, "etag": "1",
            "create_time": "2026-11-30T10:00:00+00:00", "update_time": "2026-11-30T10:00:00+00:00"
        })
    }

    fn fails(kind: Kind, json: Value) -> bool {
        Resource::from_json(kind, json).is_err()
    }

    #[test]
    fn a_stored_resource_decodes_with_nulls_as_none() {
        let Resource::Topic(topic) = Resource::from_json(Kind::Topic, stored_topic()).expect("decodes") else {
            panic!("a topic decodes as a topic")
        };
        assert_eq!((topic.name.as_str(), topic.etag.as_str(), topic.description), ("Rust", "3", None));
        assert_eq!(topic.create_time.timestamp_subsec_millis(), 500);
        let media = Resource::from_json(Kind::Media, stored_media()).expect("decodes").into_media().expect("media");
        assert_eq!((media.kind, media.bytes, media.capture_time), (MediaKind::Video, Some(42), None));
    }

    #[test]
    fn a_missing_key_is_an_error_not_a_default() {
        for key in ["name", "description", "parent_id"] {
            let mut json = stored_topic();
            json.as_object_mut().expect("object").remove(key);
            assert!(fails(Kind::Topic, json), "{key} missing must not decode (nullable keys included)");
        }
    }

    #[test]
    fn a_mistyped_or_null_required_value_is_an_error() {
        let mut json = stored_topic();
        json["etag"] = json!(3);
        assert!(fails(Kind::Topic, json), "a number where text is promised");
        let mut json = stored_topic();
        json["name"] = Value::Null;
        assert!(fails(Kind::Topic, json), "null where the column is NOT NULL");
        let mut json = stored_topic();
        json["id"] = json!("not-a-uuid");
        assert!(fails(Kind::Topic, json), "an id that is no UUID");
    }

    #[test]
    fn an_unknown_key_is_an_error() {
        let mut json = stored_topic();
        json["colour"] = json!("red");
        assert!(fails(Kind::Topic, json), "a projection with a key the type lacks must not decode");
    }

    #[test]
    fn an_unknown_enum_name_is_an_error_not_unspecified() {
        let mut json = stored_media();
        json["kind"] = json!("hologram");
        assert!(fails(Kind::Media, json));
    }

    #[test]
    fn an_unparsable_time_is_an_error_not_unset() {
        let mut json = stored_topic();
        json["update_time"] = json!("yesterday");
        assert!(fails(Kind::Topic, json));
    }

    #[test]
    fn a_resource_of_another_kind_is_refused_by_name() {
        let topic = Resource::from_json(Kind::Topic, stored_topic()).expect("decodes");
        let err = topic.into_event().expect_err("a topic is no event");
        assert_eq!((err.expected, err.got), ("event", "topic"));
        assert!(fails(Kind::Media, stored_topic()), "a topic's JSON is not a media item's");
    }

    #[test]
    fn serializing_gives_back_the_stored_keys_and_values() {
        let json = stored_media();
        let media = Resource::from_json(Kind::Media, json.clone()).expect("decodes").into_media().expect("media");
        let again = serde_json::to_value(&media).expect("serializes");
        let keys = |v: &Value| v.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&again), keys(&json));
        assert_eq!(serde_json::from_value::<Media>(again).expect("decodes again"), media);
    }
}
