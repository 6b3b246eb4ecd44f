//! The change feed's reads: one organization's finished changes (row-level security confines them), in log order,
//! after a checkpoint, with filters; and the notifier that wakes every watcher when changes commit.

use std::sync::Arc;

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

use super::log::{COLUMNS, Checkpoint, LoggedChange, below_watermark};
use super::relay::NOTIFY_CHANNEL;

/// Which changes a feed reader wants.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Resource types (`event`, ...); empty means all.
    pub resource_types: Vec<String>,
    /// One resource only.
    pub resource_id: Option<Uuid>,
    /// One actor (API key) only.
    pub actor_key_id: Option<Uuid>,
}

/// Up to `limit` finished changes of the transaction's organization after `after`, in log order.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT outbox feed", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn read(
    conn: &mut PgConnection,
    after: Checkpoint,
    filter: &FeedFilter,
    limit: i64,
) -> Result<Vec<LoggedChange>, sqlx::Error> {
    let sql = below_watermark(&format!(
        "SELECT {COLUMNS}, txid AS watermark_txid FROM outbox
         WHERE org_id = current_org_id()
           AND (txid, position) > ($1::text::xid8, $2)
           AND (cardinality($3::text[]) = 0 OR aggregate_type = ANY($3))
           AND ($4::uuid IS NULL OR aggregate_id = $4)
           AND ($5::uuid IS NULL OR actor_key_id = $5)
         ORDER BY txid, position
         LIMIT $6"
    ));
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after.txid.to_string())
        .bind(after.position)
        .bind(&filter.resource_types)
        .bind(filter.resource_id)
        .bind(filter.actor_key_id)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
}

/// The checkpoint meaning "now": every transaction below the current snapshot's horizon is in the past.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT snapshot horizon", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn now(conn: &mut PgConnection) -> Result<Checkpoint, sqlx::Error> {
    let horizon: i64 = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        .fetch_one(&mut *conn)
        .await?;
    Ok(Checkpoint { txid: horizon - 1, position: i64::MAX })
}

/// Ticks whenever changes commit (from one LISTEN connection per process, shared by every watcher).
#[derive(Clone)]
pub struct CommitNotifier {
    tick: Arc<watch::Sender<u64>>,
}

impl CommitNotifier {
    /// Listens on a connection of `pool` for the life of the process, reconnecting with backoff.
    pub fn spawn(pool: PgPool) -> Self {
        let tick = Arc::new(watch::channel(0u64).0);
        let sender = Arc::clone(&tick);
        tokio::spawn(async move {
            let mut backoff = super::backoff::Backoff::new(std::time::Duration::from_secs(5));
            loop {
                if let Err(err) = listen(&pool, &sender, &mut backoff).await {
                    tracing::debug!(error = %err, "change notifier reconnecting");
                    // Wake watchers so they read while notifications are down.
                    sender.send_modify(|n| *n += 1);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        });
        Self { tick }
    }

    /// A receiver that changes on every commit notification.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }

    /// How many watchers are subscribed now.
    pub fn subscribers(&self) -> usize {
        self.tick.receiver_count()
    }
}

async fn listen(
    pool: &PgPool,
    tick: &watch::Sender<u64>,
    backoff: &mut super::backoff::Backoff,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    backoff.reset();
    loop {
        listener.recv().await?;
        tick.send_modify(|n| *n += 1);
    }
}
