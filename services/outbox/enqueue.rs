//! Writing changes. The catalogue's statements embed [`insert_changes_sql`] as a data-modifying CTE, so a data
//! change and its outbox rows are one statement: they commit together or not at all, in one round trip.

use serde::Serialize;
use uuid::Uuid;

use crate::domain::change::ChangeType;
use crate::store::sql::{Fill, Sql};

/// Who made a change and in which trace; the same for every change of a request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeContext {
    /// The API key that made the change.
    pub actor_key_id: Option<Uuid>,
    /// W3C `traceparent` of the request.
    pub traceparent: Option<String>,
    /// W3C `tracestate` of the request.
    pub tracestate: Option<String>,
}

impl ChangeContext {
    /// The context as the single JSON parameter [`insert_changes_sql`] reads.
    pub fn to_param(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// SQL that inserts one change per row of `source`, a relation with columns `aggregate_id uuid` and
/// `body jsonb` (the change-specific part of the payload: `resource`, `changed_fields`, ...).
///
/// The change type and its aggregate type are written into the statement (from the closed list in
/// `domain::change`); `$context_param` is the parameter holding [`ChangeContext::to_param`]. The payload is `body` plus
/// `org_id`, `resource_type`, `resource_id` and `trace`.
pub fn insert_changes_sql(source: Fill, change: ChangeType, context_param: usize) -> Sql {
    let context = Sql::template("(SELECT {context}::jsonb AS v) c", &[("context", Fill::Param(context_param))]);
    changes_sql(source, change, context)
}

/// Like [`insert_changes_sql`], each change with a context of its own: `source` has a third column,
/// `context jsonb` ([`ChangeContext::to_param`] of the request that made the row), for a statement that carries
/// the rows of several requests.
pub fn insert_changes_each_sql(source: Fill, change: ChangeType) -> Sql {
    changes_sql(source, change, Sql::text("LATERAL (SELECT s.context AS v) c"))
}

fn changes_sql(source: Fill, change: ChangeType, context: Sql) -> Sql {
    Sql::template(
        "INSERT INTO outbox (org_id, aggregate_type, aggregate_id, change_type, payload, actor_key_id, traceparent, tracestate)
         SELECT current_org_id(), '{aggregate_type}', s.aggregate_id, '{change_type}',
                s.body || jsonb_build_object(
                  'org_id', current_org_id(), 'resource_type', '{aggregate_type}', 'resource_id', s.aggregate_id,
                  'trace', jsonb_strip_nulls(jsonb_build_object('traceparent', c.v->>'traceparent', 'tracestate', c.v->>'tracestate'))),
                (c.v->>'actor_key_id')::uuid, c.v->>'traceparent', c.v->>'tracestate'
         FROM {source} s, {context}",
        &[
            ("aggregate_type", change.aggregate().name().into()),
            ("change_type", change.name().into()),
            ("source", source),
            ("context", context.into()),
        ],
    )
}
