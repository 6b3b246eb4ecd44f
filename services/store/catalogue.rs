//! Create, read, update and delete of catalogue resources, generic over the kind. Each mutation is one statement
//! that changes the data and writes its outbox row (a data-modifying CTE), so both commit or neither does.

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::sql::{Built, Fill, Sql};
use super::tables::{resource_in, resource_table};
use crate::domain::catalogue::Kind;
use crate::domain::change::ChangeType;
use crate::domain::fields::Columns;
use crate::domain::resources::Resource;
use crate::outbox::enqueue::{ChangeContext, insert_changes_each_sql, insert_changes_sql};

/// An idempotency record to claim together with a create (AIP-155).
pub struct IdempotencyClaim<'a> {
    /// The caller's request id.
    pub request_id: Uuid,
    /// The method it was sent to.
    pub method: &'a str,
    /// SHA-256 of the validated request.
    pub request_hash: [u8; 32],
}

/// Inserts `rows` (JSON objects with `id` and column values) and one `<kind>.created` change per row; returns the
/// created resources in the order of `rows`.
/// With a `claim`, nothing is inserted when the request id is already recorded: returns `None` then.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("INSERT {} + outbox", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "INSERT"))]
pub async fn create(
    conn: &mut PgConnection,
    kind: Kind,
    rows: &[Value],
    claim: Option<&IdempotencyClaim<'_>>,
    context: &ChangeContext,
) -> Result<Option<Vec<Resource>>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().filter_map(|r| r["id"].as_str().and_then(|s| s.parse().ok())).collect();
    static BUILT: Built<{ Kind::ALL.len() }> = Built::new();
    let created = sqlx::query(BUILT.get(kind as usize, || create_sql(kind)))
        .persistent(crate::db::named_statements())
        .bind(Value::Array(rows.to_vec()))
        .bind(claim.map(|c| c.request_id))
        .bind(claim.map(|c| c.method))
        .bind(claim.map(|c| c.request_hash.to_vec()))
        .bind(&ids)
        .bind(context.to_param())
        .fetch_all(&mut *conn)
        .await?;
    if created.is_empty() && !rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(in_order(decode_all(kind, created)?, &ids)))
}

/// Like [`create`] for the rows of several requests (single creates that went to the database together): row `i`
/// was asked for with `contexts[i]`, and its change carries it. No idempotency claim: such creates have none.
///
/// The statement sets the organization itself (`org`), so it needs no transaction around it: on a connection
/// with none open it is its own, committed when it ends, in one round trip where `BEGIN` with the organization,
/// the statement and `COMMIT` took three. Inside a transaction (one with a statement limit) it sets the same
/// organization again.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("INSERT {} + outbox", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "INSERT"))]
pub async fn create_each(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    rows: Vec<Value>,
    contexts: &[ChangeContext],
) -> Result<Vec<Resource>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().filter_map(|r| r["id"].as_str().and_then(|s| s.parse().ok())).collect();
    let by_id = ids.iter().zip(contexts).map(|(id, context)| (id.to_string(), context.to_param()));
    static BUILT: Built<{ Kind::ALL.len() }> = Built::new();
    let created = sqlx::query(BUILT.get(kind as usize, || create_each_sql(kind)))
        .persistent(crate::db::named_statements())
        .bind(Value::Array(rows))
        .bind(Value::Object(by_id.collect()))
        .bind(super::confined::org_text(org))
        .fetch_all(&mut *conn)
        .await?;
    Ok(in_order(decode_all(kind, created)?, &ids))
}

/// The statement of [`create`]: `$1` the rows (a JSON array), `$2`..`$5` the idempotency claim (request id, method,
/// request hash, resource ids; all NULL without one), `$6` the change context. Public so the benchmarks run the
/// service's own statement.
pub fn create_sql(kind: Kind) -> Sql {
    let claimed_input = "claim AS (
           INSERT INTO idempotency_records (org_id, request_id, method, request_hash, resource_ids)
           SELECT current_org_id(), $2, $3, $4, $5 WHERE $2::uuid IS NOT NULL
           ON CONFLICT (org_id, request_id) DO NOTHING
           RETURNING 1
         ), input AS (
           SELECT p.* FROM jsonb_populate_recordset(NULL::{tbl}, $1) p
           WHERE $2::uuid IS NULL OR EXISTS (SELECT FROM claim)
         )";
    let changes = insert_changes_sql(
        Fill::Text("(SELECT aggregate_id, jsonb_build_object('resource', resource) AS body FROM src)"),
        ChangeType::Created(kind),
        6,
    );
    create_statement(kind, claimed_input, "", changes)
}

