//! Which indexes a bulk load builds afterwards instead of row by row, and building them again.
//!
//! An index that backs no constraint, of a table that holds no rows at all, serves nobody yet: it is dropped
//! before the load, its definition kept in `seed_deferred_indexes` (migration 0009) in the same transaction, and
//! built in bulk when the load is done. A vector index that holds no vectors is dropped too even when its table
//! has rows (nobody's similarity query can use an empty graph). A run that is interrupted leaves the definitions
//! behind, and the next run builds them; the migration's down step does as well.

use sqlx::{Connection, PgConnection};

/// The tables a seed loads.
const LOADED_TABLES: [&str; 8] =
    ["topics", "companies", "speakers", "events", "event_speakers", "event_topics", "event_companies", "media"];
/// Those of them the load also updates (their relation counts, batch by batch): vacuumed before their indexes
/// are built, or the build indexes every old row version some snapshot may still see (under concurrent work the
/// speakers' name index came out twice its size, and the planner priced it out of the name lookup).
const UPDATED_TABLES: &str = "speakers, companies";

/// The vector indexes, as migrations/0001 defines them. Every run ends by creating any that is missing: runs
/// before migration 0009 dropped them without a record.
const VECTOR_INDEXES: [(&str, &str); 3] = [
    (
        "events_embedding_idx",
        "CREATE INDEX IF NOT EXISTS events_embedding_idx ON events USING hnsw (embedding vector_cosine_ops)",
    ),
    (
        "speakers_embedding_idx",
        "CREATE INDEX IF NOT EXISTS speakers_embedding_idx ON speakers USING hnsw (embedding vector_cosine_ops)",
    ),
    (
        "topics_embedding_idx",
        "CREATE INDEX IF NOT EXISTS topics_embedding_idx ON topics USING hnsw (embedding vector_cosine_ops)",
    ),
];

/// Sets aside what the load should not maintain row by row: the indexes of empty tables (recorded first) and
/// the vector indexes that hold no vectors. Gives the session room to build them afterwards.
pub async fn set_aside(conn: &mut PgConnection) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    let deferred = sqlx::query_scalar!(
        "INSERT INTO seed_deferred_indexes (name, definition)
         SELECT c.relname, pg_get_indexdef(i.indexrelid)
         FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class c ON c.oid = i.indexrelid
         WHERE t.relname = ANY($1::text[]) AND t.relnamespace = 'public'::regnamespace AND pg_relation_size(t.oid) = 0
           AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
         ON CONFLICT (name) DO NOTHING
         RETURNING name",
        &LOADED_TABLES.map(str::to_owned)[..]
    )
    .fetch_all(&mut *tx)
    .await?;
    for name in &deferred {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {name}"))).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let emptied = drop_empty_vector_indexes(conn).await?;
    if !deferred.is_empty() || emptied {
        // Bulk builds are memory-bound; give them room for this session only.
        sqlx::raw_sql("SET maintenance_work_mem = '1GB'; SET max_parallel_maintenance_workers = 2")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Builds every index set aside (by this run or an interrupted one) and any vector index that is missing;
/// returns their names.
pub async fn build(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    let mut built = Vec::new();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM {UPDATED_TABLES}"))).execute(&mut *conn).await?;
    let deferred = sqlx::query!("SELECT name, definition FROM seed_deferred_indexes ORDER BY dropped_at, name")
        .fetch_all(&mut *conn)
        .await?;
    for record in deferred {
        let (name, definition) = (record.name, record.definition);
        if !exists(conn, &name).await? {
            // The definition is pg_get_indexdef's, recorded above; only the owner can write that table.
            sqlx::raw_sql(sqlx::AssertSqlSafe(definition)).execute(&mut *conn).await?;
            built.push(name.clone());
        }
        sqlx::query!("DELETE FROM seed_deferred_indexes WHERE name = $1", name).execute(&mut *conn).await?;
    }
    for (name, definition) in VECTOR_INDEXES {
        if !exists(conn, name).await? {
            sqlx::raw_sql(definition).execute(&mut *conn).await?;
            built.push(name.to_string());
        }
    }
    Ok(built)
}

async fn exists(conn: &mut PgConnection, index: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT to_regclass($1) IS NOT NULL AS "exists!""#, index).fetch_one(&mut *conn).await
}

/// Drops each vector index that holds no vectors (one or two pages: the metapage and an empty element page);
/// whether it dropped any.
async fn drop_empty_vector_indexes(conn: &mut PgConnection) -> anyhow::Result<bool> {
    let names = VECTOR_INDEXES.map(|(name, _)| name);
    let empty = sqlx::query_scalar!(
        r#"SELECT c.relname::text AS "name!" FROM pg_class c
           WHERE c.relname = ANY($1::text[]) AND c.relkind = 'i'
             AND pg_relation_size(c.oid) <= 2 * current_setting('block_size')::int"#,
        &names.map(str::to_owned)[..]
    )
    .fetch_all(&mut *conn)
    .await?;
    for name in &empty {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {name}"))).execute(&mut *conn).await?;
    }
    Ok(!empty.is_empty())
}
