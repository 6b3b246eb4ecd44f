//! Row-level security, seen from the runtime role: with organization A set, B's rows are invisible and
//! untouchable and cannot be written; with no organization set, nothing is visible at all.

use sqlx::PgPool;
use uuid::Uuid;

use crate::common::TestDb;

const TENANT_TABLES: &[&str] = &[
    "events",
    "speakers",
    "companies",
    "topics",
    "media",
    "event_speakers",
    "event_companies",
    "event_topics",
    "outbox",
    "idempotency_records",
];

/// Gives `org` one row in every tenant table (as the owner, under that organization).
async fn populate(db: &TestDb, org: Uuid) -> Uuid {
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    let event = Uuid::now_v7();
    let statements = [
        "INSERT INTO events (id, org_id, name, slug) VALUES ($1, current_org_id(), 'Conf', 'conf')",
        "INSERT INTO speakers (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), 'Ada')",
        "INSERT INTO companies (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), 'Acme')",
        "INSERT INTO topics (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), 'Rust')",
        "INSERT INTO media (id, org_id, event_id, kind, url) VALUES (gen_random_uuid(), current_org_id(), $1, 'image', 'https://x.test/a')",
        "INSERT INTO event_speakers (org_id, event_id, speaker_id) SELECT current_org_id(), $1, id FROM speakers",
        "INSERT INTO event_companies (org_id, event_id, company_id) SELECT current_org_id(), $1, id FROM companies",
        "INSERT INTO event_topics (org_id, event_id, topic_id) SELECT current_org_id(), $1, id FROM topics",
        "INSERT INTO outbox (change_id, org_id, aggregate_type, aggregate_id, change_type, payload) VALUES (gen_random_uuid(), current_org_id(), 'event', $1, 'event.created', '{}')",
        "INSERT INTO idempotency_records (org_id, request_id, method, request_hash, resource_ids) VALUES (current_org_id(), gen_random_uuid(), 'CreateEvent', decode(repeat('00', 32), 'hex'), ARRAY[$1])",
    ];
    for sql in statements {
        let query = sqlx::query(sql);
        let query = if sql.contains("$1") { query.bind(event) } else { query };
        query.execute(&mut *tx).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.expect("commit");
    event
}

async fn count_as(app: &PgPool, org: Option<Uuid>, table: &str) -> i64 {
    let mut tx = match org {
        Some(org) => eventdata::db::begin_for_org(app, org).await.expect("begin"),
        None => app.begin().await.expect("begin"),
    };
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
}

#[tokio::test]
async fn organization_a_sees_only_its_own_rows() {
    let db = TestDb::migrated().await;
    let (a, b) = (db.create_org("a").await, db.create_org("b").await);
    populate(&db, a).await;
    populate(&db, b).await;
    let app = db.app_pool().await;
    for table in TENANT_TABLES {
        assert_eq!(count_as(&app, Some(a), table).await, 1, "{table}: A sees exactly its own row");
        let mut tx = eventdata::db::begin_for_org(&app, a).await.expect("begin");
        let foreign: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table} WHERE org_id = $1")))
                .bind(b)
                .fetch_one(&mut *tx)
                .await
                .expect("count foreign");
        assert_eq!(foreign, 0, "{table}: B's rows are invisible to A even when asked for by org_id");
    }
    let orgs: Vec<Uuid> = {
        let mut tx = eventdata::db::begin_for_org(&app, a).await.expect("begin");
        sqlx::query_scalar("SELECT id FROM organizations").fetch_all(&mut *tx).await.expect("orgs")
    };
    assert_eq!(orgs, vec![a], "A sees only its own organization row");
}

