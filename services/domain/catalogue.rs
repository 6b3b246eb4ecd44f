//! The catalogue's resources: their kinds and writable fields (the validation rules of the API).

use super::fields::{ColumnValue, Columns, Default, FieldSpec, Input, Rule, Violations, validate_create};

/// The resource kinds of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A conference or meetup.
    Event,
    /// A person speaking at events.
    Speaker,
    /// A host, sponsor, exhibitor or employer.
    Company,
    /// A subject of events.
    Topic,
    /// A media item of an event.
    Media,
}

/// Event statuses as stored.
pub const EVENT_STATUSES: &[&str] = &["draft", "scheduled", "live", "completed", "cancelled"];
/// Speaker roles as stored.
pub const SPEAKER_ROLES: &[&str] = &["keynote", "speaker", "panelist", "moderator"];
/// Company relations as stored.
pub const COMPANY_RELATIONS: &[&str] = &["host", "sponsor", "exhibitor", "partner"];
/// Media kinds as stored.
pub const MEDIA_KINDS: &[&str] = &["image", "video", "audio", "document", "slides", "other"];
/// Company size bands as stored.
pub const COMPANY_SIZES: &[&str] =
    &["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001-10000", "10001+"];

const EVENT_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("name", "name", Rule::Text { max: 500 }),
    FieldSpec::required("slug", "slug", Rule::Slug { max: 200 }),
    FieldSpec::optional("description", "description", Rule::Text { max: 20_000 }),
    FieldSpec::optional("status", "status", Rule::OneOf(EVENT_STATUSES)).with_default(Default::Str("draft")),
    FieldSpec::optional("start_time", "starts_at", Rule::Timestamp),
    FieldSpec::optional("end_time", "ends_at", Rule::Timestamp),
    FieldSpec::optional("timezone", "timezone", Rule::TimeZone),
    FieldSpec::optional("venue", "venue", Rule::Text { max: 500 }),
    FieldSpec::optional("city", "city", Rule::Text { max: 200 }),
    FieldSpec::optional("country", "country", Rule::Country),
    FieldSpec::optional("online_url", "online_url", Rule::Url),
    FieldSpec::optional("website_url", "website_url", Rule::Url),
    FieldSpec::optional("metadata", "metadata", Rule::Object).with_default(Default::EmptyObject),
];

const SPEAKER_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("name", "name", Rule::Text { max: 300 }),
    FieldSpec::optional("title", "title", Rule::Text { max: 300 }),
    FieldSpec::optional("bio", "bio", Rule::Text { max: 20_000 }),
    FieldSpec::optional("company_id", "company_id", Rule::Id),
    FieldSpec::optional("linkedin_url", "linkedin_url", Rule::Url),
    FieldSpec::optional("twitter_url", "twitter_url", Rule::Url),
    FieldSpec::optional("website_url", "website_url", Rule::Url),
    FieldSpec::optional("avatar_url", "avatar_url", Rule::Url),
    FieldSpec::optional("confidence_score", "confidence_score", Rule::Score).with_default(Default::Number(1.0)),
];

const COMPANY_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("name", "name", Rule::Text { max: 300 }),
    FieldSpec::optional("domain", "domain", Rule::Domain),
    FieldSpec::optional("description", "description", Rule::Text { max: 20_000 }),
    FieldSpec::optional("website_url", "website_url", Rule::Url),
    FieldSpec::optional("logo_url", "logo_url", Rule::Url),
    FieldSpec::optional("size", "size", Rule::OneOf(COMPANY_SIZES)),
    FieldSpec::optional("location", "location", Rule::Text { max: 300 }),
];

const TOPIC_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("name", "name", Rule::Text { max: 200 }),
    FieldSpec::optional("description", "description", Rule::Text { max: 20_000 }),
    FieldSpec::optional("parent_id", "parent_id", Rule::Id),
];

