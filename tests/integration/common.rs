//! Shared test fixtures: a fresh database per test (created from template1, which scripts/setup.sh gives the
//! extensions), the service run in-process on port 0, and small clients.

#![allow(dead_code, reason = "shared by test binaries that each use a part of it")]

use std::time::Duration;

use eventdata::config::{Config, DatabaseSettings, TelemetrySettings};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

/// Server URL (no database name) of the owner role, which may create databases; EVENTDATA_TEST_OWNER_URL.
fn owner_server_url() -> String {
    std::env::var("EVENTDATA_TEST_OWNER_URL").unwrap_or_else(|_| "postgres://eventdata_owner@127.0.0.1:5432".into())
}

/// A superuser connection, used only to drop test databases (terminating the runtime role's sessions needs it);
/// EVENTDATA_TEST_SUPERUSER_URL.
fn superuser_url() -> String {
    std::env::var("EVENTDATA_TEST_SUPERUSER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Server URL (no database name) of the runtime role; EVENTDATA_TEST_APP_URL.
fn app_server_url() -> String {
    std::env::var("EVENTDATA_TEST_APP_URL").unwrap_or_else(|_| "postgres://eventdata_app@127.0.0.1:5432".into())
}

/// A connection to the `postgres` database as the owner role, which may create databases.
async fn owner_server_pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{}/postgres", owner_server_url()))
        .await
        .expect("connect as eventdata_owner (run scripts/setup.sh, or set EVENTDATA_TEST_OWNER_URL)")
}

/// The name of a database with every embedded migration applied, created on first use and then only copied
/// (copying is much cheaper than migrating: the HNSW, RUM and trigram indexes, the functions and policies). The
/// name carries a digest of the migrations, so a changed migration gets a new template; test binaries and threads
/// that start together agree on one creator through an advisory lock.
async fn migrated_template() -> String {
    use sha2::Digest;
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let mut digest = sha2::Sha256::new();
            for migration in eventdata::db::MIGRATOR.iter() {
                digest.update(migration.version.to_le_bytes());
                digest.update(&*migration.checksum);
            }
            let name = format!("edtest_template_{}", &hex::encode(digest.finalize())[..16]);
            let server = owner_server_pool().await;
            let mut lock = server.acquire().await.expect("connection");
            sqlx::query("SELECT pg_advisory_lock(hashtext('eventdata test template'))")
                .execute(&mut *lock)
                .await
                .expect("template lock");
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut *lock)
                .await
                .expect("look for the template");
            if !exists {
                // Built under another name and renamed when complete, so an interrupted run leaves no half-made
                // template behind under the real name.
                let building = format!("{name}_building");
                for sql in [
                    format!("DROP DATABASE IF EXISTS {building}"),
                    format!("CREATE DATABASE {building} TEMPLATE template1"),
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *lock).await.expect("create the template");
                }
                let url = format!("{}/{building}", owner_server_url());
                let pool = PgPoolOptions::new().max_connections(1).connect(&url).await.expect("connect to template");
                eventdata::db::migrate_up(&pool).await.expect("migrate the template");
                pool.close().await;
                let rename = format!("ALTER DATABASE {building} RENAME TO {name}");
                sqlx::query(sqlx::AssertSqlSafe(rename)).execute(&mut *lock).await.expect("name the template");
            }
            sqlx::query("SELECT pg_advisory_unlock(hashtext('eventdata test template'))")
                .execute(&mut *lock)
                .await
                .expect("template unlock");
            name
        })
        .await
        .clone()
}

/// A database of this test's own, dropped when the value is dropped.
pub struct TestDb {
    /// The database name.
    pub name: String,
    /// Owner-role URL.
    pub admin_url: String,
    /// Runtime-role URL.
    pub app_url: String,
    /// An owner-role pool on it.
    pub admin: PgPool,
}

impl TestDb {
    /// A new database with nothing of ours in it.
    pub async fn empty() -> Self {
        Self::copy_of("template1").await
    }

    /// A new database copied from `template`.
    async fn copy_of(template: &str) -> Self {
        let name = format!("edtest_{}", Uuid::new_v4().simple());
        let server = owner_server_pool().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {template}")))
            .execute(&server)
            .await
            .expect("create test database");
        server.close().await;
        let admin_url = format!("{}/{name}", owner_server_url());
        let app_url = format!("{}/{name}", app_server_url());
        let admin = PgPoolOptions::new().max_connections(4).connect(&admin_url).await.expect("connect to test db");
        Self { name, admin_url, app_url, admin }
    }