#[tokio::test]
async fn organization_a_cannot_change_or_write_for_b() {
    let db = TestDb::migrated().await;
    let (a, b) = (db.create_org("a").await, db.create_org("b").await);
    populate(&db, a).await;
    let b_event = populate(&db, b).await;
    let app = db.app_pool().await;

    let mut tx = eventdata::db::begin_for_org(&app, a).await.expect("begin");
    for (sql, what) in [
        ("UPDATE events SET name = 'hijacked' WHERE id = $1", "update"),
        ("DELETE FROM media WHERE event_id = $1", "delete media"),
        ("DELETE FROM events WHERE id = $1", "delete"),
    ] {
        let done = sqlx::query(sql).bind(b_event).execute(&mut *tx).await.expect(what);
        assert_eq!(done.rows_affected(), 0, "{what} of B's rows from A touches nothing");
    }
    tx.commit().await.expect("commit");
    assert_eq!(count_as(&app, Some(b), "events").await, 1, "B's event is still there");
    assert_eq!(count_as(&app, Some(b), "media").await, 1, "B's media is still there");
    let name: String = {
        let mut tx = eventdata::db::begin_for_org(&app, b).await.expect("begin");
        sqlx::query_scalar("SELECT name FROM events").fetch_one(&mut *tx).await.expect("name")
    };
    assert_eq!(name, "Conf");

    for (table, sql) in [
        ("events", "INSERT INTO events (id, org_id, name, slug) VALUES (gen_random_uuid(), $1, 'X', 'x')"),
        ("speakers", "INSERT INTO speakers (id, org_id, name) VALUES (gen_random_uuid(), $1, 'X')"),
        (
            "outbox",
            "INSERT INTO outbox (change_id, org_id, aggregate_type, aggregate_id, change_type, payload) VALUES (gen_random_uuid(), $1, 'event', gen_random_uuid(), 'event.created', '{}')",
        ),
    ] {
        let mut tx = eventdata::db::begin_for_org(&app, a).await.expect("begin");
        let err = sqlx::query(sql).bind(b).execute(&mut *tx).await.expect_err("insert for B from A");
        assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"), "{table}: {err}");
    }
    // Moving one of A's rows into B is a write for B, too.
    let mut tx = eventdata::db::begin_for_org(&app, a).await.expect("begin");
    let err = sqlx::query("UPDATE speakers SET org_id = $1").bind(b).execute(&mut *tx).await.expect_err("move to B");
    assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"));
}

#[tokio::test]
async fn without_an_organization_nothing_is_visible_or_writable() {
    let db = TestDb::migrated().await;
    let a = db.create_org("a").await;
    populate(&db, a).await;
    let app = db.app_pool().await;
    for table in TENANT_TABLES.iter().chain(&["organizations"]) {
        assert_eq!(count_as(&app, None, table).await, 0, "{table} is invisible with no organization set");
    }
    let err = sqlx::query("INSERT INTO speakers (id, org_id, name) VALUES (gen_random_uuid(), $1, 'X')")
        .bind(a)
        .execute(&app)
        .await
        .expect_err("insert with no organization set");
    assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"));
    // The setting is transaction-local: a connection that served A carries nothing into the next transaction.
    let mut conn = app.acquire().await.expect("connection");
    let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("begin");
    sqlx::query("SELECT set_config('app.org_id', $1, true)").bind(a.to_string()).execute(&mut *tx).await.expect("set");
    tx.commit().await.expect("commit");
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await.expect("count");
    assert_eq!(visible, 0, "app.org_id does not outlive its transaction");
}

