//! The broker side of scripts/bench.sh.
//!
//! - `reset --exchange X`: declares the durable topic exchange and a durable sink queue bound to it with `#`,
//!   and empties the queue.
//! - `publish --messages N --bytes B --exchange X`: the raw ceiling: N persistent messages with a B-byte body
//!   published to X with publisher confirms, up to `--window` (1,000) in flight (a sliding window, the fastest
//!   way lapin can publish reliably). The messages have the relay's shape (its properties and CloudEvents headers,
//!   made by the relay's own code), or only a content type with `--bare`. Prints the rate at its confirms. It
//!   empties the sink queue before and after, unless `--for-consumer` is given: then the messages stay for a
//!   `drain` running beside it (bench.sh times the raw publisher at the same consumer as the relay).
//! - `drain --messages N`: consumes N messages from the sink queue (prefetch 1,000, multiple acks) and prints
//!   the rate from its start to the last message; bench.sh starts it, then `eventdata relay` over a backlog.
//! - `latency --rate R --seconds S --url U --key K`: creates events through the API at a steady R per second and
//!   measures, for each, the time from its transaction to its arrival at a consumer of the sink queue (the
//!   relay must be running). Prints p50/p99/max, split at the moment the create call returned, at the relay's
//!   `published_at` header and, with `EVENTDATA_RELAY_DATABASE_URL` set, at the moment the change fell below the
//!   relay's watermark (the probe watches the watermark itself, every millisecond, on a connection of its own).
//!
//! Output ends with a `RESULT key=value ...` line for scripts.

use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio_stream::StreamExt;

const SINK: &str = "eventdata.bench.sink";
/// The consumers' prefetch, and the raw publisher's window of confirms unless `--window` says otherwise.
const WINDOW: usize = 1_000;

fn arg(name: &str) -> Option<String> {
    let args = std::env::args().collect::<Vec<_>>();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn number(name: &str, default: u64) -> anyhow::Result<u64> {
    arg(name).map(|v| v.parse().with_context(|| format!("{name} {v}"))).unwrap_or(Ok(default))
}

async fn channel(exchange: &str) -> anyhow::Result<(Connection, Channel)> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel.exchange_declare(exchange.into(), ExchangeKind::Topic, durable, FieldTable::default()).await?;
    let queue = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(SINK.into(), queue, FieldTable::default()).await?;
    channel
        .queue_bind(SINK.into(), exchange.into(), "#".into(), QueueBindOptions::default(), FieldTable::default())
        .await?;
    Ok((connection, channel))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let exchange = arg("--exchange").unwrap_or_else(|| "eventdata.changes".into());
    match mode.as_str() {
        "reset" => {
            let (_connection, channel) = channel(&exchange).await?;
            let purged = channel.queue_purge(SINK.into(), QueuePurgeOptions::default()).await?;
            println!("sink queue {SINK} bound to {exchange}; purged {purged} messages");
        }
        "publish" => {
            let window = number("--window", WINDOW as u64)? as usize;
            let flag = |name: &str| std::env::args().any(|a| a == name);
            let (messages, bytes) = (number("--messages", 100_000)?, number("--bytes", 700)? as usize);
            let properties = match flag("--bare") {
                true => BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into()),
                false => eventdata::outbox::message::OutgoingMessage::from(&sample_change(bytes)).properties,
            };
            publish(&exchange, messages, bytes, properties, window.max(1), flag("--for-consumer")).await?
        }
        "drain" => drain(&exchange, number("--messages", 100_000)?).await?,
        "latency" => {
            let url = arg("--url").unwrap_or_else(|| "http://127.0.0.1:50051".into());
            let key = arg("--key").or_else(|| std::env::var("EVENTDATA_API_KEY").ok()).context("--key")?;
            latency(&exchange, &url, &key, number("--rate", 1000)?, number("--seconds", 20)?).await?;
        }
        _ => anyhow::bail!("usage: relay_bench reset|publish|drain|latency [options] (see the file's header)"),
    }
    Ok(())
}

