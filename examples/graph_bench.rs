//! Measures graph traversal choices on the benchmark data set (50k events, 20k speakers, 2k companies, 500 topics,
//! ~200k speaker-event edges with skewed popularity): eventdata's frontier-by-frontier neighbourhood and
//! bidirectional path search against recursive CTEs doing the same work. Prints medians and p90s.
//!
//! `cargo run --release --example graph_bench` (needs scripts/setup.sh; creates and reuses the database
//! `eventdata_graphbench`). Figures go into docs/graph.md.

use std::time::{Duration, Instant};

use eventdata::app::graph::NodeKey;
use eventdata::app::{App, Caller};
use eventdata::domain::api_key::Scopes;
use eventdata::domain::catalogue::Kind;
use eventdata::domain::page_token::PageTokens;
use eventdata::store::graph::EdgeKind;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

const DB: &str = "eventdata_graphbench";
const ALL: [EdgeKind; 4] = [EdgeKind::SpeaksAt, EdgeKind::TakesPartIn, EdgeKind::About, EdgeKind::WorksAt];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let owner = format!("postgres://eventdata_owner@127.0.0.1:5432/{DB}");
    ensure_database().await?;
    let admin = PgPoolOptions::new().max_connections(2).connect(&owner).await?;
    eventdata::db::migrate_up(&admin).await?;
    let org = load(&admin).await?;
    let app_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&format!("postgres://eventdata_app@127.0.0.1:5432/{DB}"))
        .await?;
    let app = App::new(app_pool.clone(), PageTokens::random(), std::time::Duration::from_secs(30));
    let caller = Caller {
        org_id: org,
        key_id: Uuid::nil(),
        scopes: Scopes::parse_list("read").map_err(anyhow::Error::msg)?,
        traceparent: None,
        deadline: None,
        tracestate: None,
        consistency: None,
    };

    let speakers = sample(&app_pool, org, "speakers", 30).await?;
    let events = sample(&app_pool, org, "events", 30).await?;
    for depth in [2u32, 3] {
        let mut frontier = Vec::new();
        let mut cte = Vec::new();
        let mut sizes = Vec::new();
        for id in &speakers {
            let start: NodeKey = (Kind::Speaker, *id);
            let t = Instant::now();
            let n = app.neighborhood(&caller, start, depth, &ALL, 10_000, Duration::from_secs(30)).await?;
            frontier.push(t.elapsed());
            sizes.push(n.nodes.len());
            let t = Instant::now();
            cte_neighborhood(&app_pool, org, *id, depth).await?;
            cte.push(t.elapsed());
        }
        sizes.sort_unstable();
        println!(
            "neighbourhood depth {depth} (cap 10,000): frontier median {:?} p90 {:?} | recursive CTE median {:?} p90 {:?} | median nodes {}",
            pct(&mut frontier, 50),
            pct(&mut frontier, 90),
            pct(&mut cte, 50),
            pct(&mut cte, 90),
            sizes[sizes.len() / 2]
        );
    }
    let mut bidi = Vec::new();
    let mut cte = Vec::new();
    let mut found = 0;
    for pair in events.chunks(2).filter(|p| p.len() == 2) {
        let t = Instant::now();
        let path = app.find_path(&caller, (Kind::Event, pair[0]), (Kind::Event, pair[1]), 6, &ALL).await?;
        bidi.push(t.elapsed());
        found += usize::from(path.is_some());
        let t = Instant::now();
        cte_path(&app_pool, org, pair[0], pair[1]).await?;
        cte.push(t.elapsed());
    }
    println!(
        "shortest path (<= 6) between random events: bidirectional BFS median {:?} p90 {:?} | recursive CTE median {:?} p90 {:?} | {found}/{} connected",
        pct(&mut bidi, 50),
        pct(&mut bidi, 90),
        pct(&mut cte, 50),
        pct(&mut cte, 90),
        bidi.len()
    );
    Ok(())
}