#[tokio::test]
async fn runtime_role_has_no_way_around_the_policies() {
    let db = TestDb::migrated().await;
    let a = db.create_org("a").await;
    let app = db.app_pool().await;
    for sql in [
        "SELECT * FROM api_keys",
        "ALTER TABLE events DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON events",
        "SET ROLE eventdata_owner",
    ] {
        let err = sqlx::query(sql).execute(&app).await.expect_err(sql);
        assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"), "{sql}: {err}");
    }
    let bypass: bool = sqlx::query_scalar("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&app)
        .await
        .expect("role flags");
    assert!(!bypass, "the runtime role neither bypasses RLS nor is a superuser");
    // Authentication still works, through the one function granted for it.
    let key = eventdata::domain::api_key::NewApiKey::generate();
    eventdata::store::api_keys::insert(&db.admin, a, "t", &key.secret_hash, &["read".into()]).await.expect("key");
    let grant = eventdata::store::api_keys::authenticate(&app, &key.secret_hash).await.expect("lookup").expect("found");
    assert_eq!(grant.org_id, a);
}

#[tokio::test]
async fn a_confined_read_sets_its_organization_first_in_one_statement_and_leaves_nothing_behind() {
    use eventdata::domain::catalogue::Kind;
    use eventdata::store::sql::Sql;
    use eventdata::store::{catalogue, confined};
    let db = TestDb::migrated().await;
    let (a, b) = (db.create_org("a").await, db.create_org("b").await);
    let (event_a, event_b) = (populate(&db, a).await, populate(&db, b).await);
    let app = db.app_pool().await;
    // A plain connection of the runtime role, no transaction: each read is its own statement.
    let mut conn = app.acquire().await.expect("connection");
    let ids_of = |found: Vec<eventdata::domain::resources::Resource>| -> Vec<String> {
        found.iter().map(|r| r.id().to_string()).collect()
    };
    for (org, own) in [(a, event_a), (b, event_b), (a, event_a)] {
        let found = catalogue::get_many(&mut conn, org, Kind::Event, &[event_a, event_b]).await.expect("read");
        assert_eq!(ids_of(found), vec![own.to_string()], "a read as {org} sees its own event only");
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await.expect("count");
    assert_eq!(after, 0, "the organization does not outlive the read's statement");

    // The shape that orders it: a nested loop whose outer side sets the organization, and the read below a
    // one-time filter on that value, which the executor checks before it starts the read; the policy's
    // organization is an InitPlan, an index condition of the organization's key.
    let mut explain = Sql::text("EXPLAIN ");
    explain.push(confined::wrap(Sql::text("SELECT t.id FROM events t WHERE t.id = ANY($1)"), 2));
    let plan: Vec<String> = sqlx::query_scalar(explain)
        .bind(vec![event_a])
        .bind(confined::org_text(a))
        .fetch_all(&mut *conn)
        .await
        .expect("explain");
    let line = |needle: &str| plan.iter().position(|l| l.contains(needle));
    let (gate, scan) = (line("One-Time Filter"), line("Scan"));
    assert!(plan[0].contains("Nested Loop"), "{plan:#?}");
    assert!(gate.is_some_and(|g| plan[g].contains("set_config")), "{plan:#?}");
    assert!(gate < scan, "the gate sits above the read's scan: {plan:#?}");
    assert!(plan.iter().any(|l| l.contains("InitPlan")), "the policy reads the organization once: {plan:#?}");
}

#[tokio::test]
async fn a_shared_create_sets_its_organization_itself_and_leaves_nothing_behind() {
    // Single creates that share a statement (app::creates_together) run it without a transaction around it: the
    // statement sets the organization before its first row is inserted, commits as its own transaction, and
    // nothing of the setting is left on the connection.
    use eventdata::domain::catalogue::Kind;
    use eventdata::outbox::enqueue::ChangeContext;
    use eventdata::store::catalogue;
    let db = TestDb::migrated().await;
    let (a, b) = (db.create_org("a").await, db.create_org("b").await);
    let app = db.app_pool().await;
    let mut conn = app.acquire().await.expect("connection");
    let row = |slug: &str| serde_json::json!({"id": Uuid::now_v7().to_string(), "name": slug, "slug": slug, "status": "draft", "metadata": {}});
    let context = ChangeContext::default();
    let mut created = Vec::new();
    for (org, slug) in [(a, "in-a"), (b, "in-b"), (a, "in-a-too")] {
        let made = catalogue::create_each(&mut conn, org, Kind::Event, vec![row(slug)], std::slice::from_ref(&context))
            .await
            .expect("a shared create");
        created.push((org, made[0].id()));
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await.expect("count");
    assert_eq!(after, 0, "the organization does not outlive the create's statement");
    for (org, id) in &created {
        let mut tx = eventdata::db::begin_for_org(&db.admin, *org).await.expect("begin");
        let (event_org, change_org): (Uuid, Uuid) = sqlx::query_as(
            "SELECT e.org_id, o.org_id FROM events e JOIN outbox o ON o.aggregate_id = e.id WHERE e.id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .expect("the event and its change, committed, in the caller's organization");
        assert_eq!((event_org, change_org), (*org, *org), "event {id} and its change are in the caller's organization");
        tx.commit().await.expect("commit");
    }

    // A statement that fails (its second row takes a slug in use) leaves nothing: it was its own transaction.
    let failed = catalogue::create_each(
        &mut conn,
        a,
        Kind::Event,
        vec![row("never"), row("in-a")],
        &[context.clone(), context.clone()],
    )
    .await
    .expect_err("a slug taken");
    assert_eq!(failed.as_database_error().and_then(|e| e.code()).as_deref(), Some("23505"), "{failed}");
    let mut tx = eventdata::db::begin_for_org(&db.admin, a).await.expect("begin");
    let never: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE slug = 'never'")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    tx.commit().await.expect("commit");
    assert_eq!(never, 0, "nothing of the failed statement was written");
}

#[tokio::test]
async fn settings_a_confined_read_sets_reach_its_vector_scan() {
    // The HNSW scan reads `hnsw.ef_search` and `hnsw.iterative_scan` when it fetches its first row, after the
    // confined read's outer side has set them: vector searches rely on it to run in one statement.
    use eventdata::store::confined;
    let db = TestDb::migrated().await;
    let org = db.create_org("vectors").await;
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    sqlx::query(
        "INSERT INTO events (id, org_id, name, slug, embedding_model, embedding)
         SELECT gen_random_uuid(), current_org_id(), 'E' || i, 'e-' || i, 'test',
                (SELECT array_agg(random())::real[]::vector(1536) FROM generate_series(1, 1536) WHERE i > 0)
         FROM generate_series(1, 40) i",
    )
    .execute(&mut *tx)
    .await
    .expect("embedded events");
    tx.commit().await.expect("commit");
    let app = db.app_pool().await;
    let query = pgvector::Vector::from(vec![0.5_f32; 1536]);

    let nearest = |ef_search: &str| {
        let settings = [("hnsw.ef_search", ef_search.to_owned()), ("hnsw.iterative_scan", "off".to_owned())];
        let mut q = confined::open_with("", org, &settings);
        q.push("SELECT t.id FROM events t ORDER BY t.embedding <=> ").push_bind(query.clone()).push(" LIMIT 10");
        confined::close(&mut q);
        q
    };
    let mut tx = app.begin().await.expect("begin");
    // Only the index can order by distance here: what it returns is what the setting let it find.
    sqlx::query("SET LOCAL enable_sort = off").execute(&mut *tx).await.expect("no sort");
    let plan: Vec<String> = {
        let mut q = confined::open_with("EXPLAIN ", org, &[]);
        q.push("SELECT t.id FROM events t ORDER BY t.embedding <=> ").push_bind(query.clone()).push(" LIMIT 10");
        confined::close(&mut q);
        q.build_query_scalar().fetch_all(&mut *tx).await.expect("explain")
    };
    let scans: Vec<&String> = plan.iter().filter(|l| l.contains("Scan")).collect();
    assert!(scans.iter().any(|l| l.contains("events_embedding_idx")), "the HNSW index orders: {scans:#?}");
    let narrow: Vec<Uuid> = nearest("1").build_query_scalar().fetch_all(&mut *tx).await.expect("ef_search 1");
    let wide: Vec<Uuid> = nearest("40").build_query_scalar().fetch_all(&mut *tx).await.expect("ef_search 40");
    assert_eq!(narrow.len(), 1, "ef_search = 1 without iterative scans finds one candidate");
    assert_eq!(wide.len(), 10, "ef_search = 40 finds k");
    tx.commit().await.expect("commit");
}
