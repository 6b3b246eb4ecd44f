//! Single creates that arrive together go to the database together (`EVENTDATA_DB_CREATE_STATEMENTS`).
//!
//! A create's own work in PostgreSQL is small beside what every statement and transaction costs around it:
//! parse and bind, the executor, the row-level-security checks, the triggers' set-up, the commit record and
//! its flush, the round trips. BatchCreateEvents pays those once for many rows and writes several times as many
//! events a second as CreateEvent (docs/performance.md, "Creates that go together"). So single creates of one
//! organization and kind share a statement when they can: at most a set number of create statements run for an
//! organization and kind at once; a create that finds them all busy waits, and the next statement to start takes
//! every create waiting (up to [`MOST_ROWS`]). A create that finds no statement running starts one at once, so a
//! lone create waits for nobody; under load, statements fill up with the creates that arrived while the
//! previous ones ran (group commit). Beside a running statement another starts only when a set number of creates
//! wait (`EVENTDATA_DB_CREATES_TO_START_ANOTHER`): a statement of one or two creates would pay the statement's
//! costs for little, and its creates are served as soon as the running one ends anyway (docs/performance.md,
//! "A second statement only for enough creates"), unless it is slow: a create that waited a set time
//! (`EVENTDATA_DB_CREATES_WAIT_MS`) starts another for those waiting, however few.
//!
//! Each create still gets its own answer: its own resource, its own `<kind>.created` change with its caller's
//! actor and trace. When the shared statement fails (a slug taken, a deadline, the database gone), nothing of it
//! commits and each of its creates runs again alone, for the answer it would have had alone; when it gets no
//! answer (the connection lost), whether it was written is unknown, and each create fails as UNAVAILABLE, as a
//! create alone would, rather than run again and perhaps be created twice. Creates with a request id (AIP-155)
//! always run alone: their idempotency claim is one per statement.
//!
//! The shared statement sets the organization itself and runs without a transaction around it (its own, one round
//! trip; `store::catalogue::create_each`), except behind a transaction pooler, where a transaction sets the
//! statement limit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tracing::Instrument;
use uuid::Uuid;

use super::catalogue::CreateRequest;
use super::{App, AppError, Caller};
use crate::domain::catalogue::Kind;
use crate::domain::new_resources::NewResource;
use crate::domain::resources::Resource;
use crate::outbox::enqueue::ChangeContext;
use crate::store::catalogue as store;

/// Most creates one statement takes: the size of the bench's BatchCreateEvents calls, which write near bulk-load
/// speed (BatchCreateEvents itself takes up to 500).
const MOST_ROWS: usize = 100;

/// What a waiting create hears back: its resource, created and committed, or why it failed; or `None`: run alone
/// (the shared statement failed and wrote nothing, or the caller's time is nearly up).
type Answer = Option<Result<Resource, AppError>>;

/// How a shared statement ended.
enum Outcome {
    /// Committed: the resources, in the creates' order.
    Committed(Vec<Resource>),
    /// Failed before it committed, or its commit was refused: nothing of it was written.
    RolledBack(AppError),
    /// It (or its commit) got no answer: whether it was written is unknown.
    Unknown(sqlx::Error),
    /// Committed, yet wrong: every create hears this error and none runs again.
    Failed(AppError),
}

impl Outcome {
    /// A statement, or the COMMIT, that ended in `err`: a refusal by the server means its transaction rolled back
    /// and wrote nothing; no answer at all (the connection lost) leaves the outcome unknown.
    fn ended_by(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::Database(_) => Outcome::RolledBack(AppError::from_db(err)),
            err => Outcome::Unknown(err),
        }
    }
}

/// A create waiting for a statement.
struct Waiting {
    caller: Caller,
    row: Map<String, Value>,
    /// The create's span (see `create_together`).
    span: tracing::Span,
    answer: oneshot::Sender<Answer>,
}

/// Creates queued per organization and kind (cloned handles share them).
#[derive(Clone)]
pub(crate) struct CreatesTogether {
    /// Most statements per organization and kind at once.
    statements: usize,
    /// Creates that must be waiting before a statement starts beside a running one of their organization and kind.
    to_start_another: usize,
    /// How long a create waits for that many before it starts a statement anyway.
    most_wait: Duration,
    by_key: Arc<Mutex<HashMap<(Uuid, Kind), Queue>>>,
    /// Creates queued and not yet taken by a statement, over every organization and kind.
    waiting: Gauge,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Statements running (or about to) for this organization and kind.
    running: usize,
}

