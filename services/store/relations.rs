//! Relations between an event and its speakers, companies and topics. Mutations emit `event.<relation>_*`
//! changes in the same statement, filed under the event.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::sql::{Fill, Sql};
use super::tables::{RelationTable, decode_relation, relation_table, resource_table};
use crate::domain::catalogue::{Kind, RelationKind};
use crate::domain::change::ChangeType;
use crate::domain::fields::Columns;
use crate::domain::new_resources::NewAttributes;
use crate::domain::resources::Relation;
use crate::outbox::enqueue::{ChangeContext, insert_changes_sql};

pub use crate::domain::queries::{From, NewRelation};

/// The fills every relation statement has: its table, the other side's column, its projection, and the changes of
/// `change` inserted from `src` with the context as parameter `context_param`.
fn fills(kind: RelationKind, change: ChangeType, context_param: usize) -> Vec<(&'static str, Fill)> {
    let RelationTable { table, other_column, projection, .. } = relation_table(kind);
    vec![
        ("table", (*table).into()),
        ("other_column", (*other_column).into()),
        ("projection", (*projection).into()),
        ("changes", insert_changes_sql(Fill::Text("src"), change, context_param).into()),
    ]
}

/// Adds the relation with `attributes`; emits `event.<relation>_added`.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("INSERT {} + outbox", relation_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "INSERT"))]
pub async fn add(
    conn: &mut PgConnection,
    kind: RelationKind,
    event_id: Uuid,
    other_id: Uuid,
    attributes: &NewAttributes,
    context: &ChangeContext,
) -> Result<Relation, sqlx::Error> {
    let added = sqlx::query_scalar(add_sql(kind, &attributes.columns()))
        .persistent(crate::db::named_statements())
        .bind(event_id)
        .bind(other_id)
        .bind(Value::Object(attributes.to_row()))
        .bind(context.to_param())
        .fetch_one(&mut *conn)
        .await?;
    decode_relation(kind, added)
}

/// The statement of [`add`] setting attribute columns `names`: `$1` the event, `$2` the other side, `$3` the
/// attributes (a JSON object), `$4` the change context. Public so the benchmarks run the service's own statement.
pub fn add_sql(kind: RelationKind, names: &[&'static str]) -> Sql {
    let mut fills = fills(kind, ChangeType::RelationAdded(kind), 4);
    fills.push(("columns", Sql::each(names, ", {c}", "").into()));
    fills.push(("picked", Sql::each(names, ", p.{c}", "").into()));
    Sql::template(
        "WITH added AS (
           INSERT INTO {table} (org_id, event_id, {other_column}{columns})
           SELECT current_org_id(), $1, $2{picked} FROM jsonb_populate_record(NULL::{table}, $3) p
           RETURNING *
         ), src AS (
           SELECT r.event_id AS aggregate_id, {projection} AS resource,
                  jsonb_build_object('relation', {projection}) AS body
           FROM added r
         ), changes AS ({changes})
         SELECT resource FROM src",
        &fills,
    )
}

/// Adds every relation of `relations` and emits one `event.<relation>_added` each, in one statement, so the count
/// triggers run once per batch, not once per relation. Returns the relations in the order given.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("INSERT {} + outbox", relation_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "INSERT"))]
pub async fn add_many(
    conn: &mut PgConnection,
    kind: RelationKind,
    relations: &[NewRelation],
    context: &ChangeContext,
) -> Result<Vec<Relation>, sqlx::Error> {
    let RelationTable { other_column, .. } = relation_table(kind);
    let rows: Vec<Value> = relations
        .iter()
        .map(|relation| {
            let mut row = relation.attributes.to_row();
            row.insert("event_id".into(), Value::from(relation.event_id.to_string()));
            row.insert((*other_column).into(), Value::from(relation.other_id.to_string()));
            Value::Object(row)
        })
        .collect();
    // Every row holds every attribute column of the kind (defaults applied when the relation was parsed).
    let names: Vec<&'static str> = kind.fields().iter().map(|f| f.column).collect();
    let resources: Vec<Value> = sqlx::query_scalar(add_many_sql(kind, &names))
        .persistent(crate::db::named_statements())
        .bind(Value::Array(rows))
        .bind(context.to_param())
        .fetch_all(&mut *conn)
        .await?;
    let mut added = std::collections::HashMap::<(Uuid, Uuid), Relation>::new();
    for resource in resources {
        let relation = decode_relation(kind, resource)?;
        added.insert(relation.ends(), relation);
    }
    Ok(relations.iter().filter_map(|r| added.remove(&(r.event_id, r.other_id))).collect())
}

