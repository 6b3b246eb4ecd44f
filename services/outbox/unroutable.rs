//! Reporting of unroutable changes (returned by the broker under the `mandatory` flag because no queue is bound
//! for their routing key). They are counted in `eventdata_relay_returned_total`; the log gets at most one line per
//! interval with how many were returned and one routing key, never a message body: with no queue bound, every
//! change is returned, and a line per change (or the body) would flood the log with catalogue data.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one WARN line per interval about unroutable changes.
#[derive(Debug)]
pub struct UnroutableLog {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl UnroutableLog {
    /// Logs at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, state: Mutex::new(State::default()) }
    }

    /// Notes `count` returned changes, one of them routed with `routing_key`; returns whether a line was written.
    pub fn record(&self, count: u64, routing_key: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.unlogged += count;
        let now = Instant::now();
        if state.last_logged.is_some_and(|at| now.duration_since(at) < self.interval) {
            return false;
        }
        tracing::warn!(
            returned = state.unlogged,
            routing_key,
            interval_s = self.interval.as_secs(),
            "changes were unroutable (no queue is bound for them); counted in eventdata_relay_returned_total, \
             logged at most once per interval"
        );
        state.last_logged = Some(now);
        state.unlogged = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_once_per_interval_and_carries_the_count_over() {
        let log = UnroutableLog::new(Duration::from_secs(3600));
        assert!(log.record(1, "event.created"), "the first return is logged");
        for _ in 0..1000 {
            assert!(!log.record(1, "event.created"), "later ones wait for the interval");
        }
        assert_eq!(log.state.lock().expect("lock").unlogged, 1000);
        let log = UnroutableLog::new(Duration::ZERO);
        assert!(log.record(2, "a") && log.record(3, "b"), "a zero interval logs every time");
    }
}