impl CreatesTogether {
    /// At most `statements` create statements per organization and kind at once, another beside a running one only
    /// for `to_start_another` creates or more (at least 1) or once a create waited `most_wait`, counting the
    /// creates waiting in `waiting`; `None` for 0 statements (every create alone).
    pub(crate) fn new(statements: usize, to_start_another: usize, most_wait: Duration, waiting: Gauge) -> Option<Self> {
        let to_start_another = to_start_another.max(1);
        (statements > 0).then(|| Self { statements, to_start_another, most_wait, by_key: Arc::default(), waiting })
    }

    /// Queues `create`; when a statement is free for its organization and kind, takes it: returns the creates that
    /// statement runs (this one and any waiting before it).
    fn queue(&self, key: (Uuid, Kind), create: Waiting) -> Option<Vec<Waiting>> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let queue = by_key.entry(key).or_default();
        queue.waiting.push_back(create);
        self.waiting.inc();
        if !self.may_start(queue, self.to_start_another) {
            return None;
        }
        Some(self.start(queue))
    }

    /// After a statement of `key` ended: the creates the next one runs, or `None` (and one statement fewer) when
    /// none wait, or too few to run beside the others still running (those take them when they end).
    fn next(&self, key: (Uuid, Kind)) -> Option<Vec<Waiting>> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let queue = by_key.get_mut(&key)?;
        queue.running -= 1;
        if !self.may_start(queue, self.to_start_another) {
            if queue.running == 0 {
                by_key.remove(&key);
            }
            return None;
        }
        Some(self.start(queue))
    }

    /// After a create of `key` waited its most: a statement for the creates waiting, however few,
    /// when fewer than the most statements run.
    fn start_for_those_waiting(&self, key: (Uuid, Kind)) -> Option<Vec<Waiting>> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let queue = by_key.get_mut(&key)?;
        self.may_start(queue, 1).then(|| self.start(queue))
    }

    /// Whether the creates waiting in `queue` start a statement now: at once when none runs, beside running ones
    /// only while fewer than the most statements run and at least `fewest` creates wait.
    fn may_start(&self, queue: &Queue, fewest: usize) -> bool {
        !queue.waiting.is_empty()
            && (queue.running == 0 || (queue.running < self.statements && queue.waiting.len() >= fewest))
    }

    /// Starts a statement: the creates it takes, the first [`MOST_ROWS`] waiting, in the order they came.
    fn start(&self, queue: &mut Queue) -> Vec<Waiting> {
        queue.running += 1;
        let n = queue.waiting.len().min(MOST_ROWS);
        self.waiting.dec_by(n as i64);
        queue.waiting.drain(..n).collect()
    }
}

/// Ends the statements of a key when the task running them stops without `next` saying so (a panic): the
/// creates still waiting run alone rather than wait for a statement that will not come.
struct Running {
    together: CreatesTogether,
    key: (Uuid, Kind),
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        while let Some(batch) = self.together.next(self.key) {
            for create in batch {
                let _ = create.answer.send(None);
            }
        }
    }
}

impl CreateRequest {
    /// The row of a create that may share a statement: one resource, no request id, not a batch.
    fn shareable_row(&self) -> Option<&NewResource> {
        match self.rows.as_slice() {
            [row] if !self.batch && self.request_id.is_none() => Some(row),
            _ => None,
        }
    }
}

