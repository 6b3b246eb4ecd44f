//! Idempotency records of create requests (AIP-155); claimed inside the create statement itself
//! (see `catalogue::create`), read here when the claim found one already.

use sqlx::PgConnection;
use uuid::Uuid;

/// A recorded create request.
#[derive(Debug, sqlx::FromRow)]
pub struct IdempotencyRecord {
    /// The method it was sent to.
    pub method: String,
    /// SHA-256 of the validated request.
    pub request_hash: Vec<u8>,
    /// What it created, in request order.
    pub resource_ids: Vec<Uuid>,
}

/// The record of `request_id` in the caller's organization.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT idempotency_records", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn find(conn: &mut PgConnection, request_id: Uuid) -> Result<Option<IdempotencyRecord>, sqlx::Error> {
    crate::static_query_as!(
        IdempotencyRecord,
        "SELECT method, request_hash, resource_ids FROM idempotency_records WHERE request_id = $1",
        request_id
    )
    .fetch_optional(&mut *conn)
    .await
}