async fn publish(
    exchange: &str,
    messages: u64,
    bytes: usize,
    properties: BasicProperties,
    window: usize,
    for_consumer: bool,
) -> anyhow::Result<()> {
    let (_connection, channel) = channel(exchange).await?;
    if !for_consumer {
        channel.queue_purge(SINK.into(), QueuePurgeOptions::default()).await?;
    }
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    // Shared, not copied, by each publish.
    let body: std::sync::Arc<[u8]> =
        format!("{{\"pad\":\"{}\"}}", "x".repeat(bytes.saturating_sub(10))).into_bytes().into();
    let started = Instant::now();
    type Confirm = std::pin::Pin<Box<dyn std::future::Future<Output = lapin::Result<lapin::Confirmation>>>>;
    let mut in_flight = std::collections::VecDeque::<Confirm>::with_capacity(window);
    for i in 0..messages {
        if in_flight.len() == window {
            let confirm = in_flight.pop_front().context("window is not empty")?;
            anyhow::ensure!(confirm.await?.is_ack(), "broker refused message");
        }
        let key = format!("event.created.{}", i % 16);
        let (channel, properties, exchange) = (channel.clone(), properties.clone(), exchange.to_owned());
        let body = std::sync::Arc::clone(&body);
        // As the relay publishes: queued now, in order; the write awaited with the confirm.
        let written = eventdata::outbox::publisher::queue(Box::pin(async move {
            let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
            channel.basic_publish(exchange.into(), key.as_str().into(), mandatory, &body, properties).await
        }))
        .await;
        in_flight.push_back(Box::pin(async move { written.await?.await }));
    }
    for confirm in in_flight {
        anyhow::ensure!(confirm.await?.is_ack(), "broker refused message");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "RESULT raw_publish messages={messages} bytes={bytes} window={window} seconds={seconds:.2} rate={:.0}",
        messages as f64 / seconds
    );
    if !for_consumer {
        channel.queue_purge(SINK.into(), QueuePurgeOptions::default()).await?;
    }
    Ok(())
}

/// A change as the relay reads it from the log, with a payload of `bytes` bytes: the raw publisher sends the
/// message the relay's own code makes of it, so the broker parses and stores the same properties and headers.
fn sample_change(bytes: usize) -> eventdata::domain::change::LoggedChange {
    eventdata::domain::change::LoggedChange {
        position: 1,
        txid: 1,
        change_id: uuid::Uuid::now_v7(),
        org_id: uuid::Uuid::now_v7(),
        aggregate_type: "event".into(),
        aggregate_id: uuid::Uuid::now_v7(),
        change_type: "event.created".into(),
        payload: "x".repeat(bytes),
        actor_key_id: Some(uuid::Uuid::now_v7()),
        traceparent: None,
        tracestate: None,
        created_at: chrono::Utc::now(),
    }
}