/// The statement of [`add_many`] for items setting attribute columns `names`: `$1` the rows (a JSON array of
/// objects with `event_id`, the other side's id and the attributes), `$2` the change context.
fn add_many_sql(kind: RelationKind, names: &[&'static str]) -> Sql {
    let mut fills = fills(kind, ChangeType::RelationAdded(kind), 2);
    fills.push(("columns", Sql::each(names, ", {c}", "").into()));
    fills.push(("picked", Sql::each(names, ", p.{c}", "").into()));
    Sql::template(
        "WITH added AS (
           INSERT INTO {table} (org_id, event_id, {other_column}{columns})
           SELECT current_org_id(), p.event_id, p.{other_column}{picked}
           FROM jsonb_populate_recordset(NULL::{table}, $1) p
           RETURNING *
         ), src AS (
           SELECT r.event_id AS aggregate_id, {projection} AS resource,
                  jsonb_build_object('relation', {projection}) AS body
           FROM added r
         ), changes AS ({changes})
         SELECT resource FROM src",
        &fills,
    )
}

/// Which of the pairs (`event_ids[i]`, `other_ids[i]`) are related already (to name a batch's conflicting item).
pub async fn existing_pairs(
    conn: &mut PgConnection,
    kind: RelationKind,
    event_ids: &[Uuid],
    other_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    let RelationTable { table, other_column, .. } = relation_table(kind);
    let sql = Sql::template(
        "SELECT r.event_id, r.{other_column} FROM {table} r
         JOIN unnest($1::uuid[], $2::uuid[]) AS p (event_id, other_id)
           ON r.event_id = p.event_id AND r.{other_column} = p.other_id",
        &[("table", (*table).into()), ("other_column", (*other_column).into())],
    );
    sqlx::query_as(sql)
        .persistent(crate::db::named_statements())
        .bind(event_ids)
        .bind(other_ids)
        .fetch_all(&mut *conn)
        .await
}

/// Sets attribute `columns` of an existing relation; emits `event.<relation>_updated` when something changed.
/// `None` when the relation does not exist.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("UPDATE {} + outbox", relation_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "UPDATE"))]
pub async fn update(
    conn: &mut PgConnection,
    kind: RelationKind,
    event_id: Uuid,
    other_id: Uuid,
    columns: &Columns,
    context: &ChangeContext,
) -> Result<Option<Relation>, sqlx::Error> {
    let updated: Option<Value> = sqlx::query_scalar(update_sql(kind, &columns.names()))
        .persistent(crate::db::named_statements())
        .bind(event_id)
        .bind(other_id)
        .bind(Value::Object(columns.to_json()))
        .bind(context.to_param())
        .fetch_optional(&mut *conn)
        .await?;
    match updated {
        Some(resource) => Ok(Some(decode_relation(kind, resource)?)),
        None => get(conn, kind, event_id, other_id).await,
    }
}

/// The statement of [`update`] setting attribute columns `names`: `$1` the event, `$2` the other side, `$3` the
/// attributes (a JSON object), `$4` the change context.
pub fn update_sql(kind: RelationKind, names: &[&'static str]) -> Sql {
    let mut fills = fills(kind, ChangeType::RelationUpdated(kind), 4);
    fills.push(("assignments", Sql::each(names, "{c} = p.{c}", ", ").into()));
    fills.push(("current", Sql::each(names, "r.{c}", ", ").into()));
    fills.push(("wanted", Sql::each(names, "p.{c}", ", ").into()));
    Sql::template(
        "WITH old AS (
           SELECT {projection} AS resource FROM {table} r WHERE r.event_id = $1 AND r.{other_column} = $2
         ), updated AS (
           UPDATE {table} r SET {assignments}, updated_at = now()
           FROM jsonb_populate_record(NULL::{table}, $3) p
           WHERE r.event_id = $1 AND r.{other_column} = $2 AND ({current}) IS DISTINCT FROM ({wanted})
           RETURNING r.*
         ), src AS (
           SELECT r.event_id AS aggregate_id, {projection} AS resource,
                  jsonb_build_object('relation', {projection}, 'changed_fields',
                    (SELECT coalesce(jsonb_agg(n.key ORDER BY n.key), '[]') FROM jsonb_each({projection}) n
                     WHERE n.key <> 'update_time' AND n.value IS DISTINCT FROM o.resource -> n.key)) AS body
           FROM updated r, old o
         ), changes AS ({changes})
         SELECT resource FROM src",
        &fills,
    )
}

