//! The change feed's reads: one organization's finished changes (row-level security confines them), in log order,
//! after a checkpoint, with filters; and the notifier that wakes every watcher when the log may have grown.

use std::sync::Arc;

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

use super::log::{COLUMNS, Checkpoint, LoggedChange, below_watermark};
use super::wakeup::{AdaptivePoll, SHORTEST_POLL};
use crate::store::sql::Sql;

pub use crate::domain::queries::FeedFilter;

/// Up to `limit` finished changes of `org` after `after`, in log order: one statement that confines itself to the
/// organization (`store::confined`), so it needs no transaction (one may hold it, for planner settings).
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT outbox feed", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn read(
    conn: &mut PgConnection,
    org: uuid::Uuid,
    after: Checkpoint,
    filter: &FeedFilter,
    limit: i64,
) -> Result<Vec<LoggedChange>, sqlx::Error> {
    // The organization as an InitPlan, like the policies: evaluated when the read starts, after the confined
    // statement has set it.
    let sql = below_watermark(Sql::template(
        "SELECT {columns}, txid AS watermark_txid FROM outbox
         WHERE org_id = (SELECT current_org_id())
           AND (txid, position) > ($1::text::xid8, $2)
           AND (cardinality($3::text[]) = 0 OR aggregate_type = ANY($3))
           AND ($4::uuid IS NULL OR aggregate_id = $4)
           AND ($5::uuid IS NULL OR actor_key_id = $5)
         ORDER BY outbox.txid, outbox.position
         LIMIT $6",
        &[("columns", COLUMNS.into())],
    ));
    sqlx::query_as(crate::store::confined::wrap(sql, 7))
        .persistent(crate::db::named_statements())
        .bind(after.txid.to_string())
        .bind(after.position)
        .bind(&filter.resource_types)
        .bind(filter.resource_id)
        .bind(filter.actor_key_id)
        .bind(limit)
        .bind(crate::store::confined::org_text(org))
        .fetch_all(&mut *conn)
        .await
}

/// The checkpoint meaning "now": every transaction below the current snapshot's horizon is in the past.
#[tracing::instrument(level = "info", name = "db", skip_all, fields(otel.name = "SELECT snapshot horizon", otel.kind = "client", db.system = "postgresql", db.operation = "SELECT"))]
pub async fn now(conn: &mut PgConnection) -> Result<Checkpoint, sqlx::Error> {
    let horizon = sqlx::query_scalar!(r#"SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS "horizon!""#)
        .persistent(crate::db::named_statements())
        .fetch_one(&mut *conn)
        .await?;
    Ok(Checkpoint { txid: horizon - 1, position: i64::MAX })
}

/// The longest the change feed's probe waits while the log is quiet (the wake-up latency of an idle feed).
const LONGEST_FEED_POLL: Duration = Duration::from_millis(50);

/// Ticks whenever the change log may have grown, for every watcher of the process. One task probes the head of the
/// log (the last position handed out) and the snapshot horizon (which moves when transactions finish) on a
/// connection of its own, every 2 ms while they move and backing off to 50 ms while they do not, and only while
/// somebody watches. Nothing is asked of writers (docs/relay.md, "Wake-up").
#[derive(Clone)]
pub struct CommitNotifier {
    tick: Arc<watch::Sender<u64>>,
}

impl CommitNotifier {
    /// Probes with a connection made with `pool`'s options for the life of the process, reconnecting with backoff.
    pub fn spawn(pool: PgPool) -> Self {
        let tick = Arc::new(watch::channel(0u64).0);
        let sender = Arc::clone(&tick);
        tokio::spawn(async move {
            let mut backoff = super::backoff::Backoff::new(Duration::from_secs(5));
            loop {
                if let Err(err) = probe_while_watched(&pool, &sender, &mut backoff).await {
                    tracing::debug!(error = %err, "change notifier reconnecting");
                    // Wake watchers so they read while the probe is down.
                    sender.send_modify(|n| *n += 1);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        });
        Self { tick }
    }

    /// A receiver that changes whenever the log may have grown.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }

    /// How many watchers are subscribed now.
    pub fn subscribers(&self) -> usize {
        self.tick.receiver_count()
    }
}

async fn probe_while_watched(
    pool: &PgPool,
    tick: &watch::Sender<u64>,
    backoff: &mut super::backoff::Backoff,
) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
    backoff.reset();
    let mut poll = AdaptivePoll::new(SHORTEST_POLL, LONGEST_FEED_POLL);
    let mut last: Option<(i64, i64)> = None;
    loop {
        if tick.receiver_count() == 0 {
            last = None;
            tokio::time::sleep(LONGEST_FEED_POLL).await;
            continue;
        }
        // A simple query (one message, no prepared statement): safe through a transaction-mode pooler.
        let row = sqlx::raw_sql(
            "SELECT coalesce(pg_sequence_last_value('outbox_position_seq'), 0),
                    pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        )
        .fetch_one(&mut conn)
        .await?;
        let head: (i64, i64) = (sqlx::Row::try_get(&row, 0)?, sqlx::Row::try_get(&row, 1)?);
        if last != Some(head) {
            last = Some(head);
            tick.send_modify(|n| *n += 1);
            poll.busy();
        } else {
            poll.idle();
        }
        tokio::time::sleep(poll.wait()).await;
    }
}
