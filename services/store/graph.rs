//! Graph SQL over the relation tables. Traversal is frontier by frontier from Rust: one statement per level
//! returns every edge touching the frontier, for the edge kinds asked (docs/graph.md compares this with recursive
//! CTEs on the benchmark data set).

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::sql::Sql;
use super::tables::resource_table;
use crate::domain::catalogue::Kind;
use crate::domain::resources::{Event, Speaker};

pub use crate::domain::queries::EdgeKind;

/// The frontier of a traversal, by node kind.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    /// Event ids.
    pub events: Vec<Uuid>,
    /// Speaker ids.
    pub speakers: Vec<Uuid>,
    /// Company ids.
    pub companies: Vec<Uuid>,
    /// Topic ids.
    pub topics: Vec<Uuid>,
}

/// An edge: kind, and its two ends (event side first; speaker first for WORKS_AT).
pub type EdgeRow = (EdgeKind, Uuid, Uuid);

/// An edge as [`edges_touching`] reads it: the kind as a number (1 to 4, in `EdgeKind` order), then its ends.
#[derive(sqlx::FromRow)]
struct StoredEdge {
    #[sqlx(rename = "kind!")]
    kind: i16,
    #[sqlx(rename = "a!")]
    a: Uuid,
    #[sqlx(rename = "b!")]
    b: Uuid,
}

/// Every edge of the allowed `kinds` with an end in `frontier`.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT graph edges", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn edges_touching(
    conn: &mut PgConnection,
    org: Uuid,
    frontier: &Frontier,
    kinds: &[EdgeKind],
) -> Result<Vec<EdgeRow>, sqlx::Error> {
    let rows = crate::confined_query_as!(
        StoredEdge,
        "$9",
        r#"SELECT 1::int2 AS "kind!", event_id AS "a!", speaker_id AS "b!" FROM event_speakers
             WHERE $5 AND (event_id = ANY($1) OR speaker_id = ANY($2))
           UNION ALL
           SELECT 2::int2, event_id, company_id FROM event_companies
             WHERE $6 AND (event_id = ANY($1) OR company_id = ANY($3))
           UNION ALL
           SELECT 3::int2, event_id, topic_id FROM event_topics
             WHERE $7 AND (event_id = ANY($1) OR topic_id = ANY($4))
           UNION ALL
           SELECT 4::int2, id, company_id FROM speakers
             WHERE $8 AND company_id IS NOT NULL AND (id = ANY($2) OR company_id = ANY($3))"#,
        &frontier.events[..],
        &frontier.speakers[..],
        &frontier.companies[..],
        &frontier.topics[..],
        kinds.contains(&EdgeKind::SpeaksAt),
        kinds.contains(&EdgeKind::TakesPartIn),
        kinds.contains(&EdgeKind::About),
        kinds.contains(&EdgeKind::WorksAt),
        super::confined::org_text(org),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|StoredEdge { kind, a, b }| {
            let kind = match kind {
                1 => EdgeKind::SpeaksAt,
                2 => EdgeKind::TakesPartIn,
                3 => EdgeKind::About,
                _ => EdgeKind::WorksAt,
            };
            (kind, a, b)
        })
        .collect())
}

/// Names of the given nodes of `kind` (those visible to the organization).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {} names", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn labels(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let sql =
        Sql::template("SELECT id, name FROM {tbl} WHERE id = ANY($1)", &[("tbl", resource_table(kind).table.into())]);
    sqlx::query_as(super::confined::wrap(sql, 2))
        .persistent(crate::db::named_statements())
        .bind(ids)
        .bind(super::confined::org_text(org))
        .fetch_all(&mut *conn)
        .await
}

/// One related event: the event, shared speakers, companies, topics, and cosine distance of embeddings (if both
/// have one).
pub type RelatedRow = (Event, i64, i64, i64, Option<f64>);

/// A [`RelatedRow`] as the statement returns it.
type RelatedRowJson = (Json<Event>, i64, i64, i64, Option<f64>);

/// Events sharing speakers, companies or topics with `event_id`, by weighted shared count, best `limit`.
/// Weights: a shared speaker 3, a shared company 2, a shared topic 1.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT related events", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn related_events(
    conn: &mut PgConnection,
    org: Uuid,
    event_id: Uuid,
    limit: i64,
) -> Result<Vec<RelatedRow>, sqlx::Error> {
    let sql = Sql::template(
        "WITH s AS (
           SELECT b.event_id, count(*) AS n FROM event_speakers a JOIN event_speakers b ON b.speaker_id = a.speaker_id
           WHERE a.event_id = $1 AND b.event_id <> $1 GROUP BY b.event_id
         ), c AS (
           SELECT b.event_id, count(*) AS n FROM event_companies a JOIN event_companies b ON b.company_id = a.company_id
           WHERE a.event_id = $1 AND b.event_id <> $1 GROUP BY b.event_id
         ), tp AS (
           SELECT b.event_id, count(*) AS n FROM event_topics a JOIN event_topics b ON b.topic_id = a.topic_id
           WHERE a.event_id = $1 AND b.event_id <> $1 GROUP BY b.event_id
         ), shared AS (
           SELECT coalesce(s.event_id, c.event_id, tp.event_id) AS event_id,
                  coalesce(s.n, 0) AS speakers, coalesce(c.n, 0) AS companies, coalesce(tp.n, 0) AS topics
           FROM s FULL JOIN c ON c.event_id = s.event_id FULL JOIN tp ON tp.event_id = coalesce(s.event_id, c.event_id)
         )
         SELECT {projection}, x.speakers, x.companies, x.topics,
                (t.embedding <=> (SELECT embedding FROM events WHERE id = $1))::float8
         FROM shared x JOIN events t ON t.id = x.event_id
         ORDER BY 3 * x.speakers + 2 * x.companies + x.topics DESC, t.id
         LIMIT $2",
        &[("projection", resource_table(Kind::Event).projection.into())],
    );
    let rows: Vec<RelatedRowJson> = sqlx::query_as(super::confined::wrap(sql, 3))
        .persistent(crate::db::named_statements())
        .bind(event_id)
        .bind(limit)
        .bind(super::confined::org_text(org))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(event, speakers, companies, topics, distance)| (event.0, speakers, companies, topics, distance))
        .collect())
}

/// Speakers who shared an event with `speaker_id`, with the number of shared events, most first.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT co-speakers", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn co_speakers(
    conn: &mut PgConnection,
    org: Uuid,
    speaker_id: Uuid,
    limit: i64,
) -> Result<Vec<(Speaker, i64)>, sqlx::Error> {
    let sql = Sql::template(
        "SELECT {projection}, x.n FROM (
           SELECT b.speaker_id, count(DISTINCT b.event_id) AS n
           FROM event_speakers a JOIN event_speakers b ON b.event_id = a.event_id AND b.speaker_id <> a.speaker_id
           WHERE a.speaker_id = $1 GROUP BY b.speaker_id
         ) x JOIN speakers t ON t.id = x.speaker_id
         ORDER BY x.n DESC, t.id LIMIT $2",
        &[("projection", resource_table(Kind::Speaker).projection.into())],
    );
    let rows: Vec<(Json<Speaker>, i64)> = sqlx::query_as(super::confined::wrap(sql, 3))
        .persistent(crate::db::named_statements())
        .bind(speaker_id)
        .bind(limit)
        .bind(super::confined::org_text(org))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(|(speaker, shared)| (speaker.0, shared)).collect())
}
