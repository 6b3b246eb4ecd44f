//! The versioned contract of every change type: a JSON Schema of its payload (with the CloudEvents attributes its
//! messages carry, under `x-cloudevents`), written from the same tables and closed lists that the statements
//! writing the payloads use. The files under `schemas/changes/<type>/v1.json` are this module's output
//! (`EVENTDATA_WRITE_SCHEMAS=1 cargo test change_schemas` rewrites them); a test fails when they differ, and another
//! validates the payloads the service really writes against them (docs/events.md, "Schemas").

use serde_json::{Value, json};

use crate::domain::catalogue::{
    COMPANY_RELATIONS, COMPANY_SIZES, EVENT_STATUSES, Kind, MEDIA_KINDS, RelationKind, SPEAKER_ROLES,
};
use crate::domain::change::ChangeType;

/// The schema version of every change type today. A payload change that is not additive needs a new version,
/// published beside the old one during a deprecation window (docs/events.md).
pub const VERSION: u32 = 1;

/// The CloudEvents `dataschema` of a change type: names `schemas/changes/<type>/v<VERSION>.json`.
pub fn dataschema(change_type: &str) -> String {
    format!("urn:eventdata:schema:changes:{change_type}:v{VERSION}")
}

/// The repository path of a change type's schema.
pub fn path(change_type: &str) -> String {
    format!("schemas/changes/{change_type}/v{VERSION}.json")
}

fn text() -> Value {
    json!({"type": "string"})
}
fn opt_text() -> Value {
    json!({"type": ["string", "null"]})
}
fn id() -> Value {
    json!({"type": "string", "format": "uuid"})
}
fn opt_id() -> Value {
    json!({"type": ["string", "null"], "format": "uuid"})
}
fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}
fn opt_time() -> Value {
    json!({"type": ["string", "null"], "format": "date-time"})
}
fn one_of(names: &[&str]) -> Value {
    json!({"type": "string", "enum": names})
}
fn opt_one_of(names: &[&str]) -> Value {
    let mut values: Vec<Value> = names.iter().map(|n| json!(n)).collect();
    values.push(Value::Null);
    json!({"type": ["string", "null"], "enum": values})
}
fn ids() -> Value {
    json!({"type": "array", "items": id()})
}

