//! Use cases: each opens the caller's transaction, calls the store (which writes data and outbox together),
//! and commits. Handlers in `grpc` call these; they never see SQL.

pub mod auth;
pub mod catalogue;
pub mod changes;
pub mod context;
mod creates_together;
pub mod error;
pub mod graph;
pub mod paging;
pub mod relations;
pub mod search;
mod search_turns;
pub mod upsert;

use std::future::Future;

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::api_key::Scopes;
use crate::domain::page_token::PageTokens;
use crate::outbox::enqueue::ChangeContext;
use crate::warm_connections::{WarmConnection, WarmConnections, WarmTransaction};
pub use error::AppError;

/// Who is calling: the key's organization and scopes, and the request's trace context.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The organization every statement of the request is confined to.
    pub org_id: Uuid,
    /// The API key, recorded as the actor of changes.
    pub key_id: Uuid,
    /// What the key may do.
    pub scopes: Scopes,
    /// W3C `traceparent` of the request, when valid.
    pub traceparent: Option<String>,
    /// W3C `tracestate` of the request.
    pub tracestate: Option<String>,
    /// When the caller stops waiting (its gRPC deadline), if it set one.
    pub deadline: Option<std::time::Instant>,
    /// A write the caller's reads must see (the WAL position of its consistency token), if it sent one.
    pub consistency: Option<crate::domain::lsn::Lsn>,
}

impl Caller {
    /// The actor and trace recorded with each change the request makes.
    pub fn change_context(&self) -> ChangeContext {
        ChangeContext {
            actor_key_id: Some(self.key_id),
            traceparent: self.traceparent.clone(),
            tracestate: self.tracestate.clone(),
        }
    }
}

/// The use cases, sharing the pool and the page-token key.
#[derive(Clone)]
pub struct App {
    pool: PgPool,
    /// Connections handed from one confined read to the next on `pool`.
    reads: WarmConnections,
    tokens: PageTokens,
    metrics: crate::metrics::ApiMetrics,
    /// The server's statement limit (`EVENTDATA_DB_STATEMENT_TIMEOUT_MS`): a caller's deadline may shorten it,
    /// never lengthen it.
    statement_limit: std::time::Duration,
    /// Wakes change-feed watchers on commit (`serve` wires it; without it WatchChanges is unavailable).
    notifier: Option<crate::outbox::feed::CommitNotifier>,
    /// Whether the pool's connections go through a transaction-mode pooler: then every read runs in a
    /// transaction, which also carries the statement limit (the connections carry none).
    behind_transaction_pooler: bool,
    /// A streaming standby for the read-only use cases (`DATABASE_READ_URL`).
    replica: Option<std::sync::Arc<crate::replica::ReadReplica>>,
    /// How many searches may run on the database at once (`EVENTDATA_DB_SEARCH_CONCURRENCY`).
    search_turns: search_turns::SearchTurns,
    /// Single creates sharing statements (`EVENTDATA_DB_CREATE_STATEMENTS`); `None`: each create alone.
    creates_together: Option<creates_together::CreatesTogether>,
}

/// Time kept between the statement limit and the caller's deadline, for the answer to travel back.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_millis(50);

/// How often a transaction that hit a serialization failure or deadlock is tried in all.
const ATTEMPTS: usize = 4;

impl App {
    /// Use cases on `pool`, signing page tokens with `tokens`, with statements limited to `statement_limit` (the
    /// limit the pool's connections carry; a caller's deadline only shortens it).
    pub fn new(pool: PgPool, tokens: PageTokens, statement_limit: std::time::Duration) -> Self {
        Self {
            reads: WarmConnections::new(pool.clone()),
            pool,
            tokens,
            metrics: Default::default(),
            statement_limit,
            notifier: None,
            behind_transaction_pooler: false,
            replica: None,
            search_turns: search_turns::SearchTurns::unlimited(),
            creates_together: None,
        }
    }

    /// The same use cases, running at most `concurrency` searches on the database at once (0: no limit); a search
    /// waits at most `wait_limit` for its turn, then fails as busy (`app::search_turns`).
    pub fn with_search_concurrency(self, concurrency: usize, wait_limit: std::time::Duration) -> Self {
        Self { search_turns: search_turns::SearchTurns::new(concurrency, wait_limit), ..self }
    }

    /// The same use cases, running at most `statements` create statements per organization and kind at once,
    /// single creates arriving meanwhile going together in the next, one beside a running one only for
    /// `to_start_another` creates or more or once a create waited `most_wait` (0 statements: each create alone;
    /// `app::creates_together`).
    pub fn with_create_statements(
        self,
        statements: usize,
        to_start_another: usize,
        most_wait: std::time::Duration,
    ) -> Self {
        let waiting = self.metrics.creates_waiting.clone();
        let together = creates_together::CreatesTogether::new(statements, to_start_another, most_wait, waiting);
        Self { creates_together: together, ..self }
    }

