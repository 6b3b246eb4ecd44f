//! `eventdata seed`: a realistic synthetic catalogue for demos, tests and benchmarks, bulk-loaded with COPY.
//!
//! How it loads, and why:
//! - COPY cannot write into a table with row-level security, so each batch is COPYed into a session-local
//!   staging table and moved with one `INSERT ... SELECT` per table, under the organization's policy like any
//!   other write (a seed can only ever write into its own organization).
//! - Rows are a pure function of (organization, seed, size, index) and every insert is `ON CONFLICT DO NOTHING`,
//!   in fixed-size batches that commit one by one: running the seed again adds nothing, a larger `--events` adds
//!   only the missing events (with their relations; existing events keep theirs), and an interrupted run resumes
//!   where it stopped.
//! - One connection loads while the next batch is generated on another thread. A second loader does not help:
//!   both would update the same popular speakers' counts and hold those row locks until commit, so they run one
//!   after the other (measured: 20,000 events took 69 s with two loaders, 18 s with one).
//! - Indexes nobody can be using are built after the load instead of row by row (`indexes`): every index that
//!   backs no constraint, of each table that holds no rows at all, and a vector index that holds no vectors. One
//!   bulk build is many times faster (the full-text RUM index most of all). An index that serves someone else's
//!   rows is left alone, so no other organization's queries lose their index during a load.
//! - Changes go to the outbox only with `emit_changes` (one `*.created` / `event.*_added` per row, exactly as the
//!   API writes them); by default a bulk load is silent, and the report says so.

pub mod generate;
mod indexes;
mod progress;
mod vocabulary;

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::catalogue::{Kind, RelationKind};
use crate::domain::change::ChangeType;
use crate::outbox::enqueue::{ChangeContext, insert_changes_sql};
use crate::store::sql::Sql;
use crate::store::tables::{relation_table, resource_table};
use generate::{EventBatch, Plan};
use progress::Progress;

/// Events per batch (and transaction). Fixed, so batch boundaries, and with them resumption, are the same on
/// every run.
const EVENT_BATCH: u64 = 5_000;
/// Speakers or companies per batch.
const NAMED_BATCH: u64 = 20_000;

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Number of events (speakers, companies and topics scale with it).
    pub events: u64,
    /// Seed of the generator: the same seed gives the same catalogue.
    pub seed: u64,
    /// Events and speakers with an embedding (the first this many of each; topics always have one).
    pub embeddings: u64,
    /// Write one change per row to the outbox, as the API would.
    pub emit_changes: bool,
}

