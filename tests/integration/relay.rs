//! The relay against the real PostgreSQL and RabbitMQ: everything committed arrives, in commit order per
//! resource, with every header; nothing is skipped when commits come out of order; nothing is lost across
//! kill -9, broker restarts, or a failover between relays.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use eventdata::outbox::log::{self, Checkpoint};
use eventdata::outbox::relay::Relay;
use eventdata::proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use prost_types::FieldMask;
use sqlx::Connection;
use tokio::sync::watch;
use uuid::Uuid;

use crate::broker::{BROKER, BoundQueue, Received, relay_settings, spawn_relay, test_exchange};
use crate::common::{AuthChannel, TestApp, eventually};
use crate::fixtures::create_event;

/// Runs a relay in-process until the returned sender is dropped or set.
fn start_relay(
    settings: eventdata::config::RelaySettings,
) -> (watch::Sender<bool>, watch::Receiver<std::collections::BTreeSet<u32>>, tokio::task::JoinHandle<anyhow::Result<()>>)
{
    let relay = Relay::new(settings);
    let active = relay.active_partitions();
    let (stop, stopped) = watch::channel(false);
    (stop, active, tokio::spawn(relay.run(stopped)))
}

/// `writers` concurrent clients making `updates` unconditional updates in all over `events` (round robin), so
/// several writers race on each event.
async fn write_updates(channel: AuthChannel, events: &[pb::Event], writers: usize, updates: usize) {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (channel, events) = (channel.clone(), events.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut client = EventServiceClient::new(channel);
            for i in (w..updates).step_by(writers) {
                let event = &events[i % events.len()];
                client
                    .update_event(pb::UpdateEventRequest {
                        event: Some(pb::Event {
                            id: event.id.clone(),
                            name: format!("w{w}-{i}"),
                            ..Default::default()
                        }),
                        update_mask: Some(FieldMask { paths: vec!["name".into()] }),
                    })
                    .await
                    .expect("update");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

/// Every change id of the test's outbox.
async fn committed_ids(app: &TestApp) -> HashSet<String> {
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT change_id FROM outbox").fetch_all(&mut *tx).await.expect("ids");
    ids.into_iter().map(|id| id.to_string()).collect()
}

/// Per resource, the etags of first deliveries must count up 1, 2, 3, ... with no gap: commit order, nothing lost.
fn assert_per_resource_order(received: &[Received]) {
    let mut seen = HashSet::new();
    let mut last: HashMap<String, i64> = HashMap::new();
    for message in received {
        if !seen.insert(message.message_id.clone()) {
            continue;
        }
        let resource = message.headers["resource_id"].clone();
        let etag: i64 = message.body["resource"]["etag"].as_str().and_then(|e| e.parse().ok()).expect("etag");
        let previous = last.insert(resource.clone(), etag).unwrap_or(0);
        assert_eq!(etag, previous + 1, "{resource}: version {etag} delivered after {previous}");
    }
}

#[tokio::test]
async fn ten_thousand_concurrent_changes_arrive_in_order_with_headers() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let mut queue = BoundQueue::bind(&exchange).await;
    let (_stop, _active, _relay) = start_relay(relay_settings(&app.db, &exchange));

    let mut events = Vec::new();
    for i in 0..50 {
        events.push(create_event(app.rw(), &format!("E{i}"), &format!("e-{i}")).await);
    }
    write_updates(app.rw(), &events, 8, 9_950).await;
    queue.receive_until(Duration::from_secs(120), "10,000 changes", |r| r.len() >= 10_000).await;

    let ids: HashSet<&str> = queue.received.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 10_000, "no duplicates without failures");
    assert_eq!(
        ids,
        committed_ids(&app).await.iter().map(String::as_str).collect::<HashSet<_>>(),
        "exactly what was committed"
    );
    assert_per_resource_order(&queue.received);
    for m in &queue.received {
        let h = &m.headers;
        assert_eq!(m.delivery_mode, Some(2), "persistent");
        assert_eq!((m.content_type.as_str(), m.app_id.as_str()), ("application/json", "eventdata"));
        assert_eq!(m.routing_key, m.kind, "routing key is the change type");
        assert!(["event.created", "event.updated"].contains(&m.routing_key.as_str()));
        assert_eq!(h["cloudEvents_id"], m.message_id);
        assert_eq!(h["cloudEvents_specversion"], "1.0");
        assert_eq!(h["cloudEvents_type"], format!("eventdata.{}", m.kind));
        assert_eq!(h["cloudEvents_subject"], h["resource_id"]);
        assert_eq!(h["cloudEvents_source"], format!("/eventdata/orgs/{}", app.org));
        assert!(chrono::DateTime::parse_from_rfc3339(&h["cloudEvents_time"]).is_ok());
        assert_eq!(h["org_id"], app.org.to_string());
        assert!(h["position"].parse::<i64>().is_ok());
        assert_eq!(m.body["resource_id"].as_str(), Some(h["resource_id"].as_str()));
    }
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_not_skipped() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let insert = "INSERT INTO outbox (org_id, aggregate_type, aggregate_id, change_type, payload)
                  VALUES (current_org_id(), 'event', $1, 'event.updated', '{}') RETURNING position";
    // T1 takes the earlier position and stays open; T2 takes a later one and commits first.
    let mut t1 = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("t1");
    let early: i64 = sqlx::query_scalar(insert).bind(Uuid::now_v7()).fetch_one(&mut *t1).await.expect("t1 insert");
    let mut t2 = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("t2");
    let late: i64 = sqlx::query_scalar(insert).bind(Uuid::now_v7()).fetch_one(&mut *t2).await.expect("t2 insert");
    t2.commit().await.expect("t2 commits first");
    assert!(early < late);

    let exchange = test_exchange();
    let settings = relay_settings(&app.db, &exchange);
    let mut reader = sqlx::PgConnection::connect(&settings.database_url).await.expect("relay connection");
    let page = log::read_after(&mut reader, Checkpoint::default(), 1, 0, 100).await.expect("read");
    assert!(page.changes.is_empty(), "T2's change is held back by the watermark while T1 (an older one) runs");
    assert_eq!(page.ahead.iter().map(|c| c.position).collect::<Vec<_>>(), vec![late], "but it is committed");
    assert!(page.held_back(), "and the reader is told so");

    // T2's change goes out while T1 still runs (another resource: nothing T1 can still write comes before it for
    // its resource), but the checkpoint cannot pass it: T1's change comes before it in the log.
    let mut queue = BoundQueue::bind(&exchange).await;
    let (_stop, _active, _relay) = start_relay(settings.clone());
    queue.receive_until(Duration::from_secs(30), "T2's change", |r| !r.is_empty()).await;
    assert_eq!(queue.received[0].headers["position"], late.to_string(), "published ahead of the watermark");
    let saved = log::checkpoint(&mut reader, 1, 0).await.expect("checkpoint");
    assert!(saved.position < early, "the checkpoint stays before T1's change: {saved:?}");

    t1.commit().await.expect("t1 commits last");
    queue.receive_until(Duration::from_secs(30), "both changes", |r| r.len() >= 2).await;
    let positions: Vec<String> = queue.received.iter().map(|m| m.headers["position"].clone()).collect();
    assert_eq!(positions, vec![late.to_string(), early.to_string()], "both delivered, each once");
    let after = log::read_after(&mut reader, Checkpoint::default(), 1, 0, 100).await.expect("read");
    assert_eq!(after.changes.len(), 2);
}

/// The relay's page read is an ordered scan of the log's index that stops after the page, however long the log:
/// as the relay role, with its session settings, after the log has grown past what a sort would be cheap for.
#[tokio::test]
async fn a_page_of_the_log_is_an_ordered_index_scan() {
    let app = TestApp::start().await;
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    sqlx::query(
        "INSERT INTO outbox (org_id, aggregate_type, aggregate_id, change_type, payload)
         SELECT current_org_id(), 'event', gen_random_uuid(), 'event.updated', '{}' FROM generate_series(1, 20000)",
    )
    .execute(&mut *tx)
    .await
    .expect("changes");
    tx.commit().await.expect("commit");
    sqlx::query("ANALYZE outbox").execute(&app.db.admin).await.expect("analyze");

    let settings = relay_settings(&app.db, &test_exchange());
    let mut reader = sqlx::PgConnection::connect(&settings.database_url).await.expect("relay connection");
    log::set_ordered_reads(&mut reader).await.expect("set");
    // One partition (the default) reads the whole log; several read their own changes through the index made for
    // their count (two_relays_on_four_partitions_...).
    let plan = log::explain_read_after(&mut reader, Checkpoint::default(), 1, 0, 500).await.expect("plan");
    assert!(plan.contains("Index Scan using outbox_read_idx"), "{plan}");
    assert!(!plan.contains("Sort") && !plan.contains("Seq Scan"), "{plan}");
    // The changes become readable once every older transaction of the cluster has finished (other tests' seeds
    // may hold the watermark back for a while).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let page = loop {
        let page = log::read_after(&mut reader, Checkpoint::default(), 1, 0, 500).await.expect("read").changes;
        if page.len() == 500 || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(page.len(), 500);
    assert!(page.windows(2).all(|w| w[0].checkpoint() < w[1].checkpoint()), "in log order");
}

#[tokio::test]
async fn kill_dash_nine_five_times_loses_nothing() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let mut queue = BoundQueue::bind(&exchange).await;
    let mut settings = relay_settings(&app.db, &exchange);
    settings.batch_size = 50;
    let mut events = Vec::new();
    for i in 0..20 {
        events.push(create_event(app.rw(), &format!("E{i}"), &format!("e-{i}")).await);
    }
    let writer = tokio::spawn({
        let (channel, events) = (app.rw(), events.clone());
        async move { write_updates(channel, &events, 4, 3_000).await }
    });

    let mut relay = spawn_relay(&settings);
    for kill in 1..=5 {
        // Kill once the relay has made progress since the last restart, at a point the test does not choose.
        let target = queue.received.len() + 150 + rand_below(200);
        queue.receive_until(Duration::from_secs(60), "progress before a kill", |r| r.len() >= target).await;
        relay.start_kill().expect("kill -9");
        relay.wait().await.expect("reaped");
        tracing::info!(kill, "relay killed");
        relay = spawn_relay(&settings);
    }
    writer.await.expect("writer");
    let committed = committed_ids(&app).await;
    queue
        .receive_until(Duration::from_secs(120), "every committed change", |r| {
            let got: HashSet<&str> = r.iter().map(|m| m.message_id.as_str()).collect();
            committed.iter().all(|id| got.contains(id.as_str()))
        })
        .await;
    let duplicates = queue.received.len() - committed.len();
    assert!(duplicates <= 5 * settings.batch_size as usize, "duplicates only of unconfirmed batches: {duplicates}");
    assert_per_resource_order(&queue.received);
    drop(relay);
}

