//! Turns for searches: at most a set number of search statements run on the database at once; the others wait
//! for a turn in the order they came (`EVENTDATA_DB_SEARCH_CONCURRENCY`).
//!
//! A search (similarity, full text, name lookup, hybrid) is a statement that keeps a core busy for milliseconds.
//! When more of them run than the database has cores, the kernel shares the cores among them: each one runs
//! slower, and the slow ones (a lookup that needs all its steps, a word with thousands of matches) stretch the
//! tail. Waiting in line instead, a search takes its queueing time plus its own time: on the bench (2 cores, 16
//! clients, docs/performance.md "Searches take turns") the lookup's p95 fell from 24-25 to 12-13 ms, with 10%
//! more calls a second. Cheap reads (a Get is one index probe, bound by round trips) and writes (a commit waits
//! for the log) do not take turns: holding them back would leave the cores idle, not less contended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppError;
use crate::metrics::ApiMetrics;

/// The turns searches take (cloned handles share them).
#[derive(Clone)]
pub(crate) struct SearchTurns {
    /// `None`: no limit.
    turns: Option<Arc<Semaphore>>,
    /// The longest a search waits for a turn before it is refused as busy.
    wait_limit: Duration,
}

/// A search's turn: held until the search's statements are done, then given to the next in line.
pub(crate) struct Turn {
    _permit: Option<OwnedSemaphorePermit>,
}

impl SearchTurns {
    /// No limit: every search runs at once.
    pub(crate) fn unlimited() -> Self {
        Self { turns: None, wait_limit: Duration::ZERO }
    }

    /// At most `concurrency` searches at once (0: no limit); a search waits at most `wait_limit` for its turn.
    pub(crate) fn new(concurrency: usize, wait_limit: Duration) -> Self {
        match concurrency {
            0 => Self::unlimited(),
            n => Self { turns: Some(Arc::new(Semaphore::new(n))), wait_limit },
        }
    }

    /// Waits for a turn (tokio's semaphore serves waiters first come, first served); `AppError::Busy` when none
    /// came within the wait limit. Waiting is measured in `metrics`.
    pub(crate) async fn take(&self, metrics: &ApiMetrics) -> Result<Turn, AppError> {
        let Some(turns) = &self.turns else {
            return Ok(Turn { _permit: None });
        };
        // No wait, no bookkeeping: the common case when searches are not piling up.
        if let Ok(permit) = turns.clone().try_acquire_owned() {
            return Ok(Turn { _permit: Some(permit) });
        }
        let started = Instant::now();
        metrics.searches_waiting.inc();
        let waited = tokio::time::timeout(self.wait_limit, turns.clone().acquire_owned()).await;
        metrics.searches_waiting.dec();
        metrics.search_turn_wait.observe(started.elapsed().as_secs_f64());
        match waited {
            Ok(Ok(permit)) => Ok(Turn { _permit: Some(permit) }),
            // The semaphore is never closed; a timeout is the only way here.
            Ok(Err(_)) | Err(_) => Err(AppError::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use super::*;

    #[tokio::test]
    async fn searches_past_the_limit_wait_and_take_turns_in_the_order_they_came() {
        let metrics = ApiMetrics::default();
        let turns = SearchTurns::new(1, Duration::from_secs(30));
        let held = turns.take(&metrics).await.expect("a free turn");
        let mut cx = Context::from_waker(Waker::noop());
        let mut first = pin!(turns.take(&metrics));
        let mut second = pin!(turns.take(&metrics));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(metrics.searches_waiting.get(), 2);
        drop(held);
        // The turn given back goes to the first in line, not to the second.
        assert!(second.as_mut().poll(&mut cx).is_pending());
        let turn = first.await.expect("the first in line");
        drop(turn);
        second.await.expect("then the second");
        assert_eq!(metrics.searches_waiting.get(), 0);
    }

    #[tokio::test]
    async fn a_search_that_waits_too_long_is_refused_as_busy() {
        let metrics = ApiMetrics::default();
        let turns = SearchTurns::new(1, Duration::from_millis(20));
        let _held = turns.take(&metrics).await.expect("a free turn");
        assert!(matches!(turns.take(&metrics).await, Err(AppError::Busy)));
        assert_eq!(metrics.searches_waiting.get(), 0);
    }

    #[tokio::test]
    async fn without_a_limit_no_search_waits() {
        let metrics = ApiMetrics::default();
        let turns = SearchTurns::new(0, Duration::ZERO);
        let mut held = Vec::new();
        for _ in 0..100 {
            held.push(turns.take(&metrics).await.expect("no limit"));
        }
        assert_eq!(metrics.searches_waiting.get(), 0);
    }
}
