//! Connections handed from one read or transaction to the next (`eventdata::warm_connections`): what is handed on,
//! what is not, and that the pool's other users keep their share.

use std::time::Duration;

use eventdata::warm_connections::{WarmConnections, WarmTransaction};
use sqlx::postgres::PgPoolOptions;

use crate::common::{TestDb, eventually};

/// Warm connections on a runtime-role pool of four, at most `most` kept, idle for at most `idle_return`.
async fn warm(db: &TestDb, most: usize, idle_return: Duration) -> WarmConnections {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&db.app_url)
        .await
        .expect("connect as the runtime role");
    WarmConnections::with_limits(pool, most, idle_return)
}

async fn backend(conn: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await.expect("backend pid")
}

#[tokio::test]
async fn a_released_connection_serves_the_next_read_and_a_dropped_one_goes_back_to_the_pool() {
    let db = TestDb::empty().await;
    let reads = warm(&db, 2, Duration::from_secs(60)).await;

    let mut first = reads.acquire().await.expect("acquire");
    let pid = backend(&mut first).await;
    first.release();
    assert_eq!(reads.idle(), 1, "a read that ended cleanly keeps its connection warm");

    let mut second = reads.acquire().await.expect("acquire");
    assert_eq!(reads.idle(), 0);
    assert_eq!(backend(&mut second).await, pid, "the next read gets the warm connection");
    drop(second);
    assert_eq!(reads.idle(), 0, "a read that did not end cleanly does not hand its connection on");

    // The dropped connection's place is free again: both places can be filled and kept.
    let (a, b) = (reads.acquire().await.expect("acquire"), reads.acquire().await.expect("acquire"));
    a.release();
    b.release();
    assert_eq!(reads.idle(), 2);
}

#[tokio::test]
async fn nothing_a_read_set_for_itself_reaches_the_next_read() {
    let db = TestDb::empty().await;
    let reads = warm(&db, 1, Duration::from_secs(60)).await;
    let org = uuid::Uuid::new_v4().to_string();

    // A confined read: the organization is set for the statement's own transaction only.
    let mut conn = reads.acquire().await.expect("acquire");
    let set: String = sqlx::query_scalar("SELECT set_config('app.org_id', $1, true)")
        .bind(&org)
        .fetch_one(&mut *conn)
        .await
        .expect("confined read");
    assert_eq!(set, org);
    conn.release();

    let mut next = reads.acquire().await.expect("acquire");
    let seen: Option<String> = sqlx::query_scalar("SELECT nullif(current_setting('app.org_id', true), '')")
        .fetch_one(&mut *next)
        .await
        .expect("next read");
    assert_eq!(seen, None, "the organization of one read must not confine the next");
}

#[tokio::test]
async fn a_cancelled_read_leaves_nothing_behind_for_the_next() {
    let db = TestDb::empty().await;
    let reads = warm(&db, 1, Duration::from_secs(60)).await;

    let mut conn = reads.acquire().await.expect("acquire");
    let slow = sqlx::query("SELECT pg_sleep(30)").execute(&mut *conn);
    assert!(tokio::time::timeout(Duration::from_millis(100), slow).await.is_err(), "the read is cut short");
    drop(conn);
    assert_eq!(reads.idle(), 0);

    let mut next = reads.acquire().await.expect("acquire after a cancelled read");
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *next).await.expect("the next read runs");
    assert_eq!(one, 1);
}

#[tokio::test]
async fn the_pool_keeps_its_reserve_while_reads_keep_connections() {
    let db = TestDb::empty().await;
    let reads = warm(&db, 2, Duration::from_secs(60)).await;

    // Three reads at once: two are kept warm, the third goes back to the pool.
    let held = [
        reads.acquire().await.expect("acquire"),
        reads.acquire().await.expect("acquire"),
        reads.acquire().await.expect("acquire"),
    ];
    for conn in held {
        conn.release();
    }
    assert_eq!(reads.idle(), 2, "at most the limit is kept");

    // With both warm connections idle, the pool's other users still get the other two of its four.
    let pool = reads.pool();
    let (a, b) = tokio::join!(pool.acquire(), pool.acquire());
    assert!(a.is_ok() && b.is_ok(), "the reserve is there for writers: {a:?} {b:?}");
}