/// How many partitions `eventdata relay status` (pg_locks, this database) shows held by some relay.
async fn held_partitions(settings: &eventdata::config::RelaySettings) -> usize {
    let mut conn = sqlx::PgConnection::connect(&settings.database_url).await.expect("relay connection");
    log::status(&mut conn, settings.partitions).await.expect("status").iter().filter(|p| p.active).count()
}

#[tokio::test]
async fn two_relays_on_four_partitions_read_their_own_changes_and_either_takes_over_from_the_other() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let mut queue = BoundQueue::bind(&exchange).await;
    let mut settings = relay_settings(&app.db, &exchange);
    settings.partitions = 4;

    // The index for four partitions, made by the owner with the CLI; a partition's page is then a range of it.
    let prepared = std::process::Command::new(env!("CARGO_BIN_EXE_eventdata"))
        .args(["relay", "prepare"])
        .envs(crate::broker::relay_env(&settings))
        .env("DATABASE_ADMIN_URL", &app.db.admin_url)
        .env("DATABASE_URL", &app.db.admin_url)
        .output()
        .expect("relay prepare");
    assert!(prepared.status.success(), "{}", String::from_utf8_lossy(&prepared.stderr));
    let mut reader = sqlx::PgConnection::connect(&settings.database_url).await.expect("relay connection");
    assert!(log::has_partition_index(&mut reader, 4).await.expect("index"), "the index is there and valid");
    let plan = log::explain_read_after(&mut reader, Checkpoint::default(), 4, 1, 500).await.expect("plan");
    assert!(
        plan.contains("Index Scan using outbox_partition_4_read_idx")
            && plan.contains("Index Cond: ((mod(partition_key"),
        "{plan}"
    );
    assert!(!plan.contains("Sort") && !plan.contains("Seq Scan"), "{plan}");

    let mut events = Vec::new();
    for i in 0..20 {
        events.push(create_event(app.rw(), &format!("E{i}"), &format!("e-{i}")).await);
    }
    let writer = tokio::spawn({
        let (channel, events) = (app.rw(), events.clone());
        async move { write_updates(channel, &events, 4, 2_000).await }
    });

    // A process holds all four partitions; an in-process relay stands by for each of them.
    let mut first = spawn_relay(&settings);
    eventually(Duration::from_secs(30), "the first relay to hold four partitions", || async {
        held_partitions(&settings).await == 4
    })
    .await;
    let (stop_second, mut second_active, second) = start_relay(settings.clone());
    queue.receive_until(Duration::from_secs(60), "progress", |r| r.len() >= 300).await;
    assert!(second_active.borrow().is_empty(), "the standby publishes nothing while the first relay lives");

    // kill -9 mid-stream: the standby claims every partition within a few claim intervals.
    first.start_kill().expect("kill -9");
    first.wait().await.expect("reaped");
    tokio::time::timeout(Duration::from_secs(10), second_active.wait_for(|a| a.len() == 4))
        .await
        .expect("the standby takes all four partitions within seconds")
        .expect("active set");
    queue.receive_until(Duration::from_secs(60), "progress after the takeover", |r| r.len() >= 900).await;

    // And the other way round: a new process stands by, the in-process relay stops, the process takes over.
    let mut third = spawn_relay(&settings);
    stop_second.send(true).expect("stop");
    second.await.expect("joined").expect("stopped cleanly");
    eventually(Duration::from_secs(30), "the new process to hold four partitions", || async {
        held_partitions(&settings).await == 4
    })
    .await;

    writer.await.expect("writer");
    let committed = committed_ids(&app).await;
    assert_eq!(committed.len(), 2_020);
    queue
        .receive_until(Duration::from_secs(120), "every committed change", |r| {
            let got: HashSet<&str> = r.iter().map(|m| m.message_id.as_str()).collect();
            committed.iter().all(|id| got.contains(id.as_str()))
        })
        .await;
    assert_per_resource_order(&queue.received);
    third.start_kill().expect("kill");
}