impl App {
    /// Creates the request's resources: a single create shares a statement with others when it can (see the
    /// module's documentation), anything else runs alone. Its span covers the wait for a statement too.
    #[tracing::instrument(name = "transaction", skip_all, fields(otel.name = "create", db.system = "postgresql"))]
    pub async fn create(&self, caller: &Caller, request: &CreateRequest) -> Result<Vec<Resource>, AppError> {
        let (Some(together), Some(row)) = (&self.creates_together, request.shareable_row()) else {
            return self.create_alone(caller, request).await;
        };
        let key = (caller.org_id, request.kind);
        let (answer, mut answered) = oneshot::channel();
        let create = Waiting { caller: caller.clone(), row: row.to_row(), span: tracing::Span::current(), answer };
        if let Some(batch) = together.queue(key, create) {
            self.spawn_statements(together, key, batch);
        }
        let answer = match tokio::time::timeout(together.most_wait, &mut answered).await {
            Ok(answer) => answer,
            // The running statement is slow (a lock, say): another starts for the creates waiting, however few.
            Err(_) => {
                if let Some(batch) = together.start_for_those_waiting(key) {
                    self.spawn_statements(together, key, batch);
                }
                answered.await
            }
        };
        match answer {
            Ok(Some(answer)) => answer.map(|resource| vec![resource]),
            // A statement that wrote nothing: alone, the create gets its own answer.
            Ok(None) => self.create_alone(caller, request).await,
            // The task running its statement stopped without an answer (a panic): whether it was written is
            // unknown, as after a commit without an answer.
            Err(_) => Err(AppError::Unavailable),
        }
    }

    /// Runs `batch` and then the creates that wait, on a task of its own.
    fn spawn_statements(&self, together: &CreatesTogether, key: (Uuid, Kind), batch: Vec<Waiting>) {
        let (app, together) = (self.clone(), together.clone());
        tokio::spawn(async move { app.run_statements(together, key, batch).await });
    }

    /// Runs `batch`, then the creates that waited meanwhile, until none wait.
    async fn run_statements(self, together: CreatesTogether, key: (Uuid, Kind), mut batch: Vec<Waiting>) {
        let mut running = Running { together, key, done: false };
        loop {
            self.create_together(key.1, batch).await;
            match running.together.next(key) {
                Some(next) => batch = next,
                None => break,
            }
        }
        running.done = true;
    }

    /// One statement for the creates of `batch` (one organization, `kind`); each hears whether it was created.
    async fn create_together(&self, kind: Kind, batch: Vec<Waiting>) {
        // Creates whose caller left are dropped; those whose time is nearly up run alone, for their own answer.
        let (mut batch, late): (Vec<Waiting>, Vec<Waiting>) = batch
            .into_iter()
            .filter(|create| !create.answer.is_closed())
            .partition(|create| self.statement_limit_of(&create.caller).is_ok());
        for create in late {
            let _ = create.answer.send(None);
        }
        let Some(first) = batch.first() else { return };
        self.metrics.creates_per_statement.observe(batch.len() as f64);
        // The statement's spans continue the first create's trace; the other creates' spans link to it.
        let span = tracing::info_span!(parent: &first.span, "statement", otel.name = "create together",
            db.system = "postgresql", eventdata.creates = batch.len());
        for create in &batch[1..] {
            create.span.follows_from(&span);
        }
        match self.insert_together(kind, &mut batch).instrument(span).await {
            Outcome::Committed(created) => {
                for (create, resource) in batch.into_iter().zip(created) {
                    let _ = create.answer.send(Some(Ok(resource)));
                }
            }
            Outcome::RolledBack(err) => {
                tracing::debug!(error = %err, creates = batch.len(), "a shared create failed; each runs alone");
                for create in batch {
                    let _ = create.answer.send(None);
                }
            }
            // Running them again could create them twice: each caller hears UNAVAILABLE, as a create alone whose
            // commit got no answer does.
            Outcome::Unknown(err) => {
                tracing::warn!(error = %err, creates = batch.len(), "a shared create's commit got no answer");
                for create in batch {
                    let _ = create.answer.send(Some(Err(AppError::Unavailable)));
                }
            }
            Outcome::Failed(err) => {
                tracing::error!(error = %err, creates = batch.len(), "a shared create committed wrongly");
                for create in batch {
                    let _ = create.answer.send(Some(Err(AppError::Internal(anyhow::anyhow!("{err}")))));
                }
            }
        }
    }

