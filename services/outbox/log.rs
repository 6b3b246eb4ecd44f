//! Reading the change log (the relay's SQL). Rows are read in `(txid, position)` order and split at the watermark
//! `pg_snapshot_xmin(pg_current_snapshot())`: below it every transaction with a smaller id has finished, so no row
//! can later appear behind a checkpoint; the committed rows above it may be published ahead, never checkpointed
//! (docs/relay.md).

use sqlx::PgConnection;

use crate::store::sql::{Fill, Sql};

/// Namespace of the relay's partition locks (two-key advisory locks `(RELAY_LOCK_SPACE, partition)`).
pub const RELAY_LOCK_SPACE: i32 = 0x6564_7231; // "edr1"

/// A point in the log: everything at or before it has been handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Checkpoint {
    /// Transaction id (`xid8` as an integer).
    pub txid: i64,
    /// Position within the log.
    pub position: i64,
}

pub use crate::domain::change::LoggedChange;

/// Decoded by column name, as [`COLUMNS`] selects them (by hand: the type lives in `domain`, which knows no SQL).
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for LoggedChange {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(Self {
            position: row.try_get("position")?,
            txid: row.try_get("txid")?,
            change_id: row.try_get("change_id")?,
            org_id: row.try_get("org_id")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            change_type: row.try_get("change_type")?,
            payload: row.try_get("payload")?,
            actor_key_id: row.try_get("actor_key_id")?,
            traceparent: row.try_get("traceparent")?,
            tracestate: row.try_get("tracestate")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl LoggedChange {
    /// The checkpoint just after this change.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { txid: self.txid, position: self.position }
    }
}

/// The columns of a [`LoggedChange`], as every reader of the log selects them.
pub(crate) const COLUMNS: &str = "position, txid::text::bigint AS txid, change_id, org_id, aggregate_type, aggregate_id, \
    change_type, payload::text AS payload, actor_key_id, traceparent, tracestate, created_at";

/// The partition of a change among `partitions`: its stored `partition_key` (the resource id hashed, migration
/// 0011), so one resource's changes always share a partition. The count is a literal, not a parameter: only then
/// can the planner match the expression of the index [`partition_index_sql`] makes for that count.
fn partition_of(partitions: u32) -> Sql {
    Sql::template("mod(outbox.partition_key, {n})", &[("n", Fill::Number(i64::from(partitions)))])
}

/// The name of the index that lets a relay of `partitions` partitions read its own changes only, in log order.
pub fn partition_index_name(partitions: u32) -> String {
    format!("outbox_partition_{partitions}_read_idx")
}

/// The statement that makes [`partition_index_name`] (as the table's owner; `eventdata relay prepare`). One
/// partition needs none: it reads the whole log through `outbox_read_idx`. Every index costs each change's insert
/// a little (docs/performance.md), so only the partition count in use should have one.
pub fn partition_index_sql(partitions: u32) -> Option<String> {
    (partitions > 1).then(|| {
        format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON outbox ({}, txid, position)",
            partition_index_name(partitions),
            partition_of(partitions)
        )
    })
}

/// Whether the index for `partitions` exists and is valid (one partition needs none).
pub async fn has_partition_index(conn: &mut PgConnection, partitions: u32) -> Result<bool, sqlx::Error> {
    if partitions <= 1 {
        return Ok(true);
    }
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                          WHERE c.relname = $1 AND i.indisvalid AND c.relnamespace = 'public'::regnamespace)
             AS "exists!""#,
        partition_index_name(partitions) as _
    )
    .persistent(crate::db::named_statements())
    .fetch_one(&mut *conn)
    .await
}

/// Planner settings for outbox readers. A page is "the next N rows in (txid, position) order": an ordered index
/// scan that stops after N rows. With stale statistics after a burst of inserts, the planner may instead pick a
/// (parallel) bitmap scan of every row after the checkpoint plus a sort, which costs the whole backlog per page
/// (seen in the relay: the drain ran at a quarter of the publisher's rate).
pub fn ordered_reads() -> [(&'static str, &'static str); 2] {
    [("enable_bitmapscan", "off"), ("max_parallel_workers_per_gather", "0")]
}

