//! Search SQL: nearest neighbours over the HNSW indexes (with pgvector's iterative scans so filtered queries still
//! find k rows), full text with `websearch_to_tsquery`, and trigram name lookup.

use pgvector::Vector;
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::lists::{EventFilter, push_event_filters};
use super::tables::resource_table;
use crate::domain::catalogue::Kind;

/// The transaction settings of a vector search, for the transaction's BEGIN: the HNSW search breadth, and
/// iterative scans so filtered searches continue past the first `ef_search` candidates (`relaxed_order`: results
/// are re-sorted by distance afterwards).
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

/// The `k` resources of `kind` nearest to `target` (cosine distance), with event filters when searching events.
/// Returns each resource's JSON and distance, nearest first; empty when a stored target has no embedding (or
/// does not exist: the caller tells those apart).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {} nearest", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn nearest(
    conn: &mut PgConnection,
    kind: Kind,
    target: NearestTo<'_>,
    filter: Option<&EventFilter>,
    k: i64,
) -> Result<Vec<(Value, f64)>, sqlx::Error> {
    let table = resource_table(kind);
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT resource, distance FROM (SELECT {} AS resource, t.embedding <=> ",
        table.projection
    ));
    // A scalar subquery is evaluated once, before the scan, so the HNSW index still sees a constant.
    let push_target = |q: &mut QueryBuilder<Postgres>| match target {
        NearestTo::Vector(values) => {
            q.push_bind(Vector::from(values.to_vec()));
        }
        NearestTo::Stored(id) => {
            q.push(format!("(SELECT embedding FROM {} WHERE id = ", table.table)).push_bind(id).push(")");
        }
    };
    push_target(&mut q);
    q.push(format!(" AS distance FROM {} t WHERE t.embedding IS NOT NULL", table.table));
    if let NearestTo::Stored(id) = target {
        q.push(" AND t.id <> ").push_bind(id);
        q.push(format!(" AND EXISTS (SELECT FROM {} WHERE id = ", table.table))
            .push_bind(id)
            .push(" AND embedding IS NOT NULL)");
    }
    if let Some(filter) = filter {
        push_event_filters(&mut q, filter);
    }
    q.push(" ORDER BY t.embedding <=> ");
    push_target(&mut q);
    q.push(" LIMIT ").push_bind(k);
    q.push(") r ORDER BY distance");
    q.build_query_as().fetch_all(&mut *conn).await
}

/// One full-text hit: resource JSON, rank, snippet, id.
pub type TextRow = (Value, f64, String, Uuid);

/// Events matching `query` (web-search syntax), best first, after the `(rank, id)` cursor. An event whose name
/// equals the query (ignoring case) ranks above every other.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT events full text", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn text(
    conn: &mut PgConnection,
    query: &str,
    filter: &EventFilter,
    after: Option<(f64, Uuid)>,
    limit: i64,
) -> Result<Vec<TextRow>, sqlx::Error> {
    let table = resource_table(Kind::Event);
    let mut q = QueryBuilder::<Postgres>::new("WITH q AS (SELECT websearch_to_tsquery('english', ");
    q.push_bind(query.to_owned()).push(") AS query, lower(btrim(").push_bind(query.to_owned()).push(")) AS exact)");
    // Rank every match but render only the page: the projection and ts_headline (the expensive part, tens of
    // microseconds a row) run on the `limit` rows that survive the sort, not on every matching event.
    q.push(
        ", top AS (SELECT r.id, r.rank FROM (SELECT t.id, ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', t.search, q.query)
             + CASE WHEN lower(t.name) = q.exact THEN 1000 ELSE 0 END AS rank
           FROM events t, q WHERE t.search @@ q.query",
    );
    push_event_filters(&mut q, filter);
    q.push(") r WHERE true");
    if let Some((rank, id)) = after {
        q.push(" AND (r.rank::float8, r.id) < (").push_bind(rank).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY r.rank DESC, r.id DESC LIMIT ").push_bind(limit);
    q.push(format!(
        ") SELECT {}, top.rank::float8, ts_headline('english', t.name || coalesce(' — ' || t.description, ''), q.query,
             'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=8'), t.id
           FROM top JOIN events t ON t.id = top.id, q ORDER BY top.rank DESC, top.id DESC",
        table.projection
    ));
    q.build_query_as().fetch_all(&mut *conn).await
}

/// A name candidate: id, name, normalized name, similarity.
pub type NameRow = (Uuid, String, String, f64);

/// Speakers, companies or topics whose normalized name is trigram-similar to `name` (at least `min_similarity`),
/// most similar first.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {} by trigram", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn similar_names(
    conn: &mut PgConnection,
    kind: Kind,
    name: &str,
    min_similarity: f64,
    limit: i64,
) -> Result<Vec<NameRow>, sqlx::Error> {
    // A validated number in [0, 1]; SET cannot take parameters.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL pg_trgm.similarity_threshold = {min_similarity}")))
        .execute(&mut *conn)
        .await?;
    let sql = format!(
        "SELECT id, name, normalized_name, similarity(normalized_name, normalize_name($1))::float8 AS sim
         FROM {} WHERE normalized_name % normalize_name($1)
         ORDER BY sim DESC, id LIMIT $2",
        resource_table(kind).table
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(name).bind(limit).fetch_all(&mut *conn).await
}
