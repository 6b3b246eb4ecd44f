//! Operator tooling against a real database: `eventdata seed` (deterministic, idempotent, resumable, silent
//! unless asked) and `eventdata backup` / `restore` (a restore that matches the manifest, and a manifest that
//! catches a difference).

use std::process::{Command, Output};

use sqlx::PgPool;
use uuid::Uuid;

use crate::common::{TestDb, assert_outbox_matches_data, count_mismatches};

fn eventdata(db: &TestDb, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventdata"));
    command.args(args).env("RUST_LOG", "warn").env("DATABASE_ADMIN_URL", &db.admin_url);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run eventdata")
}

fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `inserted` column of the seed's report, by table.
fn inserted(report: &str, table: &str) -> i64 {
    report
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{table}\t")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {table} line in {report}"))
}

async fn org_id(db: &TestDb, slug: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
        .bind(slug)
        .fetch_one(&db.admin)
        .await
        .expect("org")
}

/// One number about `org`'s data, read under its row-level security.
async fn scalar(pool: &PgPool, org: Uuid, sql: &str) -> i64 {
    let mut tx = eventdata::db::begin_for_org(pool, org).await.expect("begin");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut *tx).await.expect(sql)
}

#[tokio::test]
async fn seed_is_deterministic_idempotent_and_resumable() {
    let db = TestDb::migrated().await;
    let first = succeeded(eventdata(&db, &["seed", "--org", "alpha", "--events", "300", "--embeddings", "40"], &[]));
    assert_eq!(inserted(&first, "events"), 300, "{first}");
    assert!(first.contains("no changes were written to the outbox"), "{first}");
    let alpha = org_id(&db, "alpha").await;
    let speakers = inserted(&first, "speakers");
    let relations = inserted(&first, "event_speakers");
    assert!(relations > 300 * 3, "about four speakers an event: {relations}");
    assert_eq!(scalar(&db.admin, alpha, "SELECT count(*) FROM events WHERE embedding IS NOT NULL").await, 40);
    assert_eq!(scalar(&db.admin, alpha, "SELECT count(*) FROM outbox").await, 0, "a bulk seed is silent");
    for table in ["events", "speakers", "companies", "topics", "media"] {
        let not_v7 = format!("SELECT count(*) FROM {table} WHERE substr(id::text, 15, 1) <> '7'");
        assert_eq!(
            scalar(&db.admin, alpha, &not_v7).await,
            0,
            "every seeded {table} id is a UUIDv7, as docs/api.md says"
        );
    }
    let wrong = count_mismatches(&db, alpha).await;
    assert!(wrong.is_empty(), "the loader's preset counts equal a recount: {wrong:?}");
    let employed = scalar(&db.admin, alpha, "SELECT count(*) FROM speakers WHERE company_id IS NOT NULL").await;
    assert!(employed > speakers / 2, "companies have employees: {employed} of {speakers}");
    // Popularity is skewed: the busiest speaker is on far more events than the average one.
    let busiest =
        scalar(&db.admin, alpha, "SELECT max(n) FROM (SELECT count(*) n FROM event_speakers GROUP BY speaker_id) x")
            .await;
    assert!(busiest as f64 > 4.0 * relations as f64 / speakers as f64, "busiest speaker has {busiest} events");
    for index in ["events_embedding_idx", "speakers_embedding_idx", "topics_embedding_idx"] {
        let present: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(index)
            .fetch_one(&db.admin)
            .await
            .expect("index");
        assert!(present, "{index} is there after the load");
    }

    let again = succeeded(eventdata(&db, &["seed", "--org", "alpha", "--events", "300", "--embeddings", "40"], &[]));
    for table in ["topics", "companies", "speakers", "events", "event_speakers", "event_topics", "media"] {
        assert_eq!(inserted(&again, table), 0, "a second run adds nothing to {table}: {again}");
    }
    let grown = succeeded(eventdata(&db, &["seed", "--org", "alpha", "--events", "450", "--embeddings", "40"], &[]));
    assert_eq!(inserted(&grown, "events"), 150, "a larger run adds only the missing events: {grown}");
    assert_eq!(scalar(&db.admin, alpha, "SELECT count(*) FROM events").await, 450);
    let wrong = count_mismatches(&db, alpha).await;
    assert!(wrong.is_empty(), "counts stay right when a run adds to a loaded organization: {wrong:?}");

    // The same seed gives the same catalogue in another organization (other ids, same content).
    succeeded(eventdata(&db, &["seed", "--org", "beta", "--events", "300", "--embeddings", "40"], &[]));
    let beta = org_id(&db, "beta").await;
    let fingerprint = "SELECT hashtext(string_agg(e.slug || ':' || coalesce(e.description, '') || ':' || \
        (SELECT string_agg(s.name || '/' || es.role, ',' ORDER BY s.name) FROM event_speakers es \
         JOIN speakers s ON s.id = es.speaker_id WHERE es.event_id = e.id), '|' ORDER BY e.slug))::bigint \
        FROM events e WHERE e.slug ~ '-([0-9]|[0-9][0-9]|[12][0-9][0-9])$'";
    assert_eq!(scalar(&db.admin, alpha, fingerprint).await, scalar(&db.admin, beta, fingerprint).await);
}

/// Every index of the schema, with whether it is valid.
async fn index_list(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname || ':' || i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1",
    )
    .fetch_all(&db.admin)
    .await
    .expect("indexes")
}

