//! Keyset-paged listings (never OFFSET). Each query fetches `limit` rows after the cursor; the caller asks for one
//! more than the page size to know whether another page follows.

use chrono::{DateTime, Utc};

pub use crate::domain::queries::{EventFilter, QualityRange, SimpleFilter};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::confined;
use super::sql::{Fill, Sql};
use super::tables::{resource_in, resource_table};
use crate::domain::catalogue::Kind;
use crate::domain::resources::Resource;

/// Appends the bounds of `range` on `t.quality_score`.
fn push_quality(range: &QualityRange, q: &mut QueryBuilder<Postgres>) {
    if let Some(min) = range.min {
        q.push(" AND t.quality_score >= ").push_bind(min);
    }
    if let Some(max) = range.max {
        q.push(" AND t.quality_score <= ").push_bind(max);
    }
}

/// One listed row: the resource, its sort value (for the cursor) and id.
pub type ListedRow = (Resource, Option<DateTime<Utc>>, Uuid);

/// Decodes listed rows `(resource JSON, sort value, id)`, each resource straight from the row's bytes.
fn decode_rows<S>(kind: Kind, rows: Vec<PgRow>) -> Result<Vec<(Resource, S, Uuid)>, sqlx::Error>
where
    S: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    rows.iter().map(|row| Ok((resource_in(kind, row, 0)?, row.try_get(1)?, row.try_get(2)?))).collect()
}

/// A page of events after `(after_sort, after_id)`.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT events", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn events(
    conn: &mut PgConnection,
    org: Uuid,
    filter: &EventFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ListedRow>, sqlx::Error> {
    let rows = events_query("", org, filter, after, limit)
        .build()
        .persistent(crate::db::named_statements())
        .fetch_all(&mut *conn)
        .await?;
    decode_rows(Kind::Event, rows)
}

/// The plan PostgreSQL chooses for [`events`] with `filter` (`EXPLAIN`), one line per row: for operators and
/// for the test that every filter is served by an index.
pub async fn explain_events(conn: &mut PgConnection, org: Uuid, filter: &EventFilter) -> Result<String, sqlx::Error> {
    let lines: Vec<String> = events_query("EXPLAIN ", org, filter, None, 51)
        .build_query_scalar()
        .persistent(crate::db::named_statements())
        .fetch_all(&mut *conn)
        .await?;
    Ok(lines.join("\n"))
}

/// ` LIMIT <limit>`, written into the statement rather than bound. With a bound LIMIT, PostgreSQL prices the
/// generic plan for an unknown limit above the custom plan for the limit it sees, keeps choosing custom plans, and so
/// plans the statement anew on every call (most of its time for a page of events; docs/performance.md). A literal
/// costs one cached statement per page size in use, and the generic plan is the custom one.
pub(super) fn push_limit(q: &mut QueryBuilder<Postgres>, limit: i64) {
    q.push(Sql::template(" LIMIT {limit}", &[("limit", Fill::Number(limit))]));
}