/// Applies [`ordered_reads`] to a whole session (a relay's own connection).
pub async fn set_ordered_reads(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    for (name, value) in ordered_reads() {
        let set = Sql::template("SET {name} = {value}", &[("name", name.into()), ("value", value.into())]);
        sqlx::raw_sql(set).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The rows of `ordered_page` (a query over the outbox in `(txid, position)` order with a LIMIT, selecting
/// `txid AS watermark_txid`) that are below the watermark. The watermark is applied *after* the LIMIT on purpose:
/// as a condition of the scan, the planner cannot bound it by the LIMIT and reads every row after the checkpoint
/// with a bitmap scan and a sort (220 ms a batch over a 300,000-change backlog, against 1 ms for an ordered index
/// scan). It is still exact: rows are in txid order, so the rows below the watermark are a prefix of the page.
pub(crate) fn below_watermark(ordered_page: Sql) -> Sql {
    Sql::template(
        "SELECT * FROM ({page}) page WHERE page.watermark_txid < pg_snapshot_xmin(pg_current_snapshot())",
        &[("page", ordered_page.into())],
    )
}

/// A page of the log for the relay: the changes below the watermark in log order, then the committed changes
/// after them that the watermark still holds back (an older transaction is running, which may yet add changes
/// before them in log order).
#[derive(Debug, Default)]
pub struct Page {
    /// Changes below the watermark, in log order: nothing can appear before them any more.
    pub changes: Vec<LoggedChange>,
    /// Committed changes after them, in log order, above the watermark (published ahead, checkpointed later).
    pub ahead: Vec<LoggedChange>,
}

impl Page {
    /// Whether the page met changes the watermark holds back (the reader should look again soon).
    pub fn held_back(&self) -> bool {
        !self.ahead.is_empty()
    }
}

#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    change: LoggedChange,
    visible: bool,
}

/// Up to `limit` committed changes of `partition` (of `partitions`) after `after`, in log order, split at the
/// watermark.
pub async fn read_after(
    conn: &mut PgConnection,
    after: Checkpoint,
    partitions: u32,
    partition: u32,
    limit: u32,
) -> Result<Page, sqlx::Error> {
    let rows: Vec<PageRow> = bind_read_after(
        sqlx::query_as(read_after_sql(partitions)).persistent(crate::db::named_statements()),
        after,
        partition,
        limit,
    )
    .fetch_all(&mut *conn)
    .await?;
    // Rows are in txid order, so the ones below the watermark are a prefix.
    let below = rows.iter().take_while(|row| row.visible).count();
    let mut changes: Vec<LoggedChange> = rows.into_iter().map(|row| row.change).collect();
    let ahead = changes.split_off(below);
    Ok(Page { changes, ahead })
}

/// The plan of [`read_after`]'s statement for these arguments (for the plan test and operators).
pub async fn explain_read_after(
    conn: &mut PgConnection,
    after: Checkpoint,
    partitions: u32,
    partition: u32,
    limit: u32,
) -> Result<String, sqlx::Error> {
    let mut sql = Sql::text("EXPLAIN ");
    sql.push(read_after_sql(partitions));
    let explain = sqlx::query_as(sql).persistent(crate::db::named_statements());
    let lines: Vec<(String,)> = bind_read_after(explain, after, partition, limit).fetch_all(&mut *conn).await?;
    Ok(lines.into_iter().map(|(line,)| line).collect::<Vec<_>>().join("\n"))
}

fn bind_read_after<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    after: Checkpoint,
    partition: u32,
    limit: u32,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query.bind(after.txid.to_string()).bind(after.position).bind(i64::from(partition)).bind(i64::from(limit))
}

// `ORDER BY outbox.txid`, qualified, in every reader: COLUMNS names its output `txid` (a bigint), and an unqualified
// ORDER BY txid sorts by that output column, which no index provides; every page was then a sequential scan and a
// sort of the whole log (100–160 ms a page on a 450,000-change log, seen with auto_explain).
// Like `below_watermark`, but every row of the page comes back, marked `visible` when below the watermark.
// One partition reads the whole log (`$3` is then 0 and unused). Several also order by their partition, constant
// within the page: under the relay role's row-level-security policy the planner does not take `mod(...) = $3` (a
// function that is not leakproof) as making the index's first column constant, so without it the page would be
// read through the index and then sorted.
fn read_after_sql(partitions: u32) -> Sql {
    let (own, order) = if partitions > 1 {
        let partition = partition_of(partitions);
        (
            Sql::template("AND {partition} = $3", &[("partition", partition.clone().into())]),
            Sql::template("{partition}, ", &[("partition", partition.into())]),
        )
    } else {
        (Sql::text(""), Sql::text(""))
    };
    Sql::template(
        "SELECT *, page.watermark_txid < pg_snapshot_xmin(pg_current_snapshot()) AS visible FROM (
           SELECT {columns}, txid AS watermark_txid FROM outbox
           WHERE (txid, position) > ($1::text::xid8, $2) AND $3::bigint IS NOT NULL {own}
           ORDER BY {order}outbox.txid, outbox.position
           LIMIT $4) page",
        &[("columns", COLUMNS.into()), ("own", own.into()), ("order", order.into())],
    )
}

