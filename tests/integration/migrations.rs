//! Migrations go up from empty, down to empty and up again, and `status` tells the truth at each step.

use eventdata::db::{migrate_down, migrate_up, migration_status};

use crate::common::TestDb;

async fn our_tables(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations'
         ORDER BY 1",
    )
    .fetch_all(&db.admin)
    .await
    .expect("list tables")
}

async fn applied_flags(db: &TestDb) -> Vec<bool> {
    migration_status(&db.admin).await.expect("status").into_iter().map(|m| m.applied).collect()
}

#[tokio::test]
async fn up_down_up_with_status_at_each_step() {
    let db = TestDb::empty().await;
    let embedded = applied_flags(&db).await;
    assert!(!embedded.is_empty(), "migrations are embedded");
    assert!(embedded.iter().all(|applied| !applied), "a new database has nothing applied");
    assert!(our_tables(&db).await.is_empty());

    migrate_up(&db.admin).await.expect("up from empty");
    assert!(applied_flags(&db).await.iter().all(|applied| *applied));
    let tables = our_tables(&db).await;
    for expected in [
        "events",
        "speakers",
        "companies",
        "topics",
        "media",
        "event_speakers",
        "event_companies",
        "event_topics",
        "outbox",
        "organizations",
        "api_keys",
        "idempotency_records",
    ] {
        assert!(tables.iter().any(|t| t == expected), "{expected} missing after up: {tables:?}");
    }

    migrate_down(&db.admin, None).await.expect("down to empty");
    assert!(applied_flags(&db).await.iter().all(|applied| !applied));
    assert_eq!(our_tables(&db).await, Vec::<String>::new(), "down leaves no table behind");
    let functions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND p.proname IN ('current_org_id', 'normalize_name', 'authenticate_api_key')",
    )
    .fetch_one(&db.admin)
    .await
    .expect("count functions");
    assert_eq!(functions, 0, "down removes our functions");

    migrate_up(&db.admin).await.expect("up again");
    assert!(applied_flags(&db).await.iter().all(|applied| *applied));
    assert_eq!(our_tables(&db).await, tables, "up again restores the same schema");
}

#[tokio::test]
async fn down_with_steps_reverts_only_that_many() {
    let db = TestDb::migrated().await;
    let total = applied_flags(&db).await.len();
    migrate_down(&db.admin, Some(1)).await.expect("down one step");
    let flags = applied_flags(&db).await;
    assert_eq!(flags.iter().filter(|applied| !**applied).count(), 1, "exactly one reverted: {flags:?}");
    assert_eq!(flags.last(), Some(&false), "the newest one is reverted first");
    assert_eq!(flags.len(), total);
    migrate_up(&db.admin).await.expect("up again");
    assert!(applied_flags(&db).await.iter().all(|applied| *applied));
}
