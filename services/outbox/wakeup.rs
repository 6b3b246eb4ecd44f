//! Waking readers of the change log with nothing on the write path (docs/relay.md, "Wake-up"): a reader polls
//! at the shortest interval while changes flow and, while nothing new arrives, doubles its wait up to the longest.
//! A NOTIFY per commit would wake readers sooner when idle, but it takes a cluster-wide lock at every commit.

use std::time::Duration;

/// The relay's and the change feed's shortest wait between two looks at the log while changes flow.
pub const SHORTEST_POLL: Duration = Duration::from_millis(2);

/// Poll intervals that shrink while changes flow and grow while none do.
#[derive(Debug, Clone)]
pub struct AdaptivePoll {
    shortest: Duration,
    longest: Duration,
    next: Duration,
}

impl AdaptivePoll {
    /// Starts at `shortest`; never waits longer than `longest`.
    pub fn new(shortest: Duration, longest: Duration) -> Self {
        let longest = longest.max(shortest);
        Self { shortest, longest, next: shortest }
    }

    /// Something new was found: look again soon.
    pub fn busy(&mut self) {
        self.next = self.shortest;
    }

    /// How long to wait before the next look.
    pub fn wait(&self) -> Duration {
        self.next
    }

    /// A whole wait passed and the look after it found nothing: the next wait doubles, up to the longest.
    pub fn idle(&mut self) {
        self.next = (self.next * 2).min(self.longest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_while_idle_and_reset_when_busy() {
        let mut poll = AdaptivePoll::new(Duration::from_millis(2), Duration::from_millis(50));
        let waits: Vec<u128> = (0..7)
            .map(|_| {
                let wait = poll.wait().as_millis();
                poll.idle();
                wait
            })
            .collect();
        assert_eq!(waits, vec![2, 4, 8, 16, 32, 50, 50]);
        poll.busy();
        assert_eq!(poll.wait(), Duration::from_millis(2));
        let mut odd = AdaptivePoll::new(Duration::from_millis(10), Duration::from_millis(1));
        odd.idle();
        assert_eq!(odd.wait(), Duration::from_millis(10), "a longest below the shortest is raised to it");
    }
}