async fn drain(exchange: &str, messages: u64) -> anyhow::Result<()> {
    let (_connection, channel) = channel(exchange).await?;
    channel.basic_qos(WINDOW as u16, BasicQosOptions::default()).await?;
    let mut consumer =
        channel.basic_consume(SINK.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default()).await?;
    let started = Instant::now();
    let mut received = 0u64;
    while received < messages {
        let delivery = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .with_context(|| format!("no message for 60 s after {received}"))?
            .context("consumer ended")??;
        received += 1;
        if received.is_multiple_of(100) || received == messages {
            delivery.ack(BasicAckOptions { multiple: true }).await?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("RESULT relay_drain messages={messages} seconds={seconds:.2} rate={:.0}", messages as f64 / seconds);
    Ok(())
}

async fn latency(exchange: &str, url: &str, key: &str, rate: u64, seconds: u64) -> anyhow::Result<()> {
    use eventdata::proto::v1 as pb;
    let (_connection, channel) = channel(exchange).await?;
    channel.queue_purge(SINK.into(), QueuePurgeOptions::default()).await?;
    channel.basic_qos(WINDOW as u16, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            SINK.into(),
            "".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let expected = rate * seconds;
    let watermark = match std::env::var("EVENTDATA_RELAY_DATABASE_URL") {
        Ok(database) => Some(WatermarkWatcher::start(&database).await?),
        Err(_) => None,
    };

    // The driver: `rate` creations a second, spread over tasks so one slow call does not hold the others back.
    let tasks = 32u64;
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_string())?.tcp_nodelay(true);
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {key}").parse()?;
    // When each probe's create call returned (the commit is done by then), by probe number: splits the latency
    // into the API's part (transaction start to response) and the rest (response to consumer: waiting for the
    // watermark, the relay's look, publishing, the broker's delivery).
    let answered = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        u64,
        chrono::DateTime<chrono::Utc>,
    >::new()));
    let mut drivers = Vec::new();
    for task in 0..tasks {
        let channel = endpoint.connect().await?;
        let auth = auth.clone();
        let run = run.clone();
        let answered = std::sync::Arc::clone(&answered);
        drivers.push(tokio::spawn(async move {
            let mut client = pb::event_service_client::EventServiceClient::with_interceptor(
                channel,
                move |mut r: tonic::Request<()>| {
                    r.metadata_mut().insert("authorization", auth.clone());
                    Ok(r)
                },
            );
            let period = Duration::from_secs_f64(tasks as f64 / rate as f64);
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut failed = 0u64;
            for i in (task..expected).step_by(tasks as usize) {
                ticks.tick().await;
                let event = pb::Event {
                    name: format!("Latency probe {run} {i}"),
                    slug: format!("latency-{run}-{i}"),
                    ..Default::default()
                };
                let request = pb::CreateEventRequest { event: Some(event), request_id: String::new() };
                match client.create_event(request).await {
                    Ok(_) => {
                        answered.lock().expect("lock").insert(i, chrono::Utc::now());
                    }
                    Err(_) => failed += 1,
                }
            }
            failed
        }));
    }

    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut api_part = latencies.clone();
    let mut delivery_part = latencies.clone();
    // The delivery part split at the relay's `published_at` header: the response to the publish (waiting for the
    // watermark, the relay's next look, its page read) and the publish to the consumer (the broker's routing,
    // storing and delivery). Clocks are one machine's.
    let mut relay_part = latencies.clone();
    let mut broker_part = latencies.clone();
    // Per probe, for the watermark split after the run: (position, create response, relay publish).
    let mut relayed = Vec::<(i64, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>::new();
    let prefix = format!("latency-{run}-");
    let started = Instant::now();
    while latencies.len() < expected {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next()).await;
        let Ok(Some(Ok(delivery))) = next else {
            eprintln!("stopped waiting after {} of {expected} probes", latencies.len());
            break;
        };
        let arrived = chrono::Utc::now();
        let body: serde_json::Value = serde_json::from_slice(&delivery.data)?;
        let resource = &body["resource"];
        if !resource["slug"].as_str().is_some_and(|s| s.starts_with(&prefix)) {
            continue;
        }
        let created = resource["create_time"].as_str().context("create_time")?;
        let created = chrono::DateTime::parse_from_rfc3339(created)?;
        let created = created.with_timezone(&chrono::Utc);
        let micros = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
            (to - from).num_microseconds().unwrap_or(0).max(1) as u64
        };
        latencies.saturating_record(micros(created, arrived));
        let probe = resource["slug"].as_str().and_then(|s| s.strip_prefix(&prefix)).and_then(|n| n.parse().ok());
        let published = delivery.properties.headers().as_ref().and_then(|h| match h.inner().get("published_at") {
            Some(lapin::types::AMQPValue::LongLongInt(us)) => chrono::DateTime::from_timestamp_micros(*us),
            _ => None,
        });
        if let Some(responded) = probe.and_then(|n: u64| answered.lock().expect("lock").get(&n).copied()) {
            api_part.saturating_record(micros(created, responded));
            delivery_part.saturating_record(micros(responded, arrived));
            if let Some(published) = published.filter(|p| *p >= responded) {
                relay_part.saturating_record(micros(responded, published));
                let position = delivery.properties.headers().as_ref().and_then(|h| match h.inner().get("position") {
                    Some(lapin::types::AMQPValue::LongLongInt(position)) => Some(*position),
                    _ => None,
                });
                if let Some(position) = position {
                    relayed.push((position, responded, published));
                }
            }
        }
        if let Some(published) = published {
            broker_part.saturating_record(micros(published, arrived));
        }
    }
    let mut failed = 0;
    for driver in drivers {
        failed += driver.await?;
    }
    let (watermark_part, relay_own_part) = match watermark {
        Some(watcher) => watermark_split(watcher, &relayed).await?,
        None => (latencies.clone(), latencies.clone()),
    };
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    // Probes whose response arrived after their message (the consumer can win the race) count in neither part.
    println!(
        "breakdown: transaction start -> create response p50 {:.2} ms, p99 {:.2} ms; \
         create response -> consumer (watermark, relay, broker) p50 {:.2} ms, p99 {:.2} ms ({} probes); \
         of which create response -> relay publishes (watermark, wake-up, read) p50 {:.2} ms, p99 {:.2} ms ({} probes), \
         relay publishes -> consumer (broker) p50 {:.2} ms, p99 {:.2} ms; \
         create response -> relay publishes split: waiting for the watermark p50 {:.2} ms, p99 {:.2} ms, \
         below the watermark (or committed, when published ahead of it) -> relay publishes (wake-up, read, publish) \
         p50 {:.2} ms, p99 {:.2} ms ({} probes)",
        ms(&api_part, 0.5),
        ms(&api_part, 0.99),
        ms(&delivery_part, 0.5),
        ms(&delivery_part, 0.99),
        delivery_part.len(),
        ms(&relay_part, 0.5),
        ms(&relay_part, 0.99),
        relay_part.len(),
        ms(&broker_part, 0.5),
        ms(&broker_part, 0.99),
        ms(&watermark_part, 0.5),
        ms(&watermark_part, 0.99),
        ms(&relay_own_part, 0.5),
        ms(&relay_own_part, 0.99),
        relay_own_part.len(),
    );
    println!(
        "RESULT e2e_latency rate={rate} seconds={:.1} probes={} failed={failed} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} \
         api_p50_ms={:.2} api_p99_ms={:.2} delivery_p50_ms={:.2} delivery_p99_ms={:.2} relay_p50_ms={:.2} \
         relay_p99_ms={:.2} broker_p50_ms={:.2} broker_p99_ms={:.2} watermark_p50_ms={:.2} watermark_p99_ms={:.2} \
         relay_own_p50_ms={:.2} relay_own_p99_ms={:.2}",
        started.elapsed().as_secs_f64(),
        latencies.len(),
        ms(&latencies, 0.5),
        ms(&latencies, 0.99),
        latencies.max() as f64 / 1000.0,
        ms(&api_part, 0.5),
        ms(&api_part, 0.99),
        ms(&delivery_part, 0.5),
        ms(&delivery_part, 0.99),
        ms(&relay_part, 0.5),
        ms(&relay_part, 0.99),
        ms(&broker_part, 0.5),
        ms(&broker_part, 0.99),
        ms(&watermark_part, 0.5),
        ms(&watermark_part, 0.99),
        ms(&relay_own_part, 0.5),
        ms(&relay_own_part, 0.99)
    );
    Ok(())
}

