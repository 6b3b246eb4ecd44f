//! What a create takes, per resource (and what adding a relation takes, per relation kind): the request's fields
//! checked against their rules (`domain::catalogue`, every violation collected) and held as one typed value,
//! defaults applied.
//!
//! A `New…` value serializes as the row the store inserts: keys are the table's columns (`starts_at` for
//! `start_time`), read by `jsonb_populate_recordset`; the idempotency hash of a create is taken over that row
//! ([`NewResource::to_row`], keys in order). Field names and meanings are those of the proto messages
//! (`proto/eventdata/v1/resources.proto`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::catalogue::{Kind, RelationKind};
use super::fields::{Input, Violations, validate_create};
use super::json_time;
use super::resources::{CompanyRelation, EventStatus, MediaKind, SpeakerRole};

/// A time as `Columns::to_json` writes it (`+00:00`, not `Z`), so a request's hash does not depend on which of the
/// two produced it.
fn rfc3339<S: Serializer>(time: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_str(&time.to_rfc3339()),
        None => serializer.serialize_none(),
    }
}

/// A new conference or meetup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub status: EventStatus,
    #[serde(rename = "starts_at", serialize_with = "rfc3339", deserialize_with = "json_time::nullable")]
    pub start_time: Option<DateTime<Utc>>,
    #[serde(rename = "ends_at", serialize_with = "rfc3339", deserialize_with = "json_time::nullable")]
    pub end_time: Option<DateTime<Utc>>,
    pub timezone: Option<String>,
    pub venue: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub online_url: Option<String>,
    pub website_url: Option<String>,
    pub metadata: Map<String, Value>,
}

/// A new speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSpeaker {
    pub name: String,
    pub title: Option<String>,
    pub bio: Option<String>,
    pub company_id: Option<Uuid>,
    pub linkedin_url: Option<String>,
    pub twitter_url: Option<String>,
    pub website_url: Option<String>,
    pub avatar_url: Option<String>,
    pub confidence_score: f64,
}

/// A new company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    pub domain: Option<String>,
    pub description: Option<String>,
    pub website_url: Option<String>,
    pub logo_url: Option<String>,
    /// One of `domain::catalogue::COMPANY_SIZES`.
    pub size: Option<String>,
    pub location: Option<String>,
}

/// A new topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTopic {
    pub name: String,
    pub description: Option<String>,
    pub parent_id: Option<Uuid>,
}

/// A new media item of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMedia {
    pub event_id: Uuid,
    pub kind: MediaKind,
    pub url: String,
    pub title: Option<String>,
    pub mime_type: Option<String>,
    pub bytes: Option<i64>,
    #[serde(rename = "captured_at", serialize_with = "rfc3339", deserialize_with = "json_time::nullable")]
    pub capture_time: Option<DateTime<Utc>>,
    pub metadata: Map<String, Value>,
}

/// A new resource of any kind, as the kind-generic use cases and store take it. Serializes as its row alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NewResource {
    /// An event.
    Event(NewEvent),
    /// A speaker.
    Speaker(NewSpeaker),
    /// A company.
    Company(NewCompany),
    /// A topic.
    Topic(NewTopic),
    /// A media item.
    Media(NewMedia),
}

impl NewResource {
    /// Parses a create of `kind` from the request's values (keyed by API path): every field checked against its
    /// rule, required ones present, defaults applied, and the rules over several fields (an event ends after it
    /// starts) checked too. Every violation is reported, named as the resource names its fields.
    pub fn parse(kind: Kind, inputs: &[(&'static str, Input)]) -> Result<NewResource, Violations> {
        let validated = validate_create(kind.fields(), inputs);
        let together = kind.check_together_on_create(inputs);
        let columns = match validated {
            Ok(columns) => together.into_result(columns)?,
            Err(mut violations) => {
                violations.extend(together);
                return Err(violations);
            }
        };
        let row = Value::Object(columns.to_json());
        let typed = match kind {
            Kind::Event => serde_json::from_value(row).map(NewResource::Event),
            Kind::Speaker => serde_json::from_value(row).map(NewResource::Speaker),
            Kind::Company => serde_json::from_value(row).map(NewResource::Company),
            Kind::Topic => serde_json::from_value(row).map(NewResource::Topic),
            Kind::Media => serde_json::from_value(row).map(NewResource::Media),
        };
        typed.map_err(|error| unfit(kind.name(), &error))
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            NewResource::Event(_) => Kind::Event,
            NewResource::Speaker(_) => Kind::Speaker,
            NewResource::Company(_) => Kind::Company,
            NewResource::Topic(_) => Kind::Topic,
            NewResource::Media(_) => Kind::Media,
        }
    }

    /// The name, for the kinds that have one (the natural key of an upsert).
    pub fn name(&self) -> Option<&str> {
        match self {
            NewResource::Event(e) => Some(&e.name),
            NewResource::Speaker(s) => Some(&s.name),
            NewResource::Company(c) => Some(&c.name),
            NewResource::Topic(t) => Some(&t.name),
            NewResource::Media(_) => None,
        }
    }

    /// A company's domain (the first natural key of a company upsert).
    pub fn domain(&self) -> Option<&str> {
        match self {
            NewResource::Company(c) => c.domain.as_deref(),
            _ => None,
        }
    }

    /// The row the store inserts, keyed by column, as `jsonb_populate_recordset` reads it.
    pub fn to_row(&self) -> Map<String, Value> {
        object(self)
    }
}

/// The attributes of a new speaker at an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEventSpeaker {
    pub role: SpeakerRole,
    pub talk_title: Option<String>,
}

