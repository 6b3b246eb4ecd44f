//! The change-event contract: `schemas/changes/<type>/v1.json` is exactly what `outbox::schema` writes from the
//! code, and every change the service writes, of every type, validates against its schema. A payload that gains,
//! loses or retypes a field without its schema fails here.

use eventdata::domain::change::ChangeType;
use eventdata::domain::resources::{Relation, Resource};
use eventdata::outbox::schema;
use eventdata::proto::v1 as pb;
use pb::company_service_client::CompanyServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::media_service_client::MediaServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use prost_types::FieldMask;
use serde_json::Value;

use crate::common::{TestApp, committed_schema, schema_file, violations};
use crate::fixtures::{create_company, create_event, create_media, create_speaker, create_topic, embed};

#[test]
fn the_committed_schemas_are_what_the_code_writes() {
    let rewrite = std::env::var("EVENTDATA_WRITE_SCHEMAS").is_ok_and(|v| v == "1");
    for change in ChangeType::all() {
        let name = change.name();
        let expected = schema::change_schema(change);
        if rewrite {
            let path = schema_file(name);
            std::fs::create_dir_all(path.parent().expect("dir")).expect("schema dir");
            std::fs::write(&path, serde_json::to_string_pretty(&expected).expect("json") + "\n").expect("write");
        }
        assert_eq!(
            committed_schema(name),
            expected,
            "{} differs from the code: a payload change needs its schema (EVENTDATA_WRITE_SCHEMAS=1 rewrites it; \
             a change that is not additive needs a new version, docs/events.md)",
            schema::path(name)
        );
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

/// A unit vector, as an embedding.
fn unit() -> Vec<f32> {
    let mut values = vec![0.0f32; 1536];
    values[0] = 1.0;
    values
}

/// Makes at least one change of every type through the API.
async fn every_kind_of_change(app: &TestApp) {
    let rw = || app.rw();
    let event = create_event(rw(), "Schema Conf", "schema-conf").await;
    let speaker = create_speaker(rw(), "Ada").await;
    let company = create_company(rw(), "Acme").await;
    let topic = create_topic(rw(), "Rust").await;
    let media = create_media(rw(), &event.id, "https://x.test/a.png").await;
    let mut events = EventServiceClient::new(rw());
    let ids = |other: &str| (event.id.clone(), other.to_owned());
    let (e, s) = ids(&speaker.id);
    let relation =
        pb::EventSpeaker { event_id: e, speaker_id: s, role: pb::SpeakerRole::Keynote as i32, ..Default::default() };
    events.add_event_speaker(pb::AddEventSpeakerRequest { event_speaker: Some(relation.clone()) }).await.expect("add");
    let changed = pb::EventSpeaker { role: pb::SpeakerRole::Panelist as i32, ..relation.clone() };
    events
        .update_event_speaker(pb::UpdateEventSpeakerRequest {
            event_speaker: Some(changed),
            update_mask: mask(&["role"]),
        })
        .await
        .expect("update");
    let (e, c) = ids(&company.id);
    let relation = pb::EventCompany {
        event_id: e,
        company_id: c,
        relation: pb::CompanyRelation::Host as i32,
        ..Default::default()
    };
    events.add_event_company(pb::AddEventCompanyRequest { event_company: Some(relation.clone()) }).await.expect("add");
    let changed = pb::EventCompany { relation: pb::CompanyRelation::Sponsor as i32, ..relation.clone() };
    events
        .update_event_company(pb::UpdateEventCompanyRequest {
            event_company: Some(changed),
            update_mask: mask(&["relation"]),
        })
        .await
        .expect("update");
    let (e, t) = ids(&topic.id);
    let relation = pb::EventTopic { event_id: e, topic_id: t, relevance: Some(0.5), ..Default::default() };
    events.add_event_topic(pb::AddEventTopicRequest { event_topic: Some(relation.clone()) }).await.expect("add");
    let changed = pb::EventTopic { relevance: Some(0.9), ..relation.clone() };
    events
        .update_event_topic(pb::UpdateEventTopicRequest {
            event_topic: Some(changed),
            update_mask: mask(&["relevance"]),
        })
        .await
        .expect("update");
    embed(rw(), pb::EmbeddedType::Event, &event.id, unit()).await;
    embed(rw(), pb::EmbeddedType::Speaker, &speaker.id, unit()).await;
    embed(rw(), pb::EmbeddedType::Topic, &topic.id, unit()).await;
    events
        .remove_event_speaker(pb::RemoveEventSpeakerRequest {
            event_id: event.id.clone(),
            speaker_id: speaker.id.clone(),
        })
        .await
        .expect("remove");
    events
        .remove_event_company(pb::RemoveEventCompanyRequest {
            event_id: event.id.clone(),
            company_id: company.id.clone(),
        })
        .await
        .expect("remove");

    let renamed = |name: &str| name.to_owned() + " renamed";
    events
        .update_event(pb::UpdateEventRequest {
            event: Some(pb::Event { name: renamed(&event.name), ..event.clone() }),
            update_mask: mask(&["name"]),
        })
        .await
        .expect("update event");
    SpeakerServiceClient::new(rw())
        .update_speaker(pb::UpdateSpeakerRequest {
            speaker: Some(pb::Speaker { title: Some("CTO".into()), ..speaker.clone() }),
            update_mask: mask(&["title"]),
        })
        .await
        .expect("update speaker");
    CompanyServiceClient::new(rw())
        .update_company(pb::UpdateCompanyRequest {
            company: Some(pb::Company { location: Some("Berlin".into()), ..company.clone() }),
            update_mask: mask(&["location"]),
        })
        .await
        .expect("update company");
    TopicServiceClient::new(rw())
        .update_topic(pb::UpdateTopicRequest {
            topic: Some(pb::Topic { description: Some("Systems".into()), ..topic.clone() }),
            update_mask: mask(&["description"]),
        })
        .await
        .expect("update topic");
    MediaServiceClient::new(rw())
        .update_media(pb::UpdateMediaRequest {
            media: Some(pb::Media { title: Some("Poster".into()), ..media.clone() }),
            update_mask: mask(&["title"]),
        })
        .await
        .expect("update media");

    // Deletes: the event last but one, so its delete cascades to media and a topic relation.
    let media = create_media(rw(), &event.id, "https://x.test/b.png").await;
    MediaServiceClient::new(rw())
        .delete_media(pb::DeleteMediaRequest { id: media.id, etag: String::new() })
        .await
        .expect("delete media");
    SpeakerServiceClient::new(rw())
        .delete_speaker(pb::DeleteSpeakerRequest { id: speaker.id, etag: String::new() })
        .await
        .expect("delete speaker");
    CompanyServiceClient::new(rw())
        .delete_company(pb::DeleteCompanyRequest { id: company.id, etag: String::new() })
        .await
        .expect("delete company");
    events.delete_event(pb::DeleteEventRequest { id: event.id, etag: String::new() }).await.expect("delete event");
    TopicServiceClient::new(rw())
        .delete_topic(pb::DeleteTopicRequest { id: topic.id, etag: String::new() })
        .await
        .expect("delete topic");
    // A topic relation removed on its own, on a fresh event.
    let other = create_event(rw(), "Other", "other").await;
    let topic = create_topic(rw(), "Go").await;
    let relation = pb::EventTopic { event_id: other.id.clone(), topic_id: topic.id.clone(), ..Default::default() };
    events.add_event_topic(pb::AddEventTopicRequest { event_topic: Some(relation) }).await.expect("add");
    events
        .remove_event_topic(pb::RemoveEventTopicRequest { event_id: other.id, topic_id: topic.id })
        .await
        .expect("remove");
}

#[tokio::test]
async fn every_change_the_service_writes_validates_against_its_schema() {
    let app = TestApp::start().await;
    every_kind_of_change(&app).await;
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    let changes: Vec<(String, Value)> = sqlx::query_as("SELECT change_type, payload FROM outbox ORDER BY position")
        .fetch_all(&mut *tx)
        .await
        .expect("outbox");
    let mut seen = std::collections::BTreeSet::new();
    let mut broken = Vec::new();
    for (change_type, payload) in &changes {
        seen.insert(change_type.clone());
        violations(&committed_schema(change_type), payload, change_type, &mut broken);
        if let Some(mismatch) = typed_round_trip(change_type, payload) {
            broken.push(format!("{change_type}: {mismatch}"));
        }
    }
    assert!(broken.is_empty(), "payloads that break their schema or type:\n{}", broken.join("\n"));
    let all: std::collections::BTreeSet<String> =
        ChangeType::all().into_iter().map(|change| change.name().to_owned()).collect();
    let missed: Vec<&String> = all.difference(&seen).collect();
    assert!(missed.is_empty(), "the drive made no change of {missed:?}");
}

/// The payload's `resource` or `relation` is the type of `domain::resources`: it decodes strictly into the type of
/// its change type and serializes back to the same keys and values (times compared as instants, as PostgreSQL
/// writes `+00:00` where serde writes `Z`; numbers as floats). `None` when it does; what differs otherwise.
fn typed_round_trip(change_type: &str, payload: &Value) -> Option<String> {
    let change = ChangeType::all().into_iter().find(|c| c.name() == change_type)?;
    let (json, typed) = match change {
        ChangeType::Created(kind) | ChangeType::Updated(kind) | ChangeType::Deleted(kind) => {
            let json = payload["resource"].clone();
            (json.clone(), Resource::from_json(kind, json).map(|r| serde_json::to_value(r).expect("serializes")))
        }
        ChangeType::RelationAdded(kind) | ChangeType::RelationUpdated(kind) | ChangeType::RelationRemoved(kind) => {
            let json = payload["relation"].clone();
            (json.clone(), Relation::from_json(kind, json).map(|r| serde_json::to_value(r).expect("serializes")))
        }
        ChangeType::EmbeddingUpdated(_) => return None,
    };
    match typed {
        Err(e) => Some(format!("does not decode: {e}")),
        Ok(typed) if instants(&typed) != instants(&json) => Some(format!("round trip differs: {json} vs {typed}")),
        Ok(_) => None,
    }
}

/// `value` with every RFC 3339 string as the instant it names and every number as a float, in one spelling each
/// (`1` and `1.0` are the same score).
fn instants(value: &Value) -> Value {
    match value {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Value::String(t.with_timezone(&chrono::Utc).to_rfc3339()),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(instants).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), instants(v))).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_validator_catches_what_the_schemas_forbid() {
    let schema = committed_schema("topic.created");
    let good = serde_json::json!({
        "org_id": uuid::Uuid::nil(), "resource_type": "topic", "resource_id": uuid::Uuid::nil(), "trace": {},
        "resource": {"id": uuid::Uuid::nil(), "name": "Rust", "normalized_name": "rust", "description": null,
                     "parent_id": null, "etag": "1", "create_time": "2026-11-30T10:00:00+00:00",
                     "update_time": "2026-11-30T10:00:00+00:00"}
    });
    let check = |value: &Value| {
        let mut out = Vec::new();
        violations(&schema, value, "topic.created", &mut out);
        out
    };
    assert_eq!(check(&good), Vec::<String>::new());
    let mut extra = good.clone();
    extra["resource"]["colour"] = "red".into();
    assert_eq!(check(&extra).len(), 1, "an unnamed field");
    let mut retyped = good.clone();
    retyped["resource"]["etag"] = 1.into();
    assert_eq!(check(&retyped).len(), 1, "a retyped field");
    let mut missing = good.clone();
    missing["resource"].as_object_mut().expect("object").remove("name");
    assert_eq!(check(&missing).len(), 1, "a missing field");
    let mut wrong_type = good;
    wrong_type["resource_type"] = "event".into();
    assert_eq!(check(&wrong_type).len(), 1, "another resource type");
}
