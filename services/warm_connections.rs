//! Connections handed from one confined read to the next without going back through the pool.
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
//! The connections kept here count as in use for the pool, so they are bounded: at most the pool's size less a
//! reserve ([`reserve`]) at once, lent or idle, so writers and the pool's other users always find the reserve there.
//! An idle one is given back to the pool once it has been idle for [`IDLE_RETURN`] (as the pool would ping it
//! then) or has been kept for [`KEPT_AT_MOST`] (so the pool's own lifetime rules apply to it). [`WarmConnections::age`]
//! does that; `serve` calls it every [`IDLE_RETURN`] and the App before every transaction, so a service that stops
//! reading returns them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

/// An idle connection older than this goes back to the pool (which pings a connection idle for as long).
pub const IDLE_RETURN: Duration = crate::db::PING_AFTER_IDLE;

/// A connection kept longer than this goes back to the pool, whose lifetime and idle rules then apply again.
pub const KEPT_AT_MOST: Duration = Duration::from_secs(300);

/// Connections the pool keeps for its other users when reads keep theirs: a quarter of it, at least two.
pub fn reserve(pool_size: u32) -> u32 {
    (pool_size / 4).max(2)
}

/// The connections kept warm for reads on one pool. Cheap to clone (shared).
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

    /// A connection for reads: an idle warm one if there is one, else one from the pool, kept warm afterwards
    /// when there is room.
    pub async fn acquire(&self) -> Result<WarmConnection, sqlx::Error> {
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
        Ok(match taken {
            Taken::Idle(idle) => WarmConnection { conn: idle.conn, loan: Some(loan(idle.kept_since)) },
            Taken::Room => {
                // The loan exists before the wait, so a failed or abandoned wait gives its place back.
                let loan = loan(Instant::now());
                WarmConnection { conn: self.pool.acquire().await?, loan: Some(loan) }
            }
            Taken::Cold => WarmConnection { conn: self.pool.acquire().await?, loan: None },
        })
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
        // A panic while holding the lock leaves the state consistent (every update is a single step).
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
            let mut state = self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
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
        let mut state = loan.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
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