/// What a seed run did.
#[derive(Debug, Default)]
pub struct SeedReport {
    /// Rows inserted per table, in load order.
    pub inserted: Vec<(&'static str, u64)>,
    /// Vector indexes rebuilt after the load.
    pub rebuilt_indexes: Vec<String>,
    /// Changes written to the outbox.
    pub changes: u64,
    pub load_time: Duration,
    pub index_time: Duration,
}

/// One target table: its staging table and columns.
struct Target {
    table: &'static str,
    columns: &'static str,
    /// Expressions over the staging alias `s`, in column order (defaults to the columns).
    select: Option<&'static str>,
    /// Columns the loader computes from the other staging tables: (column list, expressions, joins after `s`).
    computed: Option<(&'static str, &'static str, &'static str)>,
    /// The change each inserted row emits with `emit_changes`.
    change: Option<ChangeType>,
}

const TOPICS: Target = Target {
    table: "topics",
    columns: generate::TOPIC_COLUMNS,
    select: None,
    computed: None,
    change: Some(ChangeType::Created(Kind::Topic)),
};
const COMPANIES: Target = Target {
    table: "companies",
    columns: generate::COMPANY_COLUMNS,
    select: None,
    computed: None,
    change: Some(ChangeType::Created(Kind::Company)),
};
const SPEAKERS: Target = Target {
    table: "speakers",
    columns: generate::SPEAKER_COLUMNS,
    // A speaker's employer may be missing if an earlier row with the company's name was not the seed's.
    select: Some(
        "s.id, s.org_id, s.name, s.title, s.bio, \
         (SELECT c.id FROM companies c WHERE c.id = s.company_id), s.linkedin_url, s.twitter_url, \
         s.website_url, s.avatar_url, s.confidence_score, s.embedding, s.embedding_model",
    ),
    computed: None,
    change: Some(ChangeType::Created(Kind::Speaker)),
};
const EVENTS: Target = Target {
    table: "events",
    columns: generate::EVENT_COLUMNS,
    select: None,
    // The relation counts of each event, from the relation rows of the same batch: the triggers are told to
    // leave events alone (`eventdata.event_counts_preset`, migration 0008), so no event row is rewritten.
    computed: Some((
        "speaker_count, topic_count, company_count, media_count",
        "coalesce(sp.n, 0), coalesce(tp.n, 0), coalesce(co.n, 0), coalesce(me.n, 0)",
        "LEFT JOIN (SELECT event_id, count(DISTINCT speaker_id) AS n FROM seed_event_speakers GROUP BY 1) sp ON sp.event_id = s.id \
         LEFT JOIN (SELECT event_id, count(DISTINCT topic_id) AS n FROM seed_event_topics GROUP BY 1) tp ON tp.event_id = s.id \
         LEFT JOIN (SELECT event_id, count(DISTINCT company_id) AS n FROM seed_event_companies GROUP BY 1) co ON co.event_id = s.id \
         LEFT JOIN (SELECT event_id, count(*) AS n FROM seed_media GROUP BY 1) me ON me.event_id = s.id",
    )),
    change: Some(ChangeType::Created(Kind::Event)),
};
const EVENT_SPEAKERS: Target = Target {
    table: "event_speakers",
    columns: generate::EVENT_SPEAKER_COLUMNS,
    select: None,
    computed: None,
    change: Some(ChangeType::RelationAdded(RelationKind::Speaker)),
};
const EVENT_TOPICS: Target = Target {
    table: "event_topics",
    columns: generate::EVENT_TOPIC_COLUMNS,
    select: None,
    computed: None,
    change: Some(ChangeType::RelationAdded(RelationKind::Topic)),
};
const EVENT_COMPANIES: Target = Target {
    table: "event_companies",
    columns: generate::EVENT_COMPANY_COLUMNS,
    select: None,
    computed: None,
    change: Some(ChangeType::RelationAdded(RelationKind::Company)),
};
const MEDIA: Target = Target {
    table: "media",
    columns: generate::MEDIA_COLUMNS,
    select: None,
    computed: None,
    change: Some(ChangeType::Created(Kind::Media)),
};

/// Seeds organization `org_id` (the pool must be the owner's: it may rebuild indexes).
pub async fn run(pool: &PgPool, org_id: Uuid, options: &SeedOptions) -> anyhow::Result<SeedReport> {
    let plan = std::sync::Arc::new(Plan::new(org_id, options.seed, options.events, options.embeddings));
    let progress = Progress::new(plan.topics + plan.companies + plan.speakers + plan.events);
    let mut report = SeedReport::default();
    let started = Instant::now();
    let mut conn = pool.acquire().await?.detach();
    indexes::set_aside(&mut conn).await?;
    let mut inserted = std::collections::BTreeMap::<&'static str, u64>::new();

    progress.phase("topics");
    let rows = generated(&plan, 0, plan.topics, Plan::topic_row).await?;
    load_batch(&mut conn, org_id, options, &mut inserted, &mut report.changes, &[(&TOPICS, rows)]).await?;
    progress.advance(plan.topics);

    let named: [(&Target, u64, RowWriter); 2] =
        [(&COMPANIES, plan.companies, Plan::company_row), (&SPEAKERS, plan.speakers, Plan::speaker_row)];
    for (target, count, row) in named {
        progress.phase(target.table);
        let mut start = 0;
        while start < count {
            let end = (start + NAMED_BATCH).min(count);
            let rows = generated(&plan, start, end, row).await?;
            load_batch(&mut conn, org_id, options, &mut inserted, &mut report.changes, &[(target, rows)]).await?;
            progress.advance(end - start);
            start = end;
        }
    }

    // Events: generate batch k+1 on a blocking thread while batch k loads.
    progress.phase("events");
    let batches = (0..plan.events).step_by(EVENT_BATCH as usize).collect::<Vec<_>>();
    let generate = |start: u64| {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || {
            let mut batch = EventBatch::default();
            for i in start..(start + EVENT_BATCH).min(plan.events) {
                plan.event_rows(i, &mut batch);
            }
            batch
        })
    };
    let mut next = batches.first().map(|&start| generate(start));
    for (k, &start) in batches.iter().enumerate() {
        let batch = next.take().context("event batch generator missing")?.await?;
        next = batches.get(k + 1).map(|&start| generate(start));
        let end = (start + EVENT_BATCH).min(plan.events);
        if !batch_loaded(&mut conn, org_id, &plan, start, end).await? {
            let parts = [
                (&EVENTS, batch.events),
                (&EVENT_SPEAKERS, batch.speakers),
                (&EVENT_TOPICS, batch.topics),
                (&EVENT_COMPANIES, batch.companies),
                (&MEDIA, batch.media),
            ];
            load_batch(&mut conn, org_id, options, &mut inserted, &mut report.changes, &parts).await?;
        }
        progress.advance(end - start);
    }
    report.load_time = started.elapsed();

