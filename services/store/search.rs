//! Search SQL: nearest neighbours over the HNSW indexes (with pgvector's iterative scans so filtered queries still
//! find k rows) or exactly for small organizations, ranked full text through a RUM index, and trigram name lookup.
//! Full text and trigram run in SECURITY DEFINER functions (migration 0005): their operators are not leakproof, so
//! beneath the row-level-security policy their indexes could not be used.

use pgvector::Vector;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::lists::{EventFilter, push_event_filters};
use super::sql::{Fill, Sql};
use super::tables::{resource_in, resource_table};
use crate::domain::catalogue::Kind;
use crate::domain::resources::{Event, Resource};

/// The settings of a vector search, set by the statement itself before its scans start (`super::confined`): the
/// HNSW search breadth, and iterative scans so filtered searches continue past the first `ef_search` candidates
/// (`relaxed_order`: results are re-sorted by distance afterwards). The HNSW scan reads both when it fetches its
/// first row. Confined statements are never parallel, which vector searches want: the planner gave the exact
/// branch (at most 2,000 rows, skipped by its one-time filter for large organizations) a parallel plan, and
/// starting its workers cost 5–8 ms a call whether the branch ran or not (seen on the tenants bench).
pub fn vector_search_settings(ef_search: u32) -> [(&'static str, String); 2] {
    [("hnsw.ef_search", ef_search.to_string()), ("hnsw.iterative_scan", "relaxed_order".to_string())]
}

/// What a nearest-neighbour search is near to.
#[derive(Debug, Clone, Copy)]
pub enum NearestTo<'a> {
    /// A vector from the caller.
    Vector(&'a [f32]),
    /// The stored embedding of this resource (of the searched kind), which is left out of the results. The vector
    /// is read inside the statement, so it never travels to the service and back.
    Stored(Uuid),
}

/// Organizations with at most this many embedded rows of a kind are searched exactly (every vector compared, in
/// the org's partial index order) instead of through the HNSW index, which holds every organization's vectors: a
/// small tenant beside a large one would otherwise walk the large one's graph (docs/search.md, "Per tenant").
pub const EXACT_SCAN_MAX_ROWS: i64 = 2000;

/// The `k` resources of `kind` nearest to `target` (cosine distance), with event filters when searching events.
/// Returns each resource and its distance, nearest first; empty when a stored target has no embedding (or
/// does not exist: the caller tells those apart). One statement: it counts the organization's embedded rows (at
/// most [`EXACT_SCAN_MAX_ROWS`] + 1, index-only) and runs either the exact scan or the HNSW scan, confined to
/// `org` with the vector search settings for `ef_search` (one round trip).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {} nearest", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn nearest(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    target: NearestTo<'_>,
    filter: Option<&EventFilter>,
    k: i64,
    ef_search: u32,
) -> Result<Vec<(Resource, f64)>, sqlx::Error> {
    let rows = nearest_query("", org, kind, target, filter, k, ef_search)
        .build()
        .persistent(crate::db::named_statements())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|row| Ok((resource_in(kind, row, 0)?, row.try_get(1)?))).collect()
}

/// The plan of [`nearest`]'s statement (for the plan tests and operators).
pub async fn explain_nearest(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    target: NearestTo<'_>,
    filter: Option<&EventFilter>,
    k: i64,
    ef_search: u32,
) -> Result<String, sqlx::Error> {
    let mut query = nearest_query("EXPLAIN ", org, kind, target, filter, k, ef_search);
    let lines: Vec<String> =
        query.build_query_scalar().persistent(crate::db::named_statements()).fetch_all(&mut *conn).await?;
    Ok(lines.join("\n"))
}

fn nearest_query(
    prefix: &'static str,
    org: Uuid,
    kind: Kind,
    target: NearestTo<'_>,
    filter: Option<&EventFilter>,
    k: i64,
    ef_search: u32,
) -> QueryBuilder<Postgres> {
    let mut q = super::confined::open_with(prefix, org, &vector_search_settings(ef_search));
    push_nearest(&mut q, resource_table(kind).projection, kind, target, filter, k);
    super::confined::close(&mut q);
    q
}