/// A table the runtime role may write, and how many rows it holds (read on a connection of its own).
async fn notes(db: &TestDb) -> impl AsyncFn() -> i64 {
    sqlx::raw_sql("CREATE TABLE notes (n int); GRANT SELECT, INSERT ON notes TO eventdata_runtime")
        .execute(&db.admin)
        .await
        .expect("create the table");
    let admin = db.admin.clone();
    async move || sqlx::query_scalar("SELECT count(*) FROM notes").fetch_one(&admin).await.expect("count")
}

/// Whether the connection has no transaction open: SAVEPOINT is refused outside one.
async fn outside_a_transaction(conn: &mut sqlx::PgConnection) -> bool {
    sqlx::raw_sql("SAVEPOINT probe").execute(conn).await.is_err()
}

fn begin() -> sqlx::SqlStr {
    eventdata::db::begin_statement(uuid::Uuid::nil(), None, &[])
}

#[tokio::test]
async fn a_committed_transaction_hands_its_connection_on_and_a_dropped_one_rolls_back_in_the_pool() {
    let db = TestDb::empty().await;
    let count = notes(&db).await;
    let reads = warm(&db, 2, Duration::from_secs(60)).await;

    let conn = reads.acquire().await.expect("acquire");
    let mut tx = WarmTransaction::begin(conn, begin()).await.expect("begin");
    let pid = backend(&mut tx).await;
    sqlx::query("INSERT INTO notes VALUES (1)").execute(&mut *tx).await.expect("insert");
    tx.commit().await.expect("commit");
    assert_eq!(count().await, 1, "committed");
    assert_eq!(reads.idle(), 1, "a committed transaction keeps its connection warm");

    let conn = reads.acquire().await.expect("acquire");
    let mut tx = WarmTransaction::begin(conn, begin()).await.expect("begin");
    assert_eq!(backend(&mut tx).await, pid, "the next transaction gets it");
    sqlx::query("INSERT INTO notes VALUES (2)").execute(&mut *tx).await.expect("insert");
    drop(tx);
    assert_eq!(reads.idle(), 0, "a transaction dropped without a commit does not hand its connection on");
    assert_eq!(count().await, 1, "and what it wrote is gone");

    // The pool's ping sent the queued ROLLBACK: the connection comes back outside any transaction.
    let pool = reads.pool();
    eventually(Duration::from_secs(10), "the pool to have it back", || async { pool.num_idle() == 1 }).await;
    let mut conn = pool.acquire().await.expect("the pool's connection");
    assert_eq!(backend(&mut conn).await, pid, "the same connection, the pool's only one");
    assert!(outside_a_transaction(&mut conn).await, "no transaction is left open on it");
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_nothing_and_hands_its_connection_on() {
    let db = TestDb::empty().await;
    let count = notes(&db).await;
    let reads = warm(&db, 2, Duration::from_secs(60)).await;

    let conn = reads.acquire().await.expect("acquire");
    let mut tx = WarmTransaction::begin(conn, begin()).await.expect("begin");
    sqlx::query("INSERT INTO notes VALUES (1)").execute(&mut *tx).await.expect("insert");
    tx.rollback().await.expect("rollback");
    assert_eq!(count().await, 0);
    assert_eq!(reads.idle(), 1, "a clean rollback keeps the connection warm");
    let mut next = reads.acquire().await.expect("acquire");
    assert!(outside_a_transaction(&mut next).await, "the next caller is outside any transaction");
}

#[tokio::test]
async fn idle_connections_go_back_to_the_pool_and_a_drained_pool_closes() {
    let db = TestDb::empty().await;
    let reads = warm(&db, 2, Duration::ZERO).await;
    reads.acquire().await.expect("acquire").release();
    reads.age();
    assert_eq!(reads.idle(), 0, "a connection idle for the limit goes back");

    let reads = warm(&db, 2, Duration::from_secs(60)).await;
    reads.acquire().await.expect("acquire").release();
    assert_eq!(reads.idle(), 1);
    reads.drain();
    tokio::time::timeout(Duration::from_secs(10), reads.pool().close())
        .await
        .expect("closing the pool waits for every connection: drained, none is held");
}