    /// A new database with every migration applied: a copy of a template migrated once per set of migrations.
    pub async fn migrated() -> Self {
        Self::copy_of(&migrated_template().await).await
    }

    /// Database settings pointing the service at this database.
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.app_url.clone(),
            admin_url: self.admin_url.clone(),
            pool_max: 10,
            acquire_timeout: Duration::from_secs(2),
            search_concurrency: 3,
            create_statements: 2,
            creates_to_start_another: 8,
            creates_wait: Duration::from_millis(10),
            statement_timeout: Duration::from_secs(30),
            slow_statement: Duration::from_secs(1),
            startup_timeout: Duration::from_secs(10),
            pooler: eventdata::config::Pooler::None,
            read_url: None,
            read_max_lag: Duration::from_secs(1),
            read_token_wait: Duration::from_millis(50),
        }
    }

    /// A runtime-role pool on this database.
    pub async fn app_pool(&self) -> PgPool {
        PgPoolOptions::new().max_connections(4).connect(&self.app_url).await.expect("connect as the runtime role")
    }

    /// A superuser connection to this database, to observe other roles' sessions in `pg_stat_activity`.
    pub async fn observer(&self) -> PgPool {
        let base = superuser_url();
        let url = format!("{}/{}", base.rsplit_once('/').map(|(server, _)| server).unwrap_or(&base), self.name);
        PgPoolOptions::new().max_connections(1).connect(&url).await.expect("superuser connection")
    }

    /// Creates an organization and returns its id.
    pub async fn create_org(&self, slug: &str) -> Uuid {
        let slug = eventdata::domain::org_slug::OrgSlug::parse(slug).expect("valid slug");
        eventdata::store::organizations::insert(&self.admin, &slug, slug.as_str())
            .await
            .expect("insert organization")
            .expect("slug is new")
            .id
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = superuser_url();
        // Drop runs outside any async context we can use, so a short-lived thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let dropped = async {
                    let server = PgPoolOptions::new().max_connections(1).connect(&url).await?;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&server).await
                };
                if let Err(err) = dropped.await {
                    eprintln!("could not drop test database {name}: {err}");
                }
            });
        })
        .join();
    }
}

/// A service configuration for tests: ports chosen by the OS, fast health probes, no exporter.
pub fn test_config(database: DatabaseSettings) -> Config {
    Config {
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        database,
        health_interval: Duration::from_millis(100),
        telemetry: TelemetrySettings { otlp_endpoint: None, service_name: "eventdata-test".into(), json_logs: false },
        page_token_secret: Some("test-secret".into()),
        auth_cache_ttl: Duration::from_millis(200),
        tls: None,
        limits: Default::default(),
    }
}

/// A running in-process service; stops when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>` of the gRPC server.
    pub grpc_url: String,
    /// Address of the admin HTTP port.
    pub http_addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// Builds and starts the service with `config`.
    pub async fn start(config: Config) -> Self {
        let app = eventdata::startup::Application::build(config).await.expect("build application");
        let grpc_url = format!("http://{}", app.grpc_addr());
        let http_addr = app.http_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self { grpc_url, http_addr, stop: Some(stop) }
    }

    /// A gRPC channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.grpc_url.clone())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to test server")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A minimal HTTP/1.1 GET (the admin port speaks plain HTTP): returns the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to admin port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read response");
    let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

/// Waits until `sessions` sessions of `db` wait on a lock while running a statement whose text contains
/// `statement`.
pub async fn wait_for_lock_waiters(db: &TestDb, statement: &str, sessions: i64) {
    let watcher = db.observer().await;
    let pattern = format!("%{statement}%");
    eventually(Duration::from_secs(10), &format!("{sessions} {statement} waiting on a lock"), || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1",
        )
        .bind(&pattern)
        .fetch_one(&watcher)
        .await
        .expect("pg_stat_activity");
        waiting == sessions
    })
    .await;
}

/// Polls `check` every 20 ms until it returns true, failing the test after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub struct BearerAuth(pub Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel that authenticates with `key` (no header at all when `None`).
pub type AuthChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerAuth>;