/// The watermark as seen each time it moved: (when the watcher saw it, its value).
type Samples = std::sync::Arc<std::sync::Mutex<Vec<(chrono::DateTime<chrono::Utc>, i64)>>>;

/// The relay's watermark, watched from outside: the oldest transaction still running
/// (`pg_snapshot_xmin(pg_current_snapshot())`, the relay's own test), sampled every millisecond with the time it
/// was seen to change. A change becomes publishable when its transaction id falls below it.
struct WatermarkWatcher {
    database: String,
    samples: Samples,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl WatermarkWatcher {
    async fn start(database: &str) -> anyhow::Result<Self> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(database).await.context("the watermark watcher's connection")?;
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (recorded, stopping) = (std::sync::Arc::clone(&samples), std::sync::Arc::clone(&stop));
        let task = tokio::spawn(async move {
            let mut last = None;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                let xmin: i64 = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                    .fetch_one(&mut conn)
                    .await?;
                if last != Some(xmin) {
                    recorded.lock().expect("lock").push((chrono::Utc::now(), xmin));
                    last = Some(xmin);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(())
        });
        Ok(Self { database: database.to_owned(), samples, stop, task })
    }
}

/// Splits each probe's create response -> relay publish time at the moment its change fell below the watermark
/// (the first sample above its transaction id; 0 when that was before the response, or when the relay published it
/// ahead of the watermark): the wait for older transactions, then the relay's own share (its wake-up, its read, its
/// publish). Which changes went out ahead cannot be told from here to better than the sampling: the relay's own
/// `eventdata_relay_published_ahead_total` counts them. A sample is timed when its
/// answer arrived, up to about 1.5 ms after the watermark moved: the wait reads that much long, the relay's share
/// that much short. Transaction ids come from the
/// outbox by position, read as the relay role (which sees every organization's changes).
async fn watermark_split(
    watcher: WatermarkWatcher,
    relayed: &[(i64, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)],
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    use sqlx::Connection;
    watcher.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.task.await??;
    let samples = std::mem::take(&mut *watcher.samples.lock().expect("lock"));
    let mut conn = sqlx::PgConnection::connect(&watcher.database).await?;
    let positions: Vec<i64> = relayed.iter().map(|(position, _, _)| *position).collect();
    let txids: std::collections::HashMap<i64, i64> =
        sqlx::query_as("SELECT position, txid::text::bigint FROM outbox WHERE position = ANY($1)")
            .bind(&positions)
            .fetch_all(&mut conn)
            .await?
            .into_iter()
            .collect();
    let mut waiting = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut own = waiting.clone();
    let micros = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        (to - from).num_microseconds().unwrap_or(0).max(1) as u64
    };
    for (position, responded, published) in relayed {
        let Some(txid) = txids.get(position) else { continue };
        // Samples are in time order and the watermark only rises: the first one past the transaction.
        let first = samples.partition_point(|(_, xmin)| xmin <= txid);
        let Some((below_at, _)) = samples.get(first) else { continue };
        // Published before the watermark passed it (ahead, docs/relay.md): it did not wait for the watermark.
        let publishable = if published < below_at { *responded } else { (*below_at).max(*responded) };
        waiting.saturating_record(micros(*responded, publishable));
        own.saturating_record(micros(publishable, *published));
    }
    Ok((waiting, own))
}