fn rand_below(n: usize) -> usize {
    (Uuid::new_v4().as_u128() % n as u128) as usize
}

#[tokio::test]
async fn a_standby_relay_takes_over_when_the_active_one_dies() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let mut queue = BoundQueue::bind(&exchange).await;
    let settings = relay_settings(&app.db, &exchange);

    let mut first = spawn_relay(&settings);
    create_event(app.rw(), "Before", "before").await;
    queue.receive_until(Duration::from_secs(30), "the first relay to publish", |r| !r.is_empty()).await;

    let (_stop, mut standby_active, _standby) = start_relay(settings.clone());
    for i in 0..100 {
        create_event(app.rw(), "E", &format!("e-{i}")).await;
    }
    queue.receive_until(Duration::from_secs(30), "101 changes", |r| r.len() >= 101).await;
    assert!(standby_active.borrow().is_empty(), "the standby does not publish while the first relay lives");
    let ids: HashSet<&str> = queue.received.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), queue.received.len(), "only one relay published: no duplicates");

    first.start_kill().expect("kill the active relay");
    first.wait().await.expect("reaped");
    tokio::time::timeout(Duration::from_secs(10), standby_active.wait_for(|a| a.contains(&0)))
        .await
        .expect("the standby takes over within seconds")
        .expect("active set");
    for i in 0..20 {
        create_event(app.rw(), "After", &format!("after-{i}")).await;
    }
    let committed = committed_ids(&app).await;
    assert_eq!(committed.len(), 121);
    // The new holder may republish the last batch the old one published but had not checkpointed: duplicates,
    // never gaps.
    queue
        .receive_until(Duration::from_secs(30), "every change after the takeover", |r| {
            let ids: HashSet<&str> = r.iter().map(|m| m.message_id.as_str()).collect();
            ids.len() == 121
        })
        .await;
    let ids: HashSet<String> = queue.received.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids, committed);
}