/// The statement of [`create_each`]: `$1` the rows (a JSON array), `$2` a JSON object of each row's change context
/// by its id, `$3` the organization (text).
///
/// The organization is set (transaction-local) before the first row is inserted: the rows to insert are a join
/// with the one row of `org`, which computes the setting, so no row reaches the insert, its `current_org_id()` or
/// its row-level-security checks (whose `(SELECT current_org_id())` is an InitPlan, computed when first needed,
/// that is at the first row) before the setting is made. Should that order ever change, the statement fails
/// closed: without the setting `current_org_id()` is NULL, `org_id` is NOT NULL and the policies admit nothing.
/// `tests/integration/row_level_security.rs` checks the rows land in the caller's organization and that nothing of
/// the setting outlives the statement.
pub fn create_each_sql(kind: Kind) -> Sql {
    let changes = insert_changes_each_sql(
        Fill::Text("(SELECT aggregate_id, jsonb_build_object('resource', resource) AS body, context FROM src)"),
        ChangeType::Created(kind),
    );
    let input = "org AS MATERIALIZED (SELECT set_config('app.org_id', $3::text, true) AS org),
         input AS (SELECT p.* FROM org, jsonb_populate_recordset(NULL::{tbl}, $1) p WHERE org.org IS NOT NULL)";
    create_statement(kind, input, ", $2::jsonb -> t.id::text AS context", changes)
}

/// A create statement: `input` (CTEs ending in `input`, the rows to insert; `{tbl}` is the table), the insert,
/// `src` (the created rows' ids and projections, with `src_more` columns) and its `changes`.
fn create_statement(kind: Kind, input: &'static str, src_more: &'static str, changes: Sql) -> Sql {
    let table = resource_table(kind);
    let columns: Vec<&'static str> = kind.fields().iter().map(|f| f.column).collect();
    let input = Sql::template(input, &[("tbl", table.table.into())]);
    Sql::template(
        "WITH {input}, created AS (
           INSERT INTO {tbl} (id, org_id, {columns}) SELECT id, current_org_id(), {columns} FROM input RETURNING *
         ), src AS (
           SELECT t.id AS aggregate_id, {projection} AS resource{src_more} FROM created t
         ), changes AS (
           {changes}
         )
         SELECT resource FROM src",
        &[
            ("input", input.into()),
            ("tbl", table.table.into()),
            ("columns", Sql::each(&columns, "{c}", ", ").into()),
            ("projection", table.projection.into()),
            ("src_more", Fill::Text(src_more)),
            ("changes", changes.into()),
        ],
    )
}

/// The resources with these ids that exist in `org`, in the order of `ids` (one confined statement).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {}", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn get_many(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    ids: &[Uuid],
) -> Result<Vec<Resource>, sqlx::Error> {
    // One id (every Get call) is compared with `=`. With `= ANY($1)` PostgreSQL prices the generic plan for an
    // array of unknown length (ten elements) above the custom plan for the one element it sees, keeps choosing the
    // custom plan, and so plans the statement anew on every call: most of PostgreSQL's time per Get (149 µs of CPU
    // a call against 33 µs for the same statement with a generic plan; docs/performance.md).
    static BUILT: Built<{ 2 * Kind::ALL.len() }> = Built::new();
    let one = ids.len() == 1;
    let sql = BUILT.get(2 * kind as usize + usize::from(one), || get_many_sql(kind, one));
    let query = sqlx::query(sql).persistent(crate::db::named_statements());
    let query = if let [id] = ids { query.bind(*id) } else { query.bind(ids) };
    let found = query.bind(super::confined::org_text(org)).fetch_all(&mut *conn).await?;
    Ok(in_order(decode_all(kind, found)?, ids))
}