fn events_query(
    prefix: &'static str,
    org: Uuid,
    filter: &EventFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryBuilder<Postgres> {
    let table = resource_table(Kind::Event);
    let sort = if filter.by_update_time { "t.updated_at" } else { "t.sort_start" };
    let mut q = confined::open(prefix, org);
    let sort: Fill = sort.into();
    q.push(Sql::template(
        "SELECT {projection}, {sort}, t.id FROM events t WHERE true",
        &[("projection", table.projection.into()), ("sort", sort.clone())],
    ));
    push_event_filters(&mut q, filter);
    if let Some((sort_value, id)) = after {
        q.push(Sql::template(" AND ({sort}, t.id) > (", &[("sort", sort.clone())]))
            .push_bind(sort_value)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(Sql::template(" ORDER BY {sort}, t.id", &[("sort", sort)]));
    push_limit(&mut q, limit);
    confined::close(&mut q);
    q
}

/// Appends ` AND ...` conditions for `filter` over the alias `t` of `events`.
pub fn push_event_filters(q: &mut QueryBuilder<Postgres>, filter: &EventFilter) {
    if let Some(from) = filter.start_from {
        q.push(" AND t.starts_at IS NOT NULL AND t.sort_start >= ").push_bind(from);
    }
    if let Some(before) = filter.start_before {
        q.push(" AND t.sort_start < ").push_bind(before);
    }
    if let Some(status) = filter.status {
        q.push(" AND t.status = ").push_bind(status);
    }
    push_quality(&filter.quality, q);
    if let Some(city) = &filter.city {
        q.push(" AND t.city = ").push_bind(city.clone());
    }
    if let Some(country) = &filter.country {
        q.push(" AND t.country = ").push_bind(country.clone());
    }
    for (relation, column, id) in [
        ("event_topics", "topic_id", filter.topic_id),
        ("event_speakers", "speaker_id", filter.speaker_id),
        ("event_companies", "company_id", filter.company_id),
    ] {
        if let Some(id) = id {
            let exists = " AND EXISTS (SELECT FROM {relation} x WHERE x.event_id = t.id AND x.{column} = ";
            q.push(Sql::template(exists, &[("relation", relation.into()), ("column", column.into())]))
                .push_bind(id)
                .push(")");
        }
    }
    if let Some(prefix) = &filter.name_prefix {
        push_prefix_range(q, "t.name_lower", prefix.to_lowercase());
    }
}

/// `column` starts with `prefix`, as a range of `~>=~` / `~<~`: unlike LIKE these operators are leakproof, so
/// under row-level security they are index conditions of the `text_pattern_ops` indexes (a LIKE is only a filter
/// there). `column` must be a plain column: a function over it (`lower(name)`) is not leakproof either. Byte-wise, the strings that start with `prefix` are exactly those from `prefix` up to `prefix` followed
/// by the highest code point.
fn push_prefix_range(q: &mut QueryBuilder<Postgres>, column: &'static str, prefix: String) {
    let upper = format!("{prefix}\u{10FFFF}");
    q.push(Sql::template(" AND {column} ~>=~ ", &[("column", column.into())]))
        .push_bind(prefix)
        .push(Sql::template(" AND {column} ~<~ ", &[("column", column.into())]))
        .push_bind(upper);
}

/// A page of `kind` ordered by id (UUIDv7: creation order) after `after`.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {}", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn by_id(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    filter: &SimpleFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ListedRow>, sqlx::Error> {
    let rows = by_id_query("", org, kind, filter, after, limit)
        .build()
        .persistent(crate::db::named_statements())
        .fetch_all(&mut *conn)
        .await?;
    decode_rows(kind, rows)
}

/// The plan of [`by_id`]'s statement (for the index tests).
pub async fn explain_by_id(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    filter: &SimpleFilter,
) -> Result<String, sqlx::Error> {
    let lines: Vec<String> = by_id_query("EXPLAIN ", org, kind, filter, None, 51)
        .build_query_scalar()
        .persistent(crate::db::named_statements())
        .fetch_all(&mut *conn)
        .await?;
    Ok(lines.join("\n"))
}

fn by_id_query(
    prefix: &'static str,
    org: Uuid,
    kind: Kind,
    filter: &SimpleFilter,
    after: Option<Uuid>,
    limit: i64,
) -> QueryBuilder<Postgres> {
    let table = resource_table(kind);
    let mut q = confined::open(prefix, org);
    q.push(Sql::template(
        "SELECT {projection}, NULL::timestamptz, t.id FROM {tbl} t WHERE true",
        &[("projection", table.projection.into()), ("tbl", table.table.into())],
    ));
    for (column, id) in &filter.equals {
        q.push(Sql::template(" AND t.{column} = ", &[("column", (*column).into())])).push_bind(*id);
    }
    if let Some(prefix) = &filter.name_prefix {
        // The leakproof range of push_prefix_range, over the normalized prefix.
        q.push(" AND t.normalized_name ~>=~ normalize_name(").push_bind(prefix.clone()).push(")");
        q.push(" AND t.normalized_name ~<~ (normalize_name(").push_bind(prefix.clone()).push(") || chr(1114111))");
    }
    push_quality(&filter.quality, &mut q);
    if let Some(id) = after {
        q.push(" AND t.id > ").push_bind(id);
    }
    q.push(" ORDER BY t.id");
    push_limit(&mut q, limit);
    confined::close(&mut q);
    q
}

/// One row of a quality-ordered listing: the resource, its score (for the cursor) and id.
pub type QualityRow = (Resource, f64, Uuid);

/// A page of `kind` (events, speakers or companies) ordered by `(quality_score, id)`, thinnest first, after the
/// cursor: an index range scan of `(org_id, quality_score, id)`.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {} by quality", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn by_quality(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    range: QualityRange,
    after: Option<(f64, Uuid)>,
    limit: i64,
) -> Result<Vec<QualityRow>, sqlx::Error> {
    let rows = quality_query("", org, kind, range, after, limit)
        .build()
        .persistent(crate::db::named_statements())
        .fetch_all(&mut *conn)
        .await?;
    decode_rows(kind, rows)
}