/// Restores the broker even when the test fails.
struct BrokerRestart;

impl BrokerRestart {
    fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        BrokerRestart
    }
}

impl Drop for BrokerRestart {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    }
}

fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl").args(args).stdout(std::process::Stdio::null()).status();
    assert!(status.is_ok_and(|s| s.success()), "rabbitmqctl {args:?} failed");
}

#[tokio::test]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let _broker = BROKER.write().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let queue_name = format!("eventdata.test.restart.{}", Uuid::new_v4().simple());
    durable_queue(&exchange, &queue_name).await;
    let (_stop, mut active, _relay) = start_relay(relay_settings(&app.db, &exchange));
    active.wait_for(|a| a.contains(&0)).await.expect("relay active");

    let events: Vec<pb::Event> = {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(create_event(app.rw(), "E", &format!("e-{i}")).await);
        }
        v
    };
    write_updates(app.rw(), &events, 2, 300).await;
    eventually(Duration::from_secs(30), "the first changes to be queued", || async {
        queued(&queue_name).await >= 310
    })
    .await;
    {
        let _down = BrokerRestart::stop();
        // Changes keep committing while the broker is away.
        write_updates(app.rw(), &events, 2, 300).await;
    }
    write_updates(app.rw(), &events, 2, 100).await;
    let committed = committed_ids(&app).await;
    assert_eq!(committed.len(), 710);
    // Duplicates (a batch republished after the restart) are allowed; gaps are not.
    let mut drained: Vec<Received> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        drained.extend(drain(&queue_name).await);
        let ids: HashSet<String> = drained.iter().map(|m| m.message_id.clone()).collect();
        if committed.iter().all(|id| ids.contains(id)) {
            assert_eq!(ids, committed, "nothing lost across the restart, nothing extra");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} of {} changes arrived", ids.len(), committed.len());
        tokio::time::sleep(Duration::from_millis(200)).await; // polling interval of the condition above
    }
    assert_per_resource_order(&drained);
    delete_queue(&queue_name).await;
}

