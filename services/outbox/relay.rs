//! `eventdata relay`: publishes the outbox to RabbitMQ, in log order per partition, at least once.
//!
//! Each partition has one worker per relay process. A worker holds the partition's advisory lock on its own
//! database connection (the standby workers of other processes keep trying every `claim_interval`), reads
//! committed changes after the partition's checkpoint, publishes them with all confirms in flight (those the
//! watermark still holds back too, ahead), and moves the checkpoint past the confirmed prefix below the watermark
//! only. Any failure drops both connections (releasing the lock), waits a
//! capped, jittered backoff, and starts again from the saved checkpoint. docs/relay.md explains why nothing is lost.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use super::backoff::Backoff;
use super::log::{self, Checkpoint};
use super::publisher::{Publisher, Topology};
use super::unroutable::UnroutableLog;
use super::wakeup::{AdaptivePoll, SHORTEST_POLL};
use super::window::{Delivery, Settled, Stop, Window};
use crate::config::RelaySettings;
use crate::metrics::RelayMetrics;

/// Warns once when several partitions run without the index made for their count: each partition then reads every
/// change after its checkpoint and keeps its own (correct, but N times the reading).
async fn warn_without_partition_index(settings: &RelaySettings) {
    let found = async {
        let mut conn = PgConnection::connect(&settings.database_url).await?;
        log::has_partition_index(&mut conn, settings.partitions).await
    }
    .await;
    if let Ok(false) = found {
        let index = log::partition_index_name(settings.partitions);
        tracing::warn!(
            partitions = settings.partitions,
            index = %index,
            "no index for this partition count: every partition reads the whole log; run `eventdata relay prepare` \
             with DATABASE_ADMIN_URL"
        );
    }
}

/// A relay process's partition workers and their shared state.
pub struct Relay {
    settings: RelaySettings,
    metrics: RelayMetrics,
    active: watch::Sender<BTreeSet<u32>>,
    unroutable: UnroutableLog,
}

/// The checkpoint as last saved, and when.
struct Saved {
    at: Checkpoint,
    when: Instant,
}

/// How often, at most, unroutable changes are logged.
const UNROUTABLE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// How long a stopping partition waits for the log to reach the changes it published ahead of the watermark.
const AHEAD_ON_STOP: Duration = Duration::from_secs(5);

enum Served {
    /// Another relay holds the partition.
    NotClaimed,
    /// Shutdown was asked for; the last batch is confirmed and checkpointed.
    Stopped,
}

impl Relay {
    /// A relay with `settings`; nothing runs until [`Relay::run`].
    pub fn new(settings: RelaySettings) -> Self {
        Self {
            settings,
            metrics: RelayMetrics::default(),
            active: watch::channel(BTreeSet::new()).0,
            unroutable: UnroutableLog::new(UNROUTABLE_LOG_INTERVAL),
        }
    }

    /// The process's metrics.
    pub fn metrics(&self) -> RelayMetrics {
        self.metrics.clone()
    }

    /// The partitions this process is publishing, as they change.
    pub fn active_partitions(&self) -> watch::Receiver<BTreeSet<u32>> {
        self.active.subscribe()
    }