/// A migrated database, the service running on it, and an organization with keys.
pub struct TestApp {
    /// The service (dropped first, so it stops before its database goes).
    pub server: TestServer,
    /// The database.
    pub db: TestDb,
    /// The organization the keys below act for.
    pub org: Uuid,
    /// A read+write key of `org`.
    pub key: String,
    channel: tonic::transport::Channel,
}

impl TestApp {
    /// Starts everything and waits until the service is ready.
    pub async fn start() -> Self {
        Self::start_with(|_| ()).await
    }

    /// Like [`TestApp::start`], with the service's database settings changed by `change`.
    pub async fn start_with(change: impl FnOnce(&mut DatabaseSettings)) -> Self {
        let db = TestDb::migrated().await;
        let mut settings = db.settings();
        change(&mut settings);
        let server = TestServer::start(test_config(settings)).await;
        let org = db.create_org("acme").await;
        let key = db.create_key(org, &["read", "write"]).await;
        let channel = server.channel().await;
        Self { server, db, org, key, channel }
    }

    /// A channel authenticating with `key`.
    pub fn as_key(&self, key: Option<&str>) -> AuthChannel {
        let value = key.map(|k| format!("Bearer {k}").parse().expect("ascii key"));
        tonic::service::interceptor::InterceptedService::new(self.channel.clone(), BearerAuth(value))
    }

    /// A channel authenticating with the read+write key.
    pub fn rw(&self) -> AuthChannel {
        self.as_key(Some(&self.key))
    }

    /// The outbox rows of this test's database, oldest first: (change_type, aggregate_id, payload).
    pub async fn changes(&self) -> Vec<(String, Uuid, serde_json::Value)> {
        let mut tx = eventdata::db::begin_for_org(&self.db.admin, self.org).await.expect("begin");
        let changes: Vec<(String, Uuid, serde_json::Value)> =
            sqlx::query_as("SELECT change_type, aggregate_id, payload FROM outbox ORDER BY txid, position")
                .fetch_all(&mut *tx)
                .await
                .expect("read outbox");
        assert_changes_match_their_schemas(changes.iter().map(|(t, _, p)| (t.as_str(), p)));
        changes
    }
}

/// Every change looked at validates against its committed schema (schemas/changes/<type>/v1.json), so a payload
/// that changed without its schema fails whichever test wrote it.
pub fn assert_changes_match_their_schemas<'a>(changes: impl Iterator<Item = (&'a str, &'a serde_json::Value)>) {
    let mut broken = Vec::new();
    for (change_type, payload) in changes {
        violations(&committed_schema(change_type), payload, change_type, &mut broken);
    }
    assert!(broken.is_empty(), "changes that break their schema:\n{}", broken.join("\n"));
}

/// The invariant of the transactional outbox, over all of `org`'s events: each has exactly one `event.created`
/// change and one `event.updated` change per version step, and no change lacks its event.
pub async fn assert_outbox_matches_data(db: &TestDb, org: Uuid) {
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    let broken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e WHERE
           (SELECT count(*) FROM outbox o WHERE o.aggregate_id = e.id AND o.change_type = 'event.created') <> 1
           OR (SELECT count(*) FROM outbox o WHERE o.aggregate_id = e.id AND o.change_type = 'event.updated') <> e.version - 1",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("invariant");
    assert_eq!(broken, 0, "every committed data change has its outbox rows");
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox o WHERE o.aggregate_type = 'event'
         AND NOT EXISTS (SELECT FROM events e WHERE e.id = o.aggregate_id)",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("orphans");
    assert_eq!(orphans, 0, "every change has its data");
    let changes: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT change_type, payload FROM outbox").fetch_all(&mut *tx).await.expect("changes");
    assert_changes_match_their_schemas(changes.iter().map(|(t, p)| (t.as_str(), p)));
}

impl TestDb {
    /// Creates an API key for `org` with `scopes`; returns its secret.
    pub async fn create_key(&self, org: Uuid, scopes: &[&str]) -> String {
        let key = eventdata::domain::api_key::NewApiKey::generate();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        eventdata::store::api_keys::insert(&self.admin, org, "test", &key.secret_hash, &scopes).await.expect("key");
        key.secret
    }
}