async fn durable_queue(exchange: &str, name: &str) {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let connection = lapin::Connection::connect(crate::broker::AMQP_URL, Default::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(exchange.into(), lapin::ExchangeKind::Topic, durable, FieldTable::default())
        .await
        .expect("exchange");
    channel
        .queue_declare(name.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await
        .expect("queue");
    channel
        .queue_bind(name.into(), exchange.into(), "#".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .expect("bind");
    let _ = connection.close(200, "done".into()).await;
}

async fn queued(name: &str) -> u32 {
    use lapin::options::QueueDeclareOptions;
    let Ok(connection) = lapin::Connection::connect(crate::broker::AMQP_URL, Default::default()).await else {
        return 0;
    };
    let Ok(channel) = connection.create_channel().await else { return 0 };
    let passive = QueueDeclareOptions { passive: true, durable: true, ..Default::default() };
    let count = match channel.queue_declare(name.into(), passive, Default::default()).await {
        Ok(queue) => queue.message_count(),
        Err(_) => 0,
    };
    let _ = connection.close(200, "done".into()).await;
    count
}

async fn drain(name: &str) -> Vec<Received> {
    use lapin::options::BasicGetOptions;
    let connection = lapin::Connection::connect(crate::broker::AMQP_URL, Default::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let mut out = Vec::new();
    while let Some(message) = channel.basic_get(name.into(), BasicGetOptions { no_ack: true }).await.expect("get") {
        out.push(crate::broker::to_received(&message.delivery));
    }
    let _ = connection.close(200, "done".into()).await;
    out
}

async fn delete_queue(name: &str) {
    use lapin::options::QueueDeleteOptions;
    let connection = lapin::Connection::connect(crate::broker::AMQP_URL, Default::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_delete(name.into(), QueueDeleteOptions::default()).await.expect("delete queue");
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn unroutable_changes_are_counted_and_can_go_to_an_alternate_exchange() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    // First relay: nothing is bound, so the broker returns the change; it is counted, and not retried forever.
    let lonely = test_exchange();
    let relay = Relay::new(relay_settings(&app.db, &lonely));
    let metrics = relay.metrics();
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(relay.run(stopped));
    create_event(app.rw(), "Nobody listens", "nobody").await;
    eventually(Duration::from_secs(30), "the returned change to be counted", || {
        let metrics = metrics.clone();
        async move { metrics.returned.get() == 1 }
    })
    .await;
    assert_eq!(metrics.published.get(), 1);
    stop.send(true).expect("stop");
    running.await.expect("join").expect("relay stops cleanly");

    // Second relay, on another exchange with an alternate exchange: the unroutable change lands there.
    let exchange = test_exchange();
    let alternate = format!("{exchange}.unrouted");
    let mut settings = relay_settings(&app.db, &exchange);
    settings.alternate_exchange = Some(alternate.clone());
    let mut fallback = alternate_queue(&alternate).await;
    // A fresh database position: replay from the start through the new exchange.
    let replayed = eventdata::outbox::relay::replay(&settings, 0, i64::MAX).await.expect("replay");
    assert_eq!(replayed, 1);
    fallback.receive_until(Duration::from_secs(30), "the change on the alternate exchange", |r| r.len() == 1).await;
    assert_eq!(fallback.received[0].routing_key, "event.created");
}

async fn alternate_queue(alternate: &str) -> BoundQueue {
    use lapin::options::ExchangeDeclareOptions;
    use lapin::types::FieldTable;
    // The alternate exchange is a fanout (declared by the relay the same way).
    let connection = lapin::Connection::connect(crate::broker::AMQP_URL, Default::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(alternate.into(), lapin::ExchangeKind::Fanout, durable, FieldTable::default())
        .await
        .expect("ae");
    let _ = connection.close(200, "done".into()).await;
    BoundQueue::bind_existing(alternate).await
}

#[tokio::test]
async fn sigterm_finishes_the_batch_saves_the_checkpoint_and_exits_zero() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let mut queue = BoundQueue::bind(&exchange).await;
    let settings = relay_settings(&app.db, &exchange);
    let mut relay = spawn_relay(&settings);
    for i in 0..30 {
        create_event(app.rw(), "E", &format!("e-{i}")).await;
    }
    queue.receive_until(Duration::from_secs(30), "30 changes", |r| r.len() >= 30).await;
    let pid = relay.id().expect("pid").to_string();
    let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(sent.success());
    let status =
        tokio::time::timeout(Duration::from_secs(15), relay.wait()).await.expect("exits in time").expect("status");
    assert!(status.success(), "exit 0 on SIGTERM: {status:?}");
    let mut conn = sqlx::PgConnection::connect(&settings.database_url).await.expect("relay connection");
    let saved = log::checkpoint(&mut conn, 1, 0).await.expect("checkpoint");
    let last: i64 =
        queue.received.iter().map(|m| m.headers["position"].parse::<i64>().expect("position")).max().expect("some");
    assert_eq!(saved.position, last, "the checkpoint covers everything published");
}

#[tokio::test]
async fn retention_prunes_only_delivered_expired_changes() {
    let app = TestApp::start().await;
    let settings = relay_settings(&app.db, &test_exchange());
    // Three old changes, two of them delivered (below the checkpoint), and one recent delivered change.
    let mut tx = eventdata::db::begin_for_org(&app.db.admin, app.org).await.expect("begin");
    let mut rows: Vec<(i64, i64)> = Vec::new();
    for age_days in [10, 9, 8, 0] {
        let row: (i64, i64) = sqlx::query_as(
            "INSERT INTO outbox (org_id, aggregate_type, aggregate_id, change_type, payload, created_at)
             VALUES (current_org_id(), 'event', gen_random_uuid(), 'event.updated', '{}', now() - make_interval(days => $1))
             RETURNING txid::text::bigint, position",
        )
        .bind(age_days)
        .fetch_one(&mut *tx)
        .await
        .expect("old change");
        rows.push(row);
    }
    tx.commit().await.expect("commit");
    let mut conn = sqlx::PgConnection::connect(&settings.database_url).await.expect("relay connection");
    // Delivered up to the second change only.
    log::save_checkpoint(&mut conn, 1, 0, Checkpoint { txid: rows[1].0, position: rows[1].1 })
        .await
        .expect("checkpoint");
    let deleted = log::prune(&mut conn, 1, Duration::from_secs(7 * 24 * 3600), Duration::from_secs(48 * 3600), 1)
        .await
        .expect("prune one batch");
    assert_eq!(deleted, 1, "bounded batches");
    let deleted = log::prune(&mut conn, 1, Duration::from_secs(7 * 24 * 3600), Duration::from_secs(48 * 3600), 1000)
        .await
        .expect("prune the rest");
    assert_eq!(deleted, 1);
    let left: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM outbox ORDER BY position").fetch_all(&mut conn).await.expect("left");
    assert_eq!(left, vec![rows[2].1, rows[3].1], "undelivered and recent changes stay");
}

#[tokio::test]
async fn with_several_broker_nodes_the_relay_skips_a_dead_one_and_moves_on_when_its_node_fails() {
    let _broker = BROKER.read().await;
    let app = TestApp::start().await;
    let exchange = test_exchange();
    let mut queue = BoundQueue::bind(&exchange).await;
    // Three "nodes": a port nothing listens on, the broker through a proxy that can fail, the broker itself.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let failing = crate::common::TcpProxy::start("127.0.0.1:5672").await;
    let mut settings = relay_settings(&app.db, &exchange);
    settings.amqp_urls = vec![
        format!("amqp://guest:guest@{dead}/%2f"),
        format!("amqp://guest:guest@{}/%2f", failing.addr),
        crate::broker::AMQP_URL.to_owned(),
    ];
    let _relay = spawn_relay(&settings);
    for i in 0..20 {
        create_event(app.rw(), "E", &format!("before-{i}")).await;
    }
    queue.receive_until(Duration::from_secs(30), "20 changes past the dead node", |r| r.len() >= 20).await;

    failing.set_up(false); // the node in use fails: its connection is cut and it refuses new ones
    for i in 0..20 {
        create_event(app.rw(), "E", &format!("after-{i}")).await;
    }
    let distinct = |r: &[Received]| r.iter().map(|m| m.message_id.clone()).collect::<HashSet<_>>().len();
    queue.receive_until(Duration::from_secs(60), "all 40 changes, through the last node", |r| distinct(r) >= 40).await;
    assert!(failing.refused.load(std::sync::atomic::Ordering::Relaxed) > 0, "the relay tried the failed node again");
    assert_eq!(distinct(&queue.received), 40, "nothing lost");
}