    /// Waits for a search's turn on the database; hold it until the search's statements are done.
    async fn search_turn(&self) -> Result<search_turns::Turn, AppError> {
        self.search_turns.take(&self.metrics).await
    }

    /// The same use cases, reading from `replica` when it is usable (and has replayed the caller's token).
    pub fn with_read_replica(self, replica: std::sync::Arc<crate::replica::ReadReplica>) -> Self {
        Self { replica: Some(replica), ..self }
    }

    /// The same use cases on a pool whose connections go through a transaction-mode pooler
    /// (`EVENTDATA_DB_POOLER=transaction`).
    pub fn behind_transaction_pooler(self) -> Self {
        Self { behind_transaction_pooler: true, ..self }
    }

    /// The consistency token of the writes committed so far (the primary's WAL position now), when reads may go
    /// to a replica; `None` without one (no cost then). A read that sends it back sees those writes. The insert
    /// position, not the write position: it is past every commit record already made, even one that an
    /// asynchronous commit has not written out yet.
    pub async fn consistency_token(&self) -> Option<String> {
        self.replica.as_ref()?;
        // A simple query (one message): it works through a transaction-mode pooler too.
        let row = sqlx::raw_sql("SELECT pg_current_wal_insert_lsn()::text").fetch_one(&self.pool).await.ok()?;
        sqlx::Row::try_get::<String, _>(&row, 0).ok()
    }

    /// Where the caller's reads run: the replica when it is usable and has replayed the caller's token, else the
    /// primary; and whether it is the replica.
    async fn read_pool(&self, caller: &Caller) -> (&WarmConnections, bool) {
        let replica = match &self.replica {
            Some(replica) => replica.reads_for(caller.consistency).await,
            None => None,
        };
        match replica {
            Some(reads) => (reads, true),
            None => (&self.reads, false),
        }
    }

    /// The same use cases, reporting pool waits to `metrics`.
    pub fn with_metrics(self, metrics: crate::metrics::ApiMetrics) -> Self {
        Self { metrics, ..self }
    }

    /// The same use cases, waking change-feed watchers with `notifier`.
    pub fn with_commit_notifier(self, notifier: crate::outbox::feed::CommitNotifier) -> Self {
        Self { notifier: Some(notifier), ..self }
    }

    /// The runtime pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The connections kept warm for reads on the primary.
    pub fn warm_connections(&self) -> WarmConnections {
        self.reads.clone()
    }

    /// Gives the connections kept warm for reads back to their pools (before the pools are closed, which waits
    /// for every connection).
    pub fn release_warm_connections(&self) {
        self.reads.drain();
        if let Some(replica) = &self.replica {
            replica.release_warm_connections();
        }
    }

    /// Gives the connections kept warm for reads and idle too long back to their pools; `serve` calls it every
    /// second, so a service with no calls holds none of them for long.
    pub fn age_warm_connections(&self) {
        self.reads.age();
        if let Some(replica) = &self.replica {
            replica.age_warm_connections();
        }
    }

    /// A transaction confined to the caller's organization. Time spent waiting for a pooled connection (and the
    /// BEGIN round trip) is measured.
    async fn begin(&self, caller: &Caller) -> Result<WarmTransaction, AppError> {
        self.begin_with(caller, &[]).await
    }

