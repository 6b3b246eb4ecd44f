//! The `organizations` table (owner role: the administrative subcommands).

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::org_slug::OrgSlug;

/// A tenant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Organization {
    /// Its id, the `org_id` of every row it owns.
    pub id: Uuid,
    /// Its unique slug.
    pub slug: String,
    /// Its display name.
    pub name: String,
}

/// Inserts an organization; `None` when the slug is taken.
pub async fn insert(db: impl PgExecutor<'_>, slug: &OrgSlug, name: &str) -> Result<Option<Organization>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO organizations (id, slug, name) VALUES ($1, $2, $3)
         ON CONFLICT (slug) DO NOTHING
         RETURNING id, slug, name",
    )
    .persistent(crate::db::named_statements())
    .bind(Uuid::now_v7())
    .bind(slug.as_str())
    .bind(name)
    .fetch_optional(db)
    .await
}

/// Finds an organization by slug.
pub async fn find_by_slug(db: impl PgExecutor<'_>, slug: &OrgSlug) -> Result<Option<Organization>, sqlx::Error> {
    sqlx::query_as("SELECT id, slug, name FROM organizations WHERE slug = $1")
        .persistent(crate::db::named_statements())
        .bind(slug.as_str())
        .fetch_optional(db)
        .await
}
