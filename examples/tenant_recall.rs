//! Recall of similarity search per tenant, for scripts/bench-tenants.sh.
//!
//! `tenant_recall --org SLUG [--samples N] [--k K]`: for N embedded events of the organization, runs the service's
//! own nearest-neighbour statement (`store::search::nearest`, in a transaction begun as the service begins it: the
//! runtime role, the organization set, the default `ef_search` and iterative scans) with the event's vector, and
//! compares it with an exact scan of the organization's vectors (every distance computed, no index). The same
//! comparison is made for the bare HNSW statement (what the service ran before the per-tenant switch), so both
//! designs are printed side by side.
//!
//! Reads `DATABASE_URL` (the runtime role) and `DATABASE_ADMIN_URL` (to find the organization). Output ends with a
//! `RESULT key=value ...` line.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context;
use eventdata::domain::catalogue::Kind;
use eventdata::domain::search_params::DEFAULT_EF_SEARCH;
use eventdata::store::search::{self, NearestTo};
use pgvector::Vector;
use sqlx::PgPool;
use uuid::Uuid;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let slug = arg("--org").context("--org SLUG is required")?;
    let samples: i64 = arg("--samples").map_or(Ok(50), |s| s.parse()).context("--samples")?;
    let k: i64 = arg("--k").map_or(Ok(10), |s| s.parse()).context("--k")?;

    let admin = PgPool::connect(&std::env::var("DATABASE_ADMIN_URL").context("DATABASE_ADMIN_URL")?).await?;
    let org: Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
        .bind(&slug)
        .fetch_one(&admin)
        .await
        .with_context(|| format!("organization {slug}"))?;
    let runtime = PgPool::connect(&std::env::var("DATABASE_URL").context("DATABASE_URL")?).await?;
    let settings = search::vector_search_settings(DEFAULT_EF_SEARCH);

    let mut tx = runtime.begin_with(eventdata::db::begin_statement(org, None, &settings)).await?;
    let embedded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE embedding IS NOT NULL").fetch_one(&mut *tx).await?;
    let queries: Vec<(Uuid, Vector)> =
        sqlx::query_as("SELECT id, embedding FROM events WHERE embedding IS NOT NULL ORDER BY md5(id::text) LIMIT $1")
            .bind(samples)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    anyhow::ensure!(!queries.is_empty(), "organization {slug} has no embedded events");

    let (mut service, mut hnsw) = (Tally::default(), Tally::default());
    for (_, vector) in &queries {
        let values = vector.as_slice();
        let mut tx = runtime.begin_with(eventdata::db::begin_statement(org, None, &settings)).await?;
        // Exact: every vector of the organization compared (`+ 0` keeps the ordering off the index).
        let exact: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM events WHERE embedding IS NOT NULL ORDER BY (embedding <=> $1) + 0, id LIMIT $2",
        )
        .bind(vector)
        .bind(k)
        .fetch_all(&mut *tx)
        .await?;
        let started = Instant::now();
        let found =
            search::nearest(&mut tx, org, Kind::Event, NearestTo::Vector(values), None, k, DEFAULT_EF_SEARCH).await?;
        service.add(&exact, found.iter().map(|(resource, _)| resource.id()), started);
        let started = Instant::now();
        let bare: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM events WHERE embedding IS NOT NULL ORDER BY embedding <=> $1 LIMIT $2")
                .bind(vector)
                .bind(k)
                .fetch_all(&mut *tx)
                .await?;
        hnsw.add(&exact, bare, started);
        tx.commit().await?;
    }
    let n = queries.len();
    println!("organization {slug}: {embedded} embedded events, {n} queries, k = {k}");
    for (name, t) in [("service statement", &service), ("bare HNSW statement", &hnsw)] {
        println!(
            "  {name}: recall {:.3}, queries with fewer than k results {}, mean {:.2} ms (one client, unloaded)",
            t.recall(),
            t.short,
            t.millis / n as f64
        );
    }
    println!(
        "RESULT org={slug} embedded={embedded} queries={n} k={k} recall={:.3} short={} mean_ms={:.2} \
         hnsw_recall={:.3} hnsw_short={} hnsw_mean_ms={:.2}",
        service.recall(),
        service.short,
        service.millis / n as f64,
        hnsw.recall(),
        hnsw.short,
        hnsw.millis / n as f64
    );
    Ok(())
}

/// Recall against the exact answer, summed over queries.
#[derive(Default)]
struct Tally {
    hits: usize,
    wanted: usize,
    short: usize,
    millis: f64,
}

impl Tally {
    fn add(&mut self, exact: &[Uuid], found: impl IntoIterator<Item = Uuid>, started: Instant) {
        self.millis += started.elapsed().as_secs_f64() * 1000.0;
        let found: HashSet<Uuid> = found.into_iter().collect();
        self.hits += exact.iter().filter(|id| found.contains(id)).count();
        self.wanted += exact.len();
        if found.len() < exact.len() {
            self.short += 1;
        }
    }

    fn recall(&self) -> f64 {
        if self.wanted == 0 { 1.0 } else { self.hits as f64 / self.wanted as f64 }
    }
}