    /// Runs `read` with a connection for the caller's confined reads ([`Reader`]); `read` ends the reads with
    /// [`Reader::finish`]. The connection is the replica's when the replica may serve the caller (see `read_pool`).
    /// When the replica fails the read as unavailable (no connection, or one lost mid-read: a standby stopping), it
    /// is skipped until its monitor finds it well and `read` runs again on the primary: reads change nothing, so
    /// running one again is safe, and callers do not see the standby's outage. Waiting for a connection is
    /// measured; the read is counted where it ran.
    async fn read<T, F, Fut>(&self, caller: &Caller, read: F) -> Result<T, AppError>
    where
        F: Fn(Reader) -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let (pool, on_replica) = self.read_pool(caller).await;
        if on_replica {
            match async { read(self.reader_on(pool, caller).await?).await }.await {
                Err(AppError::Unavailable) => {
                    if let Some(replica) = &self.replica {
                        replica.set_unusable();
                    }
                }
                done => {
                    self.metrics.reads_on_replica.inc();
                    return done;
                }
            }
        }
        let done = async { read(self.reader_on(&self.reads, caller).await?).await }.await;
        self.metrics.reads_on_primary.inc();
        done
    }

    /// A connection for the caller's confined reads on the primary, for reads that must see the primary's log
    /// (the change feed).
    async fn primary_reader(&self, caller: &Caller) -> Result<Reader, AppError> {
        self.reader_on(&self.reads, caller).await
    }

    async fn reader_on(&self, reads: &WarmConnections, caller: &Caller) -> Result<Reader, AppError> {
        match self.statement_limit_of(caller)? {
            None => self.measured(reads.acquire()).await.map(Reader::Pooled),
            Some(limit) => self.begin_on(reads, caller.org_id, Some(limit), &[]).await.map(Reader::Limited),
        }
    }

    /// Like `begin`, with more transaction-local settings in the same round trip (constants and validated
    /// numbers only: they are inlined).
    async fn begin_with(&self, caller: &Caller, settings: &[(&str, String)]) -> Result<WarmTransaction, AppError> {
        let limit = self.statement_limit_of(caller)?;
        self.begin_on(&self.reads, caller.org_id, limit, settings).await
    }

    /// A transaction on a connection of `on` (committed, the connection goes to the next caller without the pool's
    /// ping); waiting for the connection and the BEGIN round trip are measured.
    async fn begin_on(
        &self,
        on: &WarmConnections,
        org_id: Uuid,
        limit: Option<std::time::Duration>,
        settings: &[(&str, String)],
    ) -> Result<WarmTransaction, AppError> {
        self.measured(async {
            let conn = on.acquire().await?;
            WarmTransaction::begin(conn, crate::db::begin_statement(org_id, limit, settings)).await
        })
        .await
    }

    /// The statement limit the caller's deadline calls for: none when the server's own is shorter. The limit ends
    /// a little before the deadline, so the database cancels the work and the caller hears DEADLINE_EXCEEDED
    /// rather than a dropped call; with too little time left, DEADLINE_EXCEEDED at once.
    fn statement_limit_of(&self, caller: &Caller) -> Result<Option<std::time::Duration>, AppError> {
        let remaining = caller.deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if remaining.is_some_and(|r| r <= DEADLINE_MARGIN) {
            return Err(AppError::DeadlineExceeded);
        }
        let shorter = remaining.and_then(|r| statement_limit_for(r - DEADLINE_MARGIN, self.statement_limit));
        // Behind a transaction pooler the connections carry no limit of their own: each transaction sets it (and
        // a limit makes `reader` open one, which the pooler needs).
        Ok(if self.behind_transaction_pooler { Some(shorter.unwrap_or(self.statement_limit)) } else { shorter })
    }

    /// Awaits a pooled connection (and its first round trip), counting the waiters and the time waited.
    async fn measured<T>(&self, acquire: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, AppError> {
        let started = std::time::Instant::now();
        self.metrics.pool_waiting.inc();
        let acquired = acquire.await;
        self.metrics.pool_waiting.dec();
        self.metrics.pool_acquire.observe(started.elapsed().as_secs_f64());
        Ok(acquired?)
    }
}

/// A connection for confined reads (`store::confined`): a plain pooled connection, one round trip per read,
/// unless the caller's deadline is shorter than the server's statement limit; then a transaction whose
/// `statement_timeout` is the time left (a statement cannot shorten its own limit).
pub(crate) enum Reader {
    /// No transaction: each confined read is its own.
    Pooled(WarmConnection),
    /// A transaction with a shorter statement limit (and the organization set, which the reads set again).
    Limited(WarmTransaction),
}

impl Reader {
    /// Ends the reads, which all succeeded: commits the transaction, or hands the connection to the next read.
    /// A reader dropped instead (a read failed, or the call was cancelled) gives its connection back to the pool.
    pub(crate) async fn finish(self) -> Result<(), AppError> {
        match self {
            Reader::Limited(tx) => tx.commit().await?,
            Reader::Pooled(conn) => conn.release(),
        }
        Ok(())
    }
}

impl std::ops::Deref for Reader {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &sqlx::PgConnection {
        match self {
            Reader::Pooled(conn) => conn,
            Reader::Limited(tx) => tx,
        }
    }
}

impl std::ops::DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        match self {
            Reader::Pooled(conn) => conn,
            Reader::Limited(tx) => tx,
        }
    }
}

/// The statement limit a transaction needs for a caller with `time_left`: none when the server's own limit
/// (which every connection already carries) is the shorter, since a deadline must never raise it.
fn statement_limit_for(
    time_left: std::time::Duration,
    server_limit: std::time::Duration,
) -> Option<std::time::Duration> {
    (time_left < server_limit).then_some(time_left)
}

/// Runs `attempt` again while it fails with a retryable conflict, at most [`ATTEMPTS`] times.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(err) if err.is_retryable() && tries < ATTEMPTS => {
                tracing::debug!(tries, "retrying after a transaction conflict");
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::statement_limit_for;

    #[test]
    fn a_deadline_shortens_the_statement_limit_and_never_raises_it() {
        let server = Duration::from_secs(30);
        assert_eq!(statement_limit_for(Duration::from_secs(2), server), Some(Duration::from_secs(2)));
        assert_eq!(statement_limit_for(Duration::from_secs(600), server), None);
        assert_eq!(statement_limit_for(server, server), None);
    }
}