    progress.phase("indexes");
    let indexing = Instant::now();
    report.rebuilt_indexes = indexes::build(&mut conn).await?;
    // As autovacuum would, at once: the old row versions the load's count updates left removed (index builds
    // keep versions some snapshot may still see, and the planner prices index scans by the index's size), GIN
    // pending lists merged, the visibility map set for index-only scans, statistics taken.
    sqlx::raw_sql(
        "VACUUM (ANALYZE) events, speakers, companies, topics, media, event_speakers, event_topics, event_companies",
    )
    .execute(&mut conn)
    .await?;
    report.index_time = indexing.elapsed();
    progress.finish();
    report.inserted =
        [&TOPICS, &COMPANIES, &SPEAKERS, &EVENTS, &EVENT_SPEAKERS, &EVENT_TOPICS, &EVENT_COMPANIES, &MEDIA]
            .iter()
            .map(|t| (t.table, inserted.get(t.table).copied().unwrap_or(0)))
            .collect();
    Ok(report)
}

/// Appends one generated row (`index`) to a COPY buffer.
type RowWriter = fn(&Plan, u64, &mut String);

/// Rows `start..end` generated by `row` on a blocking thread.
async fn generated(plan: &std::sync::Arc<Plan>, start: u64, end: u64, row: RowWriter) -> anyhow::Result<String> {
    let plan = plan.clone();
    Ok(tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        (start..end).for_each(|i| row(&plan, i, &mut out));
        out
    })
    .await?)
}

/// Whether a whole event batch committed in an earlier run: batches commit atomically and have fixed
/// boundaries, so its first and last event being there means all of it is.
async fn batch_loaded(
    conn: &mut PgConnection,
    org_id: Uuid,
    plan: &Plan,
    start: u64,
    end: u64,
) -> anyhow::Result<bool> {
    let ids = [plan.id(generate::Entity::Event, start), plan.id(generate::Entity::Event, end - 1)];
    let mut tx = begin(conn, org_id, false).await?;
    let found = sqlx::query_scalar!(r#"SELECT count(*) AS "found!" FROM events WHERE id = ANY($1)"#, &ids[..])
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(found == 2)
}

/// Loads one batch (several tables) in one transaction: every part COPYed into its staging table first (the
/// events' counts are computed from their relations' staging rows), then moved in the order given.
async fn load_batch(
    conn: &mut PgConnection,
    org_id: Uuid,
    options: &SeedOptions,
    inserted: &mut std::collections::BTreeMap<&'static str, u64>,
    changes: &mut u64,
    parts: &[(&Target, String)],
) -> anyhow::Result<()> {
    let mut tx = begin(conn, org_id, !options.emit_changes).await?;
    for (target, rows) in parts {
        let stage = format!("seed_{}", target.table);
        let columns = target.columns;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS \
             SELECT {columns} FROM {table} WITH NO DATA",
            table = target.table
        )))
        .execute(&mut *tx)
        .await?;
        if rows.is_empty() {
            continue;
        }
        let mut copy = tx.copy_in_raw(&format!("COPY {stage} ({columns}) FROM STDIN")).await?;
        copy.send(rows.as_bytes()).await?;
        copy.finish().await?;
    }
    for (target, rows) in parts {
        if rows.is_empty() {
            continue;
        }
        let (count, emitted): (i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(insert_sql(target, options.emit_changes)))
                .bind(ChangeContext::default().to_param())
                .fetch_one(&mut *tx)
                .await
                .with_context(|| format!("loading {}", target.table))?;
        *inserted.entry(target.table).or_default() += count as u64;
        *changes += emitted as u64;
    }
    tx.commit().await?;
    Ok(())
}