/// The ErrorInfo reason and BadRequest field paths of a status.
pub fn error_details(status: &tonic::Status) -> (String, Vec<String>) {
    use tonic_types::StatusExt;
    let reason = status.get_details_error_info().map(|i| i.reason).unwrap_or_default();
    let fields = status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    (reason, fields)
}

/// A TCP proxy to PostgreSQL that a test can cut (dropping every connection and refusing new ones) and restore.
pub struct TcpProxy {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    /// Connections refused while cut.
    pub refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TcpProxy {
    /// Starts forwarding to `target`.
    pub async fn start(target: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (up, watch) = tokio::sync::watch::channel(true);
        let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&refused);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !*watch.borrow() {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue; // refused: dropped at once
                }
                let mut cut = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up, refused }
    }

    /// Cuts or restores the database.
    pub fn set_up(&self, up: bool) {
        let _ = self.up.send(up);
    }
}

/// Rows of `org` whose stored relation counts differ from a recount of the relation tables: events (speakers,
/// companies, topics, media), speakers (events) and companies (events, employees). Zero when the count triggers
/// and the bulk loader kept them right.
pub async fn count_mismatches(db: &TestDb, org: Uuid) -> Vec<String> {
    let mut tx = eventdata::db::begin_for_org(&db.admin, org).await.expect("begin");
    sqlx::query_scalar(
        "SELECT 'event ' || e.id FROM events e
           WHERE (e.speaker_count, e.company_count, e.topic_count, e.media_count) IS DISTINCT FROM (
             (SELECT count(*) FROM event_speakers x WHERE x.event_id = e.id)::int,
             (SELECT count(*) FROM event_companies x WHERE x.event_id = e.id)::int,
             (SELECT count(*) FROM event_topics x WHERE x.event_id = e.id)::int,
             (SELECT count(*) FROM media x WHERE x.event_id = e.id)::int)
         UNION ALL
         SELECT 'speaker ' || s.id FROM speakers s
           WHERE s.event_count <> (SELECT count(*) FROM event_speakers x WHERE x.speaker_id = s.id)
         UNION ALL
         SELECT 'company ' || c.id FROM companies c
           WHERE (c.event_count, c.employee_count) IS DISTINCT FROM (
             (SELECT count(*) FROM event_companies x WHERE x.company_id = c.id)::int,
             (SELECT count(*) FROM speakers x WHERE x.company_id = c.id)::int)",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("recount")
}

// ---- change schemas (schemas/changes, docs/events.md) ----------------------------------------------------------

pub fn schema_file(change_type: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(eventdata::outbox::schema::path(change_type))
}

pub fn committed_schema(change_type: &str) -> serde_json::Value {
    let path = schema_file(change_type);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where `value` breaks `schema` (the subset of JSON Schema `outbox::schema` writes), as `path: reason` lines.
pub fn violations(schema: &serde_json::Value, value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    if let Some(expected) = schema.get("const")
        && value != expected
    {
        out.push(format!("{path}: {value} is not {expected}"));
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            serde_json::Value::String(t) => vec![t.as_str()],
            serde_json::Value::Array(ts) => ts.iter().filter_map(serde_json::Value::as_str).collect(),
            _ => vec![],
        };
        let matches = |t: &str| match t {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => false,
        };
        if !types.iter().any(|t| matches(t)) {
            out.push(format!("{path}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(serde_json::Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    if let (Some(format), Some(text)) = (schema.get("format").and_then(serde_json::Value::as_str), value.as_str()) {
        let ok = match format {
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            _ => true,
        };
        if !ok {
            out.push(format!("{path}: {text:?} is not a {format}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(serde_json::Value::as_object);
        for required in schema.get("required").and_then(serde_json::Value::as_array).into_iter().flatten() {
            let key = required.as_str().unwrap_or_default();
            if !object.contains_key(key) {
                out.push(format!("{path}: lacks {key}"));
            }
        }
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(property) => violations(property, item, &format!("{path}.{key}"), out),
                None if schema.get("additionalProperties") == Some(&serde_json::Value::Bool(false)) => {
                    out.push(format!("{path}: has {key}, which the schema does not name"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            violations(items, item, &format!("{path}[{i}]"), out);
        }
    }
}

/// The local PostgreSQL major version (the cluster directory under /etc/postgresql), for `pg_ctlcluster`.
pub fn cluster_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut entries| entries.next())
        .and_then(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .unwrap_or_else(|| "15".into())
}
