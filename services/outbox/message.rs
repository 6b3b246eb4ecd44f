//! How a change looks on the wire: an AMQP message with CloudEvents attributes in binary mode (AMQP protocol
//! binding: `cloudEvents_*` headers), the resource's routing key, and the request's W3C trace context.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use super::log::LoggedChange;

/// A change ready to publish.
pub struct OutgoingMessage {
    /// `<resource>.<change>`, e.g. `event.speaker_added`.
    pub routing_key: String,
    /// Persistent, identified, typed, with headers.
    pub properties: BasicProperties,
    /// The change payload (JSON).
    pub body: Vec<u8>,
}

fn text(value: impl Into<String>) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.into()))
}

impl From<&LoggedChange> for OutgoingMessage {
    fn from(change: &LoggedChange) -> Self {
        Self::with_trace(change, change.traceparent.clone(), change.tracestate.clone())
    }
}

impl OutgoingMessage {
    /// The message of `change`, carrying `traceparent`/`tracestate` (the publish span's, when it is recorded).
    pub fn with_trace(change: &LoggedChange, traceparent: Option<String>, tracestate: Option<String>) -> Self {
        let mut headers = FieldTable::default();
        let mut put = |name: &str, value: AMQPValue| {
            headers.insert(ShortString::from(name), value);
        };
        put("cloudEvents_specversion", text("1.0"));
        put("cloudEvents_id", text(change.change_id.to_string()));
        put("cloudEvents_source", text(format!("/eventdata/orgs/{}", change.org_id)));
        put("cloudEvents_type", text(format!("eventdata.{}", change.change_type)));
        put("cloudEvents_subject", text(change.aggregate_id.to_string()));
        put("cloudEvents_time", text(change.created_at.to_rfc3339()));
        put("cloudEvents_datacontenttype", text("application/json"));
        put("cloudEvents_dataschema", text(super::schema::dataschema(&change.change_type)));
        put("org_id", text(change.org_id.to_string()));
        put("resource_type", text(change.aggregate_type.clone()));
        put("resource_id", text(change.aggregate_id.to_string()));
        put("position", AMQPValue::LongLongInt(change.position));
        // When the relay hands the change to the broker (microseconds since the Unix epoch): with `cloudEvents_time`
        // and the arrival time, a consumer can tell the relay's share of its lag from the broker's.
        put("published_at", AMQPValue::LongLongInt(chrono::Utc::now().timestamp_micros()));
        if let Some(actor) = change.actor_key_id {
            put("actor_key_id", text(actor.to_string()));
        }
        if let Some(traceparent) = traceparent {
            put("traceparent", text(traceparent));
        }
        if let Some(tracestate) = tracestate {
            put("tracestate", text(tracestate));
        }
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(ShortString::from(change.change_id.to_string()))
            .with_content_type(ShortString::from("application/json"))
            .with_type(ShortString::from(change.change_type.clone()))
            .with_timestamp(change.created_at.timestamp().max(0) as u64)
            .with_app_id(ShortString::from("eventdata"))
            .with_headers(headers);
        Self { routing_key: change.change_type.clone(), properties, body: change.payload.clone().into_bytes() }
    }
}
