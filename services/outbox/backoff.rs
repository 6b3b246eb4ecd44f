//! Capped exponential backoff with full jitter, for reconnect loops.

use std::time::Duration;

/// Delays of 100 ms, 200 ms, 400 ms, ... up to `cap`, each drawn uniformly below its bound (full jitter) so that
/// many clients reconnecting at once do not stampede.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    cap: Duration,
}

impl Backoff {
    /// Starts at 100 ms, never above `cap`.
    pub fn new(cap: Duration) -> Self {
        Self { attempt: 0, cap }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let bound = Duration::from_millis(100).saturating_mul(1u32 << self.attempt.min(16)).min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        bound.mul_f64(rand::random::<f64>()).max(Duration::from_millis(10))
    }

    /// Back to the shortest delay, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_under_the_cap() {
        let cap = Duration::from_secs(2);
        let mut backoff = Backoff::new(cap);
        let delays: Vec<Duration> = (0..30).map(|_| backoff.next_delay()).collect();
        assert!(delays.iter().all(|d| *d <= cap));
        assert!(delays[0] <= Duration::from_millis(100));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
