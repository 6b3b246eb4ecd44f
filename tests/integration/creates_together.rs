//! Single creates that arrive together share a statement (`EVENTDATA_DB_CREATE_STATEMENTS`, app::creates_together):
//! each still gets its own resource and its own change, with its own caller's trace and actor, and when the shared
//! statement fails each create gets the answer it would have had alone, with nothing of the failed statement left.
//! Beside a running statement another starts only for enough creates (`EVENTDATA_DB_CREATES_TO_START_ANOTHER`), or
//! for fewer once one waited long (`EVENTDATA_DB_CREATES_WAIT_MS`).

use std::time::Duration;

use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use tonic::Code;
use uuid::Uuid;

use crate::common::{
    AuthChannel, TestApp, TestDb, TestServer, assert_outbox_matches_data, error_details, eventually, http_get,
    wait_for_lock_waiters,
};
use crate::fixtures::new_event;

/// An outbox row: aggregate id, change type, traceparent, actor, payload.
type Change = (Uuid, String, Option<String>, Option<Uuid>, serde_json::Value);

/// A distinct W3C traceparent per create.
fn traceparent(i: usize) -> String {
    format!("00-{:032x}-{:016x}-01", 0xa11_0000 + i, 0xb22_0000 + i)
}

async fn create(channel: AuthChannel, i: usize, slug: String) -> Result<pb::Event, tonic::Status> {
    let event = new_event(&format!("Together {i}"), &slug);
    let mut request = tonic::Request::new(pb::CreateEventRequest { event: Some(event), request_id: String::new() });
    request.metadata_mut().insert("traceparent", traceparent(i).parse().expect("ascii"));
    EventServiceClient::new(channel).create_event(request).await.map(tonic::Response::into_inner)
}

/// The value of the metric sample `name` (no labels) on the admin port.
async fn metric(server: &TestServer, name: &str) -> f64 {
    let (_, body) = http_get(server.http_addr, "/metrics").await;
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// Holds a lock on `events` that makes every insert wait, until `release`.
async fn hold_inserts(db: &TestDb) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = db.admin.begin().await.expect("begin");
    sqlx::query("LOCK TABLE events IN SHARE MODE").execute(&mut *lock).await.expect("lock events");
    lock
}

/// Waits until one insert waits on the lock of `hold_inserts` and `creates` creates wait for a statement.
async fn wait_for(app: &TestApp, creates: f64) {
    wait_for_lock_waiters(&app.db, "INSERT INTO events", 1).await;
    eventually(Duration::from_secs(10), "creates waiting for a statement", || async {
        metric(&app.server, "eventdata_db_creates_waiting").await == creates
    })
    .await;
}

