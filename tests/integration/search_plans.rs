//! Search and filter plans as the service runs them: the runtime role, its organization set, on seeded data large
//! enough that the planner picks indexes by itself (no setting priced out). Beneath a row-level-security policy an
//! operator that is not LEAKPROOF cannot use its index, so a plan test run as a superuser or the table owner
//! would prove nothing. And the SECURITY DEFINER search functions never return another organization's rows.

use std::process::Command;

use eventdata::domain::catalogue::Kind;
use eventdata::store::lists::{EventFilter, SimpleFilter, explain_events};
use eventdata::store::search::{self, NearestTo};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::TestDb;

/// Events in the seeded organization: enough that a sequential scan is never the cheap plan.
const EVENTS: &str = "30000";

fn seed(db: &TestDb, org: &str, events: &str, embeddings: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_eventdata"))
        .args(["seed", "--org", org, "--events", events, "--embeddings", embeddings])
        .env("RUST_LOG", "warn")
        .env("DATABASE_ADMIN_URL", &db.admin_url)
        .output()
        .expect("run eventdata seed");
    assert!(output.status.success(), "seed failed: {}", String::from_utf8_lossy(&output.stderr));
}

async fn org(db: &TestDb, slug: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
        .bind(slug)
        .fetch_one(&db.admin)
        .await
        .expect("org")
}

/// A transaction of the runtime role inside `org`, as the service opens it.
async fn as_service(app: &PgPool, org: Uuid) -> sqlx::Transaction<'static, sqlx::Postgres> {
    eventdata::db::begin_for_org(app, org).await.expect("begin as the runtime role")
}

fn assert_uses(plan: &str, index: &str, what: &str) {
    assert!(plan.contains(index), "{what} does not use {index}:\n{plan}");
    assert!(!plan.contains("Seq Scan on events") && !plan.contains("Seq Scan on speakers"), "{what}:\n{plan}");
}