/// The attributes of a new company at an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEventCompany {
    pub relation: CompanyRelation,
}

/// The attributes of a new topic of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEventTopic {
    pub relevance: f64,
}

/// The attributes of a new relation of any kind. Serializes as its attribute columns alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NewAttributes {
    /// Of a speaker at an event.
    Speaker(NewEventSpeaker),
    /// Of a company at an event.
    Company(NewEventCompany),
    /// Of a topic of an event.
    Topic(NewEventTopic),
}

impl NewAttributes {
    /// Parses the attributes of a relation of `kind` from the request's values, as [`NewResource::parse`] does.
    pub fn parse(kind: RelationKind, inputs: &[(&'static str, Input)]) -> Result<NewAttributes, Violations> {
        let row = Value::Object(validate_create(kind.fields(), inputs)?.to_json());
        let typed = match kind {
            RelationKind::Speaker => serde_json::from_value(row).map(NewAttributes::Speaker),
            RelationKind::Company => serde_json::from_value(row).map(NewAttributes::Company),
            RelationKind::Topic => serde_json::from_value(row).map(NewAttributes::Topic),
        };
        typed.map_err(|error| unfit(kind.target().name(), &error))
    }

    /// The relation kind.
    pub fn kind(&self) -> RelationKind {
        match self {
            NewAttributes::Speaker(_) => RelationKind::Speaker,
            NewAttributes::Company(_) => RelationKind::Company,
            NewAttributes::Topic(_) => RelationKind::Topic,
        }
    }

    /// The attribute columns the row holds: every one of the kind.
    pub fn columns(&self) -> Vec<&'static str> {
        self.kind().fields().iter().map(|f| f.column).collect()
    }

    /// The attribute columns and their values, as `jsonb_populate_record` reads them.
    pub fn to_row(&self) -> Map<String, Value> {
        object(self)
    }
}

/// `value` as a JSON object. Every type here is a struct of plain fields (or an enum of them), which always
/// serializes as one.
fn object(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(row)) => row,
        _ => Map::new(),
    }
}

