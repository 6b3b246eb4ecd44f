//! What a read asks for: list filters, the end a relation listing starts from, the edges a traversal may follow,
//! which changes a feed reader wants. Plain values, built by the API layer from requests and turned into SQL by the
//! store.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::new_resources::NewAttributes;

/// Filters of ListEvents; every one is served by an index (docs/schema.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Events starting at or after.
    pub start_from: Option<DateTime<Utc>>,
    /// Events starting before.
    pub start_before: Option<DateTime<Utc>>,
    /// Stored status name.
    pub status: Option<&'static str>,
    /// Exact city.
    pub city: Option<String>,
    /// Country code.
    pub country: Option<String>,
    /// Tagged with this topic.
    pub topic_id: Option<Uuid>,
    /// With this speaker.
    pub speaker_id: Option<Uuid>,
    /// With this company.
    pub company_id: Option<Uuid>,
    /// Name prefix, case-insensitive.
    pub name_prefix: Option<String>,
    /// Order by update time instead of start time.
    pub by_update_time: bool,
    /// Bounds on the quality score.
    pub quality: QualityRange,
}

/// Bounds on `quality_score` (inclusive); served by the `(org_id, quality_score, id)` indexes when the listing is
/// ordered by quality.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QualityRange {
    /// Lowest score.
    pub min: Option<f64>,
    /// Highest score.
    pub max: Option<f64>,
}

/// Filters of the id-ordered listings.
#[derive(Debug, Clone, Default)]
pub struct SimpleFilter {
    /// `column = id` conditions (e.g. speakers by `company_id`, media by `event_id`).
    pub equals: Vec<(&'static str, Uuid)>,
    /// Prefix of `normalized_name` (speakers, companies, topics).
    pub name_prefix: Option<String>,
    /// Bounds on the quality score (events, speakers, companies).
    pub quality: QualityRange,
}

/// Why a listing ordered by quality refuses a filter: only the quality bounds combine with that order (the
/// `(org_id, quality_score, id)` indexes serve nothing else).
pub const QUALITY_ORDER_TAKES_ONLY_BOUNDS: &str =
    "ordering by quality score combines with max_quality_score and min_quality_score only";

impl EventFilter {
    /// Whether the filter holds quality bounds at most (what ordering by quality allows).
    pub fn only_quality(&self) -> bool {
        *self == EventFilter { quality: self.quality, ..Default::default() }
    }
}

impl SimpleFilter {
    /// Whether the filter holds quality bounds at most (what ordering by quality allows).
    pub fn only_quality(&self) -> bool {
        self.equals.is_empty() && self.name_prefix.is_none()
    }
}

/// Which end of a relation a listing starts from.
#[derive(Debug, Clone, Copy)]
pub enum From {
    /// An event's speakers/companies/topics, each with the related resource embedded.
    Event,
    /// A speaker's/company's/topic's events, each with the event embedded.
    Other,
}

/// A relation to add: the event, the other side, and its attributes.
pub struct NewRelation {
    pub event_id: Uuid,
    pub other_id: Uuid,
    pub attributes: NewAttributes,
}

/// Edge kinds of the event network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// speaker — event.
    SpeaksAt,
    /// company — event.
    TakesPartIn,
    /// event — topic.
    About,
    /// speaker — company (current employer).
    WorksAt,
}

/// Which changes a feed reader wants.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Resource types (`event`, ...); empty means all.
    pub resource_types: Vec<String>,
    /// One resource only.
    pub resource_id: Option<Uuid>,
    /// One actor (API key) only.
    pub actor_key_id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_quality_bounds_combine_with_the_quality_order() {
        let quality = QualityRange { min: Some(0.2), max: None };
        assert!(EventFilter { quality, ..Default::default() }.only_quality());
        assert!(!EventFilter { country: Some("DE".into()), quality, ..Default::default() }.only_quality());
        assert!(SimpleFilter { quality, ..Default::default() }.only_quality());
        assert!(!SimpleFilter { name_prefix: Some("a".into()), ..Default::default() }.only_quality());
        assert!(!SimpleFilter { equals: vec![("event_id", Uuid::nil())], ..Default::default() }.only_quality());
    }
}