#[tokio::test]
async fn every_search_and_filter_uses_its_index_as_the_runtime_role() {
    let db = TestDb::migrated().await;
    seed(&db, "big", EVENTS, "0");
    seed(&db, "small", "300", "300");
    let (big, small) = (org(&db, "big").await, org(&db, "small").await);
    for table in ["events", "speakers", "companies", "topics", "event_speakers"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}"))).execute(&db.admin).await.expect("analyze");
    }
    let app = db.app_pool().await;
    let mut tx = as_service(&app, big).await;

    // Every word of the load generator, and a query that matches a third of the events: the paged search's ranked
    // branch is planned for all its rows, where reading the organization's rows and sorting every match wins on
    // estimates for common queries and costs 20 times the ordered scan (migration 0012).
    let common = "kubernetes or rust or databases or security or python";
    // A first page stops the ordered scan at its limit: no tie-break reads the rest of its last distance's matches
    // (migration 0015).
    for query in eventdata::loadgen::TEXT_WORDS.iter().chain([&common]) {
        let plan = search::explain_text(&mut tx, query, &EventFilter::default()).await.expect("explain text");
        assert_uses(&plan, "events_search_rum_idx", &format!("full text for {query}"));
        let lines: Vec<&str> = plan.lines().collect();
        let scan = lines.iter().position(|l| l.contains("events_search_rum_idx")).expect("the RUM scan");
        assert!(lines[scan - 1].trim_start().starts_with("->  Limit"), "a first page's scan is limited:\n{plan}");
        // Without filters the plan is the generic one cached for every call (migration 0017): the exact name must
        // come from the organization's name index whatever the query, and no cost estimate may turn on JIT.
        assert_uses(&plan, "events_org_name_lower_idx", &format!("exact name for {query}"));
        assert!(!plan.contains("JIT"), "no search compiles code:\n{plan}");
    }
    let filtered = EventFilter { country: Some("DE".into()), ..Default::default() };
    let plan = search::explain_text(&mut tx, "kubernetes security", &filtered).await.expect("explain text");
    assert_uses(&plan, "events_search_rum_idx", "full text with a filter");
    // Hybrid search's text list stops RUM's ordered scan at its limit: no tie-break reads the rest of the last
    // distance's matches (an incremental sort between the scan and the limit would).
    for (query, filter) in [("kubernetes", EventFilter::default()), ("kubernetes security", filtered.clone())] {
        let plan = search::explain_text_candidates(&mut tx, query, &filter, 50).await.expect("explain");
        assert_uses(&plan, "events_search_rum_idx", "hybrid text candidates");
        let lines: Vec<&str> = plan.lines().collect();
        let scan = lines.iter().position(|l| l.contains("events_search_rum_idx")).expect("the RUM scan");
        assert!(lines[scan - 1].trim_start().starts_with("->  Limit"), "the scan's parent is the limit:\n{plan}");
        assert_uses(&plan, "events_org_name_lower_idx", "hybrid's exact name");
        assert!(!plan.contains("JIT"), "no search compiles code:\n{plan}");
    }
    let plan = search::explain_names(&mut tx, Kind::Speaker, "jon smith").await.expect("explain names");
    assert_uses(&plan, "speakers_org_name_trgm_idx", "speaker lookup");
    // Companies (1,500) and topics (300) run the same function over tables small enough that the planner rightly
    // prefers reading the organization's rows; speakers (12,000) are the lookup that needs the index.

    let prefix = EventFilter { name_prefix: Some("rust".into()), ..Default::default() };
    let plan = explain_events(&mut tx, big, &prefix).await.expect("explain prefix");
    assert_uses(&plan, "events_org_name_lower_idx", "event name prefix");
    assert!(plan.contains("Index Cond") && plan.contains("~>=~"), "the prefix is an index condition:\n{plan}");
    let filter = SimpleFilter { name_prefix: Some("xy".into()), ..Default::default() };
    let plan = eventdata::store::lists::explain_by_id(&mut tx, big, Kind::Speaker, &filter).await.expect("explain");
    assert_uses(&plan, "speakers_org_name_pattern_idx", "speaker name prefix");
    assert!(plan.contains("~>=~"), "the prefix is an index condition:\n{plan}");
    tx.commit().await.expect("commit");

    // A small organization's similarity search is the exact scan over its own rows, never the shared HNSW graph.
    let mut tx = as_service(&app, small).await;
    let like: Uuid = sqlx::query_scalar("SELECT id FROM events WHERE embedding IS NOT NULL LIMIT 1")
        .fetch_one(&mut *tx)
        .await
        .expect("an embedded event");
    let plan = search::explain_nearest(&mut tx, small, Kind::Event, NearestTo::Stored(like), None, 10, 100)
        .await
        .expect("plan");
    assert!(plan.contains("events_org_embedded_idx"), "the organization's rows are counted by its index:\n{plan}");
    let found =
        search::nearest(&mut tx, small, Kind::Event, NearestTo::Stored(like), None, 10, 100).await.expect("nearest");
    assert_eq!(found.len(), 10, "k results for a small organization");
    tx.commit().await.expect("commit");

    // Sensible ranking on seeded data: an event searched by its exact name comes first.
    let mut tx = as_service(&app, big).await;
    let name: String = sqlx::query_scalar("SELECT name FROM events ORDER BY id LIMIT 1 OFFSET 777")
        .fetch_one(&mut *tx)
        .await
        .expect("name");
    let hits = search::text(&mut tx, big, &name, &EventFilter::default(), None, 5, false).await.expect("search");
    assert_eq!(hits[0].0.name, name, "the exact name ranks first");
    assert_eq!(hits[0].1, search::EXACT_NAME_RANK);
    assert!(hits.windows(2).all(|w| w[0].2 <= w[1].2), "best first");

    // Hybrid's candidates are the matches of the smallest distances, as many as asked, the exact name first: the
    // same distances as the paged search's first page (which ids share the last distance may differ).
    for query in [name.as_str(), "kubernetes", "search", "rust or privacy"] {
        let distances = |function: &'static str| {
            let sql = match function {
                "paged" => {
                    "SELECT distance FROM search_events_text($1, NULL, NULL, 40, NULL, NULL, NULL, NULL, NULL, \
                            NULL, NULL, NULL)"
                }
                _ => {
                    "SELECT distance FROM search_events_text_candidates($1, 40, NULL, NULL, NULL, NULL, NULL, NULL, \
                      NULL, NULL)"
                }
            };
            sqlx::query_scalar::<_, f64>(sql).bind(query)
        };
        let paged = distances("paged").fetch_all(&mut *tx).await.expect("paged");
        let candidates = distances("candidates").fetch_all(&mut *tx).await.expect("candidates");
        assert!(query == name || paged.len() == 40, "{query}: enough matches to cut");
        assert_eq!(candidates, paged, "{query}: the same distances, best first");
    }
    assert_eq!(
        sqlx::query_scalar::<_, f64>(
            "SELECT distance FROM search_events_text_candidates($1, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        )
        .bind(&name)
        .fetch_one(&mut *tx)
        .await
        .expect("exact name"),
        0.0,
        "the exact name comes first"
    );

    // Name lookup asks in steps of falling thresholds (migration 0006); the answer must be the one a single query at
    // the caller's minimum gives: every similar name, most similar first, the first `limit`. Seeded speaker names
    // share first and last names, so a typo of one matches hundreds at 0.3 and only a few at 0.6.
    let typos: Vec<String> = sqlx::query_scalar("SELECT left(name, -1) FROM speakers ORDER BY id LIMIT 4")
        .fetch_all(&mut *tx)
        .await
        .expect("names");
    for typo in &typos {
        for (min_similarity, limit) in [(0.3, 10), (0.3, 1), (0.3, 200), (0.5, 10), (0.7, 10), (0.05, 5)] {
            let stepwise =
                search::similar_names(&mut tx, big, Kind::Speaker, typo, min_similarity, limit).await.expect("lookup");
            let single: Vec<search::NameRow> = sqlx::query_as(
                "SELECT id, name, normalized_name, sim FROM (
                   SELECT id, name, normalized_name,
                          similarity(normalized_name, normalize_name($1))::float8 AS sim FROM speakers) s
                 WHERE sim >= $2 ORDER BY sim DESC, id LIMIT $3",
            )
            .bind(typo)
            .bind(min_similarity)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .expect("single query");
            assert!(min_similarity > 0.3 || !single.is_empty(), "{typo}: the typo of a seeded name matches");
            assert_eq!(stepwise, single, "lookup of {typo:?} at {min_similarity}, limit {limit}");
        }
    }
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn search_functions_never_return_another_organizations_rows() {
    let db = TestDb::migrated().await;
    seed(&db, "alpha", "200", "0");
    seed(&db, "beta", "200", "0");
    let (alpha, beta) = (org(&db, "alpha").await, org(&db, "beta").await);
    let app = db.app_pool().await;
    let mut conn = app.acquire().await.expect("connection");
    let text = "SELECT s.id FROM search_events_text('kubernetes or rust or python or security', NULL, NULL, 1000, \
                NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL) s
                UNION ALL
                SELECT s.id FROM search_events_text_candidates('kubernetes or rust or python or security', 1000, \
                NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL) s";
    // Seeded names repeat across organizations with the same seed: a lookup matches in both.
    let name: String = {
        let mut tx = eventdata::db::begin_for_org(&db.admin, alpha).await.expect("begin");
        sqlx::query_scalar("SELECT name FROM speakers ORDER BY id LIMIT 1").fetch_one(&mut *tx).await.expect("a name")
    };
    let names = format!("SELECT id FROM lookup_names('speakers', '{}', 0.3, 1000)", name.replace('\'', "''"));
    let owned = |table: &'static str, org: Uuid| {
        let admin = db.admin.clone();
        async move {
            let mut tx = eventdata::db::begin_for_org(&admin, org).await.expect("begin");
            let sql = format!("SELECT id FROM {table}");
            let ids: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await.expect("ids");
            ids
        }
    };
    let (alpha_events, alpha_speakers) = (owned("events", alpha).await, owned("speakers", alpha).await);
    for (setting, expect_alpha) in
        [(None, false), (Some(String::new()), false), (Some(beta.to_string()), false), (Some(alpha.to_string()), true)]
    {
        sqlx::query("BEGIN").execute(&mut *conn).await.expect("begin");
        if let Some(value) = &setting {
            sqlx::query("SELECT set_config('app.org_id', $1, true)")
                .bind(value)
                .execute(&mut *conn)
                .await
                .expect("set");
        }
        // Whatever else the caller sets, the functions keep their own search_path and add the organization.
        sqlx::query("SET LOCAL search_path = pg_temp, public").execute(&mut *conn).await.expect("search_path");
        sqlx::query("SET LOCAL enable_indexscan = off").execute(&mut *conn).await.expect("planner setting");
        let events: Vec<Uuid> = sqlx::query_scalar(text).fetch_all(&mut *conn).await.expect("text");
        let speakers: Vec<Uuid> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(names.clone())).fetch_all(&mut *conn).await.expect("names");
        sqlx::query("ROLLBACK").execute(&mut *conn).await.expect("rollback");
        let (in_events, in_speakers) =
            (events.iter().all(|id| alpha_events.contains(id)), speakers.iter().all(|id| alpha_speakers.contains(id)));
        if expect_alpha {
            assert!(!events.is_empty() && !speakers.is_empty(), "alpha finds its own rows");
            assert!(in_events && in_speakers, "only alpha's rows for alpha");
        } else {
            assert!(
                events.iter().chain(&speakers).all(|id| !alpha_events.contains(id) && !alpha_speakers.contains(id)),
                "{setting:?}: no alpha row"
            );
            if setting.as_deref() != Some(beta.to_string().as_str()) {
                assert!(events.is_empty() && speakers.is_empty(), "{setting:?}: nothing without an organization");
            }
        }
    }
    // Only the runtime role may call them; the query builder is not callable at all.
    for (role, function, allowed) in [
        ("eventdata_relay", "lookup_names(text, text, float8, int, boolean)", false),
        ("eventdata_app", "lookup_names(text, text, float8, int, boolean)", true),
        (
            "eventdata_app",
            "search_events_text_sql(boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean)",
            false,
        ),
        (
            "eventdata_app",
            "search_events_text_candidates(text, int, timestamptz, timestamptz, text, text, text, uuid, uuid, uuid, \
             boolean)",
            true,
        ),
        (
            "eventdata_relay",
            "search_events_text_candidates(text, int, timestamptz, timestamptz, text, text, text, uuid, uuid, uuid, \
             boolean)",
            false,
        ),
        (
            "eventdata_app",
            "search_events_filters_sql(boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean)",
            false,
        ),
    ] {
        let may: bool = sqlx::query_scalar("SELECT has_function_privilege($1, $2, 'EXECUTE')")
            .bind(role)
            .bind(function)
            .fetch_one(&db.admin)
            .await
            .expect("privilege");
        assert_eq!(may, allowed, "{role} on {function}");
    }
}
