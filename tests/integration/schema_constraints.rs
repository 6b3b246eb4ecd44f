//! Every constraint of the schema rejects what it should: one statement each, checked by constraint name
//! (or SQLSTATE where PostgreSQL names none). Run as the owner, who is subject to row-level security too.

use uuid::Uuid;

use crate::common::TestDb;

struct Fixture {
    org_a: Uuid,
    org_b: Uuid,
    event_a: Uuid,
    event_b: Uuid,
    speaker_b: Uuid,
    topic_a: Uuid,
}

async fn fixture(db: &TestDb) -> Fixture {
    let org_a = db.create_org("org-a").await;
    let org_b = db.create_org("org-b").await;
    let (event_a, event_b, speaker_b, topic_a) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    for (org, sql, ids) in [
        (org_a, "INSERT INTO events (id, org_id, name, slug) VALUES ($1, $2, 'Taken', 'taken')", event_a),
        (org_a, "INSERT INTO topics (id, org_id, name) VALUES ($1, $2, 'Rust')", topic_a),
        (org_b, "INSERT INTO events (id, org_id, name, slug) VALUES ($1, $2, 'B', 'b')", event_b),
        (org_b, "INSERT INTO speakers (id, org_id, name) VALUES ($1, $2, 'Bea')", speaker_b),
    ] {
        let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
        sqlx::query(sql).bind(ids).bind(org).execute(&mut *tx).await.expect("fixture row");
        tx.commit().await.expect("commit fixture");
    }
    let mut tx = eventdata::db::begin_for_org(&db.admin, org_a).await.expect("begin");
    for sql in [
        "INSERT INTO speakers (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), 'Ada Lovelace')",
        "INSERT INTO companies (id, org_id, name, domain) VALUES (gen_random_uuid(), current_org_id(), 'Acme', 'acme.com')",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.expect("fixture row");
    }
    tx.commit().await.expect("commit fixture");
    Fixture { org_a, org_b, event_a, event_b, speaker_b, topic_a }
}

