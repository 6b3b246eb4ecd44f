//! The service behind a real PgBouncer in transaction mode (Debian's 1.18, which keeps no prepared statement
//! across transactions and refuses the `options` startup parameter): 100 concurrent clients drive CRUD, search,
//! graph and the change feed through a pool of 10 server connections, and every call answers correctly.
//! A test binary of its own: `EVENTDATA_DB_POOLER=transaction` is process-wide (no named prepared statements).

#[path = "integration/common.rs"]
mod common;
#[path = "integration/fixtures.rs"]
#[allow(dead_code, reason = "the fixtures this test does not need")]
mod fixtures;

use std::time::Duration;

use eventdata::proto::v1 as pb;
use pb::change_feed_service_client::ChangeFeedServiceClient;
use pb::event_service_client::EventServiceClient;
use pb::graph_service_client::GraphServiceClient;
use pb::search_service_client::SearchServiceClient;
use prost_types::FieldMask;
use tokio_stream::StreamExt;

use crate::common::{AuthChannel, BearerAuth, TestDb, TestServer, eventually, test_config};
use crate::fixtures::{create_event, create_speaker, embed, new_event};

/// Server connections PgBouncer keeps to the database.
const SERVER_POOL: usize = 10;
/// Concurrent clients of the service.
const CLIENTS: usize = 100;