/// The statement of [`get_many`]: `$1` the id (`one`) or the ids, `$2` the organization.
pub fn get_many_sql(kind: Kind, one: bool) -> Sql {
    let table = resource_table(kind);
    let read = Sql::template(
        "SELECT {projection} FROM {tbl} t WHERE t.id {compare}",
        &[
            ("projection", table.projection.into()),
            ("tbl", table.table.into()),
            ("compare", if one { "= $1" } else { "= ANY($1)" }.into()),
        ],
    );
    super::confined::wrap(read, 2)
}

/// What an update did.
#[derive(Debug)]
pub enum UpdateOutcome {
    /// Changed; the new state.
    Updated(Box<Resource>),
    /// The values were already as asked: nothing written, no change emitted; the current state.
    Unchanged(Box<Resource>),
    /// No such resource.
    NotFound,
    /// The resource's etag differs from the expected one.
    EtagMismatch,
}

/// Sets `columns` on resource `id` (if its version is `expected_version`, when given) and emits
/// `<kind>.updated` with the API paths of the fields that really changed.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("UPDATE {} + outbox", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "UPDATE"))]
pub async fn update(
    conn: &mut PgConnection,
    kind: Kind,
    id: Uuid,
    columns: &Columns,
    expected_version: Option<i64>,
    context: &ChangeContext,
) -> Result<UpdateOutcome, sqlx::Error> {
    let updated = sqlx::query(update_sql(kind, &columns.names()))
        .persistent(crate::db::named_statements())
        .bind(id)
        .bind(Value::Object(columns.to_json()))
        .bind(expected_version)
        .bind(context.to_param())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = updated {
        return Ok(UpdateOutcome::Updated(Box::new(resource_in(kind, &row, 0)?)));
    }
    Ok(match current_state(conn, kind, id).await? {
        None => UpdateOutcome::NotFound,
        Some((version, _)) if expected_version.is_some_and(|v| v != version) => UpdateOutcome::EtagMismatch,
        Some((_, resource)) => UpdateOutcome::Unchanged(Box::new(resource)),
    })
}

/// The statement of [`update`] setting `columns`: `$1` the id, `$2` the values (a JSON object keyed by column), `$3`
/// the expected version or NULL, `$4` the change context.
pub fn update_sql(kind: Kind, columns: &[&'static str]) -> Sql {
    let table = resource_table(kind);
    Sql::template(
        "WITH old AS (
           SELECT {projection} AS resource FROM {tbl} t WHERE t.id = $1
         ), updated AS (
           UPDATE {tbl} t SET {assignments}, version = t.version + 1, updated_at = now()
           FROM jsonb_populate_record(NULL::{tbl}, $2) p
           WHERE t.id = $1 AND ($3::bigint IS NULL OR t.version = $3)
             AND ({current}) IS DISTINCT FROM ({wanted})
           RETURNING t.id AS aggregate_id, {projection} AS resource
         ), src AS (
           SELECT u.aggregate_id, u.resource, jsonb_build_object('resource', u.resource, 'changed_fields',
             (SELECT coalesce(jsonb_agg(n.key ORDER BY n.key), '[]') FROM jsonb_each(u.resource) n
              WHERE n.key NOT IN ('etag', 'update_time') AND n.value IS DISTINCT FROM o.resource -> n.key)) AS body
           FROM updated u, old o
         ), changes AS (
           {changes}
         )
         SELECT resource FROM src",
        &[
            ("projection", table.projection.into()),
            ("tbl", table.table.into()),
            ("assignments", Sql::each(columns, "{c} = p.{c}", ", ").into()),
            ("current", Sql::each(columns, "t.{c}", ", ").into()),
            ("wanted", Sql::each(columns, "p.{c}", ", ").into()),
            ("changes", insert_changes_sql(Fill::Text("src"), ChangeType::Updated(kind), 4).into()),
        ],
    )
}

/// What a delete did.
#[derive(Debug)]
pub enum DeleteOutcome {
    /// Deleted; the last state.
    Deleted(Box<Resource>),
    /// No such resource.
    NotFound,
    /// The resource's etag differs from the expected one.
    EtagMismatch,
}

