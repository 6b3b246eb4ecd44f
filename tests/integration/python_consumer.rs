//! The Python consumer example (`examples/consumers/python/consumer.py`) against the real service, relay and
//! broker: it sees every change exactly once after deduplication, in order per resource, across a crash that
//! leaves its last message unacknowledged; a payload that breaks its schema is dead-lettered.

use std::process::Stdio;
use std::time::Duration;

use eventdata::proto::v1 as pb;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use pb::event_service_client::EventServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::broker::{AMQP_URL, BROKER, relay_settings, spawn_relay, test_exchange};
use crate::common::TestApp;
use crate::fixtures::create_event;

fn consumer_script() -> String {
    format!("{}/examples/consumers/python/consumer.py", env!("CARGO_MANIFEST_DIR"))
}

/// Starts the consumer with `extra` arguments and waits until it has declared its queue.
async fn start_consumer(exchange: &str, queue: &str, state: &str, extra: &[&str]) -> tokio::process::Child {
    let mut child = tokio::process::Command::new("python3")
        .arg(consumer_script())
        .args(["--amqp-url", AMQP_URL, "--exchange", exchange, "--queue", queue, "--state", state])
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the consumer (scripts/setup.sh installs its packages)");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.expect("ready in time");
    assert_eq!(ready.expect("read").as_deref(), Some("ready"));
    child
}

async fn exit_code(child: &mut tokio::process::Child) -> Option<i32> {
    tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the consumer exits in time")
        .expect("wait")
        .code()
}

/// The consumer's `processed` table, in processing order: (message id, resource id, position).
fn processed(state: &str) -> Vec<(String, String, i64)> {
    let script = "import json, sqlite3, sys; print(json.dumps(sqlite3.connect(sys.argv[1]).execute(\
                  'SELECT message_id, resource_id, position FROM processed ORDER BY n').fetchall()))";
    let output = std::process::Command::new("python3").args(["-c", script, state]).output().expect("python3");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("rows")
}

#[tokio::test]
async fn the_python_consumer_sees_every_change_once_in_order_across_a_crash() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let queue = format!("python-consumer.{}", uuid::Uuid::new_v4().simple());
    let state = std::env::temp_dir().join(format!("{queue}.sqlite")).to_string_lossy().into_owned();

    let mut first = start_consumer(&exchange, &queue, &state, &["--prefetch", "1", "--crash-after", "7"]).await;
    // First in the queue: a message whose payload breaks its schema, for the dead-letter queue, not the work.
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let mut headers = FieldTable::default();
    let dataschema = eventdata::outbox::schema::dataschema("event.created");
    headers.insert(ShortString::from("cloudEvents_dataschema"), AMQPValue::LongString(LongString::from(dataschema)));
    let bogus = BasicProperties::default()
        .with_message_id(ShortString::from(uuid::Uuid::new_v4().to_string()))
        .with_headers(headers);
    channel
        .basic_publish(exchange.as_str().into(), "event.created".into(), BasicPublishOptions::default(), b"{}", bogus)
        .await
        .expect("publish")
        .await
        .expect("confirm");

    let _relay = spawn_relay(&relay_settings(&app.db, &exchange));
    let mut events = EventServiceClient::new(app.rw());
    let mut created = Vec::new();
    for i in 0..10 {
        created.push(create_event(app.rw(), &format!("Conf {i}"), &format!("conf-{i}")).await);
    }
    for round in 0..2 {
        for event in &created[..5] {
            events
                .update_event(pb::UpdateEventRequest {
                    event: Some(pb::Event {
                        name: format!("{} r{round}", event.name),
                        etag: String::new(),
                        ..event.clone()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
                })
                .await
                .expect("update");
        }
    }
    for event in &created[7..] {
        events
            .delete_event(pb::DeleteEventRequest { id: event.id.clone(), etag: String::new() })
            .await
            .expect("delete");
    }
    assert_eq!(exit_code(&mut first).await, Some(3), "the first run crashes after 7 changes, the 7th unacknowledged");

    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    let written: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT change_id FROM outbox ORDER BY position").fetch_all(&mut *tx).await.expect("outbox");
    tx.commit().await.expect("commit");
    assert_eq!(written.len(), 23, "10 creates, 10 updates, 3 deletes");
    let until = written.len().to_string();
    let mut second = start_consumer(&exchange, &queue, &state, &["--until", &until]).await;
    assert_eq!(exit_code(&mut second).await, Some(0));

    let rows = processed(&state);
    let mut ids: Vec<String> = rows.iter().map(|(id, _, _)| id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = written.iter().map(|(id,)| id.to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected, "every change exactly once after deduplication");
    let mut last_position = std::collections::HashMap::new();
    for (id, resource, position) in &rows {
        let previous = last_position.insert(resource.clone(), *position);
        assert!(previous.is_none_or(|p| p < *position), "{id} of {resource} came after a later change");
    }
    let dead = channel
        .queue_declare(
            format!("{queue}.dead").as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("dead-letter queue");
    assert_eq!(dead.message_count(), 1, "the payload that broke its schema was dead-lettered");

    for name in [queue.clone(), format!("{queue}.dead")] {
        channel.queue_delete(name.as_str().into(), QueueDeleteOptions::default()).await.expect("delete queue");
    }
    let _ = std::fs::remove_file(&state);
}
