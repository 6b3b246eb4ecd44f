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

    /// The change type's name, e.g. `event.speaker_added`.
    pub fn name(self) -> String {
        let relation = |r: RelationKind| match r {
            RelationKind::Speaker => "speaker",
            RelationKind::Company => "company",
            RelationKind::Topic => "topic",
        };
        match self {
            ChangeType::Created(kind) => format!("{}.created", kind.name()),
            ChangeType::Updated(kind) => format!("{}.updated", kind.name()),
            ChangeType::Deleted(kind) => format!("{}.deleted", kind.name()),
            ChangeType::EmbeddingUpdated(kind) => format!("{}.embedding_updated", kind.name()),
            ChangeType::RelationAdded(r) => format!("event.{}_added", relation(r)),
            ChangeType::RelationUpdated(r) => format!("event.{}_updated", relation(r)),
            ChangeType::RelationRemoved(r) => format!("event.{}_removed", relation(r)),
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
