#![allow(dead_code, reason = "shared by test binaries that each use a part of it")]

//! Shared fixtures of the tests that use RabbitMQ: relay settings for a test database, a queue bound to a
//! test-unique exchange, the relay as a child process, and the lock that keeps broker restarts away from the
//! other broker tests.

use std::collections::HashMap;
use std::time::Duration;

use eventdata::config::RelaySettings;
use lapin::options::{BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::RwLock;
use tokio_stream::StreamExt;

use crate::common::TestDb;

/// Broker tests hold this for reading; a test that stops RabbitMQ holds it for writing, so it runs alone.
pub static BROKER: RwLock<()> = RwLock::const_new(());

/// The local broker.
pub const AMQP_URL: &str = eventdata::config::DEFAULT_AMQP_URL;

/// Relay settings for `db`, publishing to `exchange`, with short intervals for tests.
pub fn relay_settings(db: &TestDb, exchange: &str) -> RelaySettings {
    let mut settings = RelaySettings::from_lookup(|_| None).expect("defaults");
    settings.database_url = format!("postgres://eventdata_relay@127.0.0.1:5432/{}", db.name);
    settings.exchange = exchange.to_owned();
    settings.poll_interval = Duration::from_millis(500);
    settings.claim_interval = Duration::from_millis(200);
    settings.max_backoff = Duration::from_millis(1000);
    settings
}

/// The environment that makes `eventdata relay` use `settings`.
pub fn relay_env(settings: &RelaySettings) -> Vec<(&'static str, String)> {
    vec![
        ("EVENTDATA_RELAY_DATABASE_URL", settings.database_url.clone()),
        ("AMQP_URL", settings.amqp_urls.join(",")),
        ("EVENTDATA_RELAY_EXCHANGE", settings.exchange.clone()),
        ("EVENTDATA_RELAY_PARTITIONS", settings.partitions.to_string()),
        ("EVENTDATA_RELAY_BATCH_SIZE", settings.batch_size.to_string()),
        ("EVENTDATA_RELAY_MAX_IN_FLIGHT", settings.max_in_flight.to_string()),
        ("EVENTDATA_RELAY_CHECKPOINT_INTERVAL_MS", settings.checkpoint_interval.as_millis().to_string()),
        ("EVENTDATA_RELAY_POLL_INTERVAL_MS", settings.poll_interval.as_millis().to_string()),
        ("EVENTDATA_RELAY_CLAIM_INTERVAL_MS", settings.claim_interval.as_millis().to_string()),
        ("EVENTDATA_RELAY_MAX_BACKOFF_MS", settings.max_backoff.as_millis().to_string()),
        ("EVENTDATA_RELAY_HTTP_ADDR", "127.0.0.1:0".into()),
        ("RUST_LOG", "warn".into()),
    ]
}

/// `eventdata relay` as a child process (killed when dropped).
pub fn spawn_relay(settings: &RelaySettings) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_eventdata"))
        .arg("relay")
        .envs(relay_env(settings))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn relay")
}

/// A message as the tests look at it.
#[derive(Debug, Clone)]
pub struct Received {
    /// AMQP message id.
    pub message_id: String,
    /// Routing key.
    pub routing_key: String,
    /// AMQP `type`.
    pub kind: String,
    /// Headers as text.
    pub headers: HashMap<String, String>,
    /// Body as JSON.
    pub body: serde_json::Value,
    /// delivery_mode property.
    pub delivery_mode: Option<u8>,
    /// content_type property.
    pub content_type: String,
    /// app_id property.
    pub app_id: String,
}

/// A queue bound with `#` to a test's exchange, consumed as messages arrive.
pub struct BoundQueue {
    _connection: Connection,
    consumer: lapin::Consumer,
    /// Everything received so far, in delivery order.
    pub received: Vec<Received>,
}

impl BoundQueue {
    /// Declares the exchange (as the relay does) and an exclusive queue bound to all of it.
    pub async fn bind(exchange: &str) -> Self {
        Self::bind_declared(exchange, true).await
    }

    /// An exclusive queue bound to an exchange that already exists.
    pub async fn bind_existing(exchange: &str) -> Self {
        Self::bind_declared(exchange, false).await
    }

    async fn bind_declared(exchange: &str, declare: bool) -> Self {
        let connection =
            Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("connect to RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        if declare {
            let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
            channel
                .exchange_declare(exchange.into(), ExchangeKind::Topic, durable, FieldTable::default())
                .await
                .expect("exchange");
        }
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("queue");
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("consume");
        Self { _connection: connection, consumer, received: Vec::new() }
    }

    /// Receives until `done` holds for what was received, failing after `limit`.
    pub async fn receive_until(&mut self, limit: Duration, what: &str, mut done: impl FnMut(&[Received]) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(&self.received) {
            let next = tokio::time::timeout_at(deadline, self.consumer.next()).await;
            match next {
                Ok(Some(Ok(delivery))) => self.received.push(to_received(&delivery)),
                Ok(other) => panic!("consumer ended while waiting for {what}: {other:?}"),
                Err(_) => panic!("timed out waiting for {what}; received {}", self.received.len()),
            }
        }
    }
}

pub fn to_received(delivery: &lapin::message::Delivery) -> Received {
    let p = &delivery.properties;
    let headers = p
        .headers()
        .as_ref()
        .map(|h| h.inner().iter().map(|(k, v)| (k.as_str().to_owned(), header_text(v))).collect())
        .unwrap_or_default();
    Received {
        message_id: p.message_id().as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        routing_key: delivery.routing_key.as_str().to_owned(),
        kind: p.kind().as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        headers,
        body: serde_json::from_slice(&delivery.data).expect("JSON body"),
        delivery_mode: *p.delivery_mode(),
        content_type: p.content_type().as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        app_id: p.app_id().as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
    }
}

fn header_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// A unique exchange name for one test.
pub fn test_exchange() -> String {
    format!("eventdata.test.{}", uuid::Uuid::new_v4().simple())
}