#[tokio::test]
async fn seed_builds_the_indexes_it_set_aside_and_heals_an_interrupted_run() {
    let db = TestDb::migrated().await;
    let schema = index_list(&db).await;
    let seed = |org: &'static str| ["seed", "--org", org, "--events", "150", "--embeddings", "10"];

    let first = succeeded(eventdata(&db, &seed("alpha"), &[]));
    assert!(first.contains("events_search_rum_idx"), "an empty table's indexes are built after the load: {first}");
    assert_eq!(index_list(&db).await, schema, "every index of the schema is back, valid");

    // A run interrupted between setting an index aside and building it: the next run builds it.
    sqlx::raw_sql(
        "INSERT INTO seed_deferred_indexes (name, definition)
           VALUES ('events_search_rum_idx', pg_get_indexdef('events_search_rum_idx'::regclass));
         DROP INDEX events_search_rum_idx",
    )
    .execute(&db.admin)
    .await
    .expect("interrupt");
    let again = succeeded(eventdata(&db, &seed("alpha"), &[]));
    assert!(again.contains("events_search_rum_idx"), "{again}");
    assert_eq!(index_list(&db).await, schema);
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM seed_deferred_indexes").fetch_one(&db.admin).await.expect("deferred");
    assert_eq!(left, 0, "nothing stays set aside");

    // Tables that hold rows (another organization's) keep their indexes through a load.
    let other = succeeded(eventdata(&db, &seed("beta"), &[]));
    assert!(!other.contains("events_search_rum_idx"), "{other}");
    assert_eq!(index_list(&db).await, schema);
}

#[tokio::test]
async fn seed_with_emit_changes_writes_the_changes_the_api_would() {
    let db = TestDb::migrated().await;
    let report = succeeded(eventdata(
        &db,
        &["seed", "--org", "loud", "--events", "120", "--embeddings", "0", "--emit-changes"],
        &[],
    ));
    let org = org_id(&db, "loud").await;
    let rows: i64 =
        ["topics", "companies", "speakers", "events", "event_speakers", "event_topics", "event_companies", "media"]
            .iter()
            .map(|t| inserted(&report, t))
            .sum();
    assert!(report.contains(&format!("{rows} changes written to the outbox")), "{report}");
    assert_eq!(scalar(&db.admin, org, "SELECT count(*) FROM outbox").await, rows);
    assert_outbox_matches_data(&db, org).await;
    let mismatched = scalar(
        &db.admin,
        org,
        "SELECT count(*) FROM outbox o JOIN speakers s ON s.id = o.aggregate_id
         WHERE o.change_type = 'speaker.created' AND o.payload->'resource'->>'name' IS DISTINCT FROM s.name",
    )
    .await;
    assert_eq!(mismatched, 0, "payloads carry the resource as the API renders it");
    let added = scalar(&db.admin, org, "SELECT count(*) FROM outbox WHERE change_type = 'event.speaker_added'").await;
    assert_eq!(added, inserted(&report, "event_speakers"));
    let wrong = count_mismatches(&db, org).await;
    assert!(wrong.is_empty(), "counts kept by the triggers equal a recount: {wrong:?}");
    // Each event.created shows the event as the API creates it: before its speakers and topics.
    let counted_early = scalar(
        &db.admin,
        org,
        "SELECT count(*) FROM outbox WHERE change_type = 'event.created'
         AND NOT (payload->'resource'->'quality'->'reasons') ? 'no_speakers'",
    )
    .await;
    assert_eq!(counted_early, 0, "event.created payloads are written before the relations count");
}

#[tokio::test]
async fn backup_restores_an_identical_database_and_the_manifest_catches_a_difference() {
    let db = TestDb::migrated().await;
    succeeded(eventdata(&db, &["seed", "--org", "kept", "--events", "200", "--embeddings", "20"], &[]));
    let dir = std::env::temp_dir().join(format!("eventdata-backup-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("eventdata.dump");
    let file_arg = file.to_string_lossy().into_owned();
    let backup_url = format!("postgres://eventdata_backup@127.0.0.1:5432/{}", db.name);
    let restore_url = std::env::var("EVENTDATA_TEST_SUPERUSER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let backed_up = succeeded(eventdata(&db, &["backup", "--out", &file_arg], &[("EVENTDATA_BACKUP_URL", backup_url)]));
    assert!(backed_up.contains("backed up"), "{backed_up}");

    let target = format!("{}_restored", db.name);
    let env = [("EVENTDATA_RESTORE_URL", restore_url.clone())];
    let restored = succeeded(eventdata(&db, &["restore", &file_arg, "--database", &target, "--jobs", "2"], &env));
    assert!(restored.contains("every table matches the manifest"), "{restored}");
    assert!(restored.lines().any(|l| l.starts_with("events\t200\t200\tok")), "{restored}");

    let again = eventdata(&db, &["restore", &file_arg, "--database", &target], &env);
    assert!(!again.status.success(), "restoring over an existing database is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));

    // A restored database with one changed value no longer matches the manifest.
    let manifest: eventdata::backup::Manifest =
        serde_json::from_slice(&std::fs::read(eventdata::backup::manifest_path(&file)).expect("manifest"))
            .expect("json");
    let mut restored_db =
        <sqlx::PgConnection as sqlx::Connection>::connect(&eventdata::backup::with_database(&restore_url, &target))
            .await
            .expect("connect to the restored database");
    sqlx::raw_sql("UPDATE topics SET description = 'tampered' WHERE ctid = (SELECT ctid FROM topics LIMIT 1)")
        .execute(&mut restored_db)
        .await
        .expect("tamper");
    let digests = eventdata::backup::digest(&mut restored_db).await.expect("digest");
    let differing = manifest
        .tables
        .iter()
        .filter(|expected| !digests.contains(expected))
        .map(|d| d.table.as_str())
        .collect::<Vec<_>>();
    assert_eq!(differing, ["topics"]);
    drop(restored_db);

    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&restore_url).await.expect("superuser");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {target} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drop");
    let _ = std::fs::remove_dir_all(dir);
}