/// The plan of [`by_quality`]'s statement (for the index tests).
pub async fn explain_by_quality(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    range: QualityRange,
) -> Result<String, sqlx::Error> {
    let lines: Vec<String> = quality_query("EXPLAIN ", org, kind, range, None, 101)
        .build_query_scalar()
        .persistent(crate::db::named_statements())
        .fetch_all(&mut *conn)
        .await?;
    Ok(lines.join("\n"))
}

fn quality_query(
    prefix: &'static str,
    org: Uuid,
    kind: Kind,
    range: QualityRange,
    after: Option<(f64, Uuid)>,
    limit: i64,
) -> QueryBuilder<Postgres> {
    let table = resource_table(kind);
    let mut q = confined::open(prefix, org);
    q.push(Sql::template(
        "SELECT {projection}, t.quality_score, t.id FROM {tbl} t WHERE t.org_id = (SELECT current_org_id())",
        &[("projection", table.projection.into()), ("tbl", table.table.into())],
    ));
    push_quality(&range, &mut q);
    if let Some((score, id)) = after {
        q.push(" AND (t.quality_score, t.id) > (").push_bind(score).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY t.quality_score, t.id");
    push_limit(&mut q, limit);
    confined::close(&mut q);
    q
}

/// Whether a resource exists (for NOT_FOUND on listing the children of a missing parent).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {}", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn exists(conn: &mut PgConnection, org: Uuid, kind: Kind, id: Uuid) -> Result<bool, sqlx::Error> {
    let read =
        Sql::template("SELECT EXISTS (SELECT FROM {tbl} WHERE id = $1)", &[("tbl", resource_table(kind).table.into())]);
    sqlx::query_scalar(confined::wrap(read, 2))
        .persistent(crate::db::named_statements())
        .bind(id)
        .bind(confined::org_text(org))
        .fetch_one(&mut *conn)
        .await
}

/// Which of `ids` exist (in the caller's organization).
pub async fn existing_ids(conn: &mut PgConnection, kind: Kind, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = Sql::template("SELECT id FROM {tbl} WHERE id = ANY($1)", &[("tbl", resource_table(kind).table.into())]);
    sqlx::query_scalar(sql).persistent(crate::db::named_statements()).bind(ids).fetch_all(&mut *conn).await
}

/// Which of `values` the unique text column `column` of `kind` already holds (to name a batch's conflicting
/// item). `column` comes from the resource's field specs, never from a request.
pub async fn taken(
    conn: &mut PgConnection,
    kind: Kind,
    column: &str,
    values: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let Some(spec) = kind.fields().iter().find(|spec| spec.column == column) else {
        return Ok(Vec::new());
    };
    let sql = Sql::template(
        "SELECT {column} FROM {tbl} WHERE {column} = ANY($1)",
        &[("column", spec.column.into()), ("tbl", resource_table(kind).table.into())],
    );
    sqlx::query_scalar(sql).persistent(crate::db::named_statements()).bind(values).fetch_all(&mut *conn).await
}