#[tokio::test]
async fn creates_that_wait_together_share_a_statement_and_keep_their_own_changes() {
    let app = TestApp::start_with(|settings| settings.create_statements = 1).await;
    let (db, server, org, channel) = (&app.db, &app.server, app.org, app.rw());

    // The first create takes the one statement and waits on the lock; five more wait for the next statement.
    let lock = hold_inserts(db).await;
    let first = tokio::spawn(create(channel.clone(), 0, "together-0".into()));
    let mut rest = Vec::new();
    wait_for(&app, 0.0).await;
    for i in 1..=5 {
        rest.push(tokio::spawn(create(channel.clone(), i, format!("together-{i}"))));
    }
    wait_for(&app, 5.0).await;
    lock.commit().await.expect("release");

    let mut created = vec![first.await.expect("joined").expect("the first create")];
    for (i, create) in rest.into_iter().enumerate() {
        let event = create.await.expect("joined").expect("a create that shared a statement");
        assert_eq!(event.slug, format!("together-{}", i + 1), "each create gets its own event back");
        created.push(event);
    }
    assert_eq!(metric(server, "eventdata_db_creates_per_statement_count").await, 2.0, "two statements");
    assert_eq!(metric(server, "eventdata_db_creates_per_statement_sum").await, 6.0, "six creates");

    // One change per event, with its own caller's trace and the caller's key as actor.
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    let changes: Vec<Change> = sqlx::query_as(
        "SELECT aggregate_id, change_type, traceparent, actor_key_id, payload FROM outbox ORDER BY txid, position",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("outbox");
    tx.commit().await.expect("commit");
    assert_eq!(changes.len(), 6);
    let key_id: Uuid = sqlx::query_scalar("SELECT id FROM api_keys WHERE org_id = $1")
        .bind(org)
        .fetch_one(&db.admin)
        .await
        .expect("the key's id");
    for (i, event) in created.iter().enumerate() {
        let id: Uuid = event.id.parse().expect("uuid");
        let (_, change_type, trace, actor, payload) =
            changes.iter().find(|c| c.0 == id).unwrap_or_else(|| panic!("a change for event {i}"));
        assert_eq!(change_type, "event.created");
        assert_eq!(trace.as_deref(), Some(traceparent(i).as_str()), "event {i} carries its own caller's trace");
        assert_eq!(payload["trace"]["traceparent"], traceparent(i));
        assert_eq!(*actor, Some(key_id));
        assert_eq!(payload["resource"]["slug"], format!("together-{i}"));
    }

    // A shared statement that fails (two creates want one slug): each runs alone, one of the two gets the slug,
    // the other its own ALREADY_EXISTS, and the third is created.
    let lock = hold_inserts(db).await;
    let first = tokio::spawn(create(channel.clone(), 10, "again-10".into()));
    wait_for(&app, 0.0).await;
    let wanted = [(11, "wanted"), (12, "wanted"), (13, "again-13")];
    let rest: Vec<_> = wanted.iter().map(|&(i, slug)| tokio::spawn(create(channel.clone(), i, slug.into()))).collect();
    wait_for(&app, 3.0).await;
    lock.commit().await.expect("release");
    first.await.expect("joined").expect("the first create");
    let mut answers = Vec::new();
    for create in rest {
        answers.push(create.await.expect("joined"));
    }
    let refused: Vec<&tonic::Status> = answers[..2].iter().filter_map(|a| a.as_ref().err()).collect();
    assert_eq!(refused.len(), 1, "exactly one of two creates of one slug is refused: {answers:?}");
    assert_eq!(refused[0].code(), Code::AlreadyExists);
    assert_eq!(error_details(refused[0]), ("SLUG_TAKEN".to_owned(), vec![]), "as a create alone is refused");
    assert_eq!(answers[2].as_ref().expect("the third create").slug, "again-13");
    assert_outbox_matches_data(db, org).await;
}

#[tokio::test]
async fn beside_a_running_statement_another_starts_only_when_enough_creates_wait() {
    let app = TestApp::start_with(|settings| {
        settings.create_statements = 2;
        settings.creates_to_start_another = 3;
        // Longer than the test: here no create starts a statement for having waited.
        settings.creates_wait = Duration::from_secs(600);
    })
    .await;
    let (db, server, org, channel) = (&app.db, &app.server, app.org, app.rw());

    // The first create finds no statement running and starts one at once; it waits on the lock.
    let lock = hold_inserts(db).await;
    let mut creates = vec![tokio::spawn(create(channel.clone(), 0, "beside-0".into()))];
    wait_for(&app, 0.0).await;
    // Two more are too few for a second statement: they wait for the first to end.
    for i in 1..=2 {
        creates.push(tokio::spawn(create(channel.clone(), i, format!("beside-{i}"))));
    }
    wait_for(&app, 2.0).await;
    // A third makes three: a second statement takes them and waits on the lock beside the first.
    creates.push(tokio::spawn(create(channel.clone(), 3, "beside-3".into())));
    wait_for_lock_waiters(db, "INSERT INTO events", 2).await;
    assert_eq!(metric(server, "eventdata_db_creates_waiting").await, 0.0, "the second statement took all three");
    lock.commit().await.expect("release");

    for (i, create) in creates.into_iter().enumerate() {
        let event = create.await.expect("joined").unwrap_or_else(|status| panic!("create {i}: {status:?}"));
        assert_eq!(event.slug, format!("beside-{i}"));
    }
    assert_eq!(metric(server, "eventdata_db_creates_per_statement_count").await, 2.0, "two statements");
    assert_eq!(metric(server, "eventdata_db_creates_per_statement_sum").await, 4.0, "of one and three creates");
    assert_outbox_matches_data(db, org).await;
}

#[tokio::test]
async fn a_create_behind_a_slow_statement_starts_another_once_it_waited_long() {
    // Eight creates to start a statement beside a running one, but a create waits at most 50 ms for them.
    let app = TestApp::start_with(|settings| {
        settings.create_statements = 2;
        settings.creates_to_start_another = 8;
        settings.creates_wait = Duration::from_millis(50);
    })
    .await;
    let (db, server, org, channel) = (&app.db, &app.server, app.org, app.rw());

    // The first create's statement waits on the lock: it is slow. The second, alone behind it, starts a second
    // statement once it waited, and that one waits on the lock too.
    let lock = hold_inserts(db).await;
    let first = tokio::spawn(create(channel.clone(), 0, "slow-0".into()));
    wait_for(&app, 0.0).await;
    let second = tokio::spawn(create(channel.clone(), 1, "slow-1".into()));
    wait_for_lock_waiters(db, "INSERT INTO events", 2).await;
    assert_eq!(metric(server, "eventdata_db_creates_waiting").await, 0.0, "the second statement took it");
    lock.commit().await.expect("release");

    for (i, create) in [first, second].into_iter().enumerate() {
        let event = create.await.expect("joined").unwrap_or_else(|status| panic!("create {i}: {status:?}"));
        assert_eq!(event.slug, format!("slow-{i}"));
    }
    assert_eq!(metric(server, "eventdata_db_creates_per_statement_count").await, 2.0, "two statements");
    assert_outbox_matches_data(db, org).await;
}
