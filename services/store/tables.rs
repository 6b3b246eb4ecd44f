//! How each resource and relation kind maps onto its table: the projection that renders a row as the API's
//! JSON (field names as in the proto), and what a delete cascades to. The JSON a statement returns is exactly the
//! JSON the change payload carries.

use serde_json::Value;
use sqlx::postgres::{PgRow, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Postgres, Row, TypeInfo, ValueRef};

use crate::domain::catalogue::{Kind, RelationKind};
use crate::domain::resources::{Relation, Resource};

/// A resource of `kind` as its projection rendered it (JSON text), decoded strictly (`domain::resources`): a
/// projection and its type that disagree fail every read of that kind, as a decode error (INTERNAL), never a silent
/// default.
fn decode_resource_text(kind: Kind, json: &str) -> Result<Resource, sqlx::Error> {
    Resource::from_json_text(kind, json)
        .map_err(|e| sqlx::Error::Decode(format!("a stored {}: {e}", kind.name()).into()))
}

/// The resource of `kind` in column `column` of `row`, decoded straight from the bytes PostgreSQL sent: one pass
/// over the text, where decoding a `Json<Box<RawValue>>` makes two (its own check that the text is JSON, then the
/// decode) and copies it in between.
pub fn resource_in(kind: Kind, row: &PgRow, column: usize) -> Result<Resource, sqlx::Error> {
    let JsonText(text) = row.try_get(column)?;
    decode_resource_text(kind, text)
}

/// JSON text borrowed from a row, not checked: what reads it checks it.
struct JsonText<'r>(&'r str);

impl sqlx::Type<Postgres> for JsonText<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("jsonb")
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <sqlx::types::Json<()> as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for JsonText<'r> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let binary_jsonb = value.format() == PgValueFormat::Binary && value.type_info().name() == "JSONB";
        let bytes = value.as_bytes()?;
        // Binary jsonb is a format version (1) and then the text.
        let text = match (binary_jsonb, bytes.split_first()) {
            (false, _) => bytes,
            (true, Some((1, text))) => text,
            (true, _) => return Err("an unknown jsonb format version".into()),
        };
        Ok(JsonText(std::str::from_utf8(text)?))
    }
}

/// A relation of `kind` as its projection rendered it, decoded strictly.
pub fn decode_relation(kind: RelationKind, json: Value) -> Result<Relation, sqlx::Error> {
    Relation::from_json(kind, json)
        .map_err(|e| sqlx::Error::Decode(format!("a stored {} relation: {e}", kind.target().name()).into()))
}

/// A resource table.
pub struct ResourceTable {
    /// Table name.
    pub table: &'static str,
    /// `jsonb_build_object(...)` over the alias `t`: the resource as the API returns it.
    pub projection: &'static str,
    /// JSON of what deleting the row with id `$1` cascades to, evaluated before the delete.
    pub removed_on_delete: &'static str,
}

/// The table of a resource kind.
pub fn resource_table(kind: Kind) -> &'static ResourceTable {
    match kind {
        Kind::Event => &EVENTS,
        Kind::Speaker => &SPEAKERS,
        Kind::Company => &COMPANIES,
        Kind::Topic => &TOPICS,
        Kind::Media => &MEDIA,
    }
}

const EVENTS: ResourceTable = ResourceTable {
    table: "events",
    projection: "jsonb_build_object('id', t.id, 'name', t.name, 'slug', t.slug, 'description', t.description, \
        'status', t.status, 'start_time', t.starts_at, 'end_time', t.ends_at, 'timezone', t.timezone, \
        'venue', t.venue, 'city', t.city, 'country', t.country, 'online_url', t.online_url, \
        'website_url', t.website_url, 'metadata', t.metadata, 'etag', t.version::text, \
        'create_time', t.created_at, 'update_time', t.updated_at, \
        'quality', jsonb_build_object('score', t.quality_score, 'reasons', to_jsonb(t.quality_reasons)))",
    removed_on_delete: "jsonb_build_object(\
        'media', (SELECT coalesce(jsonb_agg(x.id ORDER BY x.id), '[]') FROM media x WHERE x.event_id = $1), \
        'speaker_ids', (SELECT coalesce(jsonb_agg(x.speaker_id ORDER BY x.speaker_id), '[]') FROM event_speakers x WHERE x.event_id = $1), \
        'company_ids', (SELECT coalesce(jsonb_agg(x.company_id ORDER BY x.company_id), '[]') FROM event_companies x WHERE x.event_id = $1), \
        'topic_ids', (SELECT coalesce(jsonb_agg(x.topic_id ORDER BY x.topic_id), '[]') FROM event_topics x WHERE x.event_id = $1))",
};

