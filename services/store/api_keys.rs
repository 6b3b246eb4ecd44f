//! The `api_keys` table. Administration runs as the owner role; authentication goes through the
//! `authenticate_api_key` SECURITY DEFINER function, the runtime role's only access to keys.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A key as operators see it (never its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRecord {
    /// The key id, recorded as the actor of every change made with the key.
    pub id: Uuid,
    /// The organization the key acts for.
    pub org_id: Uuid,
    /// A label chosen by the operator.
    pub name: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a valid, unrevoked key grants.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyGrant {
    /// The key id.
    #[sqlx(rename = "key_id!")]
    pub key_id: Uuid,
    /// Its organization.
    #[sqlx(rename = "org_id!")]
    pub org_id: Uuid,
    /// Its scope names.
    #[sqlx(rename = "scopes!")]
    pub scopes: Vec<String>,
}

/// Stores a new key's hash.
pub async fn insert(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    name: &str,
    secret_hash: &[u8; 32],
    scopes: &[String],
) -> Result<ApiKeyRecord, sqlx::Error> {
    crate::static_query_as!(
        ApiKeyRecord,
        "INSERT INTO api_keys (id, org_id, name, secret_hash, scopes) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, org_id, name, scopes, created_at, revoked_at",
        Uuid::now_v7(),
        org_id,
        name,
        &secret_hash[..],
        scopes,
    )
    .fetch_one(db)
    .await
}

/// An organization's keys, oldest first.
pub async fn list_for_org(db: impl PgExecutor<'_>, org_id: Uuid) -> Result<Vec<ApiKeyRecord>, sqlx::Error> {
    crate::static_query_as!(
        ApiKeyRecord,
        "SELECT id, org_id, name, scopes, created_at, revoked_at FROM api_keys WHERE org_id = $1 ORDER BY id",
        org_id,
    )
    .fetch_all(db)
    .await
}

/// Revokes a key; `None` when no such key exists. Revoking twice keeps the first time.
pub async fn revoke(db: impl PgExecutor<'_>, key_id: Uuid) -> Result<Option<ApiKeyRecord>, sqlx::Error> {
    crate::static_query_as!(
        ApiKeyRecord,
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
         RETURNING id, org_id, name, scopes, created_at, revoked_at",
        key_id,
    )
    .fetch_optional(db)
    .await
}

/// Looks up an unrevoked key by the hash of its secret (runtime role).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT authenticate_api_key", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn authenticate(db: impl PgExecutor<'_>, secret_hash: &[u8; 32]) -> Result<Option<KeyGrant>, sqlx::Error> {
    crate::static_query_as!(
        KeyGrant,
        r#"SELECT key_id AS "key_id!", org_id AS "org_id!", scopes AS "scopes!" FROM authenticate_api_key($1)"#,
        &secret_hash[..],
    )
    .fetch_optional(db)
    .await
}