/// Pushes the nearest-neighbour statement: rows `(resource, distance)`, nearest first, where `resource` is
/// `columns` (an expression over the table aliased `t`).
fn push_nearest(
    q: &mut QueryBuilder<Postgres>,
    columns: &'static str,
    kind: Kind,
    target: NearestTo<'_>,
    filter: Option<&EventFilter>,
    k: i64,
) {
    let table = resource_table(kind);
    // Materialized scalars are evaluated once, before the scans, so the HNSW index sees a constant and the
    // size decides which branch runs at all (a one-time filter).
    q.push("WITH target AS MATERIALIZED (SELECT ");
    match target {
        NearestTo::Vector(values) => {
            q.push_bind(Vector::from(values.to_vec())).push("::vector AS v)");
        }
        NearestTo::Stored(id) => {
            q.push(Sql::template("embedding AS v FROM {tbl} WHERE id = ", &[("tbl", table.table.into())]))
                .push_bind(id)
                .push(")");
        }
    }
    q.push(Sql::template(
        ", size AS MATERIALIZED (SELECT count(*) AS n FROM (SELECT FROM {tbl} WHERE embedding IS NOT NULL LIMIT {n}) c)
         SELECT resource, distance FROM (",
        &[("tbl", table.table.into()), ("n", Fill::Number(EXACT_SCAN_MAX_ROWS + 1))],
    ));
    // The index branch leaves `embedding IS NOT NULL` out (the HNSW index holds no NULLs; the outer filter drops
    // any NULL distance a sort would bring): with it, the organization's partial index of embedded rows plus a
    // sort of all of them was a plan too, and PostgreSQL, estimating a large tenant's embedded rows as the average
    // tenant's, took it (128 ms a call for 20,000 vectors against a few for the index). Its scan returns rows in
    // distance order, so only the `k` it returns are rendered.
    q.push(Sql::template(
        "(SELECT {columns} AS resource, t.embedding <=> (SELECT v FROM target) AS distance FROM {tbl} t
          WHERE (SELECT n FROM size) > {most}",
        &[("columns", columns.into()), ("tbl", table.table.into()), ("most", Fill::Number(EXACT_SCAN_MAX_ROWS))],
    ));
    push_nearest_conditions(q, target, filter);
    q.push(" ORDER BY t.embedding <=> (SELECT v FROM target)");
    super::lists::push_limit(q, k);
    // The exact branch computes each distance once, in a subquery the `OFFSET 0` keeps whole (so the sort above
    // it cannot be read as the HNSW index's order), keeps the `k` nearest, and renders only those. Rendering in
    // the same scan as the sort built the projection of every row of the organization and computed each distance
    // twice (the output and the sort key), fetching the vector from TOAST each time: 17 ms a call for 1,000
    // vectors (docs/performance.md, "Per-tenant vector search").
    q.push(Sql::template(
        ") UNION ALL (SELECT {columns} AS resource, nearest.distance FROM (
           SELECT d.id, d.distance FROM (
             SELECT t.id, t.embedding <=> (SELECT v FROM target) AS distance FROM {tbl} t
             WHERE t.embedding IS NOT NULL AND (SELECT n FROM size) <= {most}",
        &[("columns", columns.into()), ("tbl", table.table.into()), ("most", Fill::Number(EXACT_SCAN_MAX_ROWS))],
    ));
    push_nearest_conditions(q, target, filter);
    q.push(" OFFSET 0) d ORDER BY d.distance");
    super::lists::push_limit(q, k);
    q.push(Sql::template(") nearest JOIN {tbl} t ON t.id = nearest.id)", &[("tbl", table.table.into())]));
    q.push(") r WHERE distance IS NOT NULL ORDER BY distance");
}

/// The conditions both branches of [`push_nearest`] add to their scan of `t`: the stored target itself left out,
/// and the event filters.
fn push_nearest_conditions(q: &mut QueryBuilder<Postgres>, target: NearestTo<'_>, filter: Option<&EventFilter>) {
    if let NearestTo::Stored(id) = target {
        q.push(" AND t.id <> ").push_bind(id);
        q.push(" AND EXISTS (SELECT FROM target WHERE v IS NOT NULL)");
    }
    if let Some(filter) = filter {
        push_event_filters(q, filter);
    }
}

/// The candidates of a hybrid search, in one statement: the ids of the `limit` best full-text matches of `text`
/// (as [`text`] ranks them, but `search_events_text_candidates` cuts ties at the last distance where RUM's scan
/// does instead of reading all of them: fusion does not page; migration 0012) and of the `limit` events nearest
/// to `vector` (as [`nearest`] finds them), each list best first. Nothing is rendered: only the fused page is (with [`super::catalogue::get_many`]). Confined to
/// `org` with the vector search settings (one round trip).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT events hybrid candidates", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn hybrid_candidates(
    conn: &mut PgConnection,
    org: Uuid,
    text: Option<&str>,
    vector: Option<&[f32]>,
    filter: &EventFilter,
    limit: i64,
    ef_search: u32,
) -> Result<(Vec<Uuid>, Vec<Uuid>), sqlx::Error> {
    if text.is_none() && vector.is_none() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut q = super::confined::open_with("", org, &vector_search_settings(ef_search));
    q.push("SELECT leg, id FROM (");
    if let Some(text) = text {
        q.push("SELECT 1 AS leg, s.id, s.ord AS rank FROM search_events_text_candidates(");
        q.push_bind(text.to_owned()).push(", ");
        q.push_bind(i32::try_from(limit).unwrap_or(i32::MAX)).push(", ");
        q.push_bind(filter.start_from).push(", ").push_bind(filter.start_before).push(", ");
        q.push_bind(filter.status).push(", ").push_bind(filter.city.clone()).push(", ");
        q.push_bind(filter.country.clone()).push(", ").push_bind(filter.topic_id).push(", ");
        q.push_bind(filter.speaker_id).push(", ").push_bind(filter.company_id);
        q.push(") WITH ORDINALITY AS s(id, distance, plan, ord)");
    }
    if let Some(values) = vector {
        if text.is_some() {
            q.push(" UNION ALL ");
        }
        q.push("SELECT 2 AS leg, v.resource AS id, row_number() OVER (ORDER BY v.distance) AS rank FROM (");
        push_nearest(&mut q, "t.id", Kind::Event, NearestTo::Vector(values), Some(filter), limit);
        q.push(") v");
    }
    q.push(") c ORDER BY leg, rank");
    super::confined::close(&mut q);
    let rows: Vec<(i32, Uuid)> =
        q.build_query_as().persistent(crate::db::named_statements()).fetch_all(&mut *conn).await?;
    let (text_ids, vector_ids) = rows.into_iter().partition::<Vec<_>, _>(|(leg, _)| *leg == 1);
    Ok((text_ids.into_iter().map(|(_, id)| id).collect(), vector_ids.into_iter().map(|(_, id)| id).collect()))
}

/// One full-text hit: the event, rank, distance (the cursor's sort value), snippet, id.
pub type TextRow = (Event, f64, f64, String, Uuid);

/// The rank reported for an event whose name equals the query: above every ranked match.
pub const EXACT_NAME_RANK: f64 = 1000.0;

/// Where a later page of full text starts: after every match of a smaller distance and, at `distance`, after
/// `id` in id order (from the first when `None`) and other than the `skip` ids (the first page's rows there).
#[derive(Debug, Clone, Copy)]
pub struct TextAfter<'a> {
    /// The last row's distance.
    pub distance: f64,
    /// The last row's id, when its page was ordered by id within its distance (every page but the first).
    pub id: Option<Uuid>,
    /// Rows at `distance` already returned out of id order (by the first page).
    pub skip: &'a [Uuid],
}