/// (what is attempted, SQL with $1 = org A's event, $2 = org B's event, $3 = org B's speaker, $4 = org A's topic,
///  the constraint name or SQLSTATE expected to reject it)
const CASES: &[(&str, &str, &str)] = &[
    (
        "blank event name",
        "INSERT INTO events (id, org_id, name, slug) VALUES (gen_random_uuid(), current_org_id(), '  ', 'x')",
        "events_name_check",
    ),
    (
        "bad event slug",
        "INSERT INTO events (id, org_id, name, slug) VALUES (gen_random_uuid(), current_org_id(), 'X', 'Not A Slug')",
        "events_slug_check",
    ),
    (
        "unknown status",
        "INSERT INTO events (id, org_id, name, slug, status) VALUES (gen_random_uuid(), current_org_id(), 'X', 'x', 'postponed')",
        "events_status_check",
    ),
    (
        "ends before it starts",
        "INSERT INTO events (id, org_id, name, slug, starts_at, ends_at) VALUES (gen_random_uuid(), current_org_id(), 'X', 'x', '2025-01-02', '2025-01-01')",
        "events_ends_after_start",
    ),
    (
        "end without start",
        "INSERT INTO events (id, org_id, name, slug, ends_at) VALUES (gen_random_uuid(), current_org_id(), 'X', 'x', '2025-01-01')",
        "events_end_needs_start",
    ),
    (
        "slug taken in the organization",
        "INSERT INTO events (id, org_id, name, slug) VALUES (gen_random_uuid(), current_org_id(), 'X', 'taken')",
        "events_org_slug_key",
    ),
    (
        "lower-case country",
        "INSERT INTO events (id, org_id, name, slug, country) VALUES (gen_random_uuid(), current_org_id(), 'X', 'x', 'de')",
        "events_country_check",
    ),
    (
        "metadata not an object",
        "INSERT INTO events (id, org_id, name, slug, metadata) VALUES (gen_random_uuid(), current_org_id(), 'X', 'x', '[1]')",
        "events_metadata_check",
    ),
    (
        "non-http website",
        "INSERT INTO events (id, org_id, name, slug, website_url) VALUES (gen_random_uuid(), current_org_id(), 'X', 'x', 'javascript:alert(1)')",
        "events_website_url_check",
    ),
    (
        "embedding without model",
        "INSERT INTO events (id, org_id, name, slug, embedding) VALUES (gen_random_uuid(), current_org_id(), 'X', 'x', array_fill(0.1, ARRAY[1536])::vector)",
        "events_embedding_has_model",
    ),
    (
        "embedding of the wrong dimension",
        "INSERT INTO events (id, org_id, name, slug, embedding, embedding_model) VALUES (gen_random_uuid(), current_org_id(), 'X', 'x', '[1,2,3]', 'm')",
        "22000",
    ),
    ("version below 1", "UPDATE events SET version = 0 WHERE id = $1", "events_version_check"),
    (
        "confidence above 1",
        "INSERT INTO speakers (id, org_id, name, confidence_score) VALUES (gen_random_uuid(), current_org_id(), 'X', 1.5)",
        "speakers_confidence_score_check",
    ),
    (
        "duplicate speaker after normalization",
        "INSERT INTO speakers (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), '  ADA   lovelace ')",
        "speakers_org_normalized_name_key",
    ),
    (
        "blank speaker name",
        "INSERT INTO speakers (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), '')",
        "speakers_name_check",
    ),
    (
        "employer in another organization",
        "INSERT INTO speakers (id, org_id, name, company_id) VALUES (gen_random_uuid(), current_org_id(), 'X', $3)",
        "speakers_company_fkey",
    ),
    (
        "malformed company domain",
        "INSERT INTO companies (id, org_id, name, domain) VALUES (gen_random_uuid(), current_org_id(), 'X', 'https://acme.com')",
        "companies_domain_check",
    ),
    (
        "company domain taken",
        "INSERT INTO companies (id, org_id, name, domain) VALUES (gen_random_uuid(), current_org_id(), 'Other', 'acme.com')",
        "companies_org_domain_key",
    ),
    (
        "duplicate company name",
        "INSERT INTO companies (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), 'acme')",
        "companies_org_normalized_name_key",
    ),
    (
        "unknown company size",
        "INSERT INTO companies (id, org_id, name, size) VALUES (gen_random_uuid(), current_org_id(), 'X', 'huge')",
        "companies_size_check",
    ),
    ("topic its own parent", "UPDATE topics SET parent_id = id WHERE id = $4", "topics_not_own_parent"),
    (
        "duplicate topic name",
        "INSERT INTO topics (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), 'RUST')",
        "topics_org_normalized_name_key",
    ),
    (
        "media of another organization's event",
        "INSERT INTO media (id, org_id, event_id, kind, url) VALUES (gen_random_uuid(), current_org_id(), $2, 'image', 'https://x.test/a.png')",
        "media_event_fkey",
    ),
    (
        "media of unknown kind",
        "INSERT INTO media (id, org_id, event_id, kind, url) VALUES (gen_random_uuid(), current_org_id(), $1, 'hologram', 'https://x.test/a')",
        "media_kind_check",
    ),
    (
        "negative media size",
        "INSERT INTO media (id, org_id, event_id, kind, url, bytes) VALUES (gen_random_uuid(), current_org_id(), $1, 'image', 'https://x.test/a', -1)",
        "media_bytes_check",
    ),
    (
        "malformed mime type",
        "INSERT INTO media (id, org_id, event_id, kind, url, mime_type) VALUES (gen_random_uuid(), current_org_id(), $1, 'image', 'https://x.test/a', 'image')",
        "media_mime_type_check",
    ),
    (
        "unknown speaker role",
        "INSERT INTO event_speakers (org_id, event_id, speaker_id, role) SELECT current_org_id(), $1, id, 'host' FROM speakers LIMIT 1",
        "event_speakers_role_check",
    ),
    (
        "speaker of another organization",
        "INSERT INTO event_speakers (org_id, event_id, speaker_id) VALUES (current_org_id(), $1, $3)",
        "event_speakers_speaker_fkey",
    ),
    (
        "unknown company relation",
        "INSERT INTO event_companies (org_id, event_id, company_id, relation) SELECT current_org_id(), $1, id, 'owner' FROM companies LIMIT 1",
        "event_companies_relation_check",
    ),
    (
        "relevance above 1",
        "INSERT INTO event_topics (org_id, event_id, topic_id, relevance) VALUES (current_org_id(), $1, $4, 1.01)",
        "event_topics_relevance_check",
    ),
    (
        "malformed change type",
        "INSERT INTO outbox (change_id, org_id, aggregate_type, aggregate_id, change_type, payload) VALUES (gen_random_uuid(), current_org_id(), 'event', $1, 'created', '{}')",
        "outbox_change_type_check",
    ),
    (
        "malformed traceparent",
        "INSERT INTO outbox (change_id, org_id, aggregate_type, aggregate_id, change_type, payload, traceparent) VALUES (gen_random_uuid(), current_org_id(), 'event', $1, 'event.created', '{}', 'abc')",
        "outbox_traceparent_check",
    ),
    (
        "missing event name",
        "INSERT INTO events (id, org_id, slug) VALUES (gen_random_uuid(), current_org_id(), 'x')",
        "23502",
    ),
];

