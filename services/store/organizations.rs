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
    crate::static_query_as!(
        Organization,
        "INSERT INTO organizations (id, slug, name) VALUES ($1, $2, $3)
         ON CONFLICT (slug) DO NOTHING
         RETURNING id, slug, name",
        Uuid::now_v7(),
        slug.as_str(),
        name,
    )
    .fetch_optional(db)
    .await
}

/// Finds an organization by slug.
pub async fn find_by_slug(db: impl PgExecutor<'_>, slug: &OrgSlug) -> Result<Option<Organization>, sqlx::Error> {
    crate::static_query_as!(Organization, "SELECT id, slug, name FROM organizations WHERE slug = $1", slug.as_str())
        .fetch_optional(db)
        .await
}
