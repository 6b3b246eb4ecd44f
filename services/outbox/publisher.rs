//! Publishing to RabbitMQ with publisher confirms: each change is published without waiting, and its confirm is
//! handed to the relay's window (`window.rs`), which counts only the confirmed prefix as delivered.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use super::log::LoggedChange;
use super::message::OutgoingMessage;
use super::window::{BrokerError, Confirm, Delivery, Publish};

/// Where and how changes are published.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The durable topic exchange.
    pub exchange: String,
    /// Where the broker sends changes no queue is bound for, if anywhere.
    pub alternate_exchange: Option<String>,
}

impl Topology {
    /// The topology the relay settings describe.
    pub fn of(settings: &crate::config::RelaySettings) -> Self {
        Self { exchange: settings.exchange.clone(), alternate_exchange: settings.alternate_exchange.clone() }
    }
}

/// A connection and a confirm-mode channel with the exchange declared.
pub struct Publisher {
    connection: Connection,
    channel: Channel,
    exchange: ShortString,
}

impl Publisher {
    /// Connects to the first of `urls` (the nodes of a cluster) that answers, trying them in order: a node that is
    /// down is skipped, and when the connection in use fails the relay's next connect finds the next node alive.
    pub async fn connect_any(urls: &[String], topology: &Topology) -> Result<Self, lapin::Error> {
        let mut last = None;
        for url in urls {
            match Self::connect(url, topology).await {
                Ok(publisher) => {
                    tracing::info!(node = %node_name(url), "connected to RabbitMQ");
                    return Ok(publisher);
                }
                Err(err) => {
                    tracing::warn!(node = %node_name(url), error = %err, "RabbitMQ node unavailable, trying the next");
                    last = Some(err);
                }
            }
        }
        Err(last
            .unwrap_or(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed))))
    }

    /// Connects, enables confirms and declares the exchange (and its alternate exchange).
    pub async fn connect(url: &str, topology: &Topology) -> Result<Self, lapin::Error> {
        let connection =
            Connection::connect(url, ConnectionProperties::default().with_connection_name("eventdata-relay".into()))
                .await?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        let mut arguments = FieldTable::default();
        if let Some(alternate) = &topology.alternate_exchange {
            channel
                .exchange_declare(alternate.as_str().into(), ExchangeKind::Fanout, durable, FieldTable::default())
                .await?;
            arguments.insert("alternate-exchange".into(), AMQPValue::LongString(LongString::from(alternate.clone())));
        }
        channel.exchange_declare(topology.exchange.as_str().into(), ExchangeKind::Topic, durable, arguments).await?;
        Ok(Self { connection, channel, exchange: topology.exchange.as_str().into() })
    }

    /// Closes the channel and connection politely (after the last confirms).
    pub async fn close(self) {
        let _ = self.channel.close(200, "relay stopping".into()).await;
        let _ = self.connection.close(200, "relay stopping".into()).await;
    }
}

/// A node's `host:port` for logs: never the user or password a URL may carry.
fn node_name(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    host.split('/').next().unwrap_or(host)
}

/// A producer span for `change`, child of the request that made it (when that request was traced).
fn publish_span(exchange: &ShortString, change: &LoggedChange) -> Option<tracing::Span> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let traceparent = change.traceparent.as_deref()?;
    let span = tracing::info_span!(
        "publish",
        otel.name = %format!("{} publish", exchange.as_str()),
        otel.kind = "producer",
        messaging.system = "rabbitmq",
        messaging.operation = "publish",
        messaging.destination.name = %exchange.as_str(),
        messaging.rabbitmq.destination.routing_key = %change.change_type,
        messaging.message.id = %change.change_id,
        eventdata.position = change.position,
    );
    let _ = span.set_parent(crate::telemetry::context_from_headers(traceparent, change.tracestate.as_deref()));
    Some(span)
}

impl Publish for Publisher {
    /// Publishes `change` (persistent, `mandatory`) with its trace context; the confirm resolves when the broker
    /// has stored it, and the publish span ends then.
    fn publish(&self, change: &LoggedChange) -> impl Future<Output = Result<Confirm, BrokerError>> + Send {
        let span = publish_span(&self.exchange, change);
        let message = match span.as_ref().map(|s| s.in_scope(crate::telemetry::current_trace_headers)) {
            Some((Some(traceparent), tracestate)) => OutgoingMessage::with_trace(change, Some(traceparent), tracestate),
            _ => OutgoingMessage::from(change),
        };
        let (channel, exchange) = (self.channel.clone(), self.exchange.clone());
        async move {
            let written = queue(Box::pin(async move {
                let OutgoingMessage { routing_key, properties, body } = message;
                let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
                channel.basic_publish(exchange, routing_key.as_str().into(), mandatory, &body, properties).await
            }))
            .await;
            let confirm: Confirm = Box::pin(async move {
                let confirm = written.await.map_err(broker_error)?;
                let confirmation = confirm.await.map_err(broker_error)?;
                drop(span); // the publish span ends with the broker's confirm
                Ok(match confirmation {
                    Confirmation::Ack(None) => Delivery::Acked,
                    Confirmation::Ack(Some(_)) => Delivery::Returned,
                    Confirmation::Nack(_) | Confirmation::NotRequested => Delivery::Refused,
                })
            });
            Ok(confirm)
        }
    }
}

/// Queues a `basic_publish` and returns what is left of it. lapin queues a publish's frames (and numbers its
/// confirm) when the publish is first polled, then waits for its I/O thread to write them: awaited in full, every
/// publish is a round trip between threads and two wake-ups. This polls `publish` once, now, so publishes queued
/// one after another keep their order and reach the I/O thread back to back; the future returned waits for the
/// write (and gives the publish's result), to be awaited with the confirm.
pub async fn queue<F: Future + Unpin>(mut publish: F) -> impl Future<Output = F::Output> {
    let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut publish).poll(cx))).await;
    async move {
        match first {
            Poll::Ready(output) => output,
            Poll::Pending => publish.await,
        }
    }
}

fn broker_error(err: lapin::Error) -> BrokerError {
    BrokerError(err.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::queue;

    #[tokio::test]
    async fn queued_publishes_start_in_order_and_finish_when_awaited() {
        let started = Arc::new(Mutex::new(Vec::new()));
        let (written, wait_for_write) = tokio::sync::oneshot::channel::<()>();
        let log = Arc::clone(&started);
        let first = queue(Box::pin(async move {
            log.lock().expect("lock").push("first");
            wait_for_write.await.is_ok()
        }))
        .await;
        let log = Arc::clone(&started);
        let second = queue(Box::pin(async move {
            log.lock().expect("lock").push("second");
            true
        }))
        .await;
        // Both began (lapin would have queued both frames, in this order) before either was awaited.
        assert_eq!(*started.lock().expect("lock"), ["first", "second"]);
        assert!(second.await, "a publish that finished at its first poll gives its result");
        written.send(()).expect("the first publish waits");
        assert!(first.await, "a publish still waiting finishes when awaited");
    }
}
