//! A read replica: a PostgreSQL streaming standby that serves the read-only calls. A monitor compares the standby's
//! replayed WAL position with the primary's every [`PROBE_INTERVAL`]: a standby that does not answer, is not in
//! recovery, or lags more than `EVENTDATA_READ_MAX_LAG_MS` is skipped until it recovers. A read that carries a
//! consistency token (the WAL position after a write) is served by the standby only once the standby has replayed
//! that far, waiting at most `EVENTDATA_READ_TOKEN_WAIT_MS`, else by the primary (docs/scaling.md).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{PgPool, Row};
use tokio::sync::watch;

use crate::config::DatabaseSettings;
use crate::domain::lsn::Lsn;
use crate::metrics::ApiMetrics;

/// How often the monitor compares the standby with the primary: a read with a token waits for the next probe.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// What the monitor last saw of the standby.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// Replayed up to here.
    replayed: Option<Lsn>,
    /// Answering, in recovery, and within the lag limit.
    usable: bool,
}

/// A standby and what is known of it.
pub struct ReadReplica {
    pool: PgPool,
    /// Connections handed from one confined read to the next on `pool`.
    reads: crate::warm_connections::WarmConnections,
    seen: watch::Sender<Seen>,
    token_wait: Duration,
}

impl ReadReplica {
    /// The replica of `settings.read_url`, if one is configured, watched against `primary` by a task of its own
    /// for the life of the process. Its pool connects lazily, like the primary's.
    pub fn spawn(
        primary: PgPool,
        settings: &DatabaseSettings,
        metrics: ApiMetrics,
    ) -> Result<Option<Arc<Self>>, sqlx::Error> {
        let Some(url) = &settings.read_url else { return Ok(None) };
        // A standby that stops answering must not hold reads up for long: they go to the primary instead.
        let acquire_timeout = settings.acquire_timeout.min(Duration::from_millis(500));
        let standby = DatabaseSettings { url: url.clone(), acquire_timeout, ..settings.clone() };
        let pool = crate::db::runtime_pool(&standby)?;
        let replica = Arc::new(Self {
            reads: crate::warm_connections::WarmConnections::new(pool.clone()),
            pool,
            seen: watch::channel(Seen::default()).0,
            token_wait: settings.read_token_wait,
        });
        tokio::spawn(monitor(Arc::clone(&replica), primary, settings.read_max_lag, metrics));
        Ok(Some(replica))
    }

    /// The standby's connections for a read that must see `token` (if any), or `None` when the read belongs on
    /// the primary: the standby is not usable, or has not replayed `token` within the wait.
    pub async fn reads_for(&self, token: Option<Lsn>) -> Option<&crate::warm_connections::WarmConnections> {
        let serves = |seen: &Seen| seen.usable && token.is_none_or(|t| seen.replayed.is_some_and(|r| r >= t));
        let seen = *self.seen.borrow();
        if serves(&seen) {
            return Some(&self.reads);
        }
        if !seen.usable {
            return None;
        }
        let mut seen = self.seen.subscribe();
        let waited = tokio::time::timeout(self.token_wait, seen.wait_for(|s| !s.usable || serves(s))).await;
        matches!(waited, Ok(Ok(s)) if serves(&s)).then_some(&self.reads)
    }

    /// Gives the standby's connections kept warm for reads back to its pool.
    pub fn release_warm_connections(&self) {
        self.reads.drain();
    }

    /// Gives the standby's connections kept warm for reads and idle too long back to its pool.
    pub fn age_warm_connections(&self) {
        self.reads.age();
    }

    /// Skips the standby until the next probe finds it well (a read could not get a connection to it).
    pub fn set_unusable(&self) {
        self.seen.send_modify(|seen| seen.usable = false);
    }
}

/// The primary's WAL position over the last while, to tell how long ago it was where the standby is now.
#[derive(Default)]
struct PrimaryHistory {
    samples: VecDeque<(Instant, Lsn)>,
}

impl PrimaryHistory {
    fn record(&mut self, at: Instant, position: Lsn, keep: Duration) {
        if self.samples.back().is_none_or(|(_, last)| *last != position) {
            self.samples.push_back((at, position));
        }
        while self.samples.front().is_some_and(|(t, _)| at.duration_since(*t) > keep) && self.samples.len() > 1 {
            self.samples.pop_front();
        }
    }

    /// How far behind a standby that replayed up to `replayed` is: zero when it has everything the primary had at
    /// the last sample, else the time since the primary first wrote past `replayed` (at least the history's span
    /// when even the oldest sample is ahead of it).
    fn lag(&self, now: Instant, replayed: Lsn) -> Duration {
        match self.samples.iter().find(|(_, position)| *position > replayed) {
            None => Duration::ZERO,
            Some((at, _)) => now.duration_since(*at),
        }
    }
}

async fn monitor(replica: Arc<ReadReplica>, primary: PgPool, max_lag: Duration, metrics: ApiMetrics) {
    let mut history = PrimaryHistory::default();
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = Instant::now();
        // Simple queries (one message each): they also work through a transaction-mode pooler.
        if let Ok(row) = sqlx::raw_sql("SELECT pg_current_wal_lsn()::text").fetch_one(&primary).await
            && let Some(position) = row.try_get::<String, _>(0).ok().as_deref().and_then(Lsn::parse)
        {
            history.record(now, position, max_lag * 2);
        }
        let probe =
            sqlx::raw_sql("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text").fetch_one(&replica.pool);
        let replayed = match tokio::time::timeout(Duration::from_secs(1), probe).await {
            Ok(Ok(row)) => match (row.try_get::<bool, _>(0), row.try_get::<Option<String>, _>(1)) {
                (Ok(true), Ok(Some(text))) => Lsn::parse(&text),
                _ => None, // not a standby (promoted?): not a replica to read from
            },
            _ => None,
        };
        let lag = replayed.map(|r| history.lag(now, r));
        let usable = lag.is_some_and(|lag| lag <= max_lag);
        replica.seen.send_replace(Seen { replayed, usable });
        metrics.replica_usable.set(i64::from(usable));
        metrics.replica_lag_seconds.set(lag.map_or(-1.0, |l| l.as_secs_f64()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_time_since_the_primary_first_wrote_past_the_standby() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut history = PrimaryHistory::default();
        let keep = Duration::from_secs(2);
        history.record(at(0), Lsn(100), keep);
        history.record(at(20), Lsn(100), keep); // no write: no new sample
        history.record(at(40), Lsn(200), keep);
        history.record(at(60), Lsn(300), keep);
        assert_eq!(history.samples.len(), 3);
        assert_eq!(history.lag(at(80), Lsn(300)), Duration::ZERO, "caught up");
        assert_eq!(history.lag(at(80), Lsn(250)), Duration::from_millis(20), "behind since 300 was written");
        assert_eq!(history.lag(at(80), Lsn(150)), Duration::from_millis(40));
        assert_eq!(history.lag(at(80), Lsn(50)), Duration::from_millis(80), "behind every sample");
        history.record(at(5000), Lsn(400), keep);
        assert_eq!(history.samples.len(), 1, "old samples go");
    }
}