    /// Inserts the rows of `batch` and their changes, each made by its own caller, and commits. Takes the rows out
    /// of `batch`: a create that runs alone after all uses its own request's.
    async fn insert_together(&self, kind: Kind, batch: &mut [Waiting]) -> Outcome {
        let rows: Vec<Value> = batch
            .iter_mut()
            .map(|create| {
                let mut row = std::mem::take(&mut create.row);
                row.insert("id".into(), Value::from(Uuid::now_v7().to_string()));
                Value::Object(row)
            })
            .collect();
        let contexts: Vec<ChangeContext> = batch.iter().map(|create| create.caller.change_context()).collect();
        // The server's statement limit: each caller's deadline was checked above, and one short deadline must
        // not cut the statement of the others.
        let caller = Caller { deadline: None, ..batch[0].caller.clone() };
        let statement = SharedStatement { org: caller.org_id, kind, rows, contexts };
        match self.statement_limit_of(&caller) {
            Ok(None) => self.insert_in_one_round_trip(statement).await,
            // Behind a transaction pooler, the connection has no limit of its own: a transaction sets it.
            Ok(Some(_)) => self.insert_in_a_transaction(&caller, statement).await,
            Err(err) => Outcome::RolledBack(err),
        }
    }

    /// The statement alone, its own transaction (it sets the organization itself): one round trip.
    async fn insert_in_one_round_trip(&self, statement: SharedStatement) -> Outcome {
        let mut conn = match self.measured(self.reads.acquire()).await {
            Ok(conn) => conn,
            Err(err) => return Outcome::RolledBack(err),
        };
        match statement.run(&mut conn).await {
            Ok(Some(created)) => {
                conn.release();
                Outcome::Committed(created)
            }
            // Committed, yet not as asked: no create may run again.
            Ok(None) => Outcome::Failed(AppError::Internal(anyhow::anyhow!("a shared create lost rows"))),
            Err(err) => Outcome::ended_by(err),
        }
    }

    /// The statement in a transaction that sets the statement limit (behind a transaction pooler).
    async fn insert_in_a_transaction(&self, caller: &Caller, statement: SharedStatement) -> Outcome {
        let mut tx = match self.begin(caller).await {
            Ok(tx) => tx,
            Err(err) => return Outcome::RolledBack(err),
        };
        let created = match statement.run(&mut tx).await {
            Ok(Some(created)) => created,
            Ok(None) => return Outcome::RolledBack(AppError::Internal(anyhow::anyhow!("a shared create lost rows"))),
            Err(err) => return Outcome::RolledBack(AppError::from_db(err)),
        };
        match tx.commit().await {
            Ok(()) => Outcome::Committed(created),
            Err(err) => Outcome::ended_by(err),
        }
    }
}

/// The rows of a shared statement and the change context of each.
struct SharedStatement {
    org: Uuid,
    kind: Kind,
    rows: Vec<Value>,
    contexts: Vec<ChangeContext>,
}