fn pct(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort_unstable();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

async fn ensure_database() -> anyhow::Result<()> {
    let mut conn = PgConnection::connect("postgres://eventdata_owner@127.0.0.1:5432/postgres").await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
        .bind(DB)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DB} TEMPLATE template1")))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// Generates the data set once (idempotent: reuses it when the organization exists).
async fn load(admin: &PgPool) -> anyhow::Result<Uuid> {
    if let Some(org) = sqlx::query_scalar::<_, Uuid>("SELECT id FROM organizations WHERE slug = 'graphbench'")
        .fetch_optional(admin)
        .await?
    {
        return Ok(org);
    }
    let started = Instant::now();
    let org: Uuid = sqlx::query_scalar("INSERT INTO organizations (id, slug, name) VALUES (gen_random_uuid(), 'graphbench', 'Graph bench') RETURNING id")
        .fetch_one(admin)
        .await?;
    let mut tx = eventdata::db::begin_for_org(admin, org).await?;
    let script = "
        SELECT setseed(0.42);
        INSERT INTO topics (id, org_id, name) SELECT gen_random_uuid(), current_org_id(), 'Topic ' || i FROM generate_series(1, 500) i;
        INSERT INTO companies (id, org_id, name) SELECT gen_random_uuid(), current_org_id(), 'Company ' || i FROM generate_series(1, 2000) i;
        CREATE TEMP TABLE c AS SELECT row_number() OVER (ORDER BY id) n, id FROM companies;
        CREATE TEMP TABLE tp AS SELECT row_number() OVER (ORDER BY id) n, id FROM topics;
        INSERT INTO speakers (id, org_id, name, company_id)
          SELECT gen_random_uuid(), current_org_id(), 'Speaker ' || i,
                 CASE WHEN random() < 0.7 THEN (SELECT id FROM c WHERE n = 1 + (i * 7919) % 2000) END
          FROM generate_series(1, 20000) i;
        CREATE TEMP TABLE s AS SELECT row_number() OVER (ORDER BY id) n, id FROM speakers;
        INSERT INTO events (id, org_id, name, slug, starts_at)
          SELECT gen_random_uuid(), current_org_id(), 'Event ' || i, 'event-' || i, now() - i * interval '1 hour'
          FROM generate_series(1, 50000) i;
        CREATE TEMP TABLE e AS SELECT row_number() OVER (ORDER BY id) n, id FROM events;
        -- ~4 speakers per event, popularity skewed (squared uniform: a few speakers speak a lot)
        INSERT INTO event_speakers (org_id, event_id, speaker_id)
          SELECT current_org_id(), e.id, s.id FROM e, generate_series(1, 4) k,
                 LATERAL (SELECT id FROM s WHERE n = 1 + floor(20000 * power(random() + 0 * e.n + 0 * k, 2))::int) s
          ON CONFLICT DO NOTHING;
        INSERT INTO event_companies (org_id, event_id, company_id)
          SELECT current_org_id(), e.id, c.id FROM e, LATERAL (SELECT id FROM c WHERE n = 1 + floor(2000 * power(random() + 0 * e.n, 2))::int) c
          ON CONFLICT DO NOTHING;
        INSERT INTO event_topics (org_id, event_id, topic_id)
          SELECT current_org_id(), e.id, tp.id FROM e, generate_series(1, 3) k,
                 LATERAL (SELECT id FROM tp WHERE n = 1 + floor(500 * power(random() + 0 * e.n + 0 * k, 2))::int) tp
          ON CONFLICT DO NOTHING;
    ";
    sqlx::raw_sql(script).execute(&mut *tx).await?;
    tx.commit().await?;
    sqlx::raw_sql("ANALYZE").execute(admin).await?;
    let edges: i64 =
        sqlx::query_scalar("SELECT (SELECT count(*) FROM event_speakers) + 0").fetch_one(admin).await.unwrap_or(0);
    println!("loaded the data set in {:?} ({edges} speaker-event edges visible to the owner)", started.elapsed());
    Ok(org)
}

async fn sample(pool: &PgPool, org: Uuid, table: &str, n: i64) -> anyhow::Result<Vec<Uuid>> {
    let mut tx = eventdata::db::begin_for_org(pool, org).await?;
    let sql = format!("SELECT id FROM {table} ORDER BY md5(id::text) LIMIT $1");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(n).fetch_all(&mut *tx).await?)
}

const EDGES_CTE: &str = "edges(a, b) AS (
    SELECT event_id, speaker_id FROM event_speakers UNION ALL SELECT speaker_id, event_id FROM event_speakers
    UNION ALL SELECT event_id, company_id FROM event_companies UNION ALL SELECT company_id, event_id FROM event_companies
    UNION ALL SELECT event_id, topic_id FROM event_topics UNION ALL SELECT topic_id, event_id FROM event_topics
    UNION ALL SELECT id, company_id FROM speakers WHERE company_id IS NOT NULL
    UNION ALL SELECT company_id, id FROM speakers WHERE company_id IS NOT NULL)";

async fn cte_neighborhood(pool: &PgPool, org: Uuid, start: Uuid, depth: u32) -> anyhow::Result<i64> {
    let mut tx = eventdata::db::begin_for_org(pool, org).await?;
    let sql = format!(
        "WITH RECURSIVE {EDGES_CTE}, walk(node, depth) AS (
           SELECT $1::uuid, 0 UNION SELECT e.b, w.depth + 1 FROM walk w JOIN edges e ON e.a = w.node WHERE w.depth < $2
         ) SELECT count(DISTINCT node) FROM (SELECT node FROM walk LIMIT 10000) x"
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(start).bind(depth as i32).fetch_one(&mut *tx).await?)
}

async fn cte_path(pool: &PgPool, org: Uuid, from: Uuid, to: Uuid) -> anyhow::Result<Option<i32>> {
    let mut tx = eventdata::db::begin_for_org(pool, org).await?;
    sqlx::raw_sql("SET LOCAL statement_timeout = '5s'").execute(&mut *tx).await?;
    let sql = format!(
        "WITH RECURSIVE {EDGES_CTE}, walk(node, depth) AS (
           SELECT $1::uuid, 0
           UNION
           SELECT e.b, w.depth + 1 FROM walk w JOIN edges e ON e.a = w.node WHERE w.depth < 6
         ) SELECT depth FROM walk WHERE node = $2 LIMIT 1"
    );
    match sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(from).bind(to).fetch_one(&mut *tx).await {
        Ok(depth) => Ok(depth),
        Err(err) => {
            println!("  (recursive CTE path failed: {err})");
            Ok(None)
        }
    }
}
