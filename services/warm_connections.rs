//! Connections handed from one confined read (or committed transaction) to the next without going back through the
//! pool.
//!
//! sqlx's pool checks every connection it takes back with a ping: a round trip of its own, made after the call
//! has answered but paid for by both processes. A confined read (`store::confined`) is one round trip, so the
//! ping doubled the round trips of every Get and List. Handing the connection on instead raised Get's calls/s by
//! about a third and cut PostgreSQL's CPU per call by about 30% (docs/performance.md, "Reads without the release
//! ping").
//!
//! Only a read that ended cleanly hands its connection on ([`WarmConnection::release`]): its statements' results
//! were read to the end and it opened no transaction, so the connection is as the next read needs it. A read that
//! failed or was cancelled just drops its connection, which goes back to the pool and its ping as before (the ping
//! also drains what a cancelled statement left unread).
//!
//! Transactions take their connection here too ([`WarmTransaction`]): committed, it goes to the next caller, without
//! the ping that was one round trip of the four of a CreateEvent; rolled back, it goes to the pool.
//!
//! The connections kept here count as in use for the pool, so they are bounded: at most the pool's size less a
//! reserve ([`reserve`]) at once, lent or idle, so the pool's other users (authentication, the health probes)
//! always find the reserve there. One idle for [`crate::db::PING_AFTER_IDLE`] is pinged before use,
//! as the pool does with its own; one idle for [`IDLE_RETURN`], or kept for [`KEPT_AT_MOST`] (so the pool's own
//! lifetime rules apply again), goes back to the pool: `serve` ages them every second.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgTransactionManager;
use sqlx::{PgPool, Postgres, SqlStr};
use sqlx_core::transaction::TransactionManager;

/// An idle connection older than this goes back to the pool. Long against the ping's second: a connection given
/// back is pinged and counts as fresh in the pool, so returning them often would keep refreshing connections that
/// the next read should check (a standby that just stopped would answer that read with an error instead).
pub const IDLE_RETURN: Duration = Duration::from_secs(30);

/// A connection kept longer than this goes back to the pool, whose lifetime and idle rules then apply again.
pub const KEPT_AT_MOST: Duration = Duration::from_secs(300);

/// Connections the pool keeps for its other users when reads keep theirs: a quarter of it, at least two.
pub fn reserve(pool_size: u32) -> u32 {
    (pool_size / 4).max(2)
}

/// The connections kept warm for reads and transactions on one pool. Cheap to clone (shared).
#[derive(Clone)]
pub struct WarmConnections {
    pool: PgPool,
    shared: Arc<Shared>,
}

struct Shared {
    /// Lent plus idle never exceeds this.
    most: usize,
    /// How long an idle connection is kept.
    idle_return: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Idle connections, the least recently released first.
    idle: VecDeque<Idle>,
    /// Connections kept here and lent to a read now.
    lent: usize,
}

struct Idle {
    conn: PoolConnection<Postgres>,
    since: Instant,
    kept_since: Instant,
}

impl WarmConnections {
    /// Warm connections on `pool`, at most its size less [`reserve`].
    pub fn new(pool: PgPool) -> Self {
        let size = pool.options().get_max_connections();
        Self::with_limits(pool, size.saturating_sub(reserve(size)) as usize, IDLE_RETURN)
    }

    /// Warm connections on `pool`: at most `most`, idle for at most `idle_return`.
    pub fn with_limits(pool: PgPool, most: usize, idle_return: Duration) -> Self {
        Self { pool, shared: Arc::new(Shared { most, idle_return, state: Mutex::new(State::default()) }) }
    }

    /// The pool the connections come from.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection for reads or a transaction: an idle warm one if there is one, else one from the pool, kept
    /// warm afterwards when there is room.
    pub async fn acquire(&self) -> Result<WarmConnection, sqlx::Error> {
        loop {
            let (stale, taken) = {
                let mut state = self.lock();
                let stale = state.take_stale(self.shared.idle_return);
                let taken = match state.idle.pop_back() {
                    Some(idle) => Taken::Idle(idle),
                    None if state.lent + state.idle.len() < self.shared.most => Taken::Room,
                    None => Taken::Cold,
                };
                if !matches!(taken, Taken::Cold) {
                    state.lent += 1;
                }
                (stale, taken)
            };
            drop(stale);
            let loan = |kept_since| Loan { shared: Arc::clone(&self.shared), kept_since, settled: false };
            return Ok(match taken {
                Taken::Idle(Idle { conn, since, kept_since }) => {
                    let mut warm = WarmConnection { conn, loan: Some(loan(kept_since)) };
                    // As the pool checks its own: one that sat idle may have lost its server (a failed one is
                    // dropped, giving its place back, and the next is tried).
                    if since.elapsed() >= crate::db::PING_AFTER_IDLE
                        && sqlx::Connection::ping(&mut *warm.conn).await.is_err()
                    {
                        continue;
                    }
                    warm
                }
                Taken::Room => {
                    // The loan exists before the wait, so a failed or abandoned wait gives its place back.
                    let loan = loan(Instant::now());
                    WarmConnection { conn: self.pool.acquire().await?, loan: Some(loan) }
                }
                Taken::Cold => WarmConnection { conn: self.pool.acquire().await?, loan: None },
            });
        }
    }