/// Removes a relation; emits `event.<relation>_removed` with its last state. `None` when it did not exist.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("DELETE {} + outbox", relation_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "DELETE"))]
pub async fn remove(
    conn: &mut PgConnection,
    kind: RelationKind,
    event_id: Uuid,
    other_id: Uuid,
    context: &ChangeContext,
) -> Result<Option<Relation>, sqlx::Error> {
    let sql = Sql::template(
        "WITH removed AS (
           DELETE FROM {table} r WHERE r.event_id = $1 AND r.{other_column} = $2 RETURNING r.*
         ), src AS (
           SELECT r.event_id AS aggregate_id, {projection} AS resource,
                  jsonb_build_object('relation', {projection}) AS body
           FROM removed r
         ), changes AS ({changes})
         SELECT resource FROM src",
        &fills(kind, ChangeType::RelationRemoved(kind), 3),
    );
    let removed: Option<Value> = sqlx::query_scalar(sql)
        .persistent(crate::db::named_statements())
        .bind(event_id)
        .bind(other_id)
        .bind(context.to_param())
        .fetch_optional(&mut *conn)
        .await?;
    removed.map(|json| decode_relation(kind, json)).transpose()
}

/// One relation, if it exists.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {}", relation_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn get(
    conn: &mut PgConnection,
    kind: RelationKind,
    event_id: Uuid,
    other_id: Uuid,
) -> Result<Option<Relation>, sqlx::Error> {
    let RelationTable { table, other_column, projection, .. } = relation_table(kind);
    let sql = Sql::template(
        "SELECT {projection} FROM {table} r WHERE r.event_id = $1 AND r.{other_column} = $2",
        &[("projection", (*projection).into()), ("table", (*table).into()), ("other_column", (*other_column).into())],
    );
    let found: Option<Value> = sqlx::query_scalar(sql)
        .persistent(crate::db::named_statements())
        .bind(event_id)
        .bind(other_id)
        .fetch_optional(&mut *conn)
        .await?;
    found.map(|json| decode_relation(kind, json)).transpose()
}

/// One page of relations from `from`'s side with id `id`, after `after` (the id at the other end), `limit` rows.
/// Returns each relation (with the other end embedded) and the other end's id (the keyset).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {}", relation_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn list(
    conn: &mut PgConnection,
    org: Uuid,
    kind: RelationKind,
    from: From,
    id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<(Relation, Uuid)>, sqlx::Error> {
    let RelationTable { table, other_column, projection, embed_key } = relation_table(kind);
    let (anchor, far, far_kind, key) = match from {
        From::Event => ("event_id", *other_column, kind.target(), *embed_key),
        From::Other => (*other_column, "event_id", Kind::Event, "event"),
    };
    let far_table = resource_table(far_kind);
    let sql = Sql::template(
        "SELECT {projection} || jsonb_build_object('{key}', {far_projection}) AS relation, r.{far} AS far_id
         FROM {table} r JOIN {far_tbl} t ON t.id = r.{far}
         WHERE r.{anchor} = $1 AND ($2::uuid IS NULL OR r.{far} > $2)
         ORDER BY r.{far} LIMIT $3",
        &[
            ("projection", (*projection).into()),
            ("key", key.into()),
            ("far_projection", far_table.projection.into()),
            ("table", (*table).into()),
            ("far_tbl", far_table.table.into()),
            ("far", far.into()),
            ("anchor", anchor.into()),
        ],
    );
    let rows: Vec<(Value, Uuid)> = sqlx::query_as(super::confined::wrap(sql, 4))
        .persistent(crate::db::named_statements())
        .bind(id)
        .bind(after)
        .bind(limit)
        .bind(super::confined::org_text(org))
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(|(json, far)| Ok((decode_relation(kind, json)?, far))).collect()
}