impl SharedStatement {
    /// Runs it: the resources, one per row, or `None` when the statement returned fewer.
    async fn run(self, conn: &mut sqlx::PgConnection) -> Result<Option<Vec<Resource>>, sqlx::Error> {
        let expected = self.rows.len();
        let created = store::create_each(conn, self.org, self.kind, self.rows, &self.contexts).await?;
        Ok((created.len() == expected).then_some(created))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> (Waiting, oneshot::Receiver<Answer>) {
        let (answer, answered) = oneshot::channel();
        let caller = Caller {
            org_id: Uuid::nil(),
            key_id: Uuid::nil(),
            scopes: crate::domain::api_key::Scopes::parse_list("write").expect("a scope"),
            traceparent: None,
            tracestate: None,
            deadline: None,
            consistency: None,
        };
        (Waiting { caller, row: Map::new(), span: tracing::Span::none(), answer }, answered)
    }

    const KEY: (Uuid, Kind) = (Uuid::nil(), Kind::Event);
    const WAIT: Duration = Duration::from_millis(10);

    #[test]
    fn a_create_that_finds_a_statement_free_takes_it_and_the_others_wait_for_the_next() {
        let gauge = Gauge::default();
        let together = CreatesTogether::new(1, 1, WAIT, gauge.clone()).expect("on");
        let first = together.queue(KEY, waiting().0).expect("a free statement");
        assert_eq!((first.len(), gauge.get()), (1, 0));
        assert!(together.queue(KEY, waiting().0).is_none(), "the one statement is busy");
        assert!(together.queue(KEY, waiting().0).is_none());
        assert_eq!(gauge.get(), 2, "two creates wait");
        assert_eq!(together.next(KEY).map(|next| next.len()), Some(2), "the next statement takes both");
        assert_eq!(gauge.get(), 0);
        assert!(together.next(KEY).is_none(), "none wait: the statement ends");
        assert_eq!(together.queue(KEY, waiting().0).map(|b| b.len()), Some(1), "free again");
    }

    #[test]
    fn statements_run_side_by_side_up_to_the_limit_per_organization_and_kind() {
        let together = CreatesTogether::new(2, 1, WAIT, Gauge::default()).expect("on");
        assert!(together.queue(KEY, waiting().0).is_some());
        assert!(together.queue(KEY, waiting().0).is_some(), "a second statement");
        assert!(together.queue(KEY, waiting().0).is_none(), "both busy");
        assert!(together.queue((Uuid::max(), Kind::Event), waiting().0).is_some(), "another organization's own");
        assert!(together.queue((Uuid::nil(), Kind::Speaker), waiting().0).is_some(), "another kind's own");
    }

    #[test]
    fn beside_a_running_statement_another_starts_only_for_enough_creates() {
        let together = CreatesTogether::new(2, 3, WAIT, Gauge::default()).expect("on");
        assert_eq!(together.queue(KEY, waiting().0).map(|b| b.len()), Some(1), "none runs: at once");
        assert!(together.queue(KEY, waiting().0).is_none(), "one waits: too few to start another");
        assert!(together.queue(KEY, waiting().0).is_none(), "two wait");
        assert_eq!(together.queue(KEY, waiting().0).map(|b| b.len()), Some(3), "three: a second statement");
        assert!(together.queue(KEY, waiting().0).is_none(), "both busy");
        assert!(together.next(KEY).is_none(), "the first ends: one waits, too few beside the second");
        assert_eq!(together.next(KEY).map(|b| b.len()), Some(1), "the second ends: none runs, it takes the one");
        assert!(together.next(KEY).is_none(), "none wait: the last statement ends");
        assert_eq!(together.queue(KEY, waiting().0).map(|b| b.len()), Some(1), "free again");
    }

    #[test]
    fn creates_that_waited_long_start_a_statement_however_few() {
        let together = CreatesTogether::new(2, 8, WAIT, Gauge::default()).expect("on");
        assert!(together.start_for_those_waiting(KEY).is_none(), "nothing waits");
        together.queue(KEY, waiting().0).expect("none runs: at once");
        assert!(together.queue(KEY, waiting().0).is_none(), "one waits: too few to start another");
        assert_eq!(together.start_for_those_waiting(KEY).map(|b| b.len()), Some(1), "it waited long: it starts one");
        assert!(together.queue(KEY, waiting().0).is_none(), "both busy");
        assert!(together.start_for_those_waiting(KEY).is_none(), "both busy, however long it waits");
    }

    #[test]
    fn a_statement_takes_at_most_the_batch_limit_in_the_order_they_came() {
        let together = CreatesTogether::new(1, 1, WAIT, Gauge::default()).expect("on");
        together.queue(KEY, waiting().0).expect("free");
        let mut answers = Vec::new();
        for _ in 0..MOST_ROWS + 5 {
            let (create, answered) = waiting();
            answers.push(answered);
            assert!(together.queue(KEY, create).is_none());
        }
        let next = together.next(KEY).expect("waiting creates");
        assert_eq!(next.len(), MOST_ROWS);
        for (create, _) in next.into_iter().zip(0..) {
            let _ = create.answer.send(None);
        }
        assert!(answers[..MOST_ROWS].iter_mut().all(|a| a.try_recv().is_ok()), "the first ones came first");
        assert!(answers[MOST_ROWS].try_recv().is_err(), "the rest wait for the statement after");
        assert_eq!(together.next(KEY).map(|next| next.len()), Some(5));
    }

    #[test]
    fn creates_left_waiting_by_a_stopped_task_run_alone() {
        let together = CreatesTogether::new(1, 1, WAIT, Gauge::default()).expect("on");
        together.queue(KEY, waiting().0).expect("free");
        let (create, mut answered) = waiting();
        assert!(together.queue(KEY, create).is_none());
        drop(Running { together: together.clone(), key: KEY, done: false });
        assert!(matches!(answered.try_recv(), Ok(None)));
        assert_eq!(together.queue(KEY, waiting().0).map(|b| b.len()), Some(1), "no statement is left running");
    }

    #[test]
    fn zero_statements_is_every_create_alone() {
        assert!(CreatesTogether::new(0, 8, WAIT, Gauge::default()).is_none());
    }
}
