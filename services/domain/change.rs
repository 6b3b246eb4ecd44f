//! The closed list of change types (`<resource>.<change>`), documented with example payloads in docs/events.md.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::catalogue::{Kind, RelationKind};

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// `<kind>.created`: payload `resource`.
    Created(Kind),
    /// `<kind>.updated`: payload `resource` and `changed_fields`.
    Updated(Kind),
    /// `<kind>.deleted`: payload `resource` (the last state) and `removed` (what the delete cascaded to).
    Deleted(Kind),
    /// `<kind>.embedding_updated`: payload `model`, `dimension` (0 when cleared), `cleared`.
    EmbeddingUpdated(Kind),
    /// `event.<relation>_added`: payload `relation`.
    RelationAdded(RelationKind),
    /// `event.<relation>_updated`: payload `relation` and `changed_fields`.
    RelationUpdated(RelationKind),
    /// `event.<relation>_removed`: payload `relation` (the last state).
    RelationRemoved(RelationKind),
}

impl ChangeType {
    /// The resource type the change is filed under (the aggregate).
    pub fn aggregate(self) -> Kind {
        match self {
            ChangeType::Created(kind)
            | ChangeType::Updated(kind)
            | ChangeType::Deleted(kind)
            | ChangeType::EmbeddingUpdated(kind) => kind,
            ChangeType::RelationAdded(_) | ChangeType::RelationUpdated(_) | ChangeType::RelationRemoved(_) => {
                Kind::Event
            }
        }
    }

    /// Every change type the service emits, in the order of the closed list (docs/events.md).
    pub fn all() -> Vec<ChangeType> {
        let mut types: Vec<ChangeType> = Kind::ALL
            .into_iter()
            .flat_map(|k| [ChangeType::Created(k), ChangeType::Updated(k), ChangeType::Deleted(k)])
            .collect();
        for r in [RelationKind::Speaker, RelationKind::Company, RelationKind::Topic] {
            types.extend([
                ChangeType::RelationAdded(r),
                ChangeType::RelationUpdated(r),
                ChangeType::RelationRemoved(r),
            ]);
        }
        types.extend([Kind::Event, Kind::Speaker, Kind::Topic].map(ChangeType::EmbeddingUpdated));
        types
    }

    /// The change type's name, e.g. `event.speaker_added`. Static, so statements may carry it as text.
    pub fn name(self) -> &'static str {
        use ChangeType::*;
        use Kind::*;
        match self {
            Created(Event) => "event.created",
            Created(Speaker) => "speaker.created",
            Created(Company) => "company.created",
            Created(Topic) => "topic.created",
            Created(Media) => "media.created",
            Updated(Event) => "event.updated",
            Updated(Speaker) => "speaker.updated",
            Updated(Company) => "company.updated",
            Updated(Topic) => "topic.updated",
            Updated(Media) => "media.updated",
            Deleted(Event) => "event.deleted",
            Deleted(Speaker) => "speaker.deleted",
            Deleted(Company) => "company.deleted",
            Deleted(Topic) => "topic.deleted",
            Deleted(Media) => "media.deleted",
            EmbeddingUpdated(Event) => "event.embedding_updated",
            EmbeddingUpdated(Speaker) => "speaker.embedding_updated",
            EmbeddingUpdated(Company) => "company.embedding_updated",
            EmbeddingUpdated(Topic) => "topic.embedding_updated",
            EmbeddingUpdated(Media) => "media.embedding_updated",
            RelationAdded(RelationKind::Speaker) => "event.speaker_added",
            RelationAdded(RelationKind::Company) => "event.company_added",
            RelationAdded(RelationKind::Topic) => "event.topic_added",
            RelationUpdated(RelationKind::Speaker) => "event.speaker_updated",
            RelationUpdated(RelationKind::Company) => "event.company_updated",
            RelationUpdated(RelationKind::Topic) => "event.topic_updated",
            RelationRemoved(RelationKind::Speaker) => "event.speaker_removed",
            RelationRemoved(RelationKind::Company) => "event.company_removed",
            RelationRemoved(RelationKind::Topic) => "event.topic_removed",
        }
    }
}

/// One change as the relay publishes it.
#[derive(Debug, Clone)]
pub struct LoggedChange {
    /// Log position.
    pub position: i64,
    /// Writing transaction.
    pub txid: i64,
    /// The change's UUID (the AMQP message id).
    pub change_id: Uuid,
    /// Organization.
    pub org_id: Uuid,
    /// `event`, `speaker`, ...
    pub aggregate_type: String,
    /// The resource's id.
    pub aggregate_id: Uuid,
    /// `<resource>.<change>`.
    pub change_type: String,
    /// JSON payload, as text.
    pub payload: String,
    /// The API key that made it.
    pub actor_key_id: Option<Uuid>,
    /// W3C trace context of the request.
    pub traceparent: Option<String>,
    /// W3C trace state of the request.
    pub tracestate: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_its_aggregate_and_what_happened() {
        for change in ChangeType::all() {
            let (aggregate, what) = change.name().split_once('.').expect("a dot");
            assert_eq!(aggregate, change.aggregate().name(), "{change:?}");
            let expected = match change {
                ChangeType::Created(_) => "created".to_owned(),
                ChangeType::Updated(_) => "updated".to_owned(),
                ChangeType::Deleted(_) => "deleted".to_owned(),
                ChangeType::EmbeddingUpdated(_) => "embedding_updated".to_owned(),
                ChangeType::RelationAdded(r) => format!("{}_added", r.target().name()),
                ChangeType::RelationUpdated(r) => format!("{}_updated", r.target().name()),
                ChangeType::RelationRemoved(r) => format!("{}_removed", r.target().name()),
            };
            assert_eq!(what, expected, "{change:?}");
        }
    }
}