/// An object with exactly these properties, every one required.
fn exactly(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    let properties: serde_json::Map<String, Value> =
        properties.iter().map(|(name, schema)| (name.to_string(), schema.clone())).collect();
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

fn quality() -> Value {
    exactly(&[("score", json!({"type": "number"})), ("reasons", json!({"type": "array", "items": text()}))])
}

/// A resource as the API returns it (`store::tables`' projections).
pub fn resource(kind: Kind) -> Value {
    let stamps = [("etag", text()), ("create_time", time()), ("update_time", time())];
    let mut properties: Vec<(&str, Value)> = match kind {
        Kind::Event => vec![
            ("id", id()),
            ("name", text()),
            ("slug", text()),
            ("description", opt_text()),
            ("status", one_of(EVENT_STATUSES)),
            ("start_time", opt_time()),
            ("end_time", opt_time()),
            ("timezone", opt_text()),
            ("venue", opt_text()),
            ("city", opt_text()),
            ("country", opt_text()),
            ("online_url", opt_text()),
            ("website_url", opt_text()),
            ("metadata", json!({"type": "object"})),
        ],
        Kind::Speaker => vec![
            ("id", id()),
            ("name", text()),
            ("normalized_name", text()),
            ("title", opt_text()),
            ("bio", opt_text()),
            ("company_id", opt_id()),
            ("linkedin_url", opt_text()),
            ("twitter_url", opt_text()),
            ("website_url", opt_text()),
            ("avatar_url", opt_text()),
            ("confidence_score", json!({"type": ["number", "null"]})),
        ],
        Kind::Company => vec![
            ("id", id()),
            ("name", text()),
            ("normalized_name", text()),
            ("domain", opt_text()),
            ("description", opt_text()),
            ("website_url", opt_text()),
            ("logo_url", opt_text()),
            ("size", opt_one_of(COMPANY_SIZES)),
            ("location", opt_text()),
        ],
        Kind::Topic => vec![
            ("id", id()),
            ("name", text()),
            ("normalized_name", text()),
            ("description", opt_text()),
            ("parent_id", opt_id()),
        ],
        Kind::Media => vec![
            ("id", id()),
            ("event_id", id()),
            ("kind", one_of(MEDIA_KINDS)),
            ("url", text()),
            ("title", opt_text()),
            ("mime_type", opt_text()),
            ("bytes", json!({"type": ["integer", "null"]})),
            ("capture_time", opt_time()),
            ("metadata", json!({"type": "object"})),
        ],
    };
    properties.extend(stamps);
    if matches!(kind, Kind::Event | Kind::Speaker | Kind::Company) {
        properties.push(("quality", quality()));
    }
    exactly(&properties)
}

/// A relation as the API returns it.
pub fn relation(kind: RelationKind) -> Value {
    let mut properties = vec![("event_id", id())];
    match kind {
        RelationKind::Speaker => {
            properties.extend([("speaker_id", id()), ("role", one_of(SPEAKER_ROLES)), ("talk_title", opt_text())])
        }
        RelationKind::Company => properties.extend([("company_id", id()), ("relation", one_of(COMPANY_RELATIONS))]),
        RelationKind::Topic => {
            properties.extend([("topic_id", id()), ("relevance", json!({"type": ["number", "null"]}))])
        }
    }
    properties.extend([("create_time", time()), ("update_time", time())]);
    exactly(&properties)
}

/// What deleting a resource of `kind` cascaded to.
fn removed(kind: Kind) -> Value {
    match kind {
        Kind::Event => {
            exactly(&[("media", ids()), ("speaker_ids", ids()), ("company_ids", ids()), ("topic_ids", ids())])
        }
        Kind::Speaker => exactly(&[("event_ids", ids())]),
        Kind::Company => exactly(&[("event_ids", ids()), ("employee_ids", ids())]),
        Kind::Topic => exactly(&[("event_ids", ids()), ("child_topic_ids", ids())]),
        Kind::Media => exactly(&[]),
    }
}

fn changed_fields() -> Value {
    json!({"type": "array", "items": text()})
}

/// The payload schema of `change`, with its CloudEvents attributes under `x-cloudevents`.
pub fn change_schema(change: ChangeType) -> Value {
    let name = change.name();
    let aggregate = change.aggregate();
    let mut properties: Vec<(&str, Value)> = vec![
        ("org_id", id()),
        ("resource_type", json!({"const": aggregate.name()})),
        ("resource_id", id()),
        (
            "trace",
            json!({"type": "object", "properties": {"traceparent": text(), "tracestate": text()},
                   "additionalProperties": false}),
        ),
    ];
    properties.extend(match change {
        ChangeType::Created(kind) => vec![("resource", resource(kind))],
        ChangeType::Updated(kind) => vec![("resource", resource(kind)), ("changed_fields", changed_fields())],
        ChangeType::Deleted(kind) => vec![("resource", resource(kind)), ("removed", removed(kind))],
        ChangeType::RelationAdded(kind) | ChangeType::RelationRemoved(kind) => vec![("relation", relation(kind))],
        ChangeType::RelationUpdated(kind) => vec![("relation", relation(kind)), ("changed_fields", changed_fields())],
        ChangeType::EmbeddingUpdated(_) => {
            // `model` is null when the embedding was cleared.
            vec![
                ("model", opt_text()),
                ("dimension", json!({"type": "integer"})),
                ("cleared", json!({"type": "boolean"})),
            ]
        }
    });
    let mut schema = exactly(&properties);
    // Present only when the statement moved a quality score across 0.5 (docs/events.md, "Quality crossings").
    schema["properties"]["quality_crossings"] = json!({"type": "array", "items": exactly(&[
        ("resource_type", one_of(&["event", "speaker", "company"])),
        ("resource_id", id()),
        ("previous_score", json!({"type": "number"})),
        ("score", json!({"type": "number"})),
        ("direction", one_of(&["above", "below"])),
        ("reasons", json!({"type": "array", "items": text()})),
    ])});
    let mut document = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": dataschema(name),
        "title": format!("{name} v{VERSION}"),
        "description": format!("The payload of a `{name}` change (docs/events.md)."),
        "x-cloudevents": {
            "specversion": "1.0",
            "type": format!("eventdata.{name}"),
            "source": "/eventdata/orgs/<org id>",
            "subject": "the resource id (the event's for relation changes)",
            "datacontenttype": "application/json",
            "dataschema": dataschema(name),
        },
    });
    for (key, value) in schema.as_object().expect("an object schema") {
        document[key] = value.clone();
    }
    document
}
