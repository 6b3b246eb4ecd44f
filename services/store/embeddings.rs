//! Embedding columns of events, speakers and topics. Setting or clearing one emits `<kind>.embedding_updated`
//! in the same statement (model and dimension only; the vector stays out of the change log).

use pgvector::Vector;
use sqlx::PgConnection;
use uuid::Uuid;

use super::sql::{Fill, Sql};
use super::tables::resource_table;
use crate::domain::catalogue::Kind;
use crate::domain::change::ChangeType;
use crate::outbox::enqueue::{ChangeContext, insert_changes_sql};

/// Sets (or, with `None`, clears) the embedding of `kind` `id`; `false` when the resource does not exist.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("UPDATE {} embedding + outbox", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "UPDATE"))]
pub async fn set(
    conn: &mut PgConnection,
    kind: Kind,
    id: Uuid,
    embedding: Option<(Vec<f32>, &str)>,
    context: &ChangeContext,
) -> Result<bool, sqlx::Error> {
    let sql = Sql::template(
        "WITH updated AS (
           UPDATE {table} SET embedding = $2, embedding_model = $3 WHERE id = $1 RETURNING id
         ), src AS (
           SELECT u.id AS aggregate_id, jsonb_build_object('model', $3::text, 'dimension', coalesce(vector_dims($2), 0),
                  'cleared', $2 IS NULL) AS body
           FROM updated u
         ), changes AS ({changes})
         SELECT count(*) FROM src",
        &[
            ("table", resource_table(kind).table.into()),
            ("changes", insert_changes_sql(Fill::Text("src"), ChangeType::EmbeddingUpdated(kind), 4).into()),
        ],
    );
    let (values, model) = match embedding {
        Some((values, model)) => (Some(Vector::from(values)), Some(model)),
        None => (None, None),
    };
    let updated: i64 = sqlx::query_scalar(sql)
        .persistent(crate::db::named_statements())
        .bind(id)
        .bind(values)
        .bind(model)
        .bind(context.to_param())
        .fetch_one(&mut *conn)
        .await?;
    Ok(updated == 1)
}

/// An embedding's values and model.
pub type StoredEmbedding = (Vec<f32>, String);

/// The embedding and model of `kind` `id`: `None` when the resource does not exist, `Some(None)` when it has none.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = %format!("SELECT {} embedding", resource_table(kind).table), otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn get(
    conn: &mut PgConnection,
    org: Uuid,
    kind: Kind,
    id: Uuid,
) -> Result<Option<Option<StoredEmbedding>>, sqlx::Error> {
    let read = Sql::template(
        "SELECT embedding, embedding_model FROM {tbl} WHERE id = $1",
        &[("tbl", resource_table(kind).table.into())],
    );
    let row: Option<(Option<Vector>, Option<String>)> = sqlx::query_as(super::confined::wrap(read, 2))
        .persistent(crate::db::named_statements())
        .bind(id)
        .bind(super::confined::org_text(org))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|(vector, model)| vector.zip(model).map(|(v, m)| (v.to_vec(), m))))
}
