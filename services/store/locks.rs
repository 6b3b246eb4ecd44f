//! Per-aggregate advisory locks. A mutation of an existing aggregate (an event with its media and relations, or a
//! speaker, company or topic) takes its lock *before its first write*. Transactions that change the same
//! aggregate therefore get their transaction ids in the order they commit, which is the order the outbox is read
//! in, `(txid, position)`: per-aggregate commit order is preserved (docs/relay.md). Advisory locks assign no
//! transaction id themselves, and end with the transaction.

use sqlx::PgConnection;
use uuid::Uuid;

/// The lock key of an aggregate: its UUID folded to 64 bits.
pub fn lock_key(id: Uuid) -> i64 {
    let (high, low) = id.as_u64_pair();
    (high ^ low) as i64
}

/// Takes the transaction-scoped locks of `aggregates`, in key order so concurrent lockers cannot deadlock.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT pg_advisory_xact_lock", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn lock_aggregates(conn: &mut PgConnection, aggregates: &[Uuid]) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i64> = aggregates.iter().copied().map(lock_key).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS u(k, n) ORDER BY n",
        &keys[..]
    )
    .persistent(crate::db::named_statements())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