/// A PgBouncer of this test's own, in transaction mode, in front of the local cluster.
struct Bouncer {
    child: tokio::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Bouncer {
    async fn start(database: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let dir = std::env::temp_dir().join(format!("eventdata-pgbouncer-{port}"));
        std::fs::create_dir_all(&dir).expect("pgbouncer dir");
        // PgBouncer will not run as root; it switches to `postgres` (`-u`), which must read and write here.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
        let config = format!(
            "[databases]\n{database} = host=127.0.0.1 port=5432 dbname={database}\n\n\
             [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {dir}/userlist.txt\npool_mode = transaction\n\
             default_pool_size = {SERVER_POOL}\nmin_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 500\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {dir}/pgbouncer.log\npidfile = {dir}/pgbouncer.pid\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("pgbouncer.ini"), config).expect("pgbouncer.ini");
        std::fs::write(dir.join("userlist.txt"), "\"eventdata_app\" \"\"\n").expect("userlist.txt");
        let mut command = tokio::process::Command::new("pgbouncer");
        if nix_is_root() {
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(dir.join("pgbouncer.ini"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start pgbouncer (scripts/setup.sh installs it)");
        let bouncer = Self { child, port, dir };
        let url = bouncer.url(database);
        eventually(Duration::from_secs(20), "pgbouncer to accept connections", || {
            let url = url.clone();
            async move { sqlx::PgPool::connect(&url).await.is_ok() }
        })
        .await;
        bouncer
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://eventdata_app@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            eprintln!("pgbouncer's log is kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// One client's round of calls: every family of the API, each answer checked.
async fn round(channel: AuthChannel, client: usize) {
    let mut events = EventServiceClient::new(channel.clone());
    let slug = format!("pooled-{client}");
    let made = events
        .create_event(pb::CreateEventRequest {
            event: Some(pb::Event {
                description: Some(format!("Pooled conference number {client}")),
                ..new_event(&format!("Pooled {client}"), &slug)
            }),
            request_id: String::new(),
        })
        .await
        .expect("create through the pooler")
        .into_inner();
    let got = events.get_event(pb::GetEventRequest { id: made.id.clone() }).await.expect("get").into_inner();
    assert_eq!(got.slug, slug);
    let updated = events
        .update_event(pb::UpdateEventRequest {
            event: Some(pb::Event {
                id: made.id.clone(),
                name: format!("Pooled {client} (renamed)"),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["name".into()] }),
        })
        .await
        .expect("update")
        .into_inner();
    assert!(updated.name.ends_with("(renamed)"));
    let speaker = create_speaker(channel.clone(), &format!("Speaker Number{client}")).await;
    events
        .add_event_speaker(pb::AddEventSpeakerRequest {
            event_speaker: Some(pb::EventSpeaker {
                event_id: made.id.clone(),
                speaker_id: speaker.id.clone(),
                role: pb::SpeakerRole::Keynote as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("add a speaker");
    let page = events.list_events(pb::ListEventsRequest { page_size: 5, ..Default::default() }).await.expect("list");
    assert!(!page.into_inner().events.is_empty());

    let mut search = SearchServiceClient::new(channel.clone());
    let hits = search
        .search_events(pb::SearchEventsRequest { query: "pooled conference".into(), ..Default::default() })
        .await
        .expect("full text")
        .into_inner()
        .hits;
    assert!(!hits.is_empty(), "full text finds the pooled events");
    let names = search
        .lookup_names(pb::LookupNamesRequest {
            resource_type: "speaker".into(),
            name: format!("Speaker Numbr{client}"),
            ..Default::default()
        })
        .await
        .expect("lookup")
        .into_inner()
        .matches;
    assert!(!names.is_empty(), "the lookup finds the speaker despite the typo");
    let similar = search
        .similar_events(pb::SimilarEventsRequest {
            query: Some(pb::SimilarityQuery {
                query: Some(pb::similarity_query::Query::Vector(pb::VectorQuery { values: unit(client) })),
            }),
            k: 3,
            ..Default::default()
        })
        .await
        .expect("similar")
        .into_inner()
        .results;
    assert!(!similar.is_empty(), "similarity finds the embedded events");

    let neighborhood = GraphServiceClient::new(channel.clone())
        .get_neighborhood(pb::GetNeighborhoodRequest {
            start: Some(pb::NodeRef { r#type: pb::NodeType::Event as i32, id: made.id.clone() }),
            depth: 1,
            ..Default::default()
        })
        .await
        .expect("neighborhood")
        .into_inner();
    assert!(neighborhood.nodes.iter().any(|n| n.id == speaker.id), "the speaker is a neighbour");

    let changes = ChangeFeedServiceClient::new(channel)
        .list_changes(pb::ListChangesRequest { resource_id: Some(made.id.clone()), ..Default::default() })
        .await
        .expect("list changes")
        .into_inner()
        .changes;
    assert!(changes.len() >= 3, "created, updated, speaker added: {}", changes.len());
}

fn unit(seed: usize) -> Vec<f32> {
    let mut values = vec![0.0; 1536];
    values[seed % 1536] = 1.0;
    values[(seed * 7 + 1) % 1536] = 0.5;
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_through_pgbouncer_in_transaction_mode_on_ten_server_connections() {
    // The service's own warnings and errors in the test's output, should a call fail.
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    let db = TestDb::migrated().await;
    let org = db.create_org("pooled").await;
    let key = db.create_key(org, &["read", "write"]).await;
    let bouncer = Bouncer::start(&db.name).await;

    let mut settings = db.settings();
    settings.url = bouncer.url(&db.name);
    settings.pool_max = 40; // more client connections than the pooler's server connections
    settings.acquire_timeout = Duration::from_secs(30);
    settings.pooler = eventdata::config::Pooler::Transaction;
    let server = TestServer::start(test_config(settings)).await;
    let auth = BearerAuth(Some(format!("Bearer {key}").parse().expect("ascii")));
    let channel: AuthChannel = tonic::service::interceptor::InterceptedService::new(server.channel().await, auth);

    for i in 0..5 {
        let event = create_event(channel.clone(), &format!("Embedded {i}"), &format!("embedded-{i}")).await;
        embed(channel.clone(), pb::EmbeddedType::Event, &event.id, unit(i)).await;
    }
    // A watcher through the pooler too: it must see every event the clients create.
    let mut watch = ChangeFeedServiceClient::new(channel.clone())
        .watch_changes(pb::WatchChangesRequest {
            start: pb::watch_changes_request::Start::Now as i32,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();

    let rounds: Vec<_> = (0..CLIENTS).map(|client| tokio::spawn(round(channel.clone(), client))).collect();
    let observer = db.observer().await;
    let mut most_servers = 0i64;
    for task in rounds {
        let servers: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = 'eventdata_app'",
        )
        .fetch_one(&observer)
        .await
        .expect("server connections");
        most_servers = most_servers.max(servers);
        task.await.expect("a client's round");
    }
    assert!((1..=SERVER_POOL as i64).contains(&most_servers), "the pooler's server connections: {most_servers}");

    let mut created = std::collections::HashSet::new();
    while created.len() < CLIENTS {
        let change = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("the watcher keeps up")
            .expect("stream open")
            .expect("a change");
        if change.r#type == "event.created" {
            created.insert(change.resource_id);
        }
    }
    drop(server);
    drop(bouncer);
}