/// The answer when the field specs and the type disagree: a bug, which the unit tests below catch for every kind.
/// The caller gets the answer the database gives for a value it cannot store, never a panic.
fn unfit(kind: &'static str, error: &serde_json::Error) -> Violations {
    tracing::error!(kind, %error, "a validated create does not fit its type");
    let mut violations = Violations::default();
    violations.add("", "has a value the catalogue cannot store");
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fields::validate_create;

    fn text(s: &str) -> Input {
        Input::Text(Some(s.to_owned()))
    }

    fn time(s: &str) -> Input {
        Input::Time(Some(s.parse().expect("time")))
    }

    /// Every writable field of every kind, with a valid value.
    fn full(kind: Kind) -> Vec<(&'static str, Input)> {
        let id = Uuid::now_v7().to_string();
        let object = Input::Object(Some(serde_json::json!({"k": [1, "two"]}).as_object().cloned().expect("object")));
        match kind {
            Kind::Event => vec![
                ("name", text("RustConf")),
                ("slug", text("rustconf-2026")),
                ("description", text("About Rust")),
                ("status", Input::Enum(Some("scheduled"))),
                ("start_time", time("2026-09-01T09:00:00.5Z")),
                ("end_time", time("2026-09-03T17:00:00Z")),
                ("timezone", text("Europe/Berlin")),
                ("venue", text("Hall 1")),
                ("city", text("Berlin")),
                ("country", text("DE")),
                ("online_url", text("https://live.example.com")),
                ("website_url", text("https://example.com")),
                ("metadata", object),
            ],
            Kind::Speaker => vec![
                ("name", text("Ada")),
                ("title", text("Engineer")),
                ("bio", text("Writes code")),
                ("company_id", text(&id)),
                ("linkedin_url", text("https://linkedin.com/in/ada")),
                ("twitter_url", text("https://x.com/ada")),
                ("website_url", text("https://ada.example.com")),
                ("avatar_url", text("https://ada.example.com/a.png")),
                ("confidence_score", Input::Float(Some(0.5))),
            ],
            Kind::Company => vec![
                ("name", text("Acme")),
                ("domain", text("acme.example")),
                ("description", text("Makes things")),
                ("website_url", text("https://acme.example")),
                ("logo_url", text("https://acme.example/logo.png")),
                ("size", text("51-200")),
                ("location", text("Berlin")),
            ],
            Kind::Topic => vec![("name", text("Rust")), ("description", text("A language")), ("parent_id", text(&id))],
            Kind::Media => vec![
                ("event_id", text(&id)),
                ("kind", Input::Enum(Some("video"))),
                ("url", text("https://cdn.example.com/talk.mp4")),
                ("title", text("The talk")),
                ("mime_type", text("video/mp4")),
                ("bytes", Input::Int(Some(1_000_000))),
                ("capture_time", time("2026-09-01T10:00:00Z")),
                ("metadata", object),
            ],
        }
    }

    /// Only the required fields of every kind.
    fn least(kind: Kind) -> Vec<(&'static str, Input)> {
        full(kind).into_iter().filter(|(path, _)| kind.fields().iter().any(|s| s.path == *path && s.required)).collect()
    }

    #[test]
    fn every_kind_parses_into_its_type_and_serializes_as_the_validated_row() {
        for kind in Kind::ALL {
            for inputs in [full(kind), least(kind)] {
                let new = NewResource::parse(kind, &inputs).unwrap_or_else(|v| panic!("{kind:?}: {v:?}"));
                assert_eq!(new.kind(), kind);
                let columns = validate_create(kind.fields(), &inputs).expect("valid");
                // The same keys and values, byte for byte: the store reads the row by column, and the idempotency
                // hash of a create stays what it was when it was taken over the validated columns.
                assert_eq!(serde_json::to_vec(&new.to_row()).ok(), serde_json::to_vec(&columns).ok(), "{kind:?}");
            }
        }
    }

    #[test]
    fn values_are_typed_and_defaults_applied() {
        let NewResource::Event(event) = NewResource::parse(Kind::Event, &least(Kind::Event)).expect("valid") else {
            panic!("not an event")
        };
        assert_eq!((event.status, event.metadata, event.start_time), (EventStatus::Draft, Map::new(), None));
        let NewResource::Event(event) = NewResource::parse(Kind::Event, &full(Kind::Event)).expect("valid") else {
            panic!("not an event")
        };
        assert_eq!(event.status, EventStatus::Scheduled);
        assert_eq!(event.start_time.map(|t| t.timestamp_subsec_millis()), Some(500));
        let NewResource::Speaker(speaker) = NewResource::parse(Kind::Speaker, &least(Kind::Speaker)).expect("valid")
        else {
            panic!("not a speaker")
        };
        assert_eq!((speaker.confidence_score, speaker.company_id), (1.0, None));
        let NewResource::Media(media) = NewResource::parse(Kind::Media, &full(Kind::Media)).expect("valid") else {
            panic!("not media")
        };
        assert_eq!((media.kind, media.bytes), (MediaKind::Video, Some(1_000_000)));
        let company = NewResource::parse(Kind::Company, &full(Kind::Company)).expect("valid");
        assert_eq!((company.name(), company.domain()), (Some("Acme"), Some("acme.example")));
    }

    #[test]
    fn relation_attributes_parse_into_their_types_with_defaults() {
        for kind in [RelationKind::Speaker, RelationKind::Company, RelationKind::Topic] {
            let new = NewAttributes::parse(kind, &[]).unwrap_or_else(|v| panic!("{kind:?}: {v:?}"));
            assert_eq!(new.kind(), kind);
            let columns = validate_create(kind.fields(), &[]).expect("valid");
            assert_eq!(new.to_row(), columns.to_json(), "{kind:?}");
            assert_eq!(new.columns(), columns.names(), "{kind:?}");
        }
        let inputs = [("role", Input::Enum(Some("keynote"))), ("talk_title", text("Opening"))];
        let expected = NewEventSpeaker { role: SpeakerRole::Keynote, talk_title: Some("Opening".into()) };
        assert_eq!(NewAttributes::parse(RelationKind::Speaker, &inputs), Ok(NewAttributes::Speaker(expected)));
        assert_eq!(
            NewAttributes::parse(RelationKind::Topic, &[]),
            Ok(NewAttributes::Topic(NewEventTopic { relevance: 1.0 }))
        );
        let bad = [("relevance", Input::Float(Some(2.0)))];
        let violations = NewAttributes::parse(RelationKind::Topic, &bad).expect_err("out of range");
        assert_eq!(violations.0[0].field, "relevance");
    }

    #[test]
    fn every_violation_is_collected_the_cross_field_rule_included() {
        let mut inputs = full(Kind::Event);
        for (path, input) in &mut inputs {
            match *path {
                "slug" => *input = text("Not A Slug"),
                "country" => *input = text("de"),
                "end_time" => *input = time("2026-08-01T00:00:00Z"),
                _ => {}
            }
        }
        inputs.retain(|(path, _)| *path != "name");
        let violations = NewResource::parse(Kind::Event, &inputs).expect_err("invalid");
        let mut fields: Vec<&str> = violations.0.iter().map(|v| v.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, vec!["country", "end_time", "name", "slug"], "{violations:?}");

        let mut inputs = least(Kind::Event);
        inputs.push(("end_time", time("2026-08-01T00:00:00Z")));
        let violations = NewResource::parse(Kind::Event, &inputs).expect_err("an end without a start");
        assert_eq!(violations.0.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["end_time"]);
    }
}