const SPEAKERS: ResourceTable = ResourceTable {
    table: "speakers",
    projection: "jsonb_build_object('id', t.id, 'name', t.name, 'normalized_name', t.normalized_name, \
        'title', t.title, 'bio', t.bio, 'company_id', t.company_id, 'linkedin_url', t.linkedin_url, \
        'twitter_url', t.twitter_url, 'website_url', t.website_url, 'avatar_url', t.avatar_url, \
        'confidence_score', t.confidence_score, 'etag', t.version::text, 'create_time', t.created_at, \
        'update_time', t.updated_at, \
        'quality', jsonb_build_object('score', t.quality_score, 'reasons', to_jsonb(t.quality_reasons)))",
    removed_on_delete: "jsonb_build_object(\
        'event_ids', (SELECT coalesce(jsonb_agg(x.event_id ORDER BY x.event_id), '[]') FROM event_speakers x WHERE x.speaker_id = $1))",
};

const COMPANIES: ResourceTable = ResourceTable {
    table: "companies",
    projection: "jsonb_build_object('id', t.id, 'name', t.name, 'normalized_name', t.normalized_name, \
        'domain', t.domain, 'description', t.description, 'website_url', t.website_url, 'logo_url', t.logo_url, \
        'size', t.size, 'location', t.location, 'etag', t.version::text, 'create_time', t.created_at, \
        'update_time', t.updated_at, \
        'quality', jsonb_build_object('score', t.quality_score, 'reasons', to_jsonb(t.quality_reasons)))",
    removed_on_delete: "jsonb_build_object(\
        'event_ids', (SELECT coalesce(jsonb_agg(x.event_id ORDER BY x.event_id), '[]') FROM event_companies x WHERE x.company_id = $1), \
        'employee_ids', (SELECT coalesce(jsonb_agg(x.id ORDER BY x.id), '[]') FROM speakers x WHERE x.company_id = $1))",
};

const TOPICS: ResourceTable = ResourceTable {
    table: "topics",
    projection: "jsonb_build_object('id', t.id, 'name', t.name, 'normalized_name', t.normalized_name, \
        'description', t.description, 'parent_id', t.parent_id, 'etag', t.version::text, \
        'create_time', t.created_at, 'update_time', t.updated_at)",
    removed_on_delete: "jsonb_build_object(\
        'event_ids', (SELECT coalesce(jsonb_agg(x.event_id ORDER BY x.event_id), '[]') FROM event_topics x WHERE x.topic_id = $1), \
        'child_topic_ids', (SELECT coalesce(jsonb_agg(x.id ORDER BY x.id), '[]') FROM topics x WHERE x.parent_id = $1))",
};

const MEDIA: ResourceTable = ResourceTable {
    table: "media",
    projection: "jsonb_build_object('id', t.id, 'event_id', t.event_id, 'kind', t.kind, 'url', t.url, \
        'title', t.title, 'mime_type', t.mime_type, 'bytes', t.bytes, 'capture_time', t.captured_at, \
        'metadata', t.metadata, 'etag', t.version::text, 'create_time', t.created_at, 'update_time', t.updated_at)",
    removed_on_delete: "'{}'::jsonb",
};

/// A relation table between events and another kind.
pub struct RelationTable {
    /// Table name.
    pub table: &'static str,
    /// The column referencing the other resource.
    pub other_column: &'static str,
    /// `jsonb_build_object(...)` over the alias `r`.
    pub projection: &'static str,
    /// Key under which a listing embeds the related resource (`speaker`, `company`, `topic`).
    pub embed_key: &'static str,
}

/// The table of a relation kind.
pub fn relation_table(kind: RelationKind) -> &'static RelationTable {
    match kind {
        RelationKind::Speaker => &EVENT_SPEAKERS,
        RelationKind::Company => &EVENT_COMPANIES,
        RelationKind::Topic => &EVENT_TOPICS,
    }
}

const EVENT_SPEAKERS: RelationTable = RelationTable {
    table: "event_speakers",
    other_column: "speaker_id",
    projection: "jsonb_build_object('event_id', r.event_id, 'speaker_id', r.speaker_id, 'role', r.role, \
        'talk_title', r.talk_title, 'create_time', r.created_at, 'update_time', r.updated_at)",
    embed_key: "speaker",
};

const EVENT_COMPANIES: RelationTable = RelationTable {
    table: "event_companies",
    other_column: "company_id",
    projection: "jsonb_build_object('event_id', r.event_id, 'company_id', r.company_id, 'relation', r.relation, \
        'create_time', r.created_at, 'update_time', r.updated_at)",
    embed_key: "company",
};

const EVENT_TOPICS: RelationTable = RelationTable {
    table: "event_topics",
    other_column: "topic_id",
    projection: "jsonb_build_object('event_id', r.event_id, 'topic_id', r.topic_id, 'relevance', r.relevance, \
        'create_time', r.created_at, 'update_time', r.updated_at)",
    embed_key: "topic",
};