#[tokio::test]
async fn each_constraint_rejects_bad_data() {
    let db = TestDb::migrated().await;
    let f = fixture(&db).await;
    let mut failures = Vec::new();
    for (what, sql, expected) in CASES {
        let mut tx = eventdata::db::begin_for_org(&db.admin, f.org_a).await.expect("begin");
        // The fixture ids are spliced in as literals so each case names only the ids it needs.
        let mut sql = sql.to_string();
        for (i, id) in [f.event_a, f.event_b, f.speaker_b, f.topic_a].iter().enumerate() {
            sql = sql.replace(&format!("${}", i + 1), &format!("'{id}'::uuid"));
        }
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        match query.execute(&mut *tx).await {
            Ok(done) => failures.push(format!("{what}: accepted ({} rows)", done.rows_affected())),
            Err(sqlx::Error::Database(err)) => {
                let got_constraint = err.constraint().unwrap_or_default();
                let got_code = err.code().unwrap_or_default();
                if got_constraint != *expected && got_code != *expected {
                    failures.push(format!("{what}: rejected by {got_constraint:?}/{got_code}, expected {expected}"));
                }
            }
            Err(other) => failures.push(format!("{what}: {other}")),
        }
        tx.rollback().await.expect("rollback");
    }
    assert!(failures.is_empty(), "constraints that did not hold:\n{}", failures.join("\n"));
    let _ = f.org_b;
}

#[tokio::test]
async fn api_key_constraints() {
    let db = TestDb::migrated().await;
    let org = db.create_org("keys").await;
    let bad_scope = sqlx::query("INSERT INTO api_keys (id, org_id, secret_hash, scopes) VALUES ($1, $2, $3, '{root}')")
        .bind(Uuid::now_v7())
        .bind(org)
        .bind(vec![0u8; 32])
        .execute(&db.admin)
        .await
        .expect_err("unknown scope");
    assert_eq!(bad_scope.as_database_error().and_then(|e| e.constraint()), Some("api_keys_scopes_check"));
    let short_hash =
        sqlx::query("INSERT INTO api_keys (id, org_id, secret_hash, scopes) VALUES ($1, $2, $3, '{read}')")
            .bind(Uuid::now_v7())
            .bind(org)
            .bind(vec![0u8; 8])
            .execute(&db.admin)
            .await
            .expect_err("hash of the wrong length");
    assert_eq!(short_hash.as_database_error().and_then(|e| e.constraint()), Some("api_keys_secret_hash_check"));
    let bad_slug = sqlx::query("INSERT INTO organizations (id, slug, name) VALUES ($1, 'Bad Slug', 'x')")
        .bind(Uuid::now_v7())
        .execute(&db.admin)
        .await
        .expect_err("bad slug");
    assert_eq!(bad_slug.as_database_error().and_then(|e| e.constraint()), Some("organizations_slug_check"));
}

#[tokio::test]
async fn deleting_an_organization_cascades_and_deleting_an_employer_only_clears_the_reference() {
    let db = TestDb::migrated().await;
    let org = db.create_org("cascade").await;
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    let company: Uuid = sqlx::query_scalar(
        "INSERT INTO companies (id, org_id, name) VALUES (gen_random_uuid(), current_org_id(), 'Acme') RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("company");
    let speaker: Uuid = sqlx::query_scalar(
        "INSERT INTO speakers (id, org_id, name, company_id) VALUES (gen_random_uuid(), current_org_id(), 'Ada', $1)
         RETURNING id",
    )
    .bind(company)
    .fetch_one(&mut *tx)
    .await
    .expect("speaker");
    sqlx::query("DELETE FROM companies WHERE id = $1").bind(company).execute(&mut *tx).await.expect("delete");
    let (still_there, org_kept): (Option<Uuid>, Uuid) =
        sqlx::query_as("SELECT company_id, org_id FROM speakers WHERE id = $1")
            .bind(speaker)
            .fetch_one(&mut *tx)
            .await
            .expect("speaker survives");
    assert_eq!((still_there, org_kept), (None, org), "employer cleared, organization kept");
    tx.commit().await.expect("commit");

    sqlx::query("DELETE FROM organizations WHERE id = $1").bind(org).execute(&db.admin).await.expect("delete org");
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM speakers").fetch_one(&mut *tx).await.expect("count");
    assert_eq!(left, 0, "the organization's rows went with it");
}