/// Takes partition `partition`'s session lock on this connection if nobody holds it. The lock lives as long as
/// the connection: a relay that dies (or loses its database connection) releases it.
pub async fn try_claim(conn: &mut PgConnection, partition: u32) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1, $2) AS "claimed!""#, RELAY_LOCK_SPACE, partition as i32)
        .persistent(crate::db::named_statements())
        .fetch_one(&mut *conn)
        .await
}

/// The checkpoint of `partition`. A partition never run under this partition count starts from the lowest
/// checkpoint of any other count (after re-partitioning: duplicates, never gaps), or from the beginning.
pub async fn checkpoint(conn: &mut PgConnection, partitions: u32, partition: u32) -> Result<Checkpoint, sqlx::Error> {
    let own = crate::static_query_as!(
        StoredCheckpoint,
        r#"SELECT txid::text::bigint AS "txid!", position FROM relay_checkpoints WHERE partitions = $1 AND partition = $2"#,
        partitions as i32,
        partition as i32,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let found = match own {
        Some(found) => Some(found),
        None => {
            // Only other counts' checkpoints: a sibling partition of this count may already be past changes of
            // this partition that were never published (two relays on four partitions lost changes that way).
            crate::static_query_as!(
                StoredCheckpoint,
                r#"SELECT txid::text::bigint AS "txid!", position FROM relay_checkpoints WHERE partitions <> $1
                   ORDER BY txid, position LIMIT 1"#,
                partitions as i32,
            )
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    Ok(found.map(|StoredCheckpoint { txid, position }| Checkpoint { txid, position }).unwrap_or_default())
}

/// A row of `relay_checkpoints`, its `xid8` as an integer.
#[derive(sqlx::FromRow)]
struct StoredCheckpoint {
    #[sqlx(rename = "txid!")]
    txid: i64,
    position: i64,
}

/// Records that `partition` has published everything up to `at`.
pub async fn save_checkpoint(
    conn: &mut PgConnection,
    partitions: u32,
    partition: u32,
    at: Checkpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO relay_checkpoints (partitions, partition, txid, position) VALUES ($1, $2, $3::text::xid8, $4)
         ON CONFLICT (partitions, partition) DO UPDATE SET txid = excluded.txid, position = excluded.position, updated_at = now()",
        partitions as i32,
        partition as i32,
        at.txid.to_string(),
        at.position,
    )
    .persistent(crate::db::named_statements())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Changes with `from <= position <= to`, in log order, after `after` (for replay).
pub async fn read_range(
    conn: &mut PgConnection,
    from: i64,
    to: i64,
    after: Checkpoint,
    limit: u32,
) -> Result<Vec<LoggedChange>, sqlx::Error> {
    let sql = below_watermark(Sql::template(
        "SELECT {columns}, txid AS watermark_txid FROM outbox
         WHERE position BETWEEN $1 AND $2 AND (txid, position) > ($3::text::xid8, $4)
         ORDER BY outbox.txid, outbox.position LIMIT $5",
        &[("columns", COLUMNS.into())],
    ));
    sqlx::query_as(sql)
        .persistent(crate::db::named_statements())
        .bind(from)
        .bind(to)
        .bind(after.txid.to_string())
        .bind(after.position)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
}

/// One partition's state for `eventdata relay status`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PartitionStatus {
    /// The partition.
    #[sqlx(rename = "partition!")]
    pub partition: i32,
    /// Its checkpoint transaction id, if it ever published.
    pub txid: Option<i64>,
    /// Its checkpoint position.
    #[sqlx(rename = "position?")]
    pub position: Option<i64>,
    /// Changes not yet published.
    #[sqlx(rename = "backlog!")]
    pub backlog: i64,
    /// Age in seconds of the oldest unpublished change.
    pub oldest_age_seconds: Option<f64>,
    /// Whether a relay holds the partition now.
    #[sqlx(rename = "active!")]
    pub active: bool,
}

/// Every partition's checkpoint, backlog, lag and whether a relay is active on it. Advisory locks belong to one
/// database, but pg_locks lists the whole cluster's: a relay of another database on the same server holds the
/// same key, so only this database's locks count.
pub async fn status(conn: &mut PgConnection, partitions: u32) -> Result<Vec<PartitionStatus>, sqlx::Error> {
    crate::static_query_as!(
        PartitionStatus,
        r#"SELECT p.partition AS "partition!", c.txid::text::bigint AS txid, c.position AS "position?",
                count(o.position) AS "backlog!",
                extract(epoch FROM now() - min(o.created_at))::float8 AS oldest_age_seconds,
                EXISTS (SELECT FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = $2::int4::oid
                        AND l.objid = p.partition::oid AND l.objsubid = 2 AND l.granted
                        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
                  AS "active!"
         FROM generate_series(0, $1 - 1) AS p(partition)
         LEFT JOIN relay_checkpoints c ON c.partitions = $1 AND c.partition = p.partition
         LEFT JOIN outbox o ON (o.txid, o.position) > (coalesce(c.txid, '0'::xid8), coalesce(c.position, 0))
              AND mod(o.partition_key, $1) = p.partition
         GROUP BY p.partition, c.txid, c.position
         ORDER BY p.partition"#,
        partitions as i32,
        RELAY_LOCK_SPACE,
    )
    .fetch_all(&mut *conn)
    .await
}

/// Deletes up to `batch` delivered changes older than `older_than` (below every current partition's checkpoint)
/// and expired idempotency records; returns how many changes went. Small batches keep locks short.
pub async fn prune(
    conn: &mut PgConnection,
    partitions: u32,
    older_than: std::time::Duration,
    idempotency_older_than: std::time::Duration,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!(
        "WITH horizon AS (
           SELECT txid, position FROM relay_checkpoints WHERE partitions = $1 ORDER BY txid, position LIMIT 1
         ), doomed AS (
           SELECT o.position FROM outbox o, horizon h
           WHERE (SELECT count(*) FROM relay_checkpoints WHERE partitions = $1) = $1
             AND (o.txid, o.position) <= (h.txid, h.position)
             AND o.created_at < now() - make_interval(secs => $2)
           ORDER BY o.txid, o.position LIMIT $3
         )
         DELETE FROM outbox WHERE position IN (SELECT position FROM doomed)",
        partitions as i32,
        older_than.as_secs_f64(),
        batch,
    )
    .persistent(crate::db::named_statements())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query!(
        "DELETE FROM idempotency_records WHERE (org_id, request_id) IN (
           SELECT org_id, request_id FROM idempotency_records WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)",
        idempotency_older_than.as_secs_f64(),
        batch,
    )
    .persistent(crate::db::named_statements())
    .execute(&mut *conn)
    .await?;
    Ok(deleted)
}