/// Events matching `query` (web-search syntax), best first, after the cursor. The ranking runs in
/// `search_events_text` (a SECURITY DEFINER function, so the RUM index is used under row-level security; migration
/// 0005): an event whose name equals the query first, then RUM's order; the first page takes RUM's first rows
/// without reading the rest of its last distance's tie, later pages go on in (distance, id) order (migration
/// 0015). Only the page is rendered here. One round trip: the statement confines itself to `org`
/// (`super::confined`).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT events full text", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn text(
    conn: &mut PgConnection,
    org: Uuid,
    query: &str,
    filter: &EventFilter,
    after: Option<TextAfter<'_>>,
    limit: i64,
    snippets: bool,
) -> Result<Vec<TextRow>, sqlx::Error> {
    // ts_headline re-parses each document (tens of microseconds a row): only for pages shown to people.
    let snippet = if snippets {
        "ts_headline('english', t.name || coalesce(' — ' || t.description, ''), websearch_to_tsquery('english', $1),
           'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=8')"
    } else {
        "''"
    };
    let sql = Sql::template(
        "WITH top AS (SELECT s.id, s.distance, s.ord FROM search_events_text($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
             $11, $12, false, $14) WITH ORDINALITY AS s(id, distance, plan, ord))
         SELECT {projection}, CASE WHEN top.distance = 0 THEN {exact_rank} ELSE 1 / top.distance END, top.distance,
                {snippet}, t.id
         FROM top JOIN events t ON t.id = top.id ORDER BY top.ord",
        &[
            ("projection", resource_table(Kind::Event).projection.into()),
            ("exact_rank", Fill::Float(EXACT_NAME_RANK)),
            ("snippet", snippet.into()),
        ],
    );
    let rows: Vec<(sqlx::types::Json<Event>, f64, f64, String, Uuid)> = bind_text_search(
        sqlx::query_as(super::confined::wrap(sql, 13)).persistent(crate::db::named_statements()),
        query,
        filter,
        after,
        limit,
    )
    .bind(super::confined::org_text(org))
    // $14, after the confinement's $13: the ids to skip.
    .bind(after.map(|a| a.skip.to_vec()))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(event, rank, distance, snippet, id)| (event.0, rank, distance, snippet, id)).collect())
}

