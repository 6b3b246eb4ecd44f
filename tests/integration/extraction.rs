//! The LLM-extraction loop (`examples/extraction/extract.py`, BAML) end to end against the real service, relay and
//! broker, with recorded model answers: after two `event.created` changes the catalogue holds the extracted
//! speakers, companies and topics once each, linked to their events; a redelivered message changes nothing.

use std::process::Stdio;
use std::time::Duration;

use eventdata::proto::v1 as pb;
use lapin::options::{BasicPublishOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use pb::company_service_client::CompanyServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::speaker_service_client::SpeakerServiceClient;
use pb::topic_service_client::TopicServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::broker::{AMQP_URL, BROKER, relay_settings, spawn_relay, test_exchange};
use crate::common::TestApp;
use crate::fixtures::create_event;

/// Runs the loop until it has handled `until` events; returns once it has exited.
async fn run_loop(app: &TestApp, exchange: &str, queue: &str, until: usize, before: impl AsyncFnOnce()) {
    let dir = format!("{}/examples/extraction", env!("CARGO_MANIFEST_DIR"));
    let mut child = tokio::process::Command::new("python3")
        .arg(format!("{dir}/extract.py"))
        .args(["--grpc", app.server.grpc_url.trim_start_matches("http://"), "--api-key", &app.key])
        .args(["--amqp-url", AMQP_URL, "--exchange", exchange, "--queue", queue])
        .args(["--fixtures", &format!("{dir}/fixtures"), "--until", &until.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the extraction loop (scripts/setup.sh installs its packages)");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await.expect("ready in time");
    assert_eq!(ready.expect("read").as_deref(), Some("ready"));
    before().await;
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait()).await.expect("exits in time");
    assert!(status.expect("wait").success(), "the extraction loop failed");
}

async fn names(app: &TestApp) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut speakers: Vec<String> = SpeakerServiceClient::new(app.rw())
        .list_speakers(pb::ListSpeakersRequest { page_size: 100, ..Default::default() })
        .await
        .expect("speakers")
        .into_inner()
        .speakers
        .into_iter()
        .map(|s| s.name)
        .collect();
    let mut companies: Vec<String> = CompanyServiceClient::new(app.rw())
        .list_companies(pb::ListCompaniesRequest { page_size: 100, ..Default::default() })
        .await
        .expect("companies")
        .into_inner()
        .companies
        .into_iter()
        .map(|c| c.name)
        .collect();
    let mut topics: Vec<String> = TopicServiceClient::new(app.rw())
        .list_topics(pb::ListTopicsRequest { page_size: 100, ..Default::default() })
        .await
        .expect("topics")
        .into_inner()
        .topics
        .into_iter()
        .map(|t| t.name)
        .collect();
    speakers.sort();
    companies.sort();
    topics.sort();
    (speakers, companies, topics)
}

async fn outbox_count(app: &TestApp) -> i64 {
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&mut *tx).await.expect("count")
}

#[tokio::test]
async fn extracted_entities_land_once_linked_to_their_events_and_a_replay_changes_nothing() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let queue = format!("llm-extraction.{}", uuid::Uuid::new_v4().simple());
    let _relay = spawn_relay(&relay_settings(&app.db, &exchange));
    let mut created = Vec::new();
    run_loop(&app, &exchange, &queue, 2, async || {
        created.push(create_event(app.rw(), "RustConf", "rustconf-extraction").await);
        created.push(create_event(app.rw(), "Observability Days", "observability-days").await);
    })
    .await;

    let (speakers, companies, topics) = names(&app).await;
    assert_eq!(speakers, ["Ada Lovelace", "Grace Hopper"], "each speaker once, though Ada is in both answers");
    assert_eq!(companies, ["Analytical Engines", "Compiler Works"]);
    assert_eq!(topics, ["Compilers", "Observability", "Rust"]);
    let mut events = EventServiceClient::new(app.rw());
    let context = |id: &str| pb::GetEventContextRequest { id: id.into(), format: pb::ContextFormat::Structured as i32 };
    let rustconf = events.get_event_context(context(&created[0].id)).await.expect("context").into_inner();
    let roles: Vec<(String, i32)> =
        rustconf.speakers.iter().map(|s| (s.speaker.as_ref().expect("speaker").name.clone(), s.role)).collect();
    assert_eq!(
        roles,
        [
            ("Ada Lovelace".to_owned(), pb::SpeakerRole::Keynote as i32),
            ("Grace Hopper".into(), pb::SpeakerRole::Panelist as i32)
        ]
    );
    let ada = &rustconf.speakers[0];
    assert_eq!(ada.company.as_ref().map(|c| c.name.as_str()), Some("Analytical Engines"), "her employer is linked");
    assert_eq!((rustconf.companies.len(), rustconf.topics.len()), (2, 2));
    let observability = events.get_event_context(context(&created[1].id)).await.expect("context").into_inner();
    assert_eq!((observability.speakers.len(), observability.companies.len(), observability.topics.len()), (1, 1, 2));

    // The first event's change delivered again, as the broker would after a lost ack: nothing is written.
    let before = outbox_count(&app).await;
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    let (change_id, payload): (uuid::Uuid, String) = sqlx::query_as(
        "SELECT change_id, payload::text FROM outbox WHERE change_type = 'event.created' AND aggregate_id = $1",
    )
    .bind(created[0].id.parse::<uuid::Uuid>().expect("uuid"))
    .fetch_one(&mut *tx)
    .await
    .expect("the first event's change");
    tx.commit().await.expect("commit");
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    run_loop(&app, &exchange, &queue, 1, async || {
        let mut headers = FieldTable::default();
        let dataschema = eventdata::outbox::schema::dataschema("event.created");
        headers
            .insert(ShortString::from("cloudEvents_dataschema"), AMQPValue::LongString(LongString::from(dataschema)));
        let properties =
            BasicProperties::default().with_message_id(ShortString::from(change_id.to_string())).with_headers(headers);
        channel
            .basic_publish(
                exchange.as_str().into(),
                "event.created".into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    })
    .await;
    assert_eq!(outbox_count(&app).await, before, "the replay wrote nothing and emitted no change");
    assert_eq!(names(&app).await, (speakers, companies, topics));

    for name in [queue.clone(), format!("{queue}.dead")] {
        channel.queue_delete(name.as_str().into(), QueueDeleteOptions::default()).await.expect("delete queue");
    }
}