const MEDIA_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("event_id", "event_id", Rule::Id).immutable(),
    FieldSpec::required("kind", "kind", Rule::OneOf(MEDIA_KINDS)),
    FieldSpec::required("url", "url", Rule::Url),
    FieldSpec::optional("title", "title", Rule::Text { max: 500 }),
    FieldSpec::optional("mime_type", "mime_type", Rule::MimeType),
    FieldSpec::optional("bytes", "bytes", Rule::NonNegative),
    FieldSpec::optional("capture_time", "captured_at", Rule::Timestamp),
    FieldSpec::optional("metadata", "metadata", Rule::Object).with_default(Default::EmptyObject),
];

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [Kind::Event, Kind::Speaker, Kind::Company, Kind::Topic, Kind::Media];

    /// The name used in change types and messages (`event`, `speaker`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Speaker => "speaker",
            Kind::Company => "company",
            Kind::Topic => "topic",
            Kind::Media => "media",
        }
    }

    /// The writable fields.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            Kind::Event => EVENT_FIELDS,
            Kind::Speaker => SPEAKER_FIELDS,
            Kind::Company => COMPANY_FIELDS,
            Kind::Topic => TOPIC_FIELDS,
            Kind::Media => MEDIA_FIELDS,
        }
    }

    /// Rules over several fields of validated `columns` (both present in a create, or both named in an update;
    /// the database CHECKs cover the rest): an event does not end before it starts, nor end without a start.
    pub fn check_together(self, columns: &Columns) -> Violations {
        let mut violations = Violations::default();
        if self != Kind::Event {
            return violations;
        }
        // Outer None: the column is not being set; inner None: it is set to nothing.
        let time = |column: &str| columns.get(column).map(ColumnValue::as_time);
        match (time("starts_at"), time("ends_at")) {
            (Some(Some(start)), Some(Some(end))) if end < start => {
                violations.add("end_time", "must not be before start_time")
            }
            (Some(None), Some(Some(_))) => violations.add("end_time", "needs a start_time"),
            _ => {}
        }
        violations
    }

    /// [`Kind::check_together`] for a create, on the request's inputs: it runs even when other fields break their
    /// rules, so one answer lists every violation (only the fields the rule reads must be valid themselves).
    pub fn check_together_on_create(self, inputs: &[(&'static str, Input)]) -> Violations {
        let times: Vec<FieldSpec> =
            self.fields().iter().filter(|s| matches!(s.path, "start_time" | "end_time")).copied().collect();
        match validate_create(&times, inputs) {
            Ok(columns) if !times.is_empty() => self.check_together(&columns),
            _ => Violations::default(),
        }
    }

    /// Fields the API returns but never takes.
    pub fn output_only(self) -> &'static [&'static str] {
        match self {
            Kind::Speaker | Kind::Company | Kind::Topic => {
                &["id", "normalized_name", "etag", "create_time", "update_time"]
            }
            Kind::Event | Kind::Media => &["id", "etag", "create_time", "update_time"],
        }
    }
}

/// The kinds of relation between an event and another resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelationKind {
    /// `event_speakers`.
    Speaker,
    /// `event_companies`.
    Company,
    /// `event_topics`.
    Topic,
}

const EVENT_SPEAKER_FIELDS: &[FieldSpec] = &[
    FieldSpec::optional("role", "role", Rule::OneOf(SPEAKER_ROLES)).with_default(Default::Str("speaker")),
    FieldSpec::optional("talk_title", "talk_title", Rule::Text { max: 500 }),
];
const EVENT_COMPANY_FIELDS: &[FieldSpec] =
    &[FieldSpec::optional("relation", "relation", Rule::OneOf(COMPANY_RELATIONS))
        .with_default(Default::Str("sponsor"))];
const EVENT_TOPIC_FIELDS: &[FieldSpec] =
    &[FieldSpec::optional("relevance", "relevance", Rule::Score).with_default(Default::Number(1.0))];

impl RelationKind {
    /// The related resource kind.
    pub fn target(self) -> Kind {
        match self {
            RelationKind::Speaker => Kind::Speaker,
            RelationKind::Company => Kind::Company,
            RelationKind::Topic => Kind::Topic,
        }
    }

    /// The relation's own writable attributes.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            RelationKind::Speaker => EVENT_SPEAKER_FIELDS,
            RelationKind::Company => EVENT_COMPANY_FIELDS,
            RelationKind::Topic => EVENT_TOPIC_FIELDS,
        }
    }
}