/// Deletes resource `id` (if its version is `expected_version`, when given) and emits `<kind>.deleted` with the
/// last state and what the delete cascaded to.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("DELETE {} + outbox", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "DELETE"))]
pub async fn delete(
    conn: &mut PgConnection,
    kind: Kind,
    id: Uuid,
    expected_version: Option<i64>,
    context: &ChangeContext,
) -> Result<DeleteOutcome, sqlx::Error> {
    static BUILT: Built<{ Kind::ALL.len() }> = Built::new();
    let deleted = sqlx::query(BUILT.get(kind as usize, || delete_sql(kind)))
        .persistent(crate::db::named_statements())
        .bind(id)
        .bind(expected_version)
        .bind(context.to_param())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = deleted {
        return Ok(DeleteOutcome::Deleted(Box::new(resource_in(kind, &row, 0)?)));
    }
    Ok(match current_state(conn, kind, id).await? {
        None => DeleteOutcome::NotFound,
        Some(_) => DeleteOutcome::EtagMismatch,
    })
}

/// The statement of [`delete`]: `$1` the id, `$2` the expected version or NULL, `$3` the change context.
pub fn delete_sql(kind: Kind) -> Sql {
    let table = resource_table(kind);
    Sql::template(
        "WITH removed AS (
           SELECT {removed} AS removed
         ), deleted AS (
           DELETE FROM {tbl} t WHERE t.id = $1 AND ($2::bigint IS NULL OR t.version = $2)
           RETURNING t.id AS aggregate_id, {projection} AS resource
         ), src AS (
           SELECT d.aggregate_id, d.resource, jsonb_build_object('resource', d.resource, 'removed', r.removed) AS body
           FROM deleted d, removed r
         ), changes AS (
           {changes}
         )
         SELECT resource FROM src",
        &[
            ("removed", table.removed_on_delete.into()),
            ("tbl", table.table.into()),
            ("projection", table.projection.into()),
            ("changes", insert_changes_sql(Fill::Text("src"), ChangeType::Deleted(kind), 3).into()),
        ],
    )
}

/// A resource's version and state, if it exists.
async fn current_state(conn: &mut PgConnection, kind: Kind, id: Uuid) -> Result<Option<(i64, Resource)>, sqlx::Error> {
    let table = resource_table(kind);
    let sql = Sql::template(
        "SELECT t.version, {projection} AS resource FROM {tbl} t WHERE t.id = $1",
        &[("projection", table.projection.into()), ("tbl", table.table.into())],
    );
    let row = sqlx::query(sql).persistent(crate::db::named_statements()).bind(id).fetch_optional(&mut *conn).await?;
    row.map(|r| Ok((r.try_get("version")?, resource_in(kind, &r, 1)?))).transpose()
}

/// Finds an existing resource's id by a unique natural key (`normalized_name` compared with `normalize_name($1)`,
/// or `domain`).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {}", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn find_id_by_natural_key(
    conn: &mut PgConnection,
    kind: Kind,
    key: NaturalKey<'_>,
) -> Result<Option<Uuid>, sqlx::Error> {
    let (predicate, value) = match key {
        NaturalKey::Name(name) => ("normalized_name = normalize_name($1)", name),
        NaturalKey::Domain(domain) => ("domain = $1", domain),
    };
    let sql = Sql::template(
        "SELECT id FROM {tbl} WHERE {predicate}",
        &[("tbl", resource_table(kind).table.into()), ("predicate", predicate.into())],
    );
    sqlx::query_scalar(sql).persistent(crate::db::named_statements()).bind(value).fetch_optional(&mut *conn).await
}

/// A unique natural key of a speaker, company or topic.
#[derive(Debug, Clone, Copy)]
pub enum NaturalKey<'a> {
    /// The name, normalized by the database.
    Name(&'a str),
    /// A company's domain.
    Domain(&'a str),
}

fn decode_all(kind: Kind, rows: Vec<PgRow>) -> Result<Vec<Resource>, sqlx::Error> {
    rows.iter().map(|row| resource_in(kind, row, 0)).collect()
}

/// Orders `resources` as `ids` (an id named twice gets its resource twice); resources whose id is not in `ids` are
/// dropped.
fn in_order(resources: Vec<Resource>, ids: &[Uuid]) -> Vec<Resource> {
    let by_id: std::collections::HashMap<Uuid, Resource> = resources.into_iter().map(|r| (r.id(), r)).collect();
    ids.iter().filter_map(|id| by_id.get(id).cloned()).collect()
}