/// `INSERT ... SELECT` from the staging table, skipping rows that exist, optionally with their changes.
/// Returns (rows inserted, changes written); `$1` is the change context.
fn insert_sql(target: &Target, emit_changes: bool) -> String {
    let Target { table, columns, select, computed, change } = target;
    let select = select.unwrap_or_else(|| columns);
    let select = if select.contains("s.") { select.to_string() } else { prefixed(select) };
    // With changes emitted, events load with zero counts and the triggers count, so each `event.created` shows
    // the event as the API would have created it: before its relations.
    let (columns, select, joins) = match computed.filter(|_| !emit_changes) {
        Some((extra, expressions, joins)) => (format!("{columns}, {extra}"), format!("{select}, {expressions}"), joins),
        None => (columns.to_string(), select, ""),
    };
    let changes = match change.filter(|_| emit_changes) {
        Some(change @ ChangeType::RelationAdded(kind)) => {
            let projection = relation_table(kind).projection;
            let source = Sql::template(
                "(SELECT r.event_id AS aggregate_id, jsonb_build_object('relation', {projection}) AS body FROM ins r)",
                &[("projection", projection.into())],
            );
            insert_changes_sql(source.into(), change, 1).to_string()
        }
        Some(change) => {
            let projection = resource_table(change.aggregate()).projection;
            let source = Sql::template(
                "(SELECT t.id AS aggregate_id, jsonb_build_object('resource', {projection}) AS body FROM ins t)",
                &[("projection", projection.into())],
            );
            insert_changes_sql(source.into(), change, 1).to_string()
        }
        None => "SELECT 1 WHERE $1::jsonb IS NULL AND false".to_string(),
    };
    let changes = if changes.starts_with("INSERT") { format!("{changes} RETURNING 1") } else { changes };
    // What hangs off an event is loaded only with the event: an event that an earlier run loaded keeps exactly
    // the relations it got then, even when a larger run's plan would pick other speakers for it. So the staging
    // table of events keeps only the events this statement inserted, and the other tables load only for those.
    let (filter, prune) = match *table {
        "events" => {
            ("", ", pruned AS (DELETE FROM seed_events s WHERE NOT EXISTS (SELECT FROM ins WHERE ins.id = s.id))")
        }
        "event_speakers" | "event_topics" | "event_companies" | "media" => {
            ("WHERE EXISTS (SELECT FROM seed_events e WHERE e.id = s.event_id)", "")
        }
        _ => ("", ""),
    };
    format!(
        "WITH ins AS (
           INSERT INTO {table} ({columns}) SELECT {select} FROM seed_{table} s {joins} {filter}
           ON CONFLICT DO NOTHING RETURNING *
         ), changes AS ({changes}){prune}
         SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM changes)"
    )
}

/// A transaction on `conn` in which row-level security admits `org_id`'s rows only. Commits do not wait for
/// the WAL flush: a crash can lose the last batches, which a rerun loads again (batches are checked, not assumed).
/// With `preset_counts`, events load with their relation counts already set (relations load only with the
/// events they belong to), so the count triggers are told to leave events alone (`eventdata.event_counts_preset`,
/// heeded for the owner's role only).
async fn begin(
    conn: &mut PgConnection,
    org_id: Uuid,
    preset_counts: bool,
) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    sqlx::Connection::begin_with(
        conn,
        sqlx::AssertSqlSafe(format!(
            "BEGIN; SET LOCAL app.org_id = '{org_id}'; SET LOCAL synchronous_commit = off; \
             SET LOCAL eventdata.event_counts_preset = {}",
            if preset_counts { "on" } else { "off" }
        )),
    )
    .await
}

fn prefixed(columns: &str) -> String {
    columns.split(',').map(|c| format!("s.{}", c.trim())).collect::<Vec<_>>().join(", ")
}