/// The plan `search_events_text` runs for these arguments, as its owner plans it (for the plan tests).
pub async fn explain_text(conn: &mut PgConnection, query: &str, filter: &EventFilter) -> Result<String, sqlx::Error> {
    let lines = sqlx::query_scalar!(
        r#"SELECT plan AS "plan!"
           FROM search_events_text($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, true)"#,
        query,
        None::<f64>,
        None::<Uuid>,
        21,
        filter.start_from,
        filter.start_before,
        filter.status,
        filter.city.as_deref(),
        filter.country.as_deref(),
        filter.topic_id,
        filter.speaker_id,
        filter.company_id,
    )
    .persistent(crate::db::named_statements())
    .fetch_all(&mut *conn)
    .await?;
    Ok(lines.join("\n"))
}

/// The plan `search_events_text_candidates` (hybrid search's text list) runs for these arguments, as its owner
/// plans it (for the plan tests).
pub async fn explain_text_candidates(
    conn: &mut PgConnection,
    query: &str,
    filter: &EventFilter,
    limit: i32,
) -> Result<String, sqlx::Error> {
    let lines = sqlx::query_scalar!(
        r#"SELECT plan AS "plan!"
           FROM search_events_text_candidates($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true)"#,
        query,
        limit,
        filter.start_from,
        filter.start_before,
        filter.status,
        filter.city.as_deref(),
        filter.country.as_deref(),
        filter.topic_id,
        filter.speaker_id,
        filter.company_id,
    )
    .persistent(crate::db::named_statements())
    .fetch_all(&mut *conn)
    .await?;
    Ok(lines.join("\n"))
}

fn bind_text_search<'q, O>(
    query_as: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    query: &str,
    filter: &EventFilter,
    after: Option<TextAfter<'_>>,
    limit: i64,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    query_as
        .bind(query.to_owned())
        .bind(after.map(|a| a.distance))
        .bind(after.and_then(|a| a.id))
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind(filter.start_from)
        .bind(filter.start_before)
        .bind(filter.status)
        .bind(filter.city.clone())
        .bind(filter.country.clone())
        .bind(filter.topic_id)
        .bind(filter.speaker_id)
        .bind(filter.company_id)
}

/// A name candidate: id, name, normalized name, similarity.
pub type NameRow = (Uuid, String, String, f64);

/// Speakers, companies or topics whose normalized name is trigram-similar to `name` (at least `min_similarity`),
/// most similar first: `lookup_names` (SECURITY DEFINER, migration 0005) so the trigram index is used under
/// row-level security. One round trip: the statement confines itself to `org` (`super::confined`).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {} by trigram", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn similar_names(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    name: &str,
    min_similarity: f64,
    limit: i64,
) -> Result<Vec<NameRow>, sqlx::Error> {
    let read = Sql::text("SELECT id, name, normalized_name, similarity FROM lookup_names($1, $2, $3, $4)");
    sqlx::query_as(super::confined::wrap(read, 5))
        .persistent(crate::db::named_statements())
        .bind(resource_table(kind).table)
        .bind(name)
        .bind(min_similarity)
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind(super::confined::org_text(org))
        .fetch_all(&mut *conn)
        .await
}

/// The plan `lookup_names` runs for these arguments, as its owner plans it (for the plan tests).
pub async fn explain_names(conn: &mut PgConnection, kind: Kind, name: &str) -> Result<String, sqlx::Error> {
    let lines = sqlx::query_scalar!(
        r#"SELECT plan AS "plan!" FROM lookup_names($1, $2, 0.3, 10, true)"#,
        resource_table(kind).table,
        name
    )
    .persistent(crate::db::named_statements())
    .fetch_all(&mut *conn)
    .await?;
    Ok(lines.join("\n"))
}
