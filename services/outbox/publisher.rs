//! Publishing to RabbitMQ with publisher confirms: a batch is sent with every confirm in flight, then the
//! confirms are awaited in order; only the confirmed prefix counts as delivered.

use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use super::log::LoggedChange;
use super::message::OutgoingMessage;

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

/// What publishing a batch achieved.
#[derive(Debug, Default, Clone)]
pub struct BatchOutcome {
    /// How many changes, from the start of the batch, the broker confirmed.
    pub confirmed: usize,
    /// How many of those were unroutable (returned under the mandatory flag).
    pub returned: usize,
    /// The routing key of the last unroutable one (never its body: see `unroutable`).
    pub returned_routing_key: Option<String>,
    /// Whether the broker refused (nacked) the change after the confirmed prefix.
    pub nacked: bool,
}

impl Publisher {
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

    /// Publishes `changes` in order, all confirms in flight, and reports the confirmed prefix.
    pub async fn publish(&self, changes: &[LoggedChange]) -> Result<BatchOutcome, lapin::Error> {
        self.send(changes).await?.settle(changes).await
    }

    /// Publishes `changes` in order without waiting for the broker: the confirms arrive with [`InFlight::settle`].
    /// The relay sends the next batch before settling this one, so the broker's confirm latency (it confirms
    /// persistent messages when it syncs them to disk) is paid once per pipeline, not once per batch.
    pub async fn send(&self, changes: &[LoggedChange]) -> Result<InFlight, lapin::Error> {
        let mut pending = Vec::with_capacity(changes.len());
        let mut spans = Vec::with_capacity(changes.len());
        for change in changes {
            let span = publish_span(&self.exchange, change);
            let message = match span.as_ref().map(|s| s.in_scope(crate::telemetry::current_trace_headers)) {
                Some((Some(traceparent), tracestate)) => {
                    OutgoingMessage::with_trace(change, Some(traceparent), tracestate)
                }
                _ => OutgoingMessage::from(change),
            };
            spans.push(span);
            let confirm = self
                .channel
                .basic_publish(
                    self.exchange.clone(),
                    message.routing_key.as_str().into(),
                    BasicPublishOptions { mandatory: true, ..Default::default() },
                    &message.body,
                    message.properties,
                )
                .await?;
            pending.push(confirm);
        }
        Ok(InFlight { pending, spans })
    }

    /// Closes the channel and connection politely (after the last confirms).
    pub async fn close(self) {
        let _ = self.channel.close(200, "relay stopping".into()).await;
        let _ = self.connection.close(200, "relay stopping".into()).await;
    }
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

/// A sent batch whose confirms are still on their way.
pub struct InFlight {
    pending: Vec<lapin::PublisherConfirm>,
    spans: Vec<Option<tracing::Span>>,
}

impl InFlight {
    /// Awaits the confirms of `changes` (the batch that was sent) in order and reports the confirmed prefix.
    pub async fn settle(self, changes: &[LoggedChange]) -> Result<BatchOutcome, lapin::Error> {
        let mut outcome = BatchOutcome::default();
        for ((confirm, change), span) in self.pending.into_iter().zip(changes).zip(self.spans) {
            let confirmation = confirm.await?;
            drop(span); // the publish span ends with the broker's confirm
            match confirmation {
                Confirmation::Ack(returned) => {
                    if returned.is_some() {
                        outcome.returned += 1;
                        outcome.returned_routing_key = Some(change.change_type.clone());
                    }
                    outcome.confirmed += 1;
                }
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    outcome.nacked = true;
                    break;
                }
            }
        }
        Ok(outcome)
    }
}
