//! Search SQL: nearest neighbours over the HNSW indexes (with pgvector's iterative scans so filtered queries still
//! find k rows), full text with `websearch_to_tsquery`, and trigram name lookup.

use pgvector::Vector;
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::lists::{EventFilter, push_event_filters};
use super::tables::resource_table;
use crate::domain::catalogue::Kind;

/// Sets the HNSW search breadth for the rest of the transaction and lets filtered scans continue past the first
/// `ef_search` candidates (`relaxed_order`: results are re-sorted by distance afterwards).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SET hnsw", otel.kind = "client", db.system = "postgresql", db.operation = "SET"))]
pub async fn tune_vector_search(conn: &mut PgConnection, ef_search: u32) -> Result<(), sqlx::Error> {
    // Integers validated by the caller: inlining them is safe, and SET cannot take parameters.
    let sql = format!("SET LOCAL hnsw.ef_search = {ef_search}; SET LOCAL hnsw.iterative_scan = relaxed_order");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
    Ok(())
}

/// The `k` resources of `kind` nearest to `query` (cosine distance), excluding `exclude`, with event filters when
/// searching events. Returns each resource's JSON and distance, nearest first.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {} nearest", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn nearest(
    conn: &mut PgConnection,
    kind: Kind,
    query: &[f32],
    exclude: Option<Uuid>,
    filter: Option<&EventFilter>,
    k: i64,
) -> Result<Vec<(Value, f64)>, sqlx::Error> {
    let table = resource_table(kind);
    let vector = Vector::from(query.to_vec());
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT resource, distance FROM (SELECT {} AS resource, t.embedding <=> ",
        table.projection
    ));
    q.push_bind(vector.clone()).push(format!(" AS distance FROM {} t WHERE t.embedding IS NOT NULL", table.table));
    if let Some(id) = exclude {
        q.push(" AND t.id <> ").push_bind(id);
    }
    if let Some(filter) = filter {
        push_event_filters(&mut q, filter);
    }
    q.push(" ORDER BY t.embedding <=> ").push_bind(vector).push(" LIMIT ").push_bind(k);
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
    q.push(
        ", ranked AS (SELECT t.id, ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', t.search, q.query)
             + CASE WHEN lower(t.name) = q.exact THEN 1000 ELSE 0 END AS rank
           FROM events t, q WHERE t.search @@ q.query",
    );
    push_event_filters(&mut q, filter);
    q.push(")");
    q.push(format!(
        " SELECT {}, r.rank::float8, ts_headline('english', t.name || coalesce(' — ' || t.description, ''), q.query,
             'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=8'), t.id
           FROM ranked r JOIN events t ON t.id = r.id, q WHERE true",
        table.projection
    ));
    if let Some((rank, id)) = after {
        q.push(" AND (r.rank::float8, r.id) < (").push_bind(rank).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY r.rank DESC, r.id DESC LIMIT ").push_bind(limit);
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