    /// Gives every idle connection that has been idle too long back to the pool.
    pub fn age(&self) {
        let stale = self.lock().take_stale(self.shared.idle_return);
        drop(stale);
    }

    /// Gives every idle connection back to the pool (before the pool is closed: it waits for all of them).
    pub fn drain(&self) {
        let idle = std::mem::take(&mut self.lock().idle);
        drop(idle);
    }

    /// How many connections are idle here now.
    pub fn idle(&self) -> usize {
        self.lock().idle.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (every update is a single step).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Where [`WarmConnections::acquire`] finds its connection.
enum Taken {
    /// An idle warm one.
    Idle(Idle),
    /// From the pool, kept warm afterwards.
    Room,
    /// From the pool, given back to it afterwards (the warm ones are all lent).
    Cold,
}

impl State {
    /// Takes the idle connections that have been idle for `idle_return` or more (to drop outside the lock).
    fn take_stale(&mut self, idle_return: Duration) -> Vec<Idle> {
        let mut stale = Vec::new();
        while self.idle.front().is_some_and(|idle| idle.since.elapsed() >= idle_return) {
            stale.extend(self.idle.pop_front());
        }
        stale
    }
}

/// A warm connection's place, counted while it is lent.
struct Loan {
    shared: Arc<Shared>,
    kept_since: Instant,
    /// Counted back by [`WarmConnection::release`] already.
    settled: bool,
}

impl Drop for Loan {
    fn drop(&mut self) {
        if !self.settled {
            let mut state = self.shared.lock();
            state.lent -= 1;
        }
    }
}

/// A connection lent for reads. Dropped, it goes back to the pool (pinged there); released after a read that
/// ended cleanly, it goes to the next read.
pub struct WarmConnection {
    conn: PoolConnection<Postgres>,
    /// `None` for a connection that is not kept warm.
    loan: Option<Loan>,
}

impl WarmConnection {
    /// Hands the connection to the next read. Only for a connection whose last statement's results were read to
    /// the end and that has no transaction open.
    pub fn release(self) {
        let WarmConnection { conn, loan } = self;
        let Some(mut loan) = loan else { return };
        if loan.kept_since.elapsed() >= KEPT_AT_MOST {
            return;
        }
        loan.settled = true;
        let mut state = loan.shared.lock();
        state.idle.push_back(Idle { conn, since: Instant::now(), kept_since: loan.kept_since });
        state.lent -= 1;
    }
}

impl std::ops::Deref for WarmConnection {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &sqlx::PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for WarmConnection {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        &mut self.conn
    }
}

/// A transaction on a warm connection. Committed, its connection goes to the next caller as a finished read's does,
/// without the round trip of the pool's release ping. Dropped without a commit (a failed statement, a cancelled
/// call), it is rolled back as sqlx rolls back a dropped transaction: the ROLLBACK is queued on the connection,
/// which goes back to the pool, whose ping sends it.
pub struct WarmTransaction {
    /// `None` once committed or rolled back.
    conn: Option<WarmConnection>,
}

impl WarmTransaction {
    /// Begins a transaction on `conn` with `statement` (`BEGIN` and settings, one round trip).
    pub async fn begin(mut conn: WarmConnection, statement: SqlStr) -> Result<WarmTransaction, sqlx::Error> {
        PgTransactionManager::begin(&mut conn, Some(statement)).await?;
        Ok(WarmTransaction { conn: Some(conn) })
    }

    /// Commits; the connection goes to the next caller. A failed COMMIT gives it back to the pool instead.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let Some(mut conn) = self.conn.take() else { return Ok(()) };
        PgTransactionManager::commit(&mut conn).await?;
        conn.release();
        Ok(())
    }

    /// Rolls back; the connection goes to the next caller. A failed ROLLBACK gives it back to the pool instead.
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        let Some(mut conn) = self.conn.take() else { return Ok(()) };
        PgTransactionManager::rollback(&mut conn).await?;
        conn.release();
        Ok(())
    }

    fn conn(&self) -> &WarmConnection {
        self.conn.as_ref().expect("a transaction has its connection until it is committed")
    }

    fn conn_mut(&mut self) -> &mut WarmConnection {
        self.conn.as_mut().expect("a transaction has its connection until it is committed")
    }
}

impl Drop for WarmTransaction {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.conn {
            PgTransactionManager::start_rollback(conn);
        }
    }
}

impl std::ops::Deref for WarmTransaction {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &sqlx::PgConnection {
        self.conn()
    }
}

impl std::ops::DerefMut for WarmTransaction {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        self.conn_mut()
    }
}
