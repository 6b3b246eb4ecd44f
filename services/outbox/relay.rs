//! `eventdata relay`: publishes the outbox to RabbitMQ, in log order per partition, at least once.
//!
//! Each partition has one worker per relay process. A worker holds the partition's advisory lock on its own
//! database connection (the standby workers of other processes keep trying every `claim_interval`), reads
//! finished changes after the partition's checkpoint, publishes them with all confirms in flight, and moves the
//! checkpoint past the confirmed prefix only. Any failure drops both connections (releasing the lock), waits a
//! capped, jittered backoff, and starts again from the saved checkpoint. docs/relay.md explains why nothing is lost.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use super::backoff::Backoff;
use super::log::{self, Checkpoint};
use super::publisher::{InFlight, Publisher, Topology};
use super::unroutable::UnroutableLog;
use crate::config::RelaySettings;
use crate::metrics::RelayMetrics;

/// The notification channel the outbox trigger signals on.
pub const NOTIFY_CHANNEL: &str = "eventdata_outbox";

/// A relay process's partition workers and their shared state.
pub struct Relay {
    settings: RelaySettings,
    metrics: RelayMetrics,
    active: watch::Sender<BTreeSet<u32>>,
    unroutable: UnroutableLog,
}

/// How often, at most, unroutable changes are logged.
const UNROUTABLE_LOG_INTERVAL: Duration = Duration::from_secs(60);

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
        for (name, value) in log::ordered_reads() {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET {name} = {value}"))).execute(&mut conn).await?;
        }
        // LISTEN before the first read, so no commit between the read and the wait goes unnoticed.
        let mut listener = PgListener::connect(&settings.database_url).await.context("connecting the listener")?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let topology = Topology::of(settings);
        let publisher = Publisher::connect(&settings.amqp_url, &topology).await.context("connecting to RabbitMQ")?;
        let mut at = log::checkpoint(&mut conn, settings.partitions, partition).await?;
        self.active.send_modify(|active| {
            active.insert(partition);
        });
        self.metrics.active_partitions.set(self.active.borrow().len() as i64);
        backoff.reset();
        tracing::info!(partition, txid = at.txid, position = at.position, "relay partition active");
        // One batch may be in flight (sent, confirms pending) while the next is read and sent: the broker
        // confirms persistent messages when it syncs them, and waiting for that between batches cost ~120 ms a
        // batch (docs/performance.md). The checkpoint still only ever moves over confirmed changes, in order.
        let mut in_flight: Option<(Vec<log::LoggedChange>, InFlight, std::time::Instant)> = None;
        let mut sent = at;
        loop {
            if *shutdown.borrow() {
                if let Some(previous) = in_flight.take() {
                    at = self.settle(&mut conn, partition, previous, at).await?;
                }
                publisher.close().await;
                tracing::info!(partition, position = at.position, "relay partition stopped");
                return Ok(Served::Stopped);
            }
            let batch = log::read_after(&mut conn, sent, settings.partitions, partition, settings.batch_size).await?;
            if batch.is_empty() {
                match in_flight.take() {
                    Some(previous) => at = self.settle(&mut conn, partition, previous, at).await?,
                    None => self.wait_for_changes(&mut conn, &mut listener, at, shutdown).await?,
                }
                continue;
            }
            let started = std::time::Instant::now();
            let pending = publisher.send(&batch).await.context("publishing")?;
            sent = batch[batch.len() - 1].checkpoint();
            if let Some(previous) = in_flight.replace((batch, pending, started)) {
                at = self.settle(&mut conn, partition, previous, at).await?;
            }
        }
    }

    /// Awaits a sent batch's confirms and moves the checkpoint over the confirmed prefix; fails (so the
    /// partition restarts from the checkpoint) when the broker refused a change.
    async fn settle(
        &self,
        conn: &mut PgConnection,
        partition: u32,
        (batch, pending, started): (Vec<log::LoggedChange>, InFlight, std::time::Instant),
        mut at: Checkpoint,
    ) -> anyhow::Result<Checkpoint> {
        let outcome = pending.settle(&batch).await.context("publishing")?;
        self.metrics.confirm.observe(started.elapsed().as_secs_f64());
        if outcome.confirmed > 0 {
            at = batch[outcome.confirmed - 1].checkpoint();
            log::save_checkpoint(conn, self.settings.partitions, partition, at).await?;
            self.metrics.published.inc_by(outcome.confirmed as u64);
            self.metrics.returned.inc_by(outcome.returned as u64);
            if let Some(routing_key) = &outcome.returned_routing_key {
                self.unroutable.record(outcome.returned as u64, routing_key);
            }
        }
        if outcome.nacked || outcome.confirmed < batch.len() {
            self.metrics.failed.inc();
            bail!("the broker refused a change; republishing from position {}", at.position);
        }
        Ok(at)
    }

    /// Waits until new changes may be readable: briefly when finished-but-not-yet-visible changes are held back
    /// by a running transaction, else until a notification, the poll interval, or shutdown.
    async fn wait_for_changes(
        &self,
        conn: &mut PgConnection,
        listener: &mut PgListener,
        at: Checkpoint,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let wait =
            if log::held_back(conn, at).await? { Duration::from_millis(20) } else { self.settings.poll_interval };
        tokio::select! {
            notification = listener.recv(), if wait > Duration::from_millis(20) => { notification?; }
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
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
    let publisher = Publisher::connect(&settings.amqp_url, &topology).await.context("connecting to RabbitMQ")?;
    let mut at = Checkpoint::default();
    let mut total = 0u64;
    loop {
        let batch = log::read_range(&mut conn, from, to, at, settings.batch_size).await?;
        let Some(last) = batch.last() else { break };
        let outcome = publisher.publish(&batch).await?;
        total += outcome.confirmed as u64;
        if outcome.nacked || outcome.confirmed < batch.len() {
            bail!("the broker refused a change after {total} were replayed");
        }
        at = last.checkpoint();
    }
    publisher.close().await;
    Ok(total)
}