    /// Runs every partition worker and the retention task until `shutdown` turns true, then returns once each
    /// worker has finished its in-flight batch.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let relay = Arc::new(self);
        let mut tasks = Vec::new();
        for partition in 0..relay.settings.partitions {
            let (relay, shutdown) = (Arc::clone(&relay), shutdown.clone());
            tasks.push(tokio::spawn(async move { relay.partition_worker(partition, shutdown).await }));
        }
        let (retention_relay, retention_shutdown) = (Arc::clone(&relay), shutdown.clone());
        tasks.push(tokio::spawn(async move { retention_relay.retention(retention_shutdown).await }));
        let settings = relay.settings.clone();
        tasks.push(tokio::spawn(async move { warn_without_partition_index(&settings).await }));
        for task in tasks {
            task.await.context("relay task panicked")?;
        }
        Ok(())
    }

    async fn partition_worker(&self, partition: u32, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.settings.max_backoff);
        while !*shutdown.borrow() {
            let pause = match self.serve_partition(partition, &mut shutdown, &mut backoff).await {
                Ok(Served::Stopped) => break,
                Ok(Served::NotClaimed) => self.settings.claim_interval,
                Err(err) => {
                    self.metrics.reconnects.inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        partition,
                        error = format!("{err:#}"),
                        delay_ms = delay.as_millis() as u64,
                        "relay partition failed; reconnecting"
                    );
                    delay
                }
            };
            self.active.send_modify(|active| {
                active.remove(&partition);
            });
            self.metrics.active_partitions.set(self.active.borrow().len() as i64);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.active.send_modify(|active| {
            active.remove(&partition);
        });
    }

    async fn serve_partition(
        &self,
        partition: u32,
        shutdown: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> anyhow::Result<Served> {
        let settings = &self.settings;
        let mut conn = PgConnection::connect(&settings.database_url).await.context("connecting to PostgreSQL")?;
        if !log::try_claim(&mut conn, partition).await? {
            return Ok(Served::NotClaimed);
        }
        log::set_ordered_reads(&mut conn).await?;
        let topology = Topology::of(settings);
        let publisher =
            Publisher::connect_any(&settings.amqp_urls, &topology).await.context("connecting to RabbitMQ")?;
        let at = log::checkpoint(&mut conn, settings.partitions, partition).await?;
        self.active.send_modify(|active| {
            active.insert(partition);
        });
        self.metrics.active_partitions.set(self.active.borrow().len() as i64);
        backoff.reset();
        tracing::info!(partition, txid = at.txid, position = at.position, "relay partition active");
        let mut window = Window::new(at, settings.max_in_flight as usize);
        let mut saved = Saved { at, when: Instant::now() };
        let result = self.pump(&mut conn, &publisher, partition, &mut window, &mut saved, shutdown).await;
        if let Err(err) = result {
            // Back to the confirmed prefix: whatever was published after it is published again after the restart.
            let resume = window.rewind();
            if resume != saved.at {
                // Best effort: the connection may be what failed; then the restart repeats a little more.
                let _ = log::save_checkpoint(&mut conn, settings.partitions, partition, resume).await;
            }
            if err.chain().any(|e| matches!(e.downcast_ref::<Stop>(), Some(Stop::Refused { .. }))) {
                self.metrics.failed.inc();
            }
            return Err(err);
        }
        publisher.close().await;
        tracing::info!(partition, position = saved.at.position, "relay partition stopped");
        Ok(Served::Stopped)
    }

    /// Reads changes after the window and publishes them while the window has room, settles confirms as they
    /// arrive and saves the checkpoint over the confirmed prefix every `batch_size` changes or
    /// `checkpoint_interval`; on shutdown, waits for the window to empty and saves. Any failure returns (the
    /// caller rewinds).
    async fn pump(
        &self,
        conn: &mut PgConnection,
        publisher: &Publisher,
        partition: u32,
        window: &mut Window,
        saved: &mut Saved,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let settings = &self.settings;
        let mut poll = AdaptivePoll::new(SHORTEST_POLL, settings.poll_interval);
        loop {
            if *shutdown.borrow() {
                self.reach_ahead(conn, publisher, partition, window).await?;
                while let Some(settled) = window.settle_next().await {
                    self.record(std::slice::from_ref(&settled?));
                }
                self.save(conn, partition, window.confirmed(), saved, true).await?;
                return Ok(());
            }
            let (mut published, mut held_back) = (0, false);
            // Read a full page or none: with the window nearly full, each confirm would otherwise free one slot
            // and cost one query for one row.
            let page = settings.batch_size.min(settings.max_in_flight) as usize;
            if window.room() >= page {
                let limit = page as u32;
                let read = log::read_after(conn, window.sent(), settings.partitions, partition, limit).await?;
                for change in &read.changes {
                    window.send(publisher, change).await.context("publishing")?;
                }
                published = read.changes.len();
                // Committed changes the watermark still holds back go out now rather than when every older
                // transaction has finished: no older transaction can change the same resource (docs/relay.md,
                // "Publishing ahead of the watermark"). Their checkpoint waits for the watermark.
                for change in &read.ahead {
                    if window.send_ahead(publisher, change).await.context("publishing")? {
                        published += 1;
                        self.metrics.published_ahead.inc();
                    }
                }
                held_back = read.held_back();
            }
            let (settled, stop) = window.settle_ready();
            self.record(&settled);
            if let Some(stop) = stop {
                return Err(stop).context("publishing");
            }
            self.save(conn, partition, window.confirmed(), saved, false).await?;
            if published > 0 {
                poll.busy();
                continue;
            }
            if held_back {
                // Changes are waiting for an older transaction to finish: look again at the shortest interval.
                poll.busy();
            }
            if window.is_empty() {
                // Nothing in flight: save what is confirmed, then look again after the poll interval.
                self.save(conn, partition, window.confirmed(), saved, true).await?;
                tokio::select! {
                    _ = tokio::time::sleep(poll.wait()) => poll.idle(),
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            // Changes in flight and nothing new to read (or no room): the next confirm or the next look at the
            // log, whichever comes first, so new changes do not wait for the broker's sync.
            tokio::select! {
                settled = window.settle_next() => {
                    if let Some(settled) = settled {
                        self.record(std::slice::from_ref(&settled.context("publishing")?));
                    }
                }
                _ = tokio::time::sleep(poll.wait()), if window.room() >= page => poll.idle(),
                _ = shutdown.changed() => {}
            }
        }
    }

    /// On shutdown: changes published ahead of the watermark are covered by the checkpoint only once the log
    /// reaches them in order, so give the older transactions (the service's last milliseconds) up to
    /// [`AHEAD_ON_STOP`] to finish, reading and publishing in order up to the last change published ahead. A clean
    /// stop then saves a checkpoint past everything it published; what is still ahead at the deadline is published
    /// again after the restart.
    async fn reach_ahead(
        &self,
        conn: &mut PgConnection,
        publisher: &Publisher,
        partition: u32,
        window: &mut Window,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + AHEAD_ON_STOP;
        while let Some(last) = window.last_ahead() {
            if Instant::now() >= deadline {
                tracing::info!(
                    partition,
                    ahead = window.ahead(),
                    "stopping with changes published ahead of the watermark; they are published again after the restart"
                );
                return Ok(());
            }
            let read =
                log::read_after(conn, window.sent(), self.settings.partitions, partition, self.settings.batch_size)
                    .await?;
            let mut sent = false;
            for change in read.changes.iter().take_while(|c| c.checkpoint() <= last) {
                window.send(publisher, change).await.context("publishing")?;
                sent = true;
            }
            let (settled, stop) = window.settle_ready();
            self.record(&settled);
            if let Some(stop) = stop {
                return Err(stop).context("publishing");
            }
            if !sent {
                tokio::time::sleep(SHORTEST_POLL).await;
            }
        }
        Ok(())
    }

    /// Counts settled changes in the metrics and the unroutable log.
    fn record(&self, settled: &[Settled]) {
        for one in settled {
            self.metrics.confirm.observe(one.sent_at.elapsed().as_secs_f64());
            self.metrics.published.inc();
            if one.delivery == Delivery::Returned {
                self.metrics.returned.inc();
                self.unroutable.record(1, &one.routing_key);
            }
        }
    }

    /// Saves `confirmed` (the window's confirmed prefix) as the checkpoint if it moved and (unless `now`)
    /// `batch_size` changes or `checkpoint_interval` have passed since the last save.
    async fn save(
        &self,
        conn: &mut PgConnection,
        partition: u32,
        confirmed: Checkpoint,
        saved: &mut Saved,
        now: bool,
    ) -> anyhow::Result<()> {
        if confirmed == saved.at {
            return Ok(());
        }
        let due = now
            || confirmed.position.abs_diff(saved.at.position) >= u64::from(self.settings.batch_size)
            || saved.when.elapsed() >= self.settings.checkpoint_interval;
        if due {
            log::save_checkpoint(conn, self.settings.partitions, partition, confirmed).await?;
            *saved = Saved { at: confirmed, when: Instant::now() };
        }
        Ok(())
    }

    /// Prunes delivered changes past retention, from the process that holds partition 0 only.
    async fn retention(&self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            tokio::select! {
                _ = tokio::time::sleep(self.settings.retention_interval) => {}
                _ = shutdown.changed() => return,
            }
            if !self.active.borrow().contains(&0) {
                continue;
            }
            if let Err(err) = self.prune_once().await {
                tracing::warn!(error = format!("{err:#}"), "outbox retention failed; will retry");
            }
        }
    }

    async fn prune_once(&self) -> anyhow::Result<()> {
        let settings = &self.settings;
        let mut conn = PgConnection::connect(&settings.database_url).await?;
        let mut total = 0;
        loop {
            let deleted =
                log::prune(&mut conn, settings.partitions, settings.retention, settings.idempotency_retention, 1000)
                    .await?;
            total += deleted;
            if deleted < 1000 {
                break;
            }
        }
        if total > 0 {
            tracing::info!(deleted = total, "pruned delivered changes past retention");
        }
        Ok(())
    }
}

/// Re-publishes the changes with `from <= position <= to` (for a consumer that lost data), in log order,
/// without touching any checkpoint. Returns how many were confirmed.
pub async fn replay(settings: &RelaySettings, from: i64, to: i64) -> anyhow::Result<u64> {
    let mut conn = PgConnection::connect(&settings.database_url).await.context("connecting to PostgreSQL")?;
    let topology = Topology::of(settings);
    let publisher = Publisher::connect_any(&settings.amqp_urls, &topology).await.context("connecting to RabbitMQ")?;
    let mut window = Window::new(Checkpoint::default(), settings.max_in_flight as usize);
    let mut total = 0u64;
    loop {
        let limit = settings.batch_size.min(window.room() as u32);
        let batch =
            if limit > 0 { log::read_range(&mut conn, from, to, window.sent(), limit).await? } else { Vec::new() };
        for change in &batch {
            window.send(&publisher, change).await?;
        }
        if batch.is_empty() {
            match window.settle_next().await {
                Some(Ok(_)) => total += 1,
                Some(Err(stop)) => bail!("{stop} after {total} changes were replayed"),
                None => break,
            }
        }
        let (settled, stop) = window.settle_ready();
        total += settled.len() as u64;
        if let Some(stop) = stop {
            bail!("{stop} after {total} changes were replayed");
        }
    }
    publisher.close().await;
    Ok(total)
}
