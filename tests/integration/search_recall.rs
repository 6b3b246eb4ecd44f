//! Recall of SimilarEvents against exact search on 20,000 clustered 1536-d vectors, with and without a filter
//! that keeps ~2% of the rows.

use std::collections::HashSet;

use eventdata::proto::v1 as pb;
use pb::search_service_client::SearchServiceClient;
use rand::{Rng, RngExt, SeedableRng};
use uuid::Uuid;

use crate::common::TestApp;

const DIM: usize = 1536;
const ROWS: usize = 20_000;
const CLUSTERS: usize = 40;

/// A unit vector near `center` (Gaussian noise by Box–Muller).
fn noisy(rng: &mut impl Rng, center: &[f32], sigma: f32) -> Vec<f32> {
    let mut v: Vec<f32> = center
        .iter()
        .map(|c| {
            let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-9), rng.random::<f32>());
            c + sigma * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Loads ROWS events with clustered embeddings (2% of them `live`), directly in SQL for speed.
async fn load(app: &TestApp, rng: &mut impl Rng, centers: &[Vec<f32>]) -> Vec<(Uuid, bool)> {
    let mut rows = Vec::with_capacity(ROWS);
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    // Building the index once after loading is much faster than growing it row by row.
    sqlx::query("DROP INDEX events_embedding_idx").execute(&mut *tx).await.expect("drop index");
    for chunk in 0..ROWS / 1000 {
        let mut ids = Vec::new();
        let mut live = Vec::new();
        let mut flat: Vec<f32> = Vec::with_capacity(1000 * DIM);
        for i in 0..1000 {
            let center = &centers[rng.random_range(0..CLUSTERS)];
            flat.extend(noisy(rng, center, 0.03));
            ids.push(Uuid::now_v7());
            live.push(rng.random_range(0..50) == 0);
            rows.push((ids[i], live[i]));
        }
        sqlx::query(
            "INSERT INTO events (id, org_id, name, slug, status, embedding, embedding_model)
             SELECT u.id, current_org_id(), 'Event ' || u.n, 'event-' || $4 || '-' || u.n,
                    CASE WHEN u.live THEN 'live' ELSE 'scheduled' END,
                    ($3::real[])[(u.n - 1) * 1536 + 1 : u.n * 1536]::vector, 'test-model'
             FROM unnest($1::uuid[], $2::bool[]) WITH ORDINALITY AS u(id, live, n)",
        )
        .bind(&ids)
        .bind(&live)
        .bind(&flat)
        .bind(chunk as i64)
        .execute(&mut *tx)
        .await
        .expect("insert chunk");
    }
    sqlx::query("SET LOCAL maintenance_work_mem = '512MB'").execute(&mut *tx).await.expect("memory");
    sqlx::query("CREATE INDEX events_embedding_idx ON events USING hnsw (embedding vector_cosine_ops)")
        .execute(&mut *tx)
        .await
        .expect("build index");
    tx.commit().await.expect("commit");
    sqlx::query("ANALYZE events").execute(&app.db.admin).await.expect("analyze");
    rows
}

/// The exact top 10 by a sequential scan.
async fn exact(app: &TestApp, query: &[f32], live_only: bool) -> HashSet<String> {
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    sqlx::query("SET LOCAL enable_indexscan = off").execute(&mut *tx).await.expect("no index");
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM events WHERE ($2 = false OR status = 'live') ORDER BY embedding <=> $1::real[]::vector LIMIT 10",
    )
    .bind(query)
    .bind(live_only)
    .fetch_all(&mut *tx)
    .await
    .expect("exact search");
    ids.into_iter().map(|id| id.to_string()).collect()
}

#[tokio::test]
async fn recall_at_10_is_at_least_95_percent_with_and_without_a_2_percent_filter() {
    let app = TestApp::start().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20_000);
    let centers: Vec<Vec<f32>> = (0..CLUSTERS).map(|_| noisy(&mut rng, &vec![0.0; DIM], 1.0)).collect();
    let rows = load(&app, &mut rng, &centers).await;
    assert!(rows.iter().filter(|r| r.1).count() > 300, "about 2% are live");

    let mut search = SearchServiceClient::new(app.rw());
    let (mut hits, mut filtered_hits, queries) = (0usize, 0usize, 25usize);
    for _ in 0..queries {
        let cluster = rng.random_range(0..CLUSTERS);
        let query = noisy(&mut rng, &centers[cluster], 0.03);
        for live_only in [false, true] {
            let filter =
                live_only.then(|| pb::EventSearchFilter { status: pb::EventStatus::Live as i32, ..Default::default() });
            let found = search
                .similar_events(pb::SimilarEventsRequest {
                    query: Some(pb::SimilarityQuery {
                        query: Some(pb::similarity_query::Query::Vector(pb::VectorQuery { values: query.clone() })),
                    }),
                    k: 10,
                    filter,
                    ef_search: 0,
                })
                .await
                .expect("similar events")
                .into_inner()
                .results;
            assert_eq!(found.len(), 10, "k results even with a 2% filter");
            if live_only {
                assert!(
                    found.iter().all(|r| r.event.as_ref().is_some_and(|e| e.status == pb::EventStatus::Live as i32))
                );
            }
            assert!(found.windows(2).all(|w| w[0].distance <= w[1].distance), "nearest first");
            assert!(found.iter().all(|r| (0.0..=1.0).contains(&r.score)));
            let truth = exact(&app, &query, live_only).await;
            let matched = found.iter().filter(|r| truth.contains(&r.event.as_ref().expect("event").id)).count();
            if live_only { filtered_hits += matched } else { hits += matched }
        }
    }
    let recall = hits as f64 / (queries * 10) as f64;
    let filtered_recall = filtered_hits as f64 / (queries * 10) as f64;
    println!("recall@10 = {recall:.3}, with a 2% filter = {filtered_recall:.3}");
    assert!(recall >= 0.95, "recall@10 {recall}");
    assert!(filtered_recall >= 0.95, "filtered recall@10 {filtered_recall}");
}
